--
-- 03_long_transactions: transactions older than a threshold, as a function
-- of an interval and as a view following connwatch.long_transaction_threshold.
--
SELECT regress_cw_settle() AS settled;

CREATE TABLE regress_cw_t (id integer PRIMARY KEY, v integer);
INSERT INTO regress_cw_t VALUES (1, 0), (2, 0);

-- The old transaction writes, then keeps its transaction open 0.5 s before
-- any other test transaction starts: thresholds between the two ages are
-- then easy to pick.
SELECT dblink_connect('c_old', regress_cw_connstr('regress_cw_old'));
SELECT dblink_exec('c_old', 'BEGIN');
SELECT dblink_exec('c_old', 'UPDATE regress_cw_t SET v = v + 1 WHERE id = 1');
SELECT * FROM dblink('c_old', 'SELECT pg_sleep(0.5)') AS t(result text);
-- Newer ones: a snapshot, an aborted one, an active lock waiter.
SELECT dblink_connect('c_new', regress_cw_connstr('regress_cw_new'));
SELECT dblink_exec('c_new', 'BEGIN ISOLATION LEVEL REPEATABLE READ');
SELECT * FROM dblink('c_new', 'SELECT count(*) FROM regress_cw_t') AS t(result text);
SELECT dblink_connect('c_abort', regress_cw_connstr('regress_cw_aborted'));
SELECT dblink_exec('c_abort', 'BEGIN');
SELECT dblink_exec('c_abort', 'SELECT 1/0', false);
SELECT dblink_connect('c_wait', regress_cw_connstr('regress_cw_waiter'));
SELECT dblink_send_query('c_wait', 'UPDATE regress_cw_t SET v = v + 10 WHERE id = 1');
SELECT regress_cw_wait($$
    SELECT wait_event_type = 'Lock' FROM pg_stat_activity
    WHERE application_name = 'regress_cw_waiter'$$) AS waiting;
-- No transaction at all: never listed.
SELECT dblink_connect('c_idle', regress_cw_connstr('regress_cw_idle'));
SELECT * FROM dblink('c_idle', 'SELECT 1') AS t(result text);

SELECT xact_start AS old_xact_start FROM pg_stat_activity
WHERE application_name = 'regress_cw_old' \gset

-- older_than 0: every test transaction, in any state; not the aborted
-- one, whose transaction start core clears at the abort (pg_stat_activity
-- shows xact_start NULL), so it has no age.
SELECT application_name, state,
       xact_age > '0' AS xact_age_positive,
       state_age > '0' AS state_age_positive,
       backend_xid IS NOT NULL AS has_xid,
       backend_xmin IS NOT NULL AS has_xmin,
       regress_cw_apps(blocking) AS blocking,
       query
FROM connwatch.long_transactions('0')
WHERE application_name LIKE 'regress\_cw\_%'
ORDER BY application_name COLLATE "C";

-- Every column against pg_stat_activity; ages against one clock reading.
SELECT t.application_name,
       ARRAY(SELECT v.col
             FROM (VALUES
                ('pid', t.pid IS NOT DISTINCT FROM a.pid),
                ('backend_start', t.backend_start IS NOT DISTINCT FROM a.backend_start),
                ('datname', t.datname IS NOT DISTINCT FROM a.datname),
                ('usename', t.usename IS NOT DISTINCT FROM a.usename),
                ('client_addr', t.client_addr IS NOT DISTINCT FROM a.client_addr),
                ('state', t.state IS NOT DISTINCT FROM a.state),
                ('xact_start', t.xact_start IS NOT DISTINCT FROM a.xact_start),
                ('ages', t.xact_age - t.state_age = a.state_change - a.xact_start),
                ('backend_xid', t.backend_xid IS NOT DISTINCT FROM a.backend_xid),
                ('backend_xmin', t.backend_xmin IS NOT DISTINCT FROM a.backend_xmin),
                ('xmin_age', t.xmin_age IS NOT DISTINCT FROM greatest(age(a.backend_xid), age(a.backend_xmin))),
                ('blocking', t.blocking IS NOT DISTINCT FROM
                    ARRAY(SELECT w.pid FROM pg_stat_activity AS w
                          WHERE a.pid = ANY (pg_blocking_pids(w.pid)) ORDER BY w.pid)),
                ('query', t.query IS NOT DISTINCT FROM connwatch.printable(a.query))
             ) AS v(col, same)
             WHERE NOT v.same) AS differing
