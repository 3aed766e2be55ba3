CREATE FUNCTION connwatch.terminate_long_transactions(
    older_than interval, dry_run boolean DEFAULT false,
    datname text DEFAULT NULL, usename text DEFAULT NULL,
    application_name text DEFAULT NULL, cancel_first boolean DEFAULT true)
RETURNS SETOF connwatch.action
AS 'MODULE_PATHNAME', 'cw_terminate_long_transactions'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
