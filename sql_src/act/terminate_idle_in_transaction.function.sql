CREATE FUNCTION connwatch.terminate_idle_in_transaction(
    older_than interval, dry_run boolean DEFAULT false,
    datname text DEFAULT NULL, usename text DEFAULT NULL,
    application_name text DEFAULT NULL)
RETURNS SETOF connwatch.action
AS 'MODULE_PATHNAME', 'cw_terminate_idle_in_transaction'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

REVOKE ALL ON FUNCTION connwatch.terminate_idle_in_transaction(interval, boolean, text, text, text) FROM PUBLIC;

COMMENT ON FUNCTION connwatch.terminate_idle_in_transaction(interval, boolean, text, text, text) IS
    'Terminate client sessions idle in transaction (aborted included) for at least older_than, measured from state_change';