FROM connwatch.long_transactions('0') AS t
LEFT JOIN pg_stat_activity AS a ON a.pid = t.pid
WHERE t.application_name LIKE 'regress\_cw\_%'
ORDER BY t.application_name COLLATE "C";
SELECT count(DISTINCT i.instant) AS instants,
       bool_and(i.instant BETWEEN statement_timestamp() AND clock_timestamp()) AS during_call
FROM connwatch.long_transactions('0') AS t
LEFT JOIN pg_stat_activity AS a ON a.pid = t.pid,
     LATERAL (VALUES (t.xact_start + t.xact_age),
                     (a.state_change + t.state_age)) AS i(instant)
WHERE t.application_name LIKE 'regress\_cw\_%';

-- Only client backends, and exactly those pg_stat_activity shows in a
-- transaction (the caller's own statement aside: its age may round to 0).
SELECT regress_cw_wait($$
    SELECT count(*) = 0
    FROM (SELECT * FROM connwatch.long_transactions('0')
          WHERE pid <> pg_backend_pid()) AS t
    FULL JOIN (SELECT * FROM pg_stat_activity
               WHERE backend_type = 'client backend'
                 AND xact_start IS NOT NULL
                 AND pid <> pg_backend_pid()) AS a
           ON a.pid = t.pid
    WHERE t.pid IS NULL OR a.pid IS NULL
    $$) AS same_sessions;

-- A threshold between the old transaction's age and the others': only the
-- old one.  (The others started at least 0.5 s later; the margin is 0.25 s.)
SELECT application_name
FROM connwatch.long_transactions(clock_timestamp() - :'old_xact_start'::timestamptz - interval '0.25 s')
WHERE application_name LIKE 'regress\_cw\_%'
ORDER BY application_name COLLATE "C";
-- Older than an hour: none of them.
SELECT count(*) AS hour_old
FROM connwatch.long_transactions('1 hour')
WHERE application_name LIKE 'regress\_cw\_%';
SELECT count(*) AS day_old
FROM connwatch.long_transactions('1 day')
WHERE application_name LIKE 'regress\_cw\_%';

-- The view follows connwatch.long_transaction_threshold, oldest first.
SHOW connwatch.long_transaction_threshold;
SELECT count(*) AS default_threshold
FROM connwatch.long_transactions
WHERE application_name LIKE 'regress\_cw\_%';
SET connwatch.long_transaction_threshold = 0;
SELECT application_name, state
FROM connwatch.long_transactions
WHERE application_name LIKE 'regress\_cw\_%';
SELECT (extract(epoch FROM clock_timestamp() - :'old_xact_start'::timestamptz) * 1000)::integer - 250
       AS threshold_ms \gset
SET connwatch.long_transaction_threshold = :threshold_ms;
SELECT application_name, state
FROM connwatch.long_transactions
WHERE application_name LIKE 'regress\_cw\_%';
SET connwatch.long_transaction_threshold = '1h';
SHOW connwatch.long_transaction_threshold;
SELECT count(*) AS hour_old
FROM connwatch.long_transactions
WHERE application_name LIKE 'regress\_cw\_%';
-- Per session: another session keeps the default.
SELECT * FROM dblink('c_idle', 'SELECT count(*) > 0 FROM connwatch.sessions') AS t(loaded boolean);
SELECT * FROM dblink('c_idle', 'SHOW connwatch.long_transaction_threshold') AS t(setting text);
RESET connwatch.long_transaction_threshold;
SHOW connwatch.long_transaction_threshold;

-- Bad input: clear errors with their SQLSTATE.
\set VERBOSITY sqlstate
SELECT * FROM connwatch.long_transactions(NULL);
SELECT * FROM connwatch.long_transactions('-1 second');
SELECT * FROM connwatch.long_transactions('1 day -25 hours');
SELECT * FROM connwatch.long_transactions('-1 mon');
SET connwatch.long_transaction_threshold = -1;
SET connwatch.long_transaction_threshold = 'soon';
\set VERBOSITY default
SHOW connwatch.long_transaction_threshold;

-- Clean up.
SELECT dblink_exec('c_old', 'COMMIT');
SELECT * FROM dblink_get_result('c_wait') AS t(status text);
SELECT dblink_exec('c_new', 'COMMIT');
SELECT dblink_exec('c_abort', 'ROLLBACK');
SELECT count(*) AS left_over
FROM connwatch.long_transactions('0')
WHERE application_name LIKE 'regress\_cw\_%';
SELECT dblink_disconnect(c) FROM unnest(dblink_get_connections()) AS c ORDER BY c;
SELECT regress_cw_settle() AS settled;
DROP TABLE regress_cw_t;
