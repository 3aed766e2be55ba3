--
-- Documentation
--
COMMENT ON SCHEMA connwatch IS
    'pg_connwatch: connection and session watchdog';
