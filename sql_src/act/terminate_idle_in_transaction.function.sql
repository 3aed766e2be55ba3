CREATE FUNCTION connwatch.terminate_idle_in_transaction(
    older_than interval, dry_run boolean DEFAULT false,
    datname text DEFAULT NULL, usename text DEFAULT NULL,
    application_name text DEFAULT NULL)
RETURNS SETOF connwatch.action
AS 'MODULE_PATHNAME', 'cw_terminate_idle_in_transaction'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
