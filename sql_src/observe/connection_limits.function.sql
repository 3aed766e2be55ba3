--
-- connwatch.connection_limits: every connection limit against its usage
--
CREATE FUNCTION connwatch.connection_limits(
    OUT scope text,
    OUT name name,
    OUT used integer,
    OUT max integer,
    OUT headroom integer,
    OUT pct_used numeric,
    OUT status text
)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'cw_connection_limits'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

REVOKE ALL ON FUNCTION connwatch.connection_limits() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION connwatch.connection_limits() TO pg_monitor;

COMMENT ON FUNCTION connwatch.connection_limits() IS
    'Every connection limit with its usage; backs the view connwatch.connection_limits';
