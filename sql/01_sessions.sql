--
-- 01_sessions: connwatch.sessions against pg_stat_activity, column by
-- column, for sessions this test creates in every interesting state.
-- (A prepared transaction among them: 01_sessions_prepared.)
--

-- One of them connects over TCP to 127.0.0.1: where the server takes no
-- such connection, the file says so and stops (expected/01_sessions_1.out).
SELECT NOT regress_cw_have_tcp() AS skip_test \gset
\if :skip_test
\echo 'skipped: needs TCP connections to 127.0.0.1 (listen_addresses, pg_hba.conf)'
\quit
\endif

SELECT regress_cw_settle() AS settled;

CREATE TABLE regress_cw_t (id integer PRIMARY KEY, v integer);
INSERT INTO regress_cw_t VALUES (1, 0), (2, 0);

-- idle, over the Unix socket
SELECT dblink_connect('c_idle', regress_cw_connstr('regress_cw_idle'));
SELECT * FROM dblink('c_idle', 'SELECT 1') AS t(result text);
-- idle, over TCP
SELECT dblink_connect('c_tcp', regress_cw_connstr('regress_cw_tcp', host => '127.0.0.1'));
SELECT * FROM dblink('c_tcp', 'SELECT 2') AS t(result text);
-- idle in transaction, holding a row lock and an xid
SELECT dblink_connect('c_holder', regress_cw_connstr('regress_cw_holder'));
SELECT dblink_exec('c_holder', 'BEGIN');
SELECT dblink_exec('c_holder', 'UPDATE regress_cw_t SET v = v + 1 WHERE id = 1');
-- idle in transaction with a REPEATABLE READ snapshot (an xmin, no xid)
SELECT dblink_connect('c_snap', regress_cw_connstr('regress_cw_snapshot'));
SELECT dblink_exec('c_snap', 'BEGIN ISOLATION LEVEL REPEATABLE READ');
SELECT * FROM dblink('c_snap', 'SELECT count(*) FROM regress_cw_t') AS t(result text);
-- idle in transaction (aborted)
SELECT dblink_connect('c_abort', regress_cw_connstr('regress_cw_aborted'));
SELECT dblink_exec('c_abort', 'BEGIN');
SELECT dblink_exec('c_abort', 'SELECT 1/0', false);
-- active, waiting for the holder's row lock
SELECT dblink_connect('c_wait', regress_cw_connstr('regress_cw_waiter'));
SELECT dblink_send_query('c_wait', 'UPDATE regress_cw_t SET v = v + 10 WHERE id = 1');
SELECT regress_cw_wait($$
    SELECT wait_event_type = 'Lock' FROM pg_stat_activity
    WHERE application_name = 'regress_cw_waiter'$$) AS waiting;

-- Every column of every test session equals pg_stat_activity's (one
-- statement, so one statistics snapshot); differing lists the columns that
-- do not match.
SELECT a.application_name,
       ARRAY(SELECT v.col
             FROM (VALUES
                ('pid', s.pid IS NOT DISTINCT FROM a.pid),
                ('backend_type', s.backend_type IS NOT DISTINCT FROM a.backend_type),
                ('datid', s.datid IS NOT DISTINCT FROM a.datid),
                ('datname', s.datname IS NOT DISTINCT FROM a.datname),
                ('usesysid', s.usesysid IS NOT DISTINCT FROM a.usesysid),
                ('usename', s.usename IS NOT DISTINCT FROM a.usename),
                ('application_name', s.application_name IS NOT DISTINCT FROM a.application_name),
                ('client_addr', s.client_addr IS NOT DISTINCT FROM a.client_addr),
                ('client_port', s.client_port IS NOT DISTINCT FROM a.client_port),
                ('backend_start', s.backend_start IS NOT DISTINCT FROM a.backend_start),
                ('xact_start', s.xact_start IS NOT DISTINCT FROM a.xact_start),
                ('query_start', s.query_start IS NOT DISTINCT FROM a.query_start),
                ('state_change', s.state_change IS NOT DISTINCT FROM a.state_change),
                ('state', s.state IS NOT DISTINCT FROM a.state),
                ('wait_event_type', s.wait_event_type IS NOT DISTINCT FROM a.wait_event_type),
                ('wait_event', s.wait_event IS NOT DISTINCT FROM a.wait_event),
                ('backend_xid', s.backend_xid IS NOT DISTINCT FROM a.backend_xid),
                ('backend_xmin', s.backend_xmin IS NOT DISTINCT FROM a.backend_xmin),
                ('xmin_age', s.xmin_age IS NOT DISTINCT FROM age(a.backend_xmin)),
                ('session_age', s.session_age IS NOT NULL AND s.session_age > '0'),
                ('xact_age', (s.xact_age IS NULL) = (a.xact_start IS NULL) AND (s.xact_age IS NULL OR s.xact_age > '0')),
                ('state_age', (s.state_age IS NULL) = (a.state_change IS NULL) AND (s.state_age IS NULL OR s.state_age > '0')),
                ('blocked_by', s.blocked_by IS NOT DISTINCT FROM pg_blocking_pids(a.pid)),
                ('query', s.query IS NOT DISTINCT FROM connwatch.printable(a.query))
             ) AS v(col, same)
             WHERE NOT v.same) AS differing
