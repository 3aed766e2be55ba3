CREATE FUNCTION connwatch.enforce(dry_run boolean DEFAULT false)
RETURNS SETOF connwatch.action
AS 'MODULE_PATHNAME', 'cw_enforce'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

REVOKE ALL ON FUNCTION connwatch.enforce(boolean) FROM PUBLIC;

COMMENT ON FUNCTION connwatch.enforce(boolean) IS
    'Apply every enabled policy of connwatch.policies in one pass over live backend state';
