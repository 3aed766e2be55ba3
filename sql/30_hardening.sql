--
-- 30_hardening: the probe's findings against 1.0, each reproduced.
--
--  (2) a schema squatter cannot get the extension installed into its
--      schema, nor, on a squatted 1.0 install, have its fake
--      connwatch.policies read by enforce();
--  (3) NULL or invalid policy fields are errors naming policy and column;
--  (4) an interval that overflows a conversion does not match young
--      sessions;
--  (5) temporary domains named like catalog types change nothing;
--  (6) a caller who may not see a session learns nothing through the
--      reasons it is refused;
--  (7) no signal in a read-only transaction, so no kill without its
--      audit row.
-- (1), the crash of a view over an exiting backend, needs exits to race
-- reads: test/t/201_exit_churn.pl.
--
-- Victims are dblink sessions tagged regress_cw_hard_*.
--
SELECT regress_cw_settle() AS settled;
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS dblink;
DROP ROLE IF EXISTS regress_cw_hard_squatter, regress_cw_hard_app,
    regress_cw_hard_signaller;
RESET client_min_messages;

CREATE ROLE regress_cw_hard_app LOGIN;
CREATE ROLE regress_cw_hard_signaller;
GRANT pg_signal_backend TO regress_cw_hard_signaller;
GRANT EXECUTE ON FUNCTION connwatch.terminate_backend(integer, timestamptz, text),
    connwatch.cancel_backend(integer, timestamptz, text)
    TO regress_cw_hard_signaller;

-- A victim: a dblink session with application_name app that ran sql.
CREATE FUNCTION pg_temp.victim(app text, username text,
                               VARIADIC sql text[] DEFAULT '{}')
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    stmt text;
BEGIN
    PERFORM dblink_connect(app, regress_cw_connstr(app, username => username));
    FOREACH stmt IN ARRAY sql LOOP
        PERFORM dblink_exec(app, stmt);
    END LOOP;
END
$$;

SELECT pg_temp.victim('regress_cw_hard_idle', 'regress_cw_hard_app');
SELECT pg_temp.victim('regress_cw_hard_iit', 'regress_cw_hard_app', 'BEGIN',
                      'SET LOCAL work_mem = ''64kB''');
SELECT pg_temp.victim('regress_cw_hard_super', 'postgres');
SELECT pid AS idle_pid, backend_start AS idle_start FROM pg_stat_activity
WHERE application_name = 'regress_cw_hard_idle' \gset
SELECT pid AS iit_pid, backend_start AS iit_start FROM pg_stat_activity
WHERE application_name = 'regress_cw_hard_iit' \gset
SELECT pid AS super_pid, backend_start AS super_start FROM pg_stat_activity
WHERE application_name = 'regress_cw_hard_super' \gset
-- every victim has been in its state for at least a millisecond
SELECT regress_cw_wait($$
    SELECT count(*) = 3 FROM pg_stat_activity
    WHERE application_name LIKE 'regress\_cw\_hard\_%'
      AND state_change < clock_timestamp() - interval '1 ms'
$$) AS victims_settled;

