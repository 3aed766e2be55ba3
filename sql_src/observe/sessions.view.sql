CREATE VIEW connwatch.sessions AS
    SELECT * FROM connwatch.sessions();

GRANT SELECT ON connwatch.sessions TO pg_monitor;

COMMENT ON VIEW connwatch.sessions IS
    'One row per backend process with ages measured at one instant and the pids blocking each lock wait';
COMMENT ON COLUMN connwatch.sessions.pid IS 'Process ID of the backend';
COMMENT ON COLUMN connwatch.sessions.backend_type IS 'Type of process, as in pg_stat_activity (client backend, autovacuum worker, walsender, a background worker''s type, ...)';
COMMENT ON COLUMN connwatch.sessions.datid IS 'OID of the database the backend is connected to';
COMMENT ON COLUMN connwatch.sessions.datname IS 'Name of the database the backend is connected to';
COMMENT ON COLUMN connwatch.sessions.usesysid IS 'OID of the role the backend logged in as';
COMMENT ON COLUMN connwatch.sessions.usename IS 'Name of the role the backend logged in as';
COMMENT ON COLUMN connwatch.sessions.application_name IS 'application_name reported by the client';
COMMENT ON COLUMN connwatch.sessions.client_addr IS 'Client IP address; NULL for Unix-socket connections, internal processes and hidden sessions';
COMMENT ON COLUMN connwatch.sessions.client_port IS 'Client TCP port; -1 for Unix-socket connections';
COMMENT ON COLUMN connwatch.sessions.backend_start IS 'When the backend process started; together with pid it identifies a session';
COMMENT ON COLUMN connwatch.sessions.xact_start IS 'When the current transaction started (NULL outside a transaction)';
COMMENT ON COLUMN connwatch.sessions.query_start IS 'When the current or last statement started';
COMMENT ON COLUMN connwatch.sessions.state_change IS 'When state last changed';
COMMENT ON COLUMN connwatch.sessions.state IS 'active, idle, idle in transaction, idle in transaction (aborted), fastpath function call or disabled';
COMMENT ON COLUMN connwatch.sessions.wait_event_type IS 'Type of event the backend waits for, if any';
COMMENT ON COLUMN connwatch.sessions.wait_event IS 'Event the backend waits for, if any';
COMMENT ON COLUMN connwatch.sessions.backend_xid IS 'Top-level transaction ID, if one has been assigned';
COMMENT ON COLUMN connwatch.sessions.backend_xmin IS 'The backend''s xmin horizon';
COMMENT ON COLUMN connwatch.sessions.xmin_age IS 'Transactions between backend_xmin and the next transaction ID, as age(backend_xmin)';
COMMENT ON COLUMN connwatch.sessions.session_age IS 'Time since backend_start, measured at the instant of the call';
COMMENT ON COLUMN connwatch.sessions.xact_age IS 'Time since xact_start, measured at the instant of the call';
COMMENT ON COLUMN connwatch.sessions.state_age IS 'Time since state_change, measured at the instant of the call';
COMMENT ON COLUMN connwatch.sessions.blocked_by IS 'Pids holding or awaiting heavyweight locks this backend waits for, as pg_blocking_pids(pid); empty when not waiting on a lock';
COMMENT ON COLUMN connwatch.sessions.query IS 'Current or last statement (truncated at track_activity_query_size); <insufficient privilege> for hidden sessions';
