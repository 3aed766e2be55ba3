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
