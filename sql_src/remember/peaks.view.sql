CREATE VIEW connwatch.peaks AS
    SELECT * FROM connwatch.peaks()
    ORDER BY pg_catalog.array_position(
                 ARRAY['server', 'database', 'role', 'application'], scope),
             peak DESC, name;

GRANT SELECT ON connwatch.peaks TO pg_monitor;

COMMENT ON VIEW connwatch.peaks IS
    'Current and highest number of concurrent client sessions, server-wide and per database, role and application, since the last reset';
COMMENT ON COLUMN connwatch.peaks.scope IS 'server, database, role or application';
COMMENT ON COLUMN connwatch.peaks.name IS 'Database, role or application name; NULL for the server, an overflow entry, or an application name hidden from the caller';
COMMENT ON COLUMN connwatch.peaks.current IS 'Client sessions now';
COMMENT ON COLUMN connwatch.peaks.peak IS 'Most client sessions at once';
COMMENT ON COLUMN connwatch.peaks.peak_at IS 'When peak was first reached';
