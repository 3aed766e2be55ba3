--
-- 20_act_policies: connwatch.policies, connwatch.enforce(), audit retention
--
-- Every policy used with enforce() filters on application_name
-- regress_act_pol_*, the tag of the dblink victims, so that nothing else on
-- the server can match.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS dblink;
CREATE EXTENSION IF NOT EXISTS pg_connwatch;
RESET client_min_messages;

-- Open a dblink session tagged app and run stmts in it (errors are not
-- raised: an aborted transaction is one of the victims).
CREATE FUNCTION pg_temp.victim(app text, VARIADIC stmts text[])
RETURNS text
LANGUAGE plpgsql SET client_min_messages = warning AS $$
DECLARE
    stmt text;
BEGIN
    PERFORM dblink_connect(app, regress_cw_connstr(app, dbname => current_database(),
                                                   username => current_user));
    FOREACH stmt IN ARRAY stmts LOOP
        PERFORM * FROM dblink(app, stmt, false) AS t(result text);
    END LOOP;
    RETURN app;
END
$$;

CREATE FUNCTION pg_temp.victims()
RETURNS TABLE (application_name text, state text)
LANGUAGE sql AS $$
    SELECT pg_stat_clear_snapshot();
    SELECT application_name, state FROM pg_stat_activity
    WHERE application_name LIKE 'regress_act_pol_%'
    ORDER BY application_name COLLATE "C";
$$;

--
-- The issue's minimal policy is complete: everything else has a default
--
INSERT INTO connwatch.policies (name, state, older_than)
VALUES ('leaks', 'idle in transaction', '5 min');
\x on
SELECT * FROM connwatch.policies;
\x off

--
-- Bad rows are refused by CHECK constraints (23514)
--
SELECT regress_cw_sqlstate_of($$INSERT INTO connwatch.policies (name, state, older_than)
    VALUES ('bad', 'idle in xact', '1 min')$$);
SELECT regress_cw_sqlstate_of($$INSERT INTO connwatch.policies (name, state, older_than)
    VALUES ('bad', 'IDLE', '1 min')$$);
SELECT regress_cw_sqlstate_of($$INSERT INTO connwatch.policies (name, state, older_than, action)
    VALUES ('bad', 'active', '1 min', 'kill')$$);
SELECT regress_cw_sqlstate_of($$INSERT INTO connwatch.policies (name, state, older_than, age_of)
    VALUES ('bad', 'active', '1 min', 'query')$$);
SELECT regress_cw_sqlstate_of($$INSERT INTO connwatch.policies (name, state, older_than)
    VALUES ('bad', 'idle', '-1 min')$$);
SELECT regress_cw_sqlstate_of($$INSERT INTO connwatch.policies (name, state, older_than)
    VALUES ('bad', 'idle', '1 min -1 day')$$);
SELECT regress_cw_sqlstate_of($$INSERT INTO connwatch.policies (name, state, older_than, action)
    VALUES ('bad', 'idle', '1 min', 'cancel')$$);
SELECT regress_cw_sqlstate_of($$INSERT INTO connwatch.policies (name, state, older_than, action)
    VALUES ('bad', 'idle in transaction', '1 min', 'cancel')$$);
SELECT regress_cw_sqlstate_of($$INSERT INTO connwatch.policies (name, state, older_than, min_pct_used)
    VALUES ('bad', 'idle', '1 min', 100.1)$$);
SELECT regress_cw_sqlstate_of($$INSERT INTO connwatch.policies (name, state, older_than, min_pct_used)
    VALUES ('bad', 'idle', '1 min', -1)$$);
SELECT regress_cw_sqlstate_of($$UPDATE connwatch.policies SET action = 'cancel'
    WHERE name = 'leaks'$$);
-- not a CHECK, but refused all the same
SELECT regress_cw_sqlstate_of($$INSERT INTO connwatch.policies (name, state, older_than)
    VALUES ('bad', 'idle', NULL)$$);
SELECT regress_cw_sqlstate_of($$INSERT INTO connwatch.policies (name, state, older_than)
    VALUES ('leaks', 'idle', '1 min')$$);
-- what a cancel policy may be
INSERT INTO connwatch.policies (name, state, older_than, action, enabled)
VALUES ('ok_cancel_active', 'active', '1 min', 'cancel', false),
       ('ok_cancel_any', 'any', '1 min', 'cancel', false),
       ('ok_mixed_signs', 'idle', '1 day -1 s', 'terminate', false);
SELECT name, state, older_than, action FROM connwatch.policies
ORDER BY name COLLATE "C";
DELETE FROM connwatch.policies WHERE name LIKE 'ok\_%';

