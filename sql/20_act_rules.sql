--
-- 20_act_rules: terminate_idle_in_transaction(), terminate_idle(),
-- terminate_long_transactions()
--
-- Victims are dblink sessions tagged application_name regress_act_rules_*;
-- every call filters on that tag (or on a regress_ role), so that nothing
-- else on the server can match.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS dblink;
CREATE EXTENSION IF NOT EXISTS pg_connwatch;
RESET client_min_messages;

-- Open a dblink session as role, tagged app, and run stmts in it (errors
-- are not raised: an aborted transaction is one of the victims).
CREATE FUNCTION pg_temp.victim(app text, role text, VARIADIC stmts text[])
RETURNS text
LANGUAGE plpgsql SET client_min_messages = warning AS $$
DECLARE
    stmt text;
BEGIN
    PERFORM dblink_connect(app, regress_cw_connstr(app, dbname => current_database(),
                                                   username => role));
    FOREACH stmt IN ARRAY stmts LOOP
        PERFORM dblink_exec(app, stmt, false);
    END LOOP;
    RETURN app;
END
$$;

-- The tagged sessions and their states, as pg_stat_activity has them now
-- (our own role shown as "me").
CREATE FUNCTION pg_temp.victims()
RETURNS TABLE (application_name text, usename name, state text)
LANGUAGE sql AS $$
    SELECT pg_stat_clear_snapshot();
    SELECT application_name,
           CASE WHEN usename = current_user THEN 'me' ELSE usename END, state
    FROM pg_stat_activity
    WHERE application_name LIKE 'regress_act_rules_%'
       OR usename::text LIKE 'regress_act_rules_%'
       OR usename = 'regress_cw_protected'
    ORDER BY application_name COLLATE "C";
$$;

CREATE ROLE regress_act_rules_user LOGIN;
CREATE ROLE regress_cw_protected LOGIN;
-- pg_dump's name protects the sessions of this role's members (below)
SET connwatch.protected_application_roles = 'regress_act_rules_user';

-- Created in this order, so state_change grows from a1 to ab.
SELECT pg_temp.victim('regress_act_rules_a1', current_user, 'BEGIN', 'SET search_path = public');
SELECT pg_temp.victim('regress_act_rules_a2', current_user, 'BEGIN', 'SET search_path = public');
SELECT pg_temp.victim('regress_act_rules_ab', current_user, 'BEGIN', 'SELECT 1/0');
SELECT pg_temp.victim('regress_act_rules_u1', 'regress_act_rules_user', 'BEGIN');
SELECT pg_temp.victim('regress_act_rules_pr', 'regress_cw_protected', 'BEGIN');
SELECT pg_temp.victim('regress_act_rules_pd', 'regress_act_rules_user',
                      'SET application_name = ''pg_dump''', 'BEGIN');
SELECT pg_temp.victim('regress_act_rules_i1', current_user, 'SET search_path = public');
SELECT * FROM pg_temp.victims();

--
-- Dry runs: everything is reported, nothing is signalled
--
SELECT application_name, state, state_age >= '0' AS state_age,
       xact_age >= '0' AS xact_age, action,
       regexp_replace(reason, ' for .*', ' for ...') AS reason, policy
FROM connwatch.terminate_idle_in_transaction('0', true,
         application_name => 'regress_act_rules_%')
ORDER BY application_name COLLATE "C";
SELECT application_name, state, action,
       regexp_replace(reason, ' for .*', ' for ...') AS reason
FROM connwatch.terminate_idle('0', true, application_name => 'regress_act_rules_%')
ORDER BY application_name COLLATE "C";
-- an aborted transaction block has no transaction start: not "long"
SELECT application_name, state, action,
       regexp_replace(reason, ' for .*', ' for ...') AS reason
FROM connwatch.terminate_long_transactions('0', true,
         application_name => 'regress_act_rules_%')
ORDER BY application_name COLLATE "C";
SELECT * FROM pg_temp.victims();
SELECT count(*) AS audit_rows FROM connwatch.terminations
WHERE application_name LIKE 'regress_act_rules_%' OR application_name = 'pg_dump';

