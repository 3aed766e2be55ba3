--
-- Scheduling with pg_cron.  pg_cron is optional: it is looked up at call
-- time, and the job runs in the database the extension is installed in.
--
CREATE FUNCTION connwatch.schedule_enforcement(schedule text DEFAULT '* * * * *')
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    job_id bigint;
    job_database text;
    command text := 'SELECT pg_catalog.count(*) FROM connwatch.enforce()';
BEGIN
    IF schedule IS NULL THEN
        RAISE EXCEPTION 'schedule must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension
                   WHERE extname OPERATOR(pg_catalog.=) 'pg_cron') THEN
        -- pg_cron lives in one database, cron.database_name
        IF pg_catalog.current_setting('cron.database_name', true) IS NOT NULL THEN
            RAISE EXCEPTION 'pg_cron is not installed in this database'
                USING ERRCODE = 'feature_not_supported',
                      DETAIL = pg_catalog.format('pg_cron runs its jobs from database %I (cron.database_name).',
                                                 pg_catalog.current_setting('cron.database_name')),
                      HINT = pg_catalog.format('In database %I, run: SELECT cron.schedule_in_database(''connwatch-enforce'', %L, ''SELECT pg_catalog.count(*) FROM connwatch.enforce()'', %L);',
                                               pg_catalog.current_setting('cron.database_name'),
                                               schedule, pg_catalog.current_database());
        END IF;
        RAISE EXCEPTION 'pg_cron is not installed'
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'connwatch.schedule_enforcement() creates a pg_cron job that runs connwatch.enforce().',
                  HINT = pg_catalog.format('Install pg_cron (Debian: postgresql-%s-cron), set shared_preload_libraries = ''pg_cron'' and cron.database_name in postgresql.conf, restart the server, then run CREATE EXTENSION pg_cron. A role that is not a superuser also needs USAGE on schema cron and EXECUTE on cron.schedule_in_database.',
                                           pg_catalog.current_setting('server_version_num')::pg_catalog.int4 OPERATOR(pg_catalog./) 10000);
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_proc AS p
               JOIN pg_catalog.pg_namespace AS n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
               WHERE n.nspname OPERATOR(pg_catalog.=) 'cron'
                 AND p.proname OPERATOR(pg_catalog.=) 'schedule_in_database') THEN
        EXECUTE 'SELECT cron.schedule_in_database($1, $2, $3, $4)'
            INTO job_id
            USING 'connwatch-enforce', schedule, command,
                  pg_catalog.current_database();
    ELSE
        -- pg_cron 1.3 and older: schedule the job, then point it at this
        -- database if it is not there already, as their documentation says
        -- to (pg_cron lives in cron.database_name, which is this database,
        -- so that takes UPDATE on cron.job only in unusual setups)
        EXECUTE 'SELECT cron.schedule($1, $2, $3)'
            INTO job_id
            USING 'connwatch-enforce', schedule, command;
        EXECUTE 'SELECT database FROM cron.job WHERE jobid OPERATOR(pg_catalog.=) $1'
            INTO job_database
            USING job_id;
        IF job_database IS NULL
           OR job_database OPERATOR(pg_catalog.<>) pg_catalog.current_database() THEN
            EXECUTE 'UPDATE cron.job SET database = $1 WHERE jobid OPERATOR(pg_catalog.=) $2'
                USING pg_catalog.current_database(), job_id;
        END IF;
    END IF;
    RETURN job_id;
END
$$;

REVOKE ALL ON FUNCTION connwatch.schedule_enforcement(text) FROM PUBLIC;

COMMENT ON FUNCTION connwatch.schedule_enforcement(text) IS
    'Create or update the pg_cron job connwatch-enforce that runs connwatch.enforce() in this database';
