--
-- 20_act_primitive: connwatch.terminate_backend() and connwatch.cancel_backend()
--
-- The one primitive: a session is (pid, backend_start); anything else is
-- refused with a WARNING and false.  Victims are dblink sessions tagged
-- with application_name regress_act_prim_*.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS dblink;
CREATE EXTENSION IF NOT EXISTS pg_connwatch;
RESET client_min_messages;

SELECT format('dbname=%s port=%s host=%s user=%s', current_database(),
              current_setting('port'),
              split_part(current_setting('unix_socket_directories'), ',', 1),
              current_user) AS connstr \gset
SELECT now() AS t0 \gset

--
-- terminate_backend on a session idle in transaction
--
SELECT dblink_connect('v1', :'connstr' || ' application_name=regress_act_prim_v1');
SELECT dblink_exec('v1', 'BEGIN');
SELECT * FROM dblink('v1', 'SELECT 1') AS t(one int);
SELECT pid AS v1_pid, backend_start AS v1_start FROM pg_stat_activity
WHERE application_name = 'regress_act_prim_v1' \gset

-- The right pid with a backend_start one microsecond off: refused, the
-- session lives on.  (Terse: the WARNING's reason, not the DETAIL that
-- names the pid.)
\set VERBOSITY terse
SELECT connwatch.terminate_backend(:v1_pid,
    :'v1_start'::timestamptz - interval '1 microsecond', 'regress: wrong start');
SELECT connwatch.terminate_backend(:v1_pid,
    :'v1_start'::timestamptz + interval '1 microsecond', 'regress: wrong start');
\set VERBOSITY default
-- A cancel does nothing to a session idle in transaction: refused, and
-- nothing is audited.
\set VERBOSITY terse
SELECT connwatch.cancel_backend(:v1_pid, :'v1_start', 'regress: pointless cancel');
\set VERBOSITY default
SELECT * FROM dblink('v1', 'SELECT 2') AS t(two int);
SELECT count(*) AS v1_sessions FROM pg_stat_activity WHERE pid = :v1_pid;
SELECT count(*) AS audit_rows FROM connwatch.terminations
WHERE pid = :v1_pid AND backend_start = :'v1_start';

-- The right pair: signalled, the session goes away.
SELECT connwatch.terminate_backend(:v1_pid, :'v1_start', 'regress: primitive test');
SELECT regress_cw_wait_pid_gone(:v1_pid) AS v1_gone;
-- (dblink_disconnect on a terminated connection may fail: ignore it)
SELECT regress_cw_sqlstate_of($$SELECT dblink_disconnect('v1')$$) IS NOT NULL AS disconnected;

-- One audit row with the facts of the session and of the caller.
SELECT policy, datname = current_database() AS this_db,
       usename = current_user AS this_user, application_name,
       client_addr, state, state_age >= '0' AS has_state_age,
       xact_age >= '0' AS has_xact_age, query, action, reason,
       invoked_by = current_user AS invoked_by_me,
       logged_at BETWEEN :'t0' AND clock_timestamp() AS logged_now
FROM connwatch.terminations
WHERE pid = :v1_pid AND backend_start = :'v1_start';

-- Once gone, the same pair is refused: the backend is gone.
\set VERBOSITY terse
SELECT connwatch.terminate_backend(:v1_pid, :'v1_start');
\set VERBOSITY default
SELECT count(*) AS audit_rows FROM connwatch.terminations
WHERE pid = :v1_pid AND backend_start = :'v1_start';

--
-- cancel_backend on a session running a statement
--
SELECT dblink_connect('v2', :'connstr' || ' application_name=regress_act_prim_v2');
SELECT pid AS v2_pid, backend_start AS v2_start FROM pg_stat_activity
WHERE application_name = 'regress_act_prim_v2' \gset
SELECT dblink_send_query('v2', 'SELECT pg_sleep(300)');
SELECT regress_cw_wait_state('regress_act_prim_v2', 'active') AS v2_active;

-- wrong backend_start: nothing happens, the statement keeps running
\set VERBOSITY terse
SELECT connwatch.cancel_backend(:v2_pid,
    :'v2_start'::timestamptz - interval '1 microsecond');
\set VERBOSITY default
SELECT pg_stat_clear_snapshot();
SELECT state, query FROM pg_stat_activity WHERE pid = :v2_pid;
SELECT dblink_is_busy('v2') AS v2_busy;

-- the right pair: the statement is cancelled, the session stays
SELECT connwatch.cancel_backend(:v2_pid, :'v2_start');
SELECT regress_cw_wait_state('regress_act_prim_v2', 'idle') AS v2_idle;
SELECT * FROM dblink_get_result('v2') AS t(r text);
SELECT * FROM dblink_get_result('v2') AS t(r text);
SELECT * FROM dblink('v2', 'SELECT 3') AS t(three int);
SELECT count(*) AS v2_sessions FROM pg_stat_activity WHERE pid = :v2_pid;

-- audited as a cancel; a NULL reason is recorded as "requested"
SELECT policy, application_name, state, query, action, reason,
       invoked_by = current_user AS invoked_by_me
