CREATE VIEW connwatch.connection_summary AS
    SELECT * FROM connwatch.connection_summary()
    ORDER BY idle_in_transaction OPERATOR(pg_catalog.+) idle_in_transaction_aborted DESC,
             total DESC, datname, usename, application_name;

GRANT SELECT ON connwatch.connection_summary TO pg_monitor;

COMMENT ON VIEW connwatch.connection_summary IS
    'Client backends grouped by database, role, application and client address, with counts per state; groups with idle transactions first';
COMMENT ON COLUMN connwatch.connection_summary.datname IS 'Database';
COMMENT ON COLUMN connwatch.connection_summary.usename IS 'Login role';
COMMENT ON COLUMN connwatch.connection_summary.application_name IS 'application_name reported by the client';
COMMENT ON COLUMN connwatch.connection_summary.client_addr IS 'Client IP address; NULL for Unix sockets and for sessions the caller may not see';
COMMENT ON COLUMN connwatch.connection_summary.total IS 'Client backends in the group';
COMMENT ON COLUMN connwatch.connection_summary.active IS 'Of which active';
COMMENT ON COLUMN connwatch.connection_summary.idle IS 'Of which idle';
COMMENT ON COLUMN connwatch.connection_summary.idle_in_transaction IS 'Of which idle in transaction';
COMMENT ON COLUMN connwatch.connection_summary.idle_in_transaction_aborted IS 'Of which idle in transaction (aborted)';
COMMENT ON COLUMN connwatch.connection_summary.other IS 'Of which in another state (fastpath function call, disabled, not yet reported)';
COMMENT ON COLUMN connwatch.connection_summary.insufficient_privilege IS 'Of which the caller may not see the state (no pg_read_all_stats and not a member of the role)';
COMMENT ON COLUMN connwatch.connection_summary.waiting IS 'Of the visible ones, how many wait on a heavyweight lock';
COMMENT ON COLUMN connwatch.connection_summary.oldest_xact_age IS 'Age of the oldest open transaction in the group';
COMMENT ON COLUMN connwatch.connection_summary.longest_idle_in_transaction IS 'Longest time a session of the group has been idle in transaction';