--
-- enforce(): dry run, then for real
--
UPDATE connwatch.policies SET older_than = '0',
    application_name = 'regress_act_pol_l%' WHERE name = 'leaks';
SELECT pg_temp.victim('regress_act_pol_l1', 'BEGIN');
SELECT pg_temp.victim('regress_act_pol_l2', 'BEGIN', 'SELECT 1/0');
SELECT pg_temp.victim('regress_act_pol_li', 'SELECT 1');

SELECT application_name, state, action,
       regexp_replace(reason, ' for .*', ' for ...') AS reason, policy
FROM connwatch.enforce(dry_run => true) ORDER BY application_name COLLATE "C";
SELECT application_name, action, policy
FROM connwatch.enforce(true) ORDER BY application_name COLLATE "C";
SELECT * FROM pg_temp.victims();
SELECT count(*) AS audit_rows FROM connwatch.terminations
WHERE application_name LIKE 'regress_act_pol_%';

SELECT application_name, state, action,
       regexp_replace(reason, ' for .*', ' for ...') AS reason, policy
FROM connwatch.enforce() ORDER BY application_name COLLATE "C";
SELECT regress_cw_wait_gone('regress_act_pol_l1') AS l1_gone,
       regress_cw_wait_gone('regress_act_pol_l2') AS l2_gone;
SELECT * FROM pg_temp.victims();
SELECT policy, application_name, state, action,
       regexp_replace(reason, ' for .*', ' for ...') AS reason,
       invoked_by = current_user AS invoked_by_me
FROM connwatch.terminations WHERE application_name LIKE 'regress_act_pol_%'
ORDER BY application_name COLLATE "C";
-- nothing left to do
SELECT count(*) AS second_run FROM connwatch.enforce();
DELETE FROM connwatch.policies;

--
-- Policies apply in name order, a session is handled once, by the first
-- policy that matches it; a policy's own dry_run holds in real runs
--
INSERT INTO connwatch.policies (name, state, older_than, application_name)
VALUES ('b_kill', 'any', '0', 'regress_act_pol_o%');
INSERT INTO connwatch.policies (name, state, older_than, application_name, dry_run)
VALUES ('a_look', 'idle', '0', 'regress_act_pol_o%', true);
SELECT pg_temp.victim('regress_act_pol_o1', 'SELECT 1');
SELECT pg_temp.victim('regress_act_pol_o2', 'BEGIN');
SELECT application_name, state, action, policy
FROM connwatch.enforce(dry_run => true) ORDER BY application_name COLLATE "C";
SELECT application_name, state, action, policy
FROM connwatch.enforce() ORDER BY application_name COLLATE "C";
SELECT regress_cw_wait_gone('regress_act_pol_o2') AS o2_gone;
SELECT * FROM pg_temp.victims();
SELECT policy, application_name, action FROM connwatch.terminations
WHERE application_name LIKE 'regress_act_pol_o%';
-- disabled policies are ignored
UPDATE connwatch.policies SET enabled = false WHERE name = 'a_look';
SELECT pg_temp.victim('regress_act_pol_o3', 'SELECT 1');
UPDATE connwatch.policies SET enabled = false WHERE name = 'b_kill';
SELECT count(*) AS all_disabled FROM connwatch.enforce();
UPDATE connwatch.policies SET enabled = true WHERE name = 'b_kill';
SELECT application_name, state, action, policy
FROM connwatch.enforce() ORDER BY application_name COLLATE "C";
SELECT regress_cw_wait_gone('regress_act_pol_o1') AS o1_gone,
       regress_cw_wait_gone('regress_act_pol_o3') AS o3_gone;
DELETE FROM connwatch.policies;

--
-- only_if_holds_xmin: only the session whose xid holds the horizon back
--
SELECT pg_temp.victim('regress_act_pol_x1', 'BEGIN', 'SELECT txid_current()');
SELECT pg_temp.victim('regress_act_pol_x2', 'BEGIN', 'SELECT txid_current()');
SELECT pg_temp.victim('regress_act_pol_x3', 'BEGIN', 'SELECT 1');
INSERT INTO connwatch.policies (name, state, older_than, application_name,
                                only_if_holds_xmin)
