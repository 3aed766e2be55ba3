--
-- 05_connection_summary: client backends grouped by database, role,
-- application and client address, counted per state.
--

-- One application connects over TCP to 127.0.0.1: where the server takes
-- no such connection, the file says so and stops
-- (expected/05_connection_summary_1.out).
SELECT NOT regress_cw_have_tcp() AS skip_test \gset
\if :skip_test
\echo 'skipped: needs TCP connections to 127.0.0.1 (listen_addresses, pg_hba.conf)'
\quit
\endif

SELECT regress_cw_settle() AS settled;

-- Leftovers of an interrupted earlier run, if any.
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_cw_sum_user;
RESET client_min_messages;

CREATE ROLE regress_cw_sum_user LOGIN;
CREATE TABLE regress_cw_t (id integer PRIMARY KEY, v integer);
INSERT INTO regress_cw_t VALUES (1, 0), (2, 0);

-- app_a over the Unix socket: one idle, one idle in transaction holding a
-- row lock, one aborted.
SELECT dblink_connect('a1', regress_cw_connstr('regress_cw_app_a'));
SELECT * FROM dblink('a1', 'SELECT 1') AS t(result text);
SELECT dblink_connect('a2', regress_cw_connstr('regress_cw_app_a'));
SELECT dblink_exec('a2', 'BEGIN');
SELECT dblink_exec('a2', 'UPDATE regress_cw_t SET v = v + 1 WHERE id = 1');
SELECT dblink_connect('a3', regress_cw_connstr('regress_cw_app_a'));
SELECT dblink_exec('a3', 'BEGIN');
SELECT dblink_exec('a3', 'SELECT 1/0', false);
-- app_b over TCP: two idle, one active waiting on a2's row lock.
SELECT dblink_connect('b1', regress_cw_connstr('regress_cw_app_b', host => '127.0.0.1'));
SELECT dblink_connect('b2', regress_cw_connstr('regress_cw_app_b', host => '127.0.0.1'));
SELECT dblink_connect('b3', regress_cw_connstr('regress_cw_app_b', host => '127.0.0.1'));
SELECT dblink_send_query('b3', 'UPDATE regress_cw_t SET v = v + 10 WHERE id = 1');
SELECT regress_cw_wait($$
    SELECT count(*) = 1 FROM pg_stat_activity
    WHERE application_name = 'regress_cw_app_b' AND wait_event_type = 'Lock'$$) AS waiting;
-- app_b over the Unix socket: another group (client_addr differs).
SELECT dblink_connect('b4', regress_cw_connstr('regress_cw_app_b'));
-- app_c as another role: one idle in contrib_regression, one idle in
-- transaction in postgres (role and database make the groups).
SELECT dblink_connect('c1', regress_cw_connstr('regress_cw_app_c', username => 'regress_cw_sum_user'));
SELECT dblink_connect('c2', regress_cw_connstr('regress_cw_app_c', dbname => 'postgres', username => 'regress_cw_sum_user'));
SELECT dblink_exec('c2', 'BEGIN');
SELECT * FROM dblink('c2', 'SELECT 1') AS t(result text);

-- The test's groups, in the view's order (idle transactions first, then
-- size).
SELECT datname, usename, application_name, client_addr,
       total, active, idle, idle_in_transaction, idle_in_transaction_aborted,
       other, insufficient_privilege, waiting,
       oldest_xact_age > '0' AS has_xact,
       longest_idle_in_transaction > '0' AS has_idle_xact
FROM connwatch.connection_summary
WHERE application_name LIKE 'regress\_cw\_%';

-- Ages against one clock reading, taken during the call: the oldest
-- transaction start plus oldest_xact_age, and the earliest state change of
-- an idle-in-transaction session plus longest_idle_in_transaction, fall
-- between the statement's start and its end.
SELECT s.application_name, s.datname, s.client_addr,
       (a.oldest_xact + s.oldest_xact_age) BETWEEN statement_timestamp() AND clock_timestamp() AS xact_age_ok,
       (a.longest_idle + s.longest_idle_in_transaction) BETWEEN statement_timestamp() AND clock_timestamp() AS idle_age_ok
