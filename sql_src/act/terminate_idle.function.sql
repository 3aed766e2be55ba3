CREATE FUNCTION connwatch.terminate_idle(
    older_than interval, dry_run boolean DEFAULT false,
    datname text DEFAULT NULL, usename text DEFAULT NULL,
    application_name text DEFAULT NULL)
RETURNS SETOF connwatch.action
AS 'MODULE_PATHNAME', 'cw_terminate_idle'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

REVOKE ALL ON FUNCTION connwatch.terminate_idle(interval, boolean, text, text, text) FROM PUBLIC;

COMMENT ON FUNCTION connwatch.terminate_idle(interval, boolean, text, text, text) IS
    'Terminate client sessions idle (outside a transaction) for at least older_than';
