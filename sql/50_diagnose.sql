--
-- connwatch.diagnose() without the library preloaded: the checks that need
-- the ledgers are skipped, and say so; the others judge live state.  With
-- the library preloaded, and against real applications: test/t/401 and 403.
--
SELECT connwatch.preloaded();

-- A quiet server: one info row, naming what was skipped
SELECT severity, code, subject, needs_preload, evidence
FROM connwatch.diagnose();

-- The thresholds, with their defaults and bounds
SELECT name, setting, unit, min_val, max_val, context
FROM pg_settings WHERE name LIKE 'connwatch.diagnose%' ORDER BY name;
-- (the SQLSTATE only: how the range is written changed in 17)
\set VERBOSITY sqlstate
SET connwatch.diagnose_window = 0;
SET connwatch.diagnose_idle_in_transaction = '-1s';
SET connwatch.diagnose_churn_rate = 0;
SET connwatch.diagnose_xmin_age = 'many';
\set VERBOSITY default

-- A transaction of this session that holds the horizon back longer than
-- diagnose_horizon_age (a prepared transaction left behind:
-- 50_diagnose_prepared)
SET connwatch.diagnose_horizon_age = '1s';
BEGIN;
SELECT pg_current_xact_id() IS NOT NULL AS has_xid;
SELECT pg_sleep(1.2);
SELECT severity, code,
       regexp_replace(subject, '\d+', 'N') AS subject,
       evidence->>'holder_type' AS holder_type,
       (evidence->>'xmin_age')::int >= 0 AS has_age,
       client_symptom LIKE '%not accepting commands to avoid wraparound%' AS symptom,
       advice LIKE '%connwatch.terminate_backend(%' AS advice
FROM connwatch.diagnose() WHERE code = 'CW120';
COMMIT;
RESET connwatch.diagnose_horizon_age;

-- Again quiet; the order is severity, then code
SELECT code FROM connwatch.diagnose();

-- Who may run it: pg_monitor, not PUBLIC
CREATE ROLE regress_cw_diag_nobody;
CREATE ROLE regress_cw_diag_monitor IN ROLE pg_monitor;
SET ROLE regress_cw_diag_nobody;
SELECT * FROM connwatch.diagnose();
SELECT connwatch.preloaded();
RESET ROLE;
SET ROLE regress_cw_diag_monitor;
SELECT code FROM connwatch.diagnose();
RESET ROLE;

-- The thresholds are a superuser's: no other role can change what
-- diagnose() tells a superuser or the exporter, for a session, a role or a
-- database, whether the library is loaded (this session) or not yet (the
-- next one, where the setting is only a placeholder)
CREATE FUNCTION pg_temp.try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'allowed';
EXCEPTION WHEN OTHERS THEN
    RETURN 'refused: ' || SQLSTATE;
END
$$;
SET ROLE regress_cw_diag_monitor;
SELECT pg_temp.try('SET connwatch.diagnose_window = ''1s''') AS set_window,
       pg_temp.try('SET connwatch.warning_pct = 100') AS set_warning_pct,
       pg_temp.try('ALTER ROLE regress_cw_diag_monitor SET connwatch.diagnose_idle_in_transaction = ''2147483647ms''') AS alter_role;
RESET ROLE;
\c -
SELECT count(*) AS loaded FROM pg_settings WHERE name = 'connwatch.diagnose_window';
SET ROLE regress_cw_diag_monitor;
ALTER ROLE regress_cw_diag_monitor SET connwatch.diagnose_idle_in_transaction = '2147483647ms';
RESET ROLE;
SELECT count(*) AS stored FROM pg_db_role_setting
WHERE setrole = 'regress_cw_diag_monitor'::regrole;
DROP ROLE regress_cw_diag_nobody;
DROP ROLE regress_cw_diag_monitor;