FROM connwatch.connection_summary AS s
JOIN (SELECT datname, usename, application_name, client_addr,
             min(xact_start) AS oldest_xact,
             min(state_change) FILTER (WHERE state IN ('idle in transaction',
                                                       'idle in transaction (aborted)')) AS longest_idle
      FROM pg_stat_activity
      WHERE backend_type = 'client backend'
      GROUP BY 1, 2, 3, 4) AS a
  ON (a.datname, a.usename, a.application_name, a.client_addr)
     IS NOT DISTINCT FROM (s.datname, s.usename, s.application_name, s.client_addr)
WHERE s.application_name LIKE 'regress\_cw\_%'
  AND s.oldest_xact_age IS NOT NULL
ORDER BY s.application_name COLLATE "C", s.datname COLLATE "C", s.client_addr;

-- Every group of the whole cluster equals the GROUP BY over
-- pg_stat_activity's client backends (polled: sessions come and go).
SELECT regress_cw_wait($$
    WITH expected AS (
        SELECT datname, usename, application_name, client_addr,
               count(*)::integer AS total,
               count(*) FILTER (WHERE state = 'active')::integer AS active,
               count(*) FILTER (WHERE state = 'idle')::integer AS idle,
               count(*) FILTER (WHERE state = 'idle in transaction')::integer AS iit,
               count(*) FILTER (WHERE state = 'idle in transaction (aborted)')::integer AS aborted,
               count(*) FILTER (WHERE state IS NULL
                                   OR state NOT IN ('active', 'idle', 'idle in transaction',
                                                    'idle in transaction (aborted)'))::integer AS other,
               0 AS insufficient_privilege,
               count(*) FILTER (WHERE wait_event_type = 'Lock')::integer AS waiting
        FROM pg_stat_activity
        WHERE backend_type = 'client backend'
        GROUP BY 1, 2, 3, 4),
    got AS (
        SELECT datname, usename, application_name, client_addr,
               total, active, idle, idle_in_transaction, idle_in_transaction_aborted,
               other, insufficient_privilege, waiting
        FROM connwatch.connection_summary)
    SELECT NOT EXISTS (SELECT * FROM expected EXCEPT ALL SELECT * FROM got)
       AND NOT EXISTS (SELECT * FROM got EXCEPT ALL SELECT * FROM expected)
    $$) AS same_as_pg_stat_activity;

-- The view's order: idle transactions (plain and aborted) first, then
-- total, for all groups.
SELECT bool_and(ordered) AS view_ordered
FROM (SELECT (idle_in_transaction + idle_in_transaction_aborted, total)
                 <= lag((idle_in_transaction + idle_in_transaction_aborted, total)) OVER () AS ordered
      FROM connwatch.connection_summary) AS v
WHERE ordered IS NOT NULL;

-- When the lock holder commits, the waiter finishes and app_a's group
-- loses its idle transaction.
SELECT dblink_exec('a2', 'COMMIT');
SELECT * FROM dblink_get_result('b3') AS t(status text);
SELECT datname, usename, application_name, client_addr,
       total, active, idle, idle_in_transaction, idle_in_transaction_aborted, waiting,
       oldest_xact_age IS NOT NULL AS has_xact,
       longest_idle_in_transaction IS NOT NULL AS has_idle_xact
FROM connwatch.connection_summary
WHERE application_name LIKE 'regress\_cw\_%';

-- Clean up.
SELECT dblink_exec('a3', 'ROLLBACK');
SELECT dblink_exec('c2', 'ROLLBACK');
SELECT dblink_disconnect(c) FROM unnest(dblink_get_connections()) AS c ORDER BY c;
SELECT regress_cw_settle() AS settled;
SELECT count(*) AS left_over FROM connwatch.connection_summary
WHERE application_name LIKE 'regress\_cw\_%';
DROP TABLE regress_cw_t;
DROP ROLE regress_cw_sum_user;
