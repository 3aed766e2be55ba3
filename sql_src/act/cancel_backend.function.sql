CREATE FUNCTION connwatch.cancel_backend(
    pid integer, backend_start timestamptz, reason text DEFAULT NULL)
RETURNS boolean
AS 'MODULE_PATHNAME', 'cw_cancel_backend'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

REVOKE ALL ON FUNCTION connwatch.cancel_backend(integer, timestamptz, text) FROM PUBLIC;

COMMENT ON FUNCTION connwatch.cancel_backend(integer, timestamptz, text) IS
    'Cancel the running statement of exactly the session (pid, backend_start) after a live re-check; returns whether it was signalled';
