CREATE VIEW connwatch.session_endings AS
    SELECT * FROM connwatch.session_endings()
    ORDER BY last_at DESC, reason, usename, datname, application_name;

GRANT SELECT ON connwatch.session_endings TO pg_monitor;

COMMENT ON VIEW connwatch.session_endings IS
    'Client sessions ended since the last reset, by database, role, application and reason, with their lifetimes';
COMMENT ON COLUMN connwatch.session_endings.datname IS 'Database of the sessions';
COMMENT ON COLUMN connwatch.session_endings.usename IS 'Role they logged in as';
COMMENT ON COLUMN connwatch.session_endings.application_name IS 'application_name when they ended; NULL if hidden from the caller';
COMMENT ON COLUMN connwatch.session_endings.reason IS 'client closed, client vanished (14+; 13 counts both as client closed), terminated by connwatch, terminated by another session, idle-in-transaction timeout, idle-session timeout, transaction timeout, connection check failed, protocol violation, recovery conflict, server shutdown, or fatal error';
COMMENT ON COLUMN connwatch.session_endings.policy IS 'Policy that terminated them, for terminated by connwatch; NULL otherwise or for a direct call';
COMMENT ON COLUMN connwatch.session_endings.count IS 'Sessions';
COMMENT ON COLUMN connwatch.session_endings.first_at IS 'First such ending since the last reset';
COMMENT ON COLUMN connwatch.session_endings.last_at IS 'Latest such ending';
COMMENT ON COLUMN connwatch.session_endings.total_lifetime IS 'Sum of the sessions'' lifetimes (backend start to end)';
COMMENT ON COLUMN connwatch.session_endings.lifetime_buckets IS 'Sessions by lifetime: under 100 ms, 1 s, 10 s, 1 min, 10 min, 1 h, 1 day, and longer';
COMMENT ON COLUMN connwatch.session_endings.in_transaction IS 'Of these sessions, those that ended with a transaction open';
COMMENT ON COLUMN connwatch.session_endings.transaction_warnings IS 'Of these sessions, those that were sent BEGIN inside a transaction or COMMIT/ROLLBACK outside one (WARNING 25001/25P01, "there is already / no transaction in progress"): two processes sharing the connection';
COMMENT ON COLUMN connwatch.session_endings.last_in_transaction_at IS 'Latest such ending with a transaction open; NULL if none';
COMMENT ON COLUMN connwatch.session_endings.last_transaction_warning_at IS 'Latest such ending of a session sent a misplaced BEGIN or COMMIT; NULL if none';
COMMENT ON COLUMN connwatch.session_endings.overflow IS 'The ledger was full: sessions of this reason counted without their names';
