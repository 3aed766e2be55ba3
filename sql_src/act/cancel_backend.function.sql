CREATE FUNCTION connwatch.cancel_backend(
    pid integer, backend_start timestamptz, reason text DEFAULT NULL)
RETURNS boolean
AS 'MODULE_PATHNAME', 'cw_cancel_backend'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
