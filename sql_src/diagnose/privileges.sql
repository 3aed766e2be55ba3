REVOKE ALL ON FUNCTION connwatch.diagnose(), connwatch.preloaded() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION connwatch.diagnose(), connwatch.preloaded() TO pg_monitor;
