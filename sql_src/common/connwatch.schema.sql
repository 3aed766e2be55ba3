-- The schema is created here, not through the control file, as pg_cron does
-- with "cron": if a schema named connwatch exists already, whoever made it
-- owns it and could change what is in it, so CREATE EXTENSION fails instead
-- of installing into it.  Being created here makes the schema a member of
-- the extension, and DROP EXTENSION removes it.
--
-- CREATE EXTENSION runs this script with search_path = pg_catalog, pg_temp
-- (the control file's schema, then pg_temp last); every catalog object below
-- is still schema-qualified, so that nothing a user creates can capture a
-- reference.
CREATE SCHEMA connwatch;

GRANT USAGE ON SCHEMA connwatch TO PUBLIC;

COMMENT ON SCHEMA connwatch IS
    'pg_connwatch: connection and session watchdog';
