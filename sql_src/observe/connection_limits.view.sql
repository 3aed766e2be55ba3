CREATE VIEW connwatch.connection_limits AS
    SELECT * FROM connwatch.connection_limits();

GRANT SELECT ON connwatch.connection_limits TO pg_monitor;

COMMENT ON VIEW connwatch.connection_limits IS
    'Every connection limit (server-wide, reserved slots, per database, per role) with what it counts right now';
COMMENT ON COLUMN connwatch.connection_limits.scope IS 'server, reserved, database or role';
COMMENT ON COLUMN connwatch.connection_limits.name IS 'Database or role name; NULL for server-wide rows';
COMMENT ON COLUMN connwatch.connection_limits.used IS 'What the limit counts now: client backends for server and reserved; for database and role rows exactly what PostgreSQL counts when it enforces CONNECTION LIMIT';
COMMENT ON COLUMN connwatch.connection_limits.max IS 'The limit; NULL when unlimited (and for a superuser role, which CONNECTION LIMIT never refuses)';
COMMENT ON COLUMN connwatch.connection_limits.headroom IS 'max - used, never below 0; NULL when unlimited';
COMMENT ON COLUMN connwatch.connection_limits.pct_used IS 'used as a percentage of max, one decimal; NULL when unlimited';
COMMENT ON COLUMN connwatch.connection_limits.status IS 'ok, warning (pct_used >= connwatch.warning_pct) or critical (pct_used >= connwatch.critical_pct)';
