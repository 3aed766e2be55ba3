--
-- connwatch.xmin_horizon: everything that holds the xmin horizon back
--
CREATE FUNCTION connwatch.xmin_horizon(
    OUT holder_type text,
    OUT holder text,
    OUT pid integer,
    OUT datname name,
    OUT usename name,
    OUT application_name text,
    OUT state text,
    OUT xmin xid,
    OUT xmin_age integer,
    OUT since timestamptz
)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'cw_xmin_horizon'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

REVOKE ALL ON FUNCTION connwatch.xmin_horizon() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION connwatch.xmin_horizon() TO pg_monitor;

COMMENT ON FUNCTION connwatch.xmin_horizon() IS
    'Holders of the xmin horizon; backs the view connwatch.xmin_horizon';
