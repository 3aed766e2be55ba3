--
-- 00_install: the extension's objects, comments, privileges and control
-- file facts, plus helpers the later files share.
--
CREATE EXTENSION pg_connwatch;
-- dblink opens the other sessions the later files watch.
CREATE EXTENSION dblink;

-- Control file facts.
SELECT e.extname, e.extversion, e.extrelocatable,
       e.extnamespace::regnamespace AS schema
FROM pg_extension AS e
WHERE e.extname = 'pg_connwatch';
SELECT name, version, installed, superuser, trusted, relocatable, schema,
       requires
FROM pg_available_extension_versions
WHERE name = 'pg_connwatch'
ORDER BY version COLLATE "C";   -- the view lists them in directory order

-- From 18 on, the library names itself and its version, the control file's
-- default_version (PG_MODULE_MAGIC_EXT); before 18 the row is made up, so
-- that the output does not depend on the major.
SELECT count(*) > 0 AS library_loaded FROM connwatch.sessions;
SELECT current_setting('server_version_num')::int >= 180000 AS cw_has_loaded_modules
\gset
\if :cw_has_loaded_modules
\set cw_modules 'pg_get_loaded_modules()'
\else
\set cw_modules '(SELECT ''pg_connwatch''::text AS module_name, default_version AS version FROM pg_available_extensions WHERE name = ''pg_connwatch'')'
\endif
SELECT m.module_name, m.version = e.default_version AS version_is_default
FROM :cw_modules AS m, pg_available_extensions AS e
WHERE e.name = 'pg_connwatch'
  AND m.module_name = 'pg_connwatch';

-- Every member of the extension: a missing or extra object fails here.
-- (From 18 on, the row types of member tables and views and the array
-- types of member types are recorded as members too; they come with their
-- relation or type and are left out.)
SELECT pg_describe_object(d.classid, d.objid, d.objsubid) AS object
FROM pg_depend AS d
WHERE d.refclassid = 'pg_extension'::regclass
  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_connwatch')
  AND d.deptype = 'e'
  AND NOT (d.classid = 'pg_type'::regclass    -- implicit types, see above
           AND EXISTS (SELECT 1 FROM pg_type AS t
                       LEFT JOIN pg_class AS r ON r.oid = t.typrelid
                       WHERE t.oid = d.objid
                         AND (t.typcategory = 'A' OR r.relkind IN ('r', 'v'))))
ORDER BY pg_describe_object(d.classid, d.objid, d.objsubid) COLLATE "C";

-- Every view column, with its type: the row shapes are the contract.
SELECT c.relname AS view, a.attnum, a.attname,
       format_type(a.atttypid, a.atttypmod) AS type
FROM pg_class AS c
JOIN pg_attribute AS a ON a.attrelid = c.oid
WHERE c.relnamespace = 'connwatch'::regnamespace
  AND c.relkind = 'v'
  AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY c.relname COLLATE "C", a.attnum;

-- Function properties: read backend state, so volatile and parallel
-- restricted; nothing runs as its owner.
SELECT p.oid::regprocedure AS function, p.provolatile, p.proparallel,
       p.prosecdef, p.proisstrict, p.proretset, l.lanname
FROM pg_proc AS p
JOIN pg_language AS l ON l.oid = p.prolang
WHERE p.pronamespace = 'connwatch'::regnamespace
ORDER BY p.oid::regprocedure::text COLLATE "C";

-- Every object and every view column is documented: no rows.
SELECT pg_describe_object(d.classid, d.objid, 0) AS undocumented
FROM pg_depend AS d
WHERE d.refclassid = 'pg_extension'::regclass
  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_connwatch')
  AND d.deptype = 'e'
  AND NOT (d.classid = 'pg_type'::regclass    -- implicit types, see above
           AND EXISTS (SELECT 1 FROM pg_type AS t
                       LEFT JOIN pg_class AS r ON r.oid = t.typrelid
                       WHERE t.oid = d.objid
                         AND (t.typcategory = 'A' OR r.relkind IN ('r', 'v'))))
  AND obj_description(d.objid, (SELECT relname FROM pg_class WHERE oid = d.classid)) IS NULL
