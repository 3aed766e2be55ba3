--
-- Act layer: cancel and terminate stale sessions safely.  Nothing here is
-- for PUBLIC.  The functions are SECURITY INVOKER: they can signal only
-- what the caller could signal with pg_terminate_backend().
--
CREATE TYPE connwatch.action AS (
    pid integer,
    backend_start timestamptz,
    datname name,
    usename name,
    application_name text,
    client_addr inet,
    state text,
    state_age interval,
    xact_age interval,
    xmin_age integer,
    action text,
    reason text,
    policy text
);

COMMENT ON TYPE connwatch.action IS
    'One row of what an action function did, would do, or skipped and why';
COMMENT ON COLUMN connwatch.action.pid IS 'Process ID of the session';
COMMENT ON COLUMN connwatch.action.backend_start IS 'When the session started; with pid, identifies it';
COMMENT ON COLUMN connwatch.action.datname IS 'Database';
COMMENT ON COLUMN connwatch.action.usename IS 'Login role';
COMMENT ON COLUMN connwatch.action.application_name IS 'application_name reported by the client';
COMMENT ON COLUMN connwatch.action.client_addr IS 'Client IP address; NULL for Unix sockets';
COMMENT ON COLUMN connwatch.action.state IS 'State of the session when last read';
COMMENT ON COLUMN connwatch.action.state_age IS 'Time in that state';
COMMENT ON COLUMN connwatch.action.xact_age IS 'Age of its transaction';
COMMENT ON COLUMN connwatch.action.xmin_age IS 'Age of the older of its xid and xmin';
COMMENT ON COLUMN connwatch.action.action IS 'terminated, cancelled, would terminate, would cancel or skipped';
COMMENT ON COLUMN connwatch.action.reason IS 'Why it acted (the rule that matched) or why it skipped (gone, backend_start mismatch, not a client backend, own session, state changed, transaction changed, no statement to cancel, protected role, protected application, superuser, not permitted, signal failed, kill budget reached)';
COMMENT ON COLUMN connwatch.action.policy IS 'Name of the policy that matched, NULL for a direct call';