--
-- Filters are LIKE patterns
--
SELECT application_name, action FROM connwatch.terminate_idle_in_transaction('0', true,
    application_name => 'regress_act_rules_a_') ORDER BY application_name COLLATE "C";
SELECT application_name, action FROM connwatch.terminate_idle_in_transaction('0', true,
    application_name => 'regress_act_rules_a%1') ORDER BY application_name COLLATE "C";
SELECT application_name, usename, action,
       regexp_replace(reason, ' for .*', ' for ...') AS reason
FROM connwatch.terminate_idle_in_transaction('0', true,
    usename => 'regress\_act\_rules\_%') ORDER BY application_name COLLATE "C";
SELECT application_name, usename, action
FROM connwatch.terminate_idle_in_transaction('0', true,
    usename => 'regress_cw%', application_name => 'regress_act_rules_%')
ORDER BY application_name COLLATE "C";
SELECT application_name, action FROM connwatch.terminate_idle_in_transaction('0', true,
    datname => current_database(), application_name => 'regress_act_rules_%')
ORDER BY application_name COLLATE "C";
SELECT count(*) AS no_such_db FROM connwatch.terminate_idle_in_transaction('0', true,
    datname => 'regress_no_such_db%', application_name => 'regress_act_rules_%');
SELECT count(*) AS no_such_app FROM connwatch.terminate_idle_in_transaction('0', true,
    application_name => 'regress_act_rules_zz%');

--
-- older_than beyond the sessions' age: nothing, even for real
--
SELECT count(*) AS iit_hour FROM connwatch.terminate_idle_in_transaction('1 hour',
    application_name => 'regress_act_rules_%');
SELECT count(*) AS idle_hour FROM connwatch.terminate_idle('1 hour',
    application_name => 'regress_act_rules_%');
SELECT count(*) AS long_hour FROM connwatch.terminate_long_transactions('1 hour',
    application_name => 'regress_act_rules_%');
SELECT count(*) AS iit_month FROM connwatch.terminate_idle_in_transaction('1 mon',
    usename => 'regress_act_rules_user');
SELECT * FROM pg_temp.victims();

--
-- Never our own session: it is in a transaction and matches the filter
--
SET application_name = 'regress_act_rules_self';
SELECT application_name, state, action,
       regexp_replace(reason, ' for .*', ' for ...') AS reason
FROM connwatch.terminate_long_transactions('0',
    application_name => 'regress_act_rules_self');
RESET application_name;

--
-- Protected applications and roles
--
-- a name alone protects nothing: any session can SET application_name
RESET connwatch.protected_application_roles;
SELECT application_name, usename, state, action,
       regexp_replace(reason, ' for .*', ' for ...') AS reason
FROM connwatch.terminate_idle_in_transaction('0', true,
    usename => 'regress_act_rules_user', application_name => 'pg_dump');
SET connwatch.protected_application_roles = 'regress_act_rules_user';
SELECT application_name, usename, state, action,
       regexp_replace(reason, ' for .*', ' for ...') AS reason
FROM connwatch.terminate_idle_in_transaction('0',
    usename => 'regress_act_rules_user', application_name => 'pg_dump');
SET connwatch.protected_applications = 'regress_act_rules_a1, pg_dump';
SELECT application_name, action,
       regexp_replace(reason, ' for .*', ' for ...') AS reason
FROM connwatch.terminate_idle_in_transaction('0', true,
    application_name => 'regress_act_rules_a_') ORDER BY application_name COLLATE "C";
RESET connwatch.protected_applications;

SET connwatch.protected_roles = 'regress_cw_protected';
SELECT application_name, usename, action,
       regexp_replace(reason, ' for .*', ' for ...') AS reason
FROM connwatch.terminate_idle_in_transaction('0',
    application_name => 'regress_act_rules_pr');
SELECT application_name, usename, action,
       regexp_replace(reason, ' for .*', ' for ...') AS reason
FROM connwatch.terminate_idle_in_transaction('0', true,
    usename => 'regress_cw_protected');
RESET connwatch.protected_roles;
SELECT * FROM pg_temp.victims();