UNION ALL
SELECT format('column %s.%s', c.relname, a.attname)
FROM pg_class AS c
JOIN pg_attribute AS a ON a.attrelid = c.oid
WHERE c.relnamespace = 'connwatch'::regnamespace
  AND c.relkind = 'v'
  AND a.attnum > 0 AND NOT a.attisdropped
  AND col_description(c.oid, a.attnum) IS NULL
UNION ALL
SELECT 'schema connwatch'
WHERE obj_description('connwatch'::regnamespace, 'pg_namespace') IS NULL;
-- ... and the comments are there to be counted (views, functions, columns).
SELECT count(*) FILTER (WHERE c.relkind = 'v') AS views,
       count(*) FILTER (WHERE c.relkind = 'v' AND obj_description(c.oid, 'pg_class') <> '') AS views_documented
FROM pg_class AS c
WHERE c.relnamespace = 'connwatch'::regnamespace;
SELECT count(*) AS columns,
       count(*) FILTER (WHERE col_description(c.oid, a.attnum) <> '') AS columns_documented
FROM pg_class AS c
JOIN pg_attribute AS a ON a.attrelid = c.oid
WHERE c.relnamespace = 'connwatch'::regnamespace
  AND c.relkind = 'v' AND a.attnum > 0 AND NOT a.attisdropped;

