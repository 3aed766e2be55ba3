-- Whether the ledgers exist: diagnose() and metrics() skip what needs them.
CREATE FUNCTION connwatch.preloaded()
RETURNS boolean
AS 'MODULE_PATHNAME', 'cw_preloaded'
LANGUAGE C VOLATILE PARALLEL SAFE;

REVOKE ALL ON FUNCTION connwatch.preloaded() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION connwatch.preloaded() TO pg_monitor;

COMMENT ON FUNCTION connwatch.preloaded() IS
    'Whether pg_connwatch was loaded by shared_preload_libraries, so that its ledgers and history exist';