--
-- Kill budget: oldest first, the rest is skipped
--
SET connwatch.max_terminations_per_run = 0;
SELECT application_name, action,
       regexp_replace(reason, ' for .*', ' for ...') AS reason
FROM connwatch.terminate_idle_in_transaction('0', true,
    application_name => 'regress_act_rules_a_') ORDER BY application_name COLLATE "C";
SET connwatch.max_terminations_per_run = 1;
SELECT application_name, action,
       regexp_replace(reason, ' for .*', ' for ...') AS reason
FROM connwatch.terminate_idle_in_transaction('0', true,
    application_name => 'regress_act_rules_a_') ORDER BY application_name COLLATE "C";
SELECT application_name, state, action,
       regexp_replace(reason, ' for .*', ' for ...') AS reason
FROM connwatch.terminate_idle_in_transaction('0',
    application_name => 'regress_act_rules_a_') ORDER BY application_name COLLATE "C";
SELECT regress_cw_wait_gone('regress_act_rules_a1') AS a1_gone;
RESET connwatch.max_terminations_per_run;

--
-- Real runs: the aborted one included, one audit row each
--
SELECT application_name, state, action,
       regexp_replace(reason, ' for .*', ' for ...') AS reason
FROM connwatch.terminate_idle_in_transaction('0',
    application_name => 'regress_act_rules_a_') ORDER BY application_name COLLATE "C";
SELECT application_name, usename, action
FROM connwatch.terminate_idle_in_transaction('0',
    usename => 'regress_act_rules_user', application_name => 'regress_act_rules_%');
SELECT application_name, action,
       regexp_replace(reason, ' for .*', ' for ...') AS reason
FROM connwatch.terminate_idle('0', application_name => 'regress_act_rules_%');
SELECT regress_cw_wait_gone('regress_act_rules_a2') AS a2_gone,
       regress_cw_wait_gone('regress_act_rules_ab') AS ab_gone,
       regress_cw_wait_gone('regress_act_rules_u1') AS u1_gone,
       regress_cw_wait_gone('regress_act_rules_i1') AS i1_gone;
SELECT * FROM pg_temp.victims();
SELECT application_name,
       CASE WHEN usename = current_user THEN 'me' ELSE usename END AS usename,
       state, action,
       regexp_replace(reason, ' for .*', ' for ...') AS reason, policy,
       invoked_by = current_user AS invoked_by_me, count(*)
FROM connwatch.terminations
WHERE application_name LIKE 'regress_act_rules_%' OR application_name = 'pg_dump'
GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY application_name COLLATE "C";

--
-- Long transactions: cancel first, terminate after the grace period
--
-- (2 s: long enough for the cancel to be processed even on a loaded
-- machine, so that the session is idle in its aborted block when the grace
-- period ends; escalation waits the whole period for the client to roll back)
SET connwatch.cancel_grace_period = '2s';
SELECT pg_temp.victim('regress_act_rules_l1', current_user, 'BEGIN', 'SET search_path = public');
SELECT dblink_send_query('regress_act_rules_l1', 'SELECT pg_sleep(300)');
SELECT regress_cw_wait_state('regress_act_rules_l1', 'active') AS l1_active;
SELECT application_name, state, action,
       regexp_replace(reason, ' for .*', ' for ...') AS reason
FROM connwatch.terminate_long_transactions('0', true,
    application_name => 'regress_act_rules_l1');
SELECT application_name, state, action,
       regexp_replace(reason, ' for .*', ' for ...') AS reason
FROM connwatch.terminate_long_transactions('0', true,
    application_name => 'regress_act_rules_l1', cancel_first => false);
-- an active session is never "idle in transaction"
SELECT count(*) AS l1_iit FROM connwatch.terminate_idle_in_transaction('0', true,
    application_name => 'regress_act_rules_l1');
SELECT n, application_name, state, action,
       regexp_replace(reason, ' for .*', ' for ...') AS reason
FROM connwatch.terminate_long_transactions('0',
    application_name => 'regress_act_rules_l1') WITH ORDINALITY AS r(pid, backend_start,
    datname, usename, application_name, client_addr, state, state_age, xact_age,
    xmin_age, action, reason, policy, n);
