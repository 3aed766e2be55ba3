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
