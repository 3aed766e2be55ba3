--
-- 06_xmin_horizon: every holder of the xmin horizon, oldest first.
--

-- A prepared transaction is one of the holders: without
-- max_prepared_transactions > 0, the file says so and stops
-- (expected/06_xmin_horizon_1.out).
SELECT current_setting('max_prepared_transactions')::integer = 0 AS skip_test \gset
\if :skip_test
\echo 'skipped: needs max_prepared_transactions > 0'
\quit
\endif

SELECT regress_cw_settle() AS settled;

CREATE TABLE regress_cw_t (id integer PRIMARY KEY, v integer);
INSERT INTO regress_cw_t VALUES (1, 0), (2, 0);

-- Oldest: a REPEATABLE READ snapshot, taken while nothing else runs.
SELECT dblink_connect('c_rr', regress_cw_connstr('regress_cw_snapshot'));
SELECT dblink_exec('c_rr', 'BEGIN ISOLATION LEVEL REPEATABLE READ');
SELECT * FROM dblink('c_rr', 'SELECT count(*) FROM regress_cw_t') AS t(result text);
-- Consume an xid, so that what follows is strictly younger.
SELECT txid_current() > 0 AS consumed;
-- Next: a prepared transaction that wrote (it has an xid).
BEGIN;
INSERT INTO regress_cw_t VALUES (3, 0);
PREPARE TRANSACTION 'regress_cw_gid';
-- Youngest: a writer idle in a READ COMMITTED transaction (an xid, no
-- snapshot).
SELECT dblink_connect('c_w', regress_cw_connstr('regress_cw_writer'));
SELECT dblink_exec('c_w', 'BEGIN');
SELECT dblink_exec('c_w', 'INSERT INTO regress_cw_t VALUES (4, 0)');
-- Not holders: an idle session, and a physical slot that reserves WAL but
-- has no xmin.
SELECT dblink_connect('c_idle', regress_cw_connstr('regress_cw_idle'));
SELECT 1 FROM pg_create_physical_replication_slot('regress_cw_slot', true);

-- The test's holders in the view's order (oldest first).
SELECT holder_type,
       CASE WHEN holder_type = 'backend' THEN holder = pid::text ELSE holder = 'regress_cw_gid' END AS holder_ok,
       pid IS NULL AS no_pid, datname, usename, application_name, state,
       xmin_age > 0 AS xmin_age_positive
FROM connwatch.xmin_horizon
WHERE application_name LIKE 'regress\_cw\_%' OR holder LIKE 'regress\_cw\_%';

-- Backends: xmin is the older of backend_xid and backend_xmin, since is the
-- transaction start.
SELECT h.application_name,
       h.xmin = CASE WHEN a.backend_xmin IS NULL OR age(a.backend_xid) > age(a.backend_xmin)
                     THEN a.backend_xid ELSE a.backend_xmin END AS xmin_ok,
       h.xmin_age = age(h.xmin) AS xmin_age_ok,
       h.xmin_age = greatest(age(a.backend_xid), age(a.backend_xmin)) AS older_of_xid_xmin,
       h.since = a.xact_start AS since_xact_start,
       h.state = a.state AS state_ok,
       h.pid = a.pid AS pid_ok
FROM connwatch.xmin_horizon AS h
JOIN pg_stat_activity AS a ON a.pid = h.pid
WHERE h.holder_type = 'backend' AND h.application_name LIKE 'regress\_cw\_%'
ORDER BY h.application_name COLLATE "C";
-- The prepared transaction: holder = gid, since = prepare time.
SELECT h.holder, h.datname = p.database AS datname_ok, h.usename = p.owner AS usename_ok,
       h.xmin = p.transaction AS xmin_ok, h.xmin_age = age(p.transaction) AS xmin_age_ok,
       h.since = p.prepared AS since_ok, h.application_name IS NULL AS no_app,
       h.state IS NULL AS no_state
FROM connwatch.xmin_horizon AS h
JOIN pg_prepared_xacts AS p ON p.gid = h.holder
WHERE h.holder_type = 'prepared_transaction';

-- Every backend with an xid or xmin and every prepared transaction, and
-- nothing else (polled: other backends come and go).
SELECT regress_cw_wait($$
    SELECT count(*) = 0
    FROM (SELECT holder_type, holder FROM connwatch.xmin_horizon
          WHERE holder_type IN ('backend', 'prepared_transaction')) AS h
    FULL JOIN (SELECT 'backend' AS holder_type, pid::text AS holder
               FROM pg_stat_activity
               WHERE backend_xid IS NOT NULL OR backend_xmin IS NOT NULL
               UNION ALL
               SELECT 'prepared_transaction', gid FROM pg_prepared_xacts) AS e
           ON (e.holder_type, e.holder) = (h.holder_type, h.holder)
    WHERE h.holder IS NULL OR e.holder IS NULL
    $$) AS every_holder;
SELECT count(*) AS slot_rows FROM connwatch.xmin_horizon WHERE holder = 'regress_cw_slot';
-- The whole view is ordered oldest first.
SELECT bool_and(ordered) AS view_ordered
FROM (SELECT xmin_age <= lag(xmin_age) OVER () AS ordered
      FROM connwatch.xmin_horizon) AS v
WHERE ordered IS NOT NULL;

-- The snapshot ends: the prepared transaction is now the oldest of ours.
SELECT dblink_exec('c_rr', 'COMMIT');
SELECT holder_type, application_name
FROM connwatch.xmin_horizon
WHERE application_name LIKE 'regress\_cw\_%' OR holder LIKE 'regress\_cw\_%';
COMMIT PREPARED 'regress_cw_gid';
SELECT dblink_exec('c_w', 'COMMIT');
SELECT count(*) AS left_over
FROM connwatch.xmin_horizon
WHERE application_name LIKE 'regress\_cw\_%' OR holder LIKE 'regress\_cw\_%';

-- Clean up.
SELECT pg_drop_replication_slot('regress_cw_slot');
SELECT dblink_disconnect(c) FROM unnest(dblink_get_connections()) AS c ORDER BY c;
SELECT regress_cw_settle() AS settled;
DROP TABLE regress_cw_t;
