CREATE VIEW connwatch.refused_connections AS
    SELECT * FROM connwatch.refused_connections()
    ORDER BY last_at DESC, cause, usename, datname;

GRANT SELECT ON connwatch.refused_connections TO pg_monitor;

COMMENT ON VIEW connwatch.refused_connections IS
    'Refused connection attempts since the last reset, by cause and claimed database, role, application and address, most recent first';
COMMENT ON COLUMN connwatch.refused_connections.cause IS 'too many clients, reserved slots, role limit, database limit, role does not exist, role not permitted to log in, database does not exist, database not accepting connections, no CONNECT privilege, rejected by pg_hba.conf, authentication failed, authentication abandoned, server starting up, server shutting down, server not yet accepting, or other';
COMMENT ON COLUMN connwatch.refused_connections.datname IS 'Database the client asked for (claimed, not checked); NULL if it had not said';
COMMENT ON COLUMN connwatch.refused_connections.usename IS 'Role the client claimed; NULL if it had not said';
COMMENT ON COLUMN connwatch.refused_connections.application_name IS 'application_name the client claimed; NULL if not said, or hidden from the caller';
COMMENT ON COLUMN connwatch.refused_connections.client_addr IS 'Client IP address; NULL for Unix sockets, or hidden from the caller';
COMMENT ON COLUMN connwatch.refused_connections.count IS 'Attempts refused';
COMMENT ON COLUMN connwatch.refused_connections.first_at IS 'First refusal since the last reset';
COMMENT ON COLUMN connwatch.refused_connections.last_at IS 'Latest refusal';
COMMENT ON COLUMN connwatch.refused_connections.overflow IS 'The ledger was full: attempts of this cause counted without their names';
