REVOKE ALL ON FUNCTION connwatch.metrics() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION connwatch.metrics() TO pg_monitor;
