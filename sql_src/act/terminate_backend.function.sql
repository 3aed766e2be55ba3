CREATE FUNCTION connwatch.terminate_backend(
    pid integer, backend_start timestamptz, reason text DEFAULT NULL)
RETURNS boolean
AS 'MODULE_PATHNAME', 'cw_terminate_backend'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

REVOKE ALL ON FUNCTION connwatch.terminate_backend(integer, timestamptz, text) FROM PUBLIC;

COMMENT ON FUNCTION connwatch.terminate_backend(integer, timestamptz, text) IS
    'Terminate exactly the session (pid, backend_start) after a live re-check; returns whether it was signalled, and warns why not';
