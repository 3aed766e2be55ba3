CREATE VIEW connwatch.long_transactions AS
    SELECT * FROM connwatch.long_transactions()
    ORDER BY xact_age DESC, pid;

GRANT SELECT ON connwatch.long_transactions TO pg_monitor;

COMMENT ON VIEW connwatch.long_transactions IS
    'Client backends whose transaction is older than connwatch.long_transaction_threshold, oldest first';
COMMENT ON COLUMN connwatch.long_transactions.pid IS 'Process ID of the backend';
COMMENT ON COLUMN connwatch.long_transactions.backend_start IS 'When the backend started';
COMMENT ON COLUMN connwatch.long_transactions.datname IS 'Database';
COMMENT ON COLUMN connwatch.long_transactions.usename IS 'Login role';
COMMENT ON COLUMN connwatch.long_transactions.application_name IS 'application_name reported by the client';
COMMENT ON COLUMN connwatch.long_transactions.client_addr IS 'Client IP address; NULL for Unix-socket connections';
COMMENT ON COLUMN connwatch.long_transactions.state IS 'Current state of the session';
COMMENT ON COLUMN connwatch.long_transactions.xact_start IS 'When the transaction started';
COMMENT ON COLUMN connwatch.long_transactions.xact_age IS 'Time since xact_start';
COMMENT ON COLUMN connwatch.long_transactions.state_age IS 'Time since the last state change';
COMMENT ON COLUMN connwatch.long_transactions.backend_xid IS 'Transaction ID, if assigned';
COMMENT ON COLUMN connwatch.long_transactions.backend_xmin IS 'xmin held by the session, if any';
COMMENT ON COLUMN connwatch.long_transactions.xmin_age IS 'Age of the older of backend_xid and backend_xmin';
COMMENT ON COLUMN connwatch.long_transactions.blocking IS 'Pids of backends waiting on locks this session holds or awaits';
COMMENT ON COLUMN connwatch.long_transactions.query IS 'Current or last statement';
