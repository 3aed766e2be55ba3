--
-- 02_idle_in_transaction: who sits idle inside a transaction, since when,
-- holding what.
--
SELECT regress_cw_settle() AS settled;

CREATE TABLE regress_cw_t (id integer PRIMARY KEY, v integer);
INSERT INTO regress_cw_t VALUES (1, 0), (2, 0);

-- The holder writes first (so its xid is the oldest), then spends 0.1 s
-- inside its transaction before going idle: idle_for (from state_change)
-- must then be at least 0.1 s shorter than xact_age (from xact_start).
SELECT dblink_connect('c_holder', regress_cw_connstr('regress_cw_holder'));
SELECT dblink_exec('c_holder', 'BEGIN');
SELECT dblink_exec('c_holder', 'UPDATE regress_cw_t SET v = v + 1 WHERE id = 1');
SELECT * FROM dblink('c_holder', 'SELECT pg_sleep(0.1)') AS t(result text);
-- A REPEATABLE READ writer: its snapshot's xmin is the holder's xid (the
-- holder is running), its own xid is younger; the older of the two counts,
-- so it ties with the holder for the horizon.
SELECT dblink_connect('c_rr', regress_cw_connstr('regress_cw_rr_writer'));
SELECT dblink_exec('c_rr', 'BEGIN ISOLATION LEVEL REPEATABLE READ');
SELECT dblink_exec('c_rr', 'INSERT INTO regress_cw_t VALUES (20, 0)');
-- A newer writer: a younger xid, and in READ COMMITTED no snapshot left
-- once its statement is done.
SELECT dblink_connect('c_newer', regress_cw_connstr('regress_cw_newer'));
SELECT dblink_exec('c_newer', 'BEGIN');
SELECT dblink_exec('c_newer', 'INSERT INTO regress_cw_t VALUES (10, 0)');
-- Aborted.
SELECT dblink_connect('c_abort', regress_cw_connstr('regress_cw_aborted'));
SELECT dblink_exec('c_abort', 'BEGIN');
SELECT dblink_exec('c_abort', 'SELECT 1/0', false);
-- Idle outside a transaction: never listed.
SELECT dblink_connect('c_idle', regress_cw_connstr('regress_cw_idle'));
SELECT * FROM dblink('c_idle', 'SELECT 1') AS t(result text);
-- Active, waiting on the holder: not idle, never listed.
SELECT dblink_connect('c_wait', regress_cw_connstr('regress_cw_waiter'));
SELECT dblink_send_query('c_wait', 'UPDATE regress_cw_t SET v = v + 10 WHERE id = 1');
SELECT regress_cw_wait($$
    SELECT wait_event_type = 'Lock' FROM pg_stat_activity
    WHERE application_name = 'regress_cw_waiter'$$) AS waiting;

-- Exactly the four idle transactions, longest idle first (the view's own
-- order), with what they hold.
SELECT application_name, state,
       idle_for > '0' AS idle,
       xact_age >= idle_for AS xact_older,
       backend_xid IS NOT NULL AS has_xid,
       backend_xmin IS NOT NULL AS has_xmin,
       holds_xmin, locks_held,
       regress_cw_apps(blocking) AS blocking,
       query
FROM connwatch.idle_in_transaction
WHERE application_name LIKE 'regress\_cw\_%';

-- idle_for is measured from state_change, xact_age from xact_start, both
-- against one clock reading: their difference is exactly the time between
-- the two, and for the holder at least its 0.1 s sleep.
SELECT application_name,
       xact_age - idle_for = state_change - xact_start AS exact
FROM connwatch.idle_in_transaction
WHERE application_name LIKE 'regress\_cw\_%'
ORDER BY application_name COLLATE "C";
SELECT xact_age - idle_for >= interval '0.1 s' AS slept_inside,
       idle_for < xact_age AS idle_shorter
FROM connwatch.idle_in_transaction
WHERE application_name = 'regress_cw_holder';
SELECT count(DISTINCT i.instant) AS instants,
       bool_and(i.instant BETWEEN statement_timestamp() AND clock_timestamp()) AS during_call
FROM connwatch.idle_in_transaction AS t,
     LATERAL (VALUES (t.state_change + t.idle_for),
                     (t.xact_start + t.xact_age)) AS i(instant);