SELECT regress_cw_wait_gone('regress_act_rules_l1') AS l1_gone;
SELECT state, query, action, regexp_replace(reason, ' for .*', ' for ...') AS reason
FROM connwatch.terminations WHERE application_name = 'regress_act_rules_l1'
ORDER BY logged_at;

-- cancel_first => false: terminated at once
SELECT pg_temp.victim('regress_act_rules_l2', current_user, 'BEGIN', 'SET search_path = public');
SELECT dblink_send_query('regress_act_rules_l2', 'SELECT pg_sleep(300)');
SELECT regress_cw_wait_state('regress_act_rules_l2', 'active') AS l2_active;
SELECT application_name, state, action,
       regexp_replace(reason, ' for .*', ' for ...') AS reason
FROM connwatch.terminate_long_transactions('0',
    application_name => 'regress_act_rules_l2', cancel_first => false);
SELECT regress_cw_wait_gone('regress_act_rules_l2') AS l2_gone;

-- idle in a long transaction: nothing to cancel, terminated at once
SELECT pg_temp.victim('regress_act_rules_l3', current_user, 'BEGIN', 'SET search_path = public');
SELECT application_name, state, action,
       regexp_replace(reason, ' for .*', ' for ...') AS reason
FROM connwatch.terminate_long_transactions('0',
    application_name => 'regress_act_rules_l3');
SELECT regress_cw_wait_gone('regress_act_rules_l3') AS l3_gone;
SELECT application_name, action, count(*) FROM connwatch.terminations
WHERE application_name IN ('regress_act_rules_l2', 'regress_act_rules_l3')
GROUP BY 1, 2 ORDER BY application_name COLLATE "C";
RESET connwatch.cancel_grace_period;

--
-- Bad input
--
SELECT regress_cw_sqlstate_of($$SELECT connwatch.terminate_idle_in_transaction(NULL)$$);
SELECT regress_cw_sqlstate_of($$SELECT connwatch.terminate_idle(NULL)$$);
SELECT regress_cw_sqlstate_of($$SELECT connwatch.terminate_long_transactions(NULL)$$);
SELECT regress_cw_sqlstate_of($$SELECT connwatch.terminate_idle_in_transaction('-1 s')$$);
SELECT regress_cw_sqlstate_of($$SELECT connwatch.terminate_idle('-1 day')$$);
SELECT regress_cw_sqlstate_of($$SELECT connwatch.terminate_long_transactions('-1 mon')$$);
-- mixed signs: what counts is the interval's value, as for the policies' CHECK
SELECT regress_cw_sqlstate_of($$SELECT connwatch.terminate_idle('1 day -1 s', true,
    application_name => 'regress_act_rules_%')$$);
SELECT regress_cw_sqlstate_of($$SELECT connwatch.terminate_idle('1 s -1 day', true,
    application_name => 'regress_act_rules_%')$$);
SELECT regress_cw_sqlstate_of($$SELECT connwatch.terminate_idle_in_transaction('0', NULL)$$);
SELECT regress_cw_sqlstate_of($$SELECT connwatch.terminate_idle('0', NULL)$$);
SELECT regress_cw_sqlstate_of($$SELECT connwatch.terminate_long_transactions('0', NULL)$$);
SELECT regress_cw_sqlstate_of($$SELECT connwatch.terminate_long_transactions('0', true,
    cancel_first => NULL)$$);
SELECT regress_cw_sqlstate_of($$SET connwatch.max_terminations_per_run = -1$$);
SHOW connwatch.max_terminations_per_run;

-- clean up: the protected sessions are still there
SELECT * FROM pg_temp.victims();
SELECT dblink_disconnect('regress_act_rules_pr');
SELECT dblink_disconnect('regress_act_rules_pd');
SELECT regress_cw_wait_gone('regress_act_rules_pr') AS pr_gone;
SELECT regress_cw_wait_gone('pg_dump') AS pd_gone;
DROP ROLE regress_act_rules_user;
DROP ROLE regress_cw_protected;
