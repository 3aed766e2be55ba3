--
-- The observe layer.  The views, and the functions behind them, are for
-- pg_monitor (grant them to other roles explicitly).  The functions hide
-- what core hides from roles without pg_read_all_stats, whoever may call
-- them.
--
-- connwatch.sessions: one row per backend process
--
CREATE FUNCTION connwatch.sessions(
    OUT pid integer,
    OUT backend_type text,
    OUT datid oid,
    OUT datname name,
    OUT usesysid oid,
    OUT usename name,
    OUT application_name text,
    OUT client_addr inet,
    OUT client_port integer,
    OUT backend_start timestamptz,
    OUT xact_start timestamptz,
    OUT query_start timestamptz,
    OUT state_change timestamptz,
    OUT state text,
    OUT wait_event_type text,
    OUT wait_event text,
    OUT backend_xid xid,
    OUT backend_xmin xid,
    OUT xmin_age integer,
    OUT session_age interval,
    OUT xact_age interval,
    OUT state_age interval,
    OUT blocked_by integer[],
    OUT query text
)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'cw_sessions'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

REVOKE ALL ON FUNCTION connwatch.sessions() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION connwatch.sessions() TO pg_monitor;

COMMENT ON FUNCTION connwatch.sessions() IS
    'One row per backend process, read from shared memory in one pass; backs the view connwatch.sessions';
