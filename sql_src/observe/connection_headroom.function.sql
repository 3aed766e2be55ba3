--
-- connwatch.connection_headroom: how many more connections each role gets
--
CREATE FUNCTION connwatch.connection_headroom(
    OUT rolname name,
    OUT superuser boolean,
    OUT can_use_reserved boolean,
    OUT role_limit integer,
    OUT used integer,
    OUT headroom integer,
    OUT binding_limit text
)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'cw_connection_headroom'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

REVOKE ALL ON FUNCTION connwatch.connection_headroom() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION connwatch.connection_headroom() TO pg_monitor;

COMMENT ON FUNCTION connwatch.connection_headroom() IS
    'Per-role connection headroom; backs the view connwatch.connection_headroom';
