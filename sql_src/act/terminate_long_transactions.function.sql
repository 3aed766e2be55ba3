CREATE FUNCTION connwatch.terminate_long_transactions(
    older_than interval, dry_run boolean DEFAULT false,
    datname text DEFAULT NULL, usename text DEFAULT NULL,
    application_name text DEFAULT NULL, cancel_first boolean DEFAULT true)
RETURNS SETOF connwatch.action
AS 'MODULE_PATHNAME', 'cw_terminate_long_transactions'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

REVOKE ALL ON FUNCTION connwatch.terminate_long_transactions(interval, boolean, text, text, text, boolean) FROM PUBLIC;

COMMENT ON FUNCTION connwatch.terminate_long_transactions(interval, boolean, text, text, text, boolean) IS
    'Terminate client sessions whose transaction is at least older_than old; with cancel_first, cancel a running statement first and terminate only if the transaction is still open after connwatch.cancel_grace_period';
