--
-- 40_remember_unloaded: without pg_connwatch in shared_preload_libraries
-- (as this suite's server runs), every function of the remember layer
-- raises 55000 with a hint naming the setting, and the observe and act
-- layers work as ever.
--
SHOW shared_preload_libraries;

SELECT stmt, regress_cw_sqlstate_of(stmt) AS result
FROM (VALUES ('SELECT * FROM connwatch.refused_connections'),
             ('SELECT * FROM connwatch.session_endings'),
             ('SELECT * FROM connwatch.peaks'),
             ('SELECT * FROM connwatch.history'),
             ('SELECT connwatch.reset_ledgers()'),
             ('SELECT connwatch.reset_peaks()')) AS t(stmt);

-- with its detail and hint
\set VERBOSITY default
SELECT * FROM connwatch.refused_connections;
SELECT * FROM connwatch.session_endings;
SELECT * FROM connwatch.peaks;
SELECT connwatch.reset_ledgers();
SELECT connwatch.reset_peaks();
\set VERBOSITY terse

SELECT count(*) > 0 AS observe_works FROM connwatch.sessions
WHERE pid = pg_backend_pid();
SELECT count(*) AS act_works FROM connwatch.terminate_idle('1 day', dry_run => true,
    application_name => 'regress_cw_nobody');

-- The ledgers are pg_monitor's to read; the resets are nobody's but the
-- superuser's (and whom they grant them to).
SELECT p.oid::regprocedure AS function,
       has_function_privilege('pg_monitor', p.oid, 'EXECUTE') AS monitor,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public
FROM pg_proc AS p
WHERE p.pronamespace = 'connwatch'::regnamespace
  AND p.proname IN ('refused_connections', 'session_endings', 'peaks',
                    'history', 'reset_ledgers', 'reset_peaks')
ORDER BY p.proname COLLATE "C";