FROM pg_stat_activity AS a
LEFT JOIN connwatch.sessions AS s ON s.pid = a.pid
WHERE a.application_name LIKE 'regress\_cw\_%'
ORDER BY a.application_name COLLATE "C";

-- The values themselves, normalised.
SELECT application_name, backend_type, datname, usename,
       client_addr, client_port > 0 AS tcp_port, client_port = -1 AS unix_port,
       state, wait_event_type, wait_event,
       backend_xid IS NOT NULL AS has_xid,
       backend_xmin IS NOT NULL AS has_xmin,
       xmin_age > 0 AS xmin_age_positive,
       xact_start IS NOT NULL AS in_xact,
       regress_cw_apps(blocked_by) AS blocked_by,
       query
FROM connwatch.sessions
WHERE application_name LIKE 'regress\_cw\_%'
ORDER BY application_name COLLATE "C";

-- The waiter's blocker is exactly the holder.
SELECT w.blocked_by = ARRAY[h.pid] AS waiter_blocked_by_holder,
       w.wait_event = 'transactionid' AS waits_for_xid
FROM connwatch.sessions AS w, connwatch.sessions AS h
WHERE w.application_name = 'regress_cw_waiter'
  AND h.application_name = 'regress_cw_holder';

-- All ages are measured against one clock reading, taken during the call:
-- start + age is the same instant for every row and every age column.
SELECT count(DISTINCT i.instant) AS instants,
       bool_and(i.instant BETWEEN statement_timestamp() AND clock_timestamp()) AS during_call,
       count(*) > 0 AS some_ages
FROM connwatch.sessions AS s,
     LATERAL (VALUES (s.backend_start + s.session_age),
                     (s.xact_start + s.xact_age),
                     (s.state_change + s.state_age)) AS i(instant)
WHERE i.instant IS NOT NULL;

-- The view covers exactly pg_stat_activity's backends, background
-- processes included, and nothing else (no auxiliary process
-- pg_stat_activity does not show); the static columns agree for all of
-- them.  Polled: autovacuum workers come and go.
SELECT regress_cw_wait($$
    SELECT count(*) = 0
    FROM connwatch.sessions AS s
    FULL JOIN pg_stat_activity AS a ON a.pid = s.pid
    WHERE s.pid IS NULL OR a.pid IS NULL
       OR (s.backend_type, s.datid, s.datname, s.usesysid, s.usename,
           s.application_name, s.client_addr, s.client_port, s.backend_start)
          IS DISTINCT FROM
          (a.backend_type, a.datid, a.datname, a.usesysid, a.usename,
           a.application_name, a.client_addr, a.client_port, a.backend_start)
    $$) AS same_backends;
SELECT count(*) FILTER (WHERE backend_type = 'checkpointer') AS checkpointer,
       count(*) FILTER (WHERE backend_type = 'background writer') AS bgwriter,
       count(*) FILTER (WHERE backend_type = 'walwriter') AS walwriter,
       count(*) FILTER (WHERE pid = pg_backend_pid()) AS me,
       count(*) FILTER (WHERE pid = 0 OR pid IS NULL) AS no_pid
FROM connwatch.sessions;

-- The caller's own row: active, running this very statement.
SELECT state, query = connwatch.printable(current_query()) AS own_query, backend_xid IS NULL AS no_xid,
       wait_event IS NULL AS not_waiting, blocked_by
FROM connwatch.sessions
WHERE pid = pg_backend_pid();

-- The function and the view return the same rows.
SELECT (SELECT count(*) FROM connwatch.sessions() WHERE application_name LIKE 'regress\_cw\_%') AS function_rows,
       (SELECT count(*) FROM connwatch.sessions WHERE application_name LIKE 'regress\_cw\_%') AS view_rows;

-- Release: the waiter gets the row once the holder commits.
SELECT dblink_exec('c_holder', 'COMMIT');
SELECT * FROM dblink_get_result('c_wait') AS t(status text);
SELECT dblink_exec('c_snap', 'COMMIT');
SELECT dblink_exec('c_abort', 'ROLLBACK');
SELECT application_name, state, xact_start IS NULL AS no_xact,
       backend_xid IS NULL AS no_xid, blocked_by
FROM connwatch.sessions
WHERE application_name LIKE 'regress\_cw\_%'
ORDER BY application_name COLLATE "C";

SELECT dblink_disconnect(c) FROM unnest(dblink_get_connections()) AS c ORDER BY c;
SELECT regress_cw_settle() AS settled;
SELECT count(*) AS left_over FROM connwatch.sessions
WHERE application_name LIKE 'regress\_cw\_%';
DROP TABLE regress_cw_t;