-- Every column against pg_stat_activity, pg_locks and pg_blocking_pids.
SELECT t.application_name,
       ARRAY(SELECT v.col
             FROM (VALUES
                ('pid', t.pid IS NOT DISTINCT FROM a.pid),
                ('backend_start', t.backend_start IS NOT DISTINCT FROM a.backend_start),
                ('datname', t.datname IS NOT DISTINCT FROM a.datname),
                ('usename', t.usename IS NOT DISTINCT FROM a.usename),
                ('client_addr', t.client_addr IS NOT DISTINCT FROM a.client_addr),
                ('state', t.state IS NOT DISTINCT FROM a.state),
                ('state_change', t.state_change IS NOT DISTINCT FROM a.state_change),
                ('xact_start', t.xact_start IS NOT DISTINCT FROM a.xact_start),
                ('backend_xid', t.backend_xid IS NOT DISTINCT FROM a.backend_xid),
                ('backend_xmin', t.backend_xmin IS NOT DISTINCT FROM a.backend_xmin),
                ('xmin_age', t.xmin_age IS NOT DISTINCT FROM greatest(age(a.backend_xid), age(a.backend_xmin))),
                ('locks_held', t.locks_held IS NOT DISTINCT FROM
                    (SELECT count(*)::integer FROM pg_locks AS l
                     WHERE l.pid = a.pid AND l.granted AND l.mode <> 'SIReadLock')),
                ('blocking', t.blocking IS NOT DISTINCT FROM
                    ARRAY(SELECT w.pid FROM pg_stat_activity AS w
                          WHERE a.pid = ANY (pg_blocking_pids(w.pid)) ORDER BY w.pid)),
                ('query', t.query IS NOT DISTINCT FROM connwatch.printable(a.query))
             ) AS v(col, same)
             WHERE NOT v.same) AS differing
FROM connwatch.idle_in_transaction AS t
LEFT JOIN pg_stat_activity AS a ON a.pid = t.pid
WHERE t.application_name LIKE 'regress\_cw\_%'
ORDER BY t.application_name COLLATE "C";

-- holds_xmin: the holder's xid is the oldest thing in the whole cluster
-- that holds the horizon back (checked independently here), the REPEATABLE
-- READ writer's xmin ties with it, the newer writer's xid does not.
SELECT t.application_name, t.holds_xmin,
       t.xmin_age = (SELECT max(greatest(age(a.backend_xid), age(a.backend_xmin)))
                     FROM pg_stat_activity AS a) AS oldest_in_pg_stat_activity,
       t.backend_xmin = h.backend_xid AS xmin_is_holders_xid,
       age(t.backend_xid) < t.xmin_age AS own_xid_younger
FROM connwatch.idle_in_transaction AS t,
     connwatch.idle_in_transaction AS h
WHERE t.application_name IN ('regress_cw_holder', 'regress_cw_rr_writer', 'regress_cw_newer')
  AND h.application_name = 'regress_cw_holder'
ORDER BY t.application_name COLLATE "C";

-- The view lists exactly the client backends pg_stat_activity shows idle in
-- a transaction (polled: other sessions may come and go).
SELECT regress_cw_wait($$
    SELECT count(*) = 0
    FROM connwatch.idle_in_transaction AS t
    FULL JOIN (SELECT * FROM pg_stat_activity
               WHERE backend_type = 'client backend'
                 AND state IN ('idle in transaction',
                               'idle in transaction (aborted)')) AS a
           ON a.pid = t.pid
    WHERE t.pid IS NULL OR a.pid IS NULL
    $$) AS same_sessions;

-- The function and the view agree; the view is ordered by idle_for.
SELECT (SELECT array_agg(application_name ORDER BY application_name COLLATE "C")
        FROM connwatch.idle_in_transaction() WHERE application_name LIKE 'regress\_cw\_%') AS function_rows;
SELECT bool_and(ordered) AS view_ordered_by_idle_for
FROM (SELECT idle_for <= lag(idle_for) OVER () AS ordered
      FROM connwatch.idle_in_transaction) AS v
WHERE ordered IS NOT NULL;

-- Once the holder commits it disappears, the waiter gets its row, and the
-- REPEATABLE READ writer (its snapshot's xmin) is now the only holder of
-- the horizon among them.
SELECT dblink_exec('c_holder', 'COMMIT');
SELECT * FROM dblink_get_result('c_wait') AS t(status text);
SELECT application_name, state, holds_xmin, regress_cw_apps(blocking) AS blocking
FROM connwatch.idle_in_transaction
WHERE application_name LIKE 'regress\_cw\_%'
ORDER BY application_name COLLATE "C";

SELECT dblink_exec('c_newer', 'ROLLBACK');
SELECT dblink_exec('c_rr', 'ROLLBACK');
SELECT dblink_exec('c_abort', 'ROLLBACK');
SELECT count(*) AS left_over FROM connwatch.idle_in_transaction
WHERE application_name LIKE 'regress\_cw\_%';

SELECT dblink_disconnect(c) FROM unnest(dblink_get_connections()) AS c ORDER BY c;
SELECT regress_cw_settle() AS settled;
DROP TABLE regress_cw_t;
