/* pg_connwatch--1.0--1.0.1.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION pg_connwatch UPDATE TO '1.0.1'" to load this file. \quit

-- 1.0 took its schema from the control file: CREATE EXTENSION used a schema
-- named connwatch if one existed already, whoever owned it, and the schema
-- was not a member of the extension.  1.0.1 creates the schema in its
-- install script.  This update moves a 1.0 install to that shape -- the
-- schema becomes a member of the extension, which is recorded as living in
-- pg_catalog, as a fresh 1.0.1 install is -- but only when the schema shows
-- no sign of having been squatted: it must be owned by a superuser and hold
-- nothing but the extension's own objects.  Otherwise the update fails and
-- changes nothing.
--
-- This script runs with search_path = connwatch, pg_temp, and connwatch is
-- the schema under suspicion: pin the path for the rest of the script (the
-- update restores it afterwards).
SET LOCAL search_path = pg_catalog, pg_temp;

DO $$
DECLARE
    ext_oid oid;
    schema_oid oid;
    schema_name name;
    owner_name name;
    owner_is_superuser boolean;
    foreign_objects text;
    grantee_name text;
BEGIN
    SELECT e.oid, e.extnamespace, n.nspname, r.rolname, r.rolsuper
      INTO ext_oid, schema_oid, schema_name, owner_name, owner_is_superuser
      FROM pg_catalog.pg_extension AS e
      JOIN pg_catalog.pg_namespace AS n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace
      JOIN pg_catalog.pg_roles AS r ON r.oid OPERATOR(pg_catalog.=) n.nspowner
     WHERE e.extname OPERATOR(pg_catalog.=) 'pg_connwatch';

    IF schema_name OPERATOR(pg_catalog.<>) 'connwatch' THEN
        RAISE EXCEPTION 'pg_connwatch is installed in schema %, not in schema connwatch', schema_name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Rename the schema back to connwatch, then run ALTER EXTENSION pg_connwatch UPDATE again.';
    END IF;

    IF NOT owner_is_superuser THEN
        RAISE EXCEPTION 'schema connwatch is owned by role %, which is not a superuser', owner_name
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'pg_connwatch 1.0 installed itself into an existing schema named connwatch, whoever had created it. Its owner can change what pg_connwatch reads and runs.',
                  HINT = 'Check schema connwatch for objects that are not pg_connwatch''s (\dn+ connwatch, \df connwatch.*, \dv connwatch.*), drop them, run ALTER SCHEMA connwatch OWNER TO a superuser, then run ALTER EXTENSION pg_connwatch UPDATE again.';
    END IF;

    -- Everything in a schema depends on it; what does without being a
    -- member of the extension was put there by someone else.
    SELECT pg_catalog.string_agg(pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid),
                                 ', ' ORDER BY pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid))
      INTO foreign_objects
      FROM pg_catalog.pg_depend AS d
     WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass
       AND d.refobjid OPERATOR(pg_catalog.=) schema_oid
       AND d.classid OPERATOR(pg_catalog.<>) 'pg_catalog.pg_extension'::pg_catalog.regclass
       AND NOT EXISTS (
            SELECT 1 FROM pg_catalog.pg_depend AS m
             WHERE m.classid OPERATOR(pg_catalog.=) d.classid
               AND m.objid OPERATOR(pg_catalog.=) d.objid
               AND m.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
               AND m.refobjid OPERATOR(pg_catalog.=) ext_oid
               AND m.deptype OPERATOR(pg_catalog.=) 'e');
    IF foreign_objects IS NOT NULL THEN
        RAISE EXCEPTION 'schema connwatch holds objects that do not belong to pg_connwatch'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = pg_catalog.format('Not part of the extension: %s.', foreign_objects),
                  HINT = 'Move or drop them (they may have been planted to be run by whoever calls pg_connwatch''s functions), then run ALTER EXTENSION pg_connwatch UPDATE again.';
    END IF;

    -- CREATE granted on the schema while it was not the extension's would
    -- let others plant objects in it again: only the owner keeps it.
    -- (USAGE grants are harmless and stay.)
    FOR grantee_name IN
        SELECT CASE WHEN a.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
                    ELSE pg_catalog.quote_ident(r.rolname) END
          FROM pg_catalog.pg_namespace AS n
         CROSS JOIN LATERAL pg_catalog.aclexplode(n.nspacl) AS a
          LEFT JOIN pg_catalog.pg_roles AS r ON r.oid OPERATOR(pg_catalog.=) a.grantee
         WHERE n.oid OPERATOR(pg_catalog.=) schema_oid
           AND a.privilege_type OPERATOR(pg_catalog.=) 'CREATE'
           AND a.grantee OPERATOR(pg_catalog.<>) n.nspowner
    LOOP
        EXECUTE pg_catalog.format('REVOKE CREATE ON SCHEMA connwatch FROM %s', grantee_name);
        RAISE NOTICE 'revoked CREATE on schema connwatch from %', grantee_name;
    END LOOP;

    -- The extension moves to pg_catalog, where 1.0.1 installs it, so that
    -- its own schema can become one of its members.  Dependencies on
    -- pg_catalog are not recorded: drop the one on the schema.
    UPDATE pg_catalog.pg_extension
       SET extnamespace = 'pg_catalog'::pg_catalog.regnamespace
     WHERE oid OPERATOR(pg_catalog.=) ext_oid;
    DELETE FROM pg_catalog.pg_depend
     WHERE classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
       AND objid OPERATOR(pg_catalog.=) ext_oid
       AND refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass
       AND refobjid OPERATOR(pg_catalog.=) schema_oid;
END
$$;

ALTER EXTENSION pg_connwatch ADD SCHEMA connwatch;

-- The pg_cron job's command qualifies count(): the job runs with its
-- owner's search_path.  A job scheduled by 1.0 in this database is updated;
-- one scheduled from another database (cron.database_name) keeps its text
-- until schedule_enforcement() is called again.
CREATE OR REPLACE FUNCTION connwatch.schedule_enforcement(schedule text DEFAULT '* * * * *')
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

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension
               WHERE extname OPERATOR(pg_catalog.=) 'pg_cron') THEN
        EXECUTE 'UPDATE cron.job SET command = $1
                  WHERE jobname OPERATOR(pg_catalog.=) ''connwatch-enforce''
                    AND command OPERATOR(pg_catalog.=) $2'
          USING 'SELECT pg_catalog.count(*) FROM connwatch.enforce()',
                'SELECT count(*) FROM connwatch.enforce()';
    END IF;
END
$$;

-- The views, and the functions behind them, move from PUBLIC to pg_monitor.
REVOKE SELECT ON connwatch.sessions, connwatch.idle_in_transaction,
    connwatch.long_transactions, connwatch.connection_limits,
    connwatch.connection_headroom, connwatch.connection_summary,
    connwatch.xmin_horizon FROM PUBLIC;
REVOKE ALL ON FUNCTION connwatch.sessions(),
    connwatch.idle_in_transaction(),
    connwatch.long_transactions(interval), connwatch.long_transactions(),
    connwatch.connection_limits(), connwatch.connection_headroom(),
    connwatch.connection_summary(), connwatch.xmin_horizon()
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION connwatch.sessions(),
    connwatch.idle_in_transaction(),
    connwatch.long_transactions(interval), connwatch.long_transactions(),
    connwatch.connection_limits(), connwatch.connection_headroom(),
    connwatch.connection_summary(), connwatch.xmin_horizon()
    TO pg_monitor;
GRANT SELECT ON connwatch.sessions, connwatch.idle_in_transaction,
    connwatch.long_transactions, connwatch.connection_limits,
    connwatch.connection_headroom, connwatch.connection_summary,
    connwatch.xmin_horizon TO pg_monitor;

-- A failed kill() is reported by its errno now ("signal failed").
COMMENT ON COLUMN connwatch.action.reason IS 'Why it acted (the rule that matched) or why it skipped (gone, backend_start mismatch, not a client backend, own session, state changed, transaction changed, no statement to cancel, protected role, protected application, superuser, not permitted, signal failed, kill budget reached)';
