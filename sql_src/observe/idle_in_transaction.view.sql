CREATE VIEW connwatch.idle_in_transaction AS
    SELECT * FROM connwatch.idle_in_transaction()
    ORDER BY idle_for DESC, pid;

GRANT SELECT ON connwatch.idle_in_transaction TO pg_monitor;

COMMENT ON VIEW connwatch.idle_in_transaction IS
    'Client backends idle inside a transaction (including aborted ones), longest idle first';
COMMENT ON COLUMN connwatch.idle_in_transaction.pid IS 'Process ID of the backend';
COMMENT ON COLUMN connwatch.idle_in_transaction.backend_start IS 'When the backend started; pass it with pid to act on exactly this session';
COMMENT ON COLUMN connwatch.idle_in_transaction.datname IS 'Database';
COMMENT ON COLUMN connwatch.idle_in_transaction.usename IS 'Login role';
COMMENT ON COLUMN connwatch.idle_in_transaction.application_name IS 'application_name reported by the client';
COMMENT ON COLUMN connwatch.idle_in_transaction.client_addr IS 'Client IP address; NULL for Unix-socket connections';
COMMENT ON COLUMN connwatch.idle_in_transaction.state IS 'idle in transaction or idle in transaction (aborted)';
COMMENT ON COLUMN connwatch.idle_in_transaction.state_change IS 'When the session went idle';
COMMENT ON COLUMN connwatch.idle_in_transaction.idle_for IS 'Time since state_change (not since xact_start)';
COMMENT ON COLUMN connwatch.idle_in_transaction.xact_start IS 'When the transaction started';
COMMENT ON COLUMN connwatch.idle_in_transaction.xact_age IS 'Time since xact_start';
COMMENT ON COLUMN connwatch.idle_in_transaction.backend_xid IS 'Transaction ID, if one has been assigned (the transaction has written)';
COMMENT ON COLUMN connwatch.idle_in_transaction.backend_xmin IS 'xmin held by the session''s snapshot, if any';
COMMENT ON COLUMN connwatch.idle_in_transaction.xmin_age IS 'Age of the older of backend_xid and backend_xmin';
COMMENT ON COLUMN connwatch.idle_in_transaction.holds_xmin IS 'True when this session''s xid or xmin is the oldest of every holder of the horizon (backends, prepared transactions, replication slots), ties included';
COMMENT ON COLUMN connwatch.idle_in_transaction.locks_held IS 'Heavyweight locks granted to the session (as pg_locks rows with granted, excluding SIRead predicate locks)';
COMMENT ON COLUMN connwatch.idle_in_transaction.blocking IS 'Pids of backends waiting on locks this session holds or awaits';
COMMENT ON COLUMN connwatch.idle_in_transaction.query IS 'The last statement the session ran';
