CREATE FUNCTION connwatch.enforce(dry_run boolean DEFAULT false)
RETURNS SETOF connwatch.action
AS 'MODULE_PATHNAME', 'cw_enforce'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
