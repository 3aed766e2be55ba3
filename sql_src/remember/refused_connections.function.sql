--
-- The remember layer (1.1): ledgers in shared memory, filled by hooks when
-- pg_connwatch is in shared_preload_libraries.  Without it every function
-- below raises 55000.
--
CREATE FUNCTION connwatch.refused_connections(
    OUT cause text,
    OUT datname text,
    OUT usename text,
    OUT application_name text,
    OUT client_addr inet,
    OUT count bigint,
    OUT first_at timestamptz,
    OUT last_at timestamptz,
    OUT overflow boolean
)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'cw_refused_connections'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

REVOKE ALL ON FUNCTION connwatch.refused_connections() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION connwatch.refused_connections() TO pg_monitor;

COMMENT ON FUNCTION connwatch.refused_connections() IS
    'Refused connection attempts by cause and by what the client claimed; backs the view connwatch.refused_connections (needs shared_preload_libraries)';