--
-- (4) Intervals are compared as intervals.  '178000000 years -1 day' is
-- positive (so the policies' CHECK lets it in) and far older than any
-- session: nothing matches.  1.0 converted it to microseconds with an
-- overflow and matched everything.
--
SELECT '178000000 years -1 day'::interval > '0'::interval AS positive;
SELECT count(*) AS matched
FROM connwatch.terminate_idle('178000000 years -1 day', true,
                              application_name => 'regress_cw_hard_idle');
SELECT count(*) AS matched
FROM connwatch.terminate_idle_in_transaction('178000000 years -1 day', true,
                                             application_name => 'regress_cw_hard_iit');
SELECT count(*) AS listed
FROM connwatch.long_transactions('178000000 years -1 day')
WHERE application_name = 'regress_cw_hard_iit';
INSERT INTO connwatch.policies (name, state, older_than, application_name)
VALUES ('regress_hard_far', 'idle', '178000000 years -1 day', 'regress_cw_hard_idle');
SELECT count(*) AS matched FROM connwatch.enforce(true)
WHERE application_name LIKE 'regress\_cw\_hard\_%';
-- The same interval negative overall is refused, as every negative one.
SELECT regress_cw_sqlstate_of($$
    SELECT * FROM connwatch.terminate_idle('-178000000 years 1 day', true)$$);
SELECT regress_cw_sqlstate_of($$
    SELECT * FROM connwatch.long_transactions('-178000000 years 1 day')$$);
-- Exactly as old as asked still matches (the comparison is not off by one
-- on the way): a day of 24 hours and a month of 30 days.
SELECT count(*) AS matched
FROM connwatch.terminate_idle('1 mon -30 days', true,
                              application_name => 'regress_cw_hard_idle');
DELETE FROM connwatch.policies WHERE name = 'regress_hard_far';

--
-- (5) Temporary domains named like the types enforce() reads do not
-- change what it reads.  A policy gated at 99 % of max_connections does
-- not fire on this nearly empty server, domains or not.
--
INSERT INTO connwatch.policies (name, state, older_than, application_name,
                                min_pct_used)
VALUES ('regress_hard_gated', 'idle', '0', 'regress_cw_hard_idle', 99);
SELECT count(*) AS matched FROM connwatch.enforce(true)
WHERE application_name LIKE 'regress\_cw\_hard\_%';
CREATE DOMAIN pg_temp.float8 AS text;
CREATE DOMAIN pg_temp.numeric AS text;
CREATE DOMAIN pg_temp.interval AS text;
CREATE DOMAIN pg_temp.text AS integer;
SELECT count(*) AS matched FROM connwatch.enforce(true)
WHERE application_name LIKE 'regress\_cw\_hard\_%';
SELECT action, policy FROM connwatch.enforce(true)
WHERE application_name LIKE 'regress\_cw\_hard\_%';
DROP DOMAIN pg_temp.float8, pg_temp.numeric, pg_temp.interval, pg_temp.text;
-- ... and the gate does open when the threshold is met.
UPDATE connwatch.policies SET min_pct_used = 0 WHERE name = 'regress_hard_gated';
SELECT application_name, action, policy FROM connwatch.enforce(true)
WHERE application_name LIKE 'regress\_cw\_hard\_%';
DELETE FROM connwatch.policies WHERE name = 'regress_hard_gated';

--
-- (3) What the table's constraints used to guarantee is checked again:
-- once its owner loosens one, a NULL or invalid field is an error naming
-- the policy and the column, never a crash or a guess.
--
CREATE FUNCTION pg_temp.enforce_with(setup text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    result text;
BEGIN
    EXECUTE setup;
    result := regress_cw_sqlstate_of('SELECT count(*) FROM connwatch.enforce(true)');
    RAISE EXCEPTION USING MESSAGE = result;
EXCEPTION WHEN raise_exception THEN
    RETURN SQLERRM;             -- the setup is rolled back with it
END
$$;
-- enforce() skips such a policy with a WARNING that names it and applies
-- the others (test/t/106_act_audit_hardening.pl checks the SQLSTATEs)
SELECT c.col AS column_set_null, pg_temp.enforce_with(format($f$
        ALTER TABLE connwatch.policies ALTER COLUMN %1$I DROP NOT NULL;
        INSERT INTO connwatch.policies (name, state, older_than)
        VALUES ('regress_hard_null', 'idle', '1 year');
        UPDATE connwatch.policies SET %1$I = NULL WHERE name = 'regress_hard_null'
    $f$, c.col)) AS result
FROM (VALUES ('state'), ('older_than'), ('age_of'), ('only_if_holds_xmin'),
             ('action'), ('dry_run'), ('enabled')) AS c(col);
SELECT pg_temp.enforce_with($f$
        ALTER TABLE connwatch.policies DROP CONSTRAINT policies_pkey;
        ALTER TABLE connwatch.policies ALTER COLUMN name DROP NOT NULL;
        INSERT INTO connwatch.policies (name, state, older_than)
        VALUES (NULL, 'idle', '1 year')
    $f$) AS null_name;
SELECT c.con AS constraint_dropped, c.assignment, pg_temp.enforce_with(format($f$
        ALTER TABLE connwatch.policies DROP CONSTRAINT %I;
        INSERT INTO connwatch.policies (name, state, older_than)
        VALUES ('regress_hard_bad', 'idle', '1 year');
        UPDATE connwatch.policies SET %s WHERE name = 'regress_hard_bad'
    $f$, c.con, c.assignment)) AS result
FROM (VALUES ('policies_state_check', $$state = 'sleeping'$$),
             ('policies_older_than_check', $$older_than = '-1 s'$$),
             ('policies_age_of_check', $$age_of = 'session'$$),
             ('policies_action_check', $$action = 'kill', state = 'any'$$),
             ('policies_min_pct_used_check', $$min_pct_used = 'NaN'$$),
             ('policies_min_pct_used_check', $$min_pct_used = 101$$),
             ('policies_cancel_needs_active', $$action = 'cancel'$$))
     AS c(con, assignment);
SELECT pg_temp.enforce_with($f$
        ALTER TABLE connwatch.policies DROP CONSTRAINT policies_older_than_check;
        ALTER TABLE connwatch.policies ALTER COLUMN older_than TYPE text
    $f$) AS retyped;
-- A LIKE pattern that ends with the escape character fails only when a
-- name reaches it: checked before anything, a policy skipped, a rule
-- function's argument refused (22025)
SELECT pg_temp.enforce_with($f$
        INSERT INTO connwatch.policies (name, state, older_than, application_name)
        VALUES ('regress_hard_escape', 'idle', '1 year', 'app\')
    $f$) AS trailing_escape;
SELECT regress_cw_sqlstate_of($$SELECT count(*) FROM connwatch.terminate_idle('1 year', true, application_name => 'app\')$$)
    AS rule_trailing_escape;
SELECT regress_cw_sqlstate_of($$SELECT count(*) FROM connwatch.terminate_idle('1 year', true, application_name => 'app\\')$$)
    AS rule_escaped_backslash;
-- The table is untouched by all of that.
SELECT count(*) AS policies FROM connwatch.policies;

--
-- (6) A caller who may not see a session (pg_signal_backend without
-- pg_read_all_stats) is told "not permitted" whatever the session does and
-- whether the backend_start it gives is right: 1.0 answered "no statement
-- to cancel", "superuser" or "backend_start mismatch", which told what
-- pg_stat_activity hides.
--
SET ROLE regress_cw_hard_signaller;
\set VERBOSITY terse
SELECT connwatch.cancel_backend(:super_pid, :'super_start');
SELECT connwatch.terminate_backend(:super_pid, :'super_start');
SELECT connwatch.cancel_backend(:idle_pid, :'idle_start');
SELECT connwatch.terminate_backend(:idle_pid, '2000-01-01 00:00:00+00');
SELECT connwatch.terminate_backend(:iit_pid, :'iit_start'::timestamptz + interval '1 microsecond');
SELECT connwatch.terminate_backend(:iit_pid, :'iit_start');
\set VERBOSITY default
RESET ROLE;
SELECT count(*) AS victims_alive FROM pg_stat_activity
WHERE application_name LIKE 'regress\_cw\_hard\_%';
-- With the right to see them, the reasons are the real ones again.
GRANT pg_read_all_stats TO regress_cw_hard_signaller;
SET ROLE regress_cw_hard_signaller;
\set VERBOSITY terse
SELECT connwatch.terminate_backend(:super_pid, :'super_start');
SELECT connwatch.cancel_backend(:idle_pid, :'idle_start');
SELECT connwatch.terminate_backend(:idle_pid, '2000-01-01 00:00:00+00');
\set VERBOSITY default
RESET ROLE;

--
-- (7) In a read-only transaction nothing is signalled: the audit row could
-- not be written.  Dry runs still work there.
--
BEGIN READ ONLY;
SELECT regress_cw_sqlstate_of(format('SELECT connwatch.terminate_backend(%s, %L)',
                                     :iit_pid, :'iit_start'));
ROLLBACK;
BEGIN READ ONLY;
SELECT regress_cw_sqlstate_of(
    $$SELECT count(*) FROM connwatch.terminate_idle_in_transaction('0', false, application_name => 'regress_cw_hard_iit')$$);
ROLLBACK;
BEGIN READ ONLY;
SELECT regress_cw_sqlstate_of($$SELECT count(*) FROM connwatch.enforce(false)$$);
ROLLBACK;
BEGIN READ ONLY;
SELECT application_name, action
FROM connwatch.terminate_idle_in_transaction('0', true, application_name => 'regress_cw_hard_iit');
ROLLBACK;
SELECT count(*) AS iit_alive FROM pg_stat_activity WHERE pid = :iit_pid;
SELECT count(*) AS audit_rows FROM connwatch.terminations WHERE pid = :iit_pid;
-- Outside it, the same call acts and records.
SELECT connwatch.terminate_backend(:iit_pid, :'iit_start', 'regress: hardening');
SELECT regress_cw_wait_pid_gone(:iit_pid) AS iit_gone;
SELECT action, reason FROM connwatch.terminations WHERE pid = :iit_pid;

--
-- (2) The install model, in a database of its own.
--
SELECT dblink_disconnect(c) FROM unnest(dblink_get_connections()) AS c ORDER BY c;
CREATE ROLE regress_cw_hard_squatter LOGIN;
CREATE DATABASE regress_cw_hard_db;
GRANT CREATE ON DATABASE regress_cw_hard_db TO regress_cw_hard_squatter;
\c regress_cw_hard_db
-- A squatter's schema makes CREATE EXTENSION fail: nothing is installed.
SET ROLE regress_cw_hard_squatter;
CREATE SCHEMA connwatch;
RESET ROLE;
\set VERBOSITY terse
CREATE EXTENSION pg_connwatch;
\set VERBOSITY default
SELECT count(*) AS installed FROM pg_extension WHERE extname = 'pg_connwatch';
DROP SCHEMA connwatch;

-- On 1.0 the squat succeeded.  The attack that followed: the squatter
-- renames the genuine schema away and puts a view over its own function
-- where connwatch.policies was expected; the function tries to make the
-- squatter a superuser as whoever calls enforce().
SET ROLE regress_cw_hard_squatter;
CREATE SCHEMA connwatch;
RESET ROLE;
CREATE EXTENSION pg_connwatch VERSION '1.0';
SET ROLE regress_cw_hard_squatter;
ALTER SCHEMA connwatch RENAME TO connwatch_genuine;
CREATE SCHEMA connwatch;
CREATE FUNCTION connwatch.trojan() RETURNS SETOF record LANGUAGE plpgsql AS $$
BEGIN
    ALTER ROLE regress_cw_hard_squatter SUPERUSER;
END
$$;
CREATE VIEW connwatch.policies AS
    SELECT 'evil'::text AS name, 'any'::text AS state, '0'::interval AS older_than,
           'state'::text AS age_of, NULL::text AS datname, NULL::text AS usename,
           NULL::text AS application_name, false AS only_if_holds_xmin,
           NULL::numeric AS min_pct_used, 'terminate'::text AS action,
           false AS dry_run, true AS enabled
    FROM connwatch.trojan() AS t(x int);
CREATE TABLE connwatch.terminations (logged_at timestamptz);
RESET ROLE;
\set VERBOSITY terse
SELECT count(*) FROM connwatch_genuine.enforce(true);
SELECT count(*) FROM connwatch_genuine.enforce(false);
\set VERBOSITY default
SELECT rolsuper AS squatter_is_superuser FROM pg_roles
WHERE rolname = 'regress_cw_hard_squatter';
-- Nor does the update to 1.0.1 accept the squatted schema: it changes
-- nothing while the squatter owns it ...
SET ROLE regress_cw_hard_squatter;
DROP VIEW connwatch.policies;
DROP TABLE connwatch.terminations;
DROP FUNCTION connwatch.trojan();
DROP SCHEMA connwatch;
ALTER SCHEMA connwatch_genuine RENAME TO connwatch;
CREATE FUNCTION connwatch.enforce(dry_run boolean, extra integer) RETURNS integer
    LANGUAGE sql AS 'SELECT 1';
RESET ROLE;
\set VERBOSITY terse
ALTER EXTENSION pg_connwatch UPDATE;
-- ... nor while it holds objects that are not the extension's ...
ALTER SCHEMA connwatch OWNER TO CURRENT_USER;
ALTER EXTENSION pg_connwatch UPDATE;
\set VERBOSITY default
SELECT extversion FROM pg_extension WHERE extname = 'pg_connwatch';
-- ... and moves the install to 1.0.1's shape once it is clean.
DROP FUNCTION connwatch.enforce(boolean, integer);
ALTER EXTENSION pg_connwatch UPDATE;
SELECT e.extversion, e.extnamespace::regnamespace AS extension_schema,
       EXISTS (SELECT 1 FROM pg_depend AS d
               WHERE d.classid = 'pg_namespace'::regclass
                 AND d.objid = 'connwatch'::regnamespace
                 AND d.refobjid = e.oid AND d.deptype = 'e') AS schema_is_member
FROM pg_extension AS e WHERE e.extname = 'pg_connwatch';
SELECT count(*) AS matched FROM connwatch.enforce(true)
WHERE application_name LIKE 'regress\_cw\_hard\_%';

-- With 1.0.1 in place, the squatter can create nothing in the schema, and
-- a policies table that is not the extension's is refused.
SELECT has_schema_privilege('regress_cw_hard_squatter', 'connwatch', 'CREATE')
    AS squatter_may_create;
ALTER EXTENSION pg_connwatch DROP TABLE connwatch.policies;
\set VERBOSITY terse
SELECT count(*) FROM connwatch.enforce(true);
\set VERBOSITY default
ALTER EXTENSION pg_connwatch ADD TABLE connwatch.policies;
ALTER TABLE connwatch.policies RENAME TO policies_moved;
CREATE VIEW connwatch.policies AS SELECT * FROM connwatch.policies_moved;
\set VERBOSITY terse
SELECT count(*) FROM connwatch.enforce(true);
\set VERBOSITY default
DROP VIEW connwatch.policies;
ALTER TABLE connwatch.policies_moved RENAME TO policies;
SELECT count(*) AS matched FROM connwatch.enforce(true)
WHERE application_name LIKE 'regress\_cw\_hard\_%';

-- DROP EXTENSION takes the schema with it.
DROP EXTENSION pg_connwatch;
SELECT count(*) AS schemas_left FROM pg_namespace WHERE nspname = 'connwatch';

\c contrib_regression
DROP DATABASE regress_cw_hard_db;
DROP ROLE regress_cw_hard_squatter;
DELETE FROM connwatch.terminations WHERE application_name LIKE 'regress\_cw\_hard\_%';
SELECT regress_cw_settle() AS settled;
REVOKE pg_read_all_stats, pg_signal_backend FROM regress_cw_hard_signaller;
DROP OWNED BY regress_cw_hard_signaller;
DROP ROLE regress_cw_hard_signaller, regress_cw_hard_app;