-- The views, and the functions behind them, are pg_monitor's; PUBLIC may
-- use the schema but read or run nothing in it.
SELECT c.relname AS view,
       has_table_privilege('public', c.oid, 'SELECT') AS public_select,
       has_table_privilege('pg_monitor', c.oid, 'SELECT') AS monitor_select,
       has_table_privilege('pg_monitor', c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE') AS monitor_write
FROM pg_class AS c
WHERE c.relnamespace = 'connwatch'::regnamespace
  AND c.relkind = 'v'
ORDER BY c.relname COLLATE "C";
SELECT has_schema_privilege('public', 'connwatch', 'USAGE') AS public_usage,
       has_schema_privilege('public', 'connwatch', 'CREATE') AS public_create;
SELECT p.oid::regprocedure AS function,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute,
       has_function_privilege('pg_monitor', p.oid, 'EXECUTE') AS monitor_execute
FROM pg_proc AS p
WHERE p.pronamespace = 'connwatch'::regnamespace
ORDER BY p.oid::regprocedure::text COLLATE "C";
-- The schema was made by the install script: the extension's, owned by the
-- role that installed it.
SELECT n.nspowner = (SELECT extowner FROM pg_extension
                     WHERE extname = 'pg_connwatch') AS owned_by_installer,
       EXISTS (SELECT 1 FROM pg_depend AS d
               WHERE d.classid = 'pg_namespace'::regclass AND d.objid = n.oid
                 AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e') AS member
FROM pg_namespace AS n
WHERE n.nspname = 'connwatch';

-- The views are plain SELECTs over the C functions, not SQL over
-- pg_stat_activity.
SELECT c.relname AS view
FROM pg_class AS c
WHERE c.relnamespace = 'connwatch'::regnamespace
  AND c.relkind = 'v'
  AND pg_get_viewdef(c.oid) ~ 'pg_stat_activity|pg_stat_get_activity|pg_locks'
ORDER BY c.relname COLLATE "C";

-- The observe layer's GUCs exist once the library is loaded, with their
-- defaults; every user may set them.
SELECT count(*) > 0 AS loaded FROM connwatch.sessions;
SELECT name, setting, unit, vartype, context, min_val, max_val, boot_val
FROM pg_settings
WHERE name IN ('connwatch.long_transaction_threshold',
               'connwatch.warning_pct', 'connwatch.critical_pct')
ORDER BY name COLLATE "C";
SHOW connwatch.long_transaction_threshold;
SHOW connwatch.warning_pct;
SHOW connwatch.critical_pct;

--
-- Helpers for the later files (they live in contrib_regression, which
-- pg_regress recreates on every run).
--

-- A libpq connection string back into this cluster.
CREATE FUNCTION regress_cw_connstr(appname text,
                                   host text DEFAULT NULL,
                                   dbname text DEFAULT 'contrib_regression',
                                   username text DEFAULT 'postgres')
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT format('host=%s port=%s dbname=%s user=%s application_name=%s',
                  COALESCE(host, split_part(current_setting('unix_socket_directories'), ',', 1)),
                  current_setting('port'), dbname, username, appname)
$$;

-- Whether this server takes a TCP connection to 127.0.0.1 from this role
-- (listen_addresses and pg_hba.conf permitting), within 10 s.  01 and 05
-- need one: without it they say "skipped:" and stop.  Any other error than
-- a refused connection is an error.
CREATE FUNCTION regress_cw_have_tcp()
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM dblink_connect('regress_cw_tcp_probe',
                           regress_cw_connstr('regress_cw_tcp_probe', host => '127.0.0.1')
                           || ' connect_timeout=10');
    PERFORM dblink_disconnect('regress_cw_tcp_probe');
    RETURN true;
EXCEPTION WHEN sqlclient_unable_to_establish_sqlconnection THEN
    RETURN false;
END
$$;

-- Poll a boolean query (with fresh statistics snapshots) until it returns
-- true, at most timeout seconds; returns the last answer.  Used instead of
-- sleeping, and to compare a live C view with pg_stat_activity without
-- tripping over processes that come and go in between.  What it waits for
-- takes milliseconds; 20 s bounds the wait of a test that is failing.
CREATE FUNCTION regress_cw_wait(cond text, timeout float8 DEFAULT 20)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    ok boolean;
    deadline timestamptz := clock_timestamp() + make_interval(secs => timeout);
BEGIN
    LOOP
        PERFORM pg_stat_clear_snapshot();
        EXECUTE cond INTO ok;
        IF ok THEN
            RETURN true;
        END IF;
        IF clock_timestamp() > deadline THEN
            RAISE WARNING 'condition still not true after % s: %', timeout, cond;
            RETURN COALESCE(ok, false);
        END IF;
        PERFORM pg_sleep(0.01);
    END LOOP;
END
$$;

-- Wait until no client backend of the test suite is left except the
-- caller: dblink sessions of a previous file and pg_regress's psql of the
-- previous file exit asynchronously.
CREATE FUNCTION regress_cw_settle()
RETURNS boolean LANGUAGE sql AS $$
    SELECT regress_cw_wait($q$
        SELECT count(*) = 0 FROM pg_stat_activity
        WHERE pid <> pg_backend_pid()
          AND (application_name LIKE 'regress\_cw\_%'
               OR application_name LIKE 'pg\_regress%')
    $q$)
$$;

-- Map an array of pids to the sorted application_names of those backends,
-- so that blocked_by/blocking print deterministically.
CREATE FUNCTION regress_cw_apps(pids integer[])
RETURNS text[] LANGUAGE sql AS $$
    SELECT CASE WHEN pids IS NOT NULL THEN
        COALESCE((SELECT array_agg(COALESCE(a.application_name, p::text)
                                   ORDER BY COALESCE(a.application_name, p::text) COLLATE "C")
                  FROM unnest(pids) AS p
                  LEFT JOIN pg_stat_activity AS a ON a.pid = p), '{}')
    END
$$;

-- The act-layer files' helpers.

-- The SQLSTATE and message a statement fails with ('no error' if none).
CREATE FUNCTION regress_cw_sqlstate_of(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

-- Poll a boolean query (with fresh statistics snapshots) every 10 ms for at
-- most 30 s: true as soon as it returns true, else false.
CREATE FUNCTION regress_cw_poll(cond text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    ok boolean;
    deadline timestamptz := clock_timestamp() + interval '30 s';
BEGIN
    LOOP
        PERFORM pg_stat_clear_snapshot();
        EXECUTE cond INTO ok;
        IF ok THEN
            RETURN true;
        END IF;
        IF clock_timestamp() > deadline THEN
            RETURN false;
        END IF;
        PERFORM pg_sleep(0.01);
    END LOOP;
END
$$;

-- Poll until no session tagged app is left.
CREATE FUNCTION regress_cw_wait_gone(app text) RETURNS boolean
LANGUAGE sql AS $$
    SELECT regress_cw_poll(format(
        'SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = %L)',
        app))
$$;

-- Poll until the backend is gone.
CREATE FUNCTION regress_cw_wait_pid_gone(victim integer) RETURNS boolean
LANGUAGE sql AS $$
    SELECT regress_cw_poll(format(
        'SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = %s)',
        victim))
$$;

-- Poll until the tagged session is in the wanted state.
CREATE FUNCTION regress_cw_wait_state(app text, wanted text) RETURNS boolean
LANGUAGE sql AS $$
    SELECT regress_cw_poll(format(
        'SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = %L AND state = %L)',
        app, wanted))
$$;