FROM connwatch.terminations
WHERE pid = :v2_pid AND backend_start = :'v2_start';

--
-- Not sessions: pids that are no backend, non-client backends, our own
--
SELECT connwatch.terminate_backend(1, '2000-01-01 00:00:00+00');
SELECT connwatch.cancel_backend(1, '2000-01-01 00:00:00+00');
SELECT connwatch.terminate_backend(0, '2000-01-01 00:00:00+00');
SELECT connwatch.terminate_backend(-1, '2000-01-01 00:00:00+00');
SELECT 'still here' AS alive;

-- The checkpointer and walwriter are backends, not client backends.
SELECT pid AS ckpt_pid, backend_start AS ckpt_start FROM pg_stat_activity
WHERE backend_type = 'checkpointer' \gset
SELECT pid AS walw_pid, backend_start AS walw_start FROM pg_stat_activity
WHERE backend_type = 'walwriter' \gset
\set VERBOSITY terse
SELECT connwatch.terminate_backend(:ckpt_pid, :'ckpt_start');
SELECT connwatch.cancel_backend(:walw_pid, :'walw_start');
-- our own session
SELECT connwatch.terminate_backend(pg_backend_pid(),
    (SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()));
SELECT connwatch.cancel_backend(pg_backend_pid(),
    (SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()));
\set VERBOSITY default
SELECT pg_stat_clear_snapshot();
SELECT backend_type, backend_start = :'ckpt_start' AS same_checkpointer
FROM pg_stat_activity WHERE pid = :ckpt_pid;
SELECT 'still here' AS alive;
SELECT count(*) AS audit_rows FROM connwatch.terminations
WHERE pid IN (1, 0, -1) AND backend_start = '2000-01-01 00:00:00+00'
   OR pid = :ckpt_pid AND backend_start = :'ckpt_start'
   OR pid = :walw_pid AND backend_start = :'walw_start'
   OR (pid, backend_start) IN (SELECT pid, backend_start FROM pg_stat_activity
                               WHERE pid = pg_backend_pid());

--
-- The permission check is pg_signal_backend's: a role with EXECUTE and
-- pg_signal_backend may terminate another role's session, not a
-- superuser's.  (It needs pg_read_all_stats as well to see them: a session
-- the caller may not see is "not permitted", see 30_hardening.)
--
CREATE ROLE regress_act_prim_cleaner;
CREATE ROLE regress_act_prim_app LOGIN;
GRANT pg_signal_backend, pg_read_all_stats TO regress_act_prim_cleaner;
GRANT USAGE ON SCHEMA connwatch TO regress_act_prim_cleaner;
GRANT EXECUTE ON FUNCTION connwatch.terminate_backend(integer, timestamptz, text)
    TO regress_act_prim_cleaner;

SELECT dblink_connect('v3', :'connstr' || ' application_name=regress_act_prim_v3');
SELECT dblink_connect('v4', replace(:'connstr', 'user=' || current_user,
    'user=regress_act_prim_app') || ' application_name=regress_act_prim_v4');
SELECT pid AS v3_pid, backend_start AS v3_start FROM pg_stat_activity
WHERE application_name = 'regress_act_prim_v3' \gset
SELECT pid AS v4_pid, backend_start AS v4_start FROM pg_stat_activity
WHERE application_name = 'regress_act_prim_v4' \gset

SET ROLE regress_act_prim_cleaner;
\set VERBOSITY terse
SELECT connwatch.terminate_backend(:v3_pid, :'v3_start');   -- a superuser's
\set VERBOSITY default
SELECT connwatch.terminate_backend(:v4_pid, :'v4_start', 'regress: cleanup');
RESET ROLE;
SELECT regress_cw_wait_pid_gone(:v4_pid) AS v4_gone;
SELECT * FROM dblink('v3', 'SELECT 4') AS t(four int);
SELECT usename, application_name, action, reason, invoked_by
FROM connwatch.terminations
WHERE pid IN (:v3_pid, :v4_pid) AND backend_start IN (:'v3_start', :'v4_start');

--
-- Bad input
--
SELECT regress_cw_sqlstate_of('SELECT connwatch.terminate_backend(NULL, now())');
SELECT regress_cw_sqlstate_of('SELECT connwatch.terminate_backend(1, NULL)');
SELECT regress_cw_sqlstate_of('SELECT connwatch.cancel_backend(NULL, now())');
SELECT regress_cw_sqlstate_of('SELECT connwatch.cancel_backend(1, NULL)');
\set VERBOSITY terse
SELECT connwatch.terminate_backend(NULL, NULL);
\set VERBOSITY default

-- clean up
SELECT dblink_disconnect('v2');
SELECT dblink_disconnect('v3');
SELECT regress_cw_sqlstate_of($$SELECT dblink_disconnect('v4')$$) IS NOT NULL AS disconnected;
DROP OWNED BY regress_act_prim_cleaner;
DROP ROLE regress_act_prim_cleaner;
DROP ROLE regress_act_prim_app;
