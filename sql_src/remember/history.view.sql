CREATE VIEW connwatch.history AS
    SELECT * FROM connwatch.history()
    ORDER BY sampled_at;

GRANT SELECT ON connwatch.history TO pg_monitor;

COMMENT ON VIEW connwatch.history IS
    'Every sample the pg_connwatch worker keeps (connwatch.history_size, one per connwatch.sample_interval), oldest first';
COMMENT ON COLUMN connwatch.history.sampled_at IS 'When the sample was taken';
COMMENT ON COLUMN connwatch.history.client_backends IS 'Client sessions';
COMMENT ON COLUMN connwatch.history.active IS 'Client sessions running a statement';
COMMENT ON COLUMN connwatch.history.idle IS 'Client sessions idle outside a transaction';
COMMENT ON COLUMN connwatch.history.idle_in_transaction IS 'Client sessions idle in a transaction (aborted ones included)';
COMMENT ON COLUMN connwatch.history.waiting IS 'Client sessions waiting on a heavyweight lock';
COMMENT ON COLUMN connwatch.history.oldest_xact_age IS 'Age of the oldest open transaction of a client session; NULL if none';
COMMENT ON COLUMN connwatch.history.oldest_xmin_age IS 'Age of the xmin horizon, as age(xid), over everything that holds it; NULL if nothing does';
COMMENT ON COLUMN connwatch.history.refused IS 'Connection attempts refused since the previous sample';
COMMENT ON COLUMN connwatch.history.ended IS 'Client sessions ended since the previous sample';
COMMENT ON COLUMN connwatch.history.applications IS 'The applications with the most sessions (connwatch.history_applications of them), then other; NULL without pg_read_all_stats';
COMMENT ON COLUMN connwatch.history.application_connections IS 'Sessions of each application, in the order of applications';
COMMENT ON COLUMN connwatch.history.application_idle_in_transaction IS 'Sessions idle in a transaction, per application, in the order of applications';
