CREATE FUNCTION connwatch.terminate_backend(
    pid integer, backend_start timestamptz, reason text DEFAULT NULL)
RETURNS boolean
AS 'MODULE_PATHNAME', 'cw_terminate_backend'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