VALUES ('xmin', 'idle in transaction', '0', 'regress_act_pol_x%', true);
SELECT application_name, action, policy, xmin_age > 0 AS holds_xid
FROM connwatch.enforce(dry_run => true) ORDER BY application_name COLLATE "C";
SELECT application_name, action, policy
FROM connwatch.enforce() ORDER BY application_name COLLATE "C";
SELECT regress_cw_wait_gone('regress_act_pol_x1') AS x1_gone;
-- now x2 is the oldest
SELECT application_name, action, policy
FROM connwatch.enforce() ORDER BY application_name COLLATE "C";
SELECT regress_cw_wait_gone('regress_act_pol_x2') AS x2_gone;
-- x3 holds nothing back: never
SELECT count(*) AS x3_untouched FROM connwatch.enforce();
SELECT * FROM pg_temp.victims();
UPDATE connwatch.policies SET only_if_holds_xmin = false;
SELECT application_name, action, policy FROM connwatch.enforce();
SELECT regress_cw_wait_gone('regress_act_pol_x3') AS x3_gone;
DELETE FROM connwatch.policies;

--
-- min_pct_used: act only when the server is at least that full
--
SELECT pg_temp.victim('regress_act_pol_m1', 'BEGIN');
INSERT INTO connwatch.policies (name, state, older_than, application_name,
                                min_pct_used)
VALUES ('pressure', 'idle in transaction', '0', 'regress_act_pol_m%', 100);
SELECT count(*) AS at_100 FROM connwatch.enforce();
SELECT pct_used AS server_pct FROM connwatch.connection_limits
WHERE scope = 'server' \gset
UPDATE connwatch.policies SET min_pct_used = :server_pct + 0.1;
SELECT count(*) AS just_above FROM connwatch.enforce(dry_run => true);
UPDATE connwatch.policies SET min_pct_used = :server_pct;
SELECT application_name, action FROM connwatch.enforce(dry_run => true);
UPDATE connwatch.policies SET min_pct_used = 0;
SELECT application_name, action, policy FROM connwatch.enforce();
SELECT regress_cw_wait_gone('regress_act_pol_m1') AS m1_gone;
DELETE FROM connwatch.policies;

--
-- Audit retention: enforce() prunes, dry runs do not
--
SHOW connwatch.audit_retention;
SET connwatch.audit_retention = '1min';
INSERT INTO connwatch.terminations (logged_at, pid, backend_start,
    application_name, action, reason, invoked_by)
VALUES (now() - interval '2 hours', 0, '2000-01-01', 'regress_act_pol_old',
        'terminated', 'regress', current_user),
       (now() - interval '30 seconds', 0, '2000-01-01', 'regress_act_pol_recent',
        'terminated', 'regress', current_user);
SELECT count(*) FROM connwatch.enforce(dry_run => true);
SELECT application_name FROM connwatch.terminations
WHERE application_name IN ('regress_act_pol_old', 'regress_act_pol_recent')
ORDER BY application_name COLLATE "C";
SELECT count(*) FROM connwatch.enforce();
SELECT application_name FROM connwatch.terminations
WHERE application_name IN ('regress_act_pol_old', 'regress_act_pol_recent')
ORDER BY application_name COLLATE "C";
-- 0 keeps everything
SET connwatch.audit_retention = 0;
INSERT INTO connwatch.terminations (logged_at, pid, backend_start,
    application_name, action, reason, invoked_by)
VALUES (now() - interval '400 days', 0, '2000-01-01', 'regress_act_pol_old',
        'terminated', 'regress', current_user);
SELECT count(*) FROM connwatch.enforce();
SELECT application_name FROM connwatch.terminations
WHERE application_name IN ('regress_act_pol_old', 'regress_act_pol_recent')
ORDER BY application_name COLLATE "C";
RESET connwatch.audit_retention;
DELETE FROM connwatch.terminations WHERE pid = 0;

--
-- Bad input
--
SELECT regress_cw_sqlstate_of($$SELECT connwatch.enforce(NULL)$$);
-- (core's range in parentheses gained units in 18: left out)
SELECT regexp_replace(regress_cw_sqlstate_of($$SET connwatch.audit_retention = -1$$),
                      ' \(.*\)$', '') AS sqlstate_and_message;

--
-- pg_dump keeps the policies and the audit trail
--
SELECT c.oid::regclass AS config_table, cond.condition
FROM pg_extension e,
     unnest(e.extconfig, e.extcondition) AS cond(reloid, condition)
     JOIN pg_class c ON c.oid = cond.reloid
WHERE e.extname = 'pg_connwatch'
ORDER BY c.relname COLLATE "C";

SELECT * FROM pg_temp.victims();
SELECT count(*) AS policies_left FROM connwatch.policies;
SELECT dblink_disconnect('regress_act_pol_li');
SELECT regress_cw_wait_gone('regress_act_pol_li') AS li_gone;
