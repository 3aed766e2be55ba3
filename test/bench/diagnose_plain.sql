-- Plain-SQL equivalent of connwatch.diagnose() (test/bench/diagnose_run.sh):
-- the questions diagnose() answers from what every server has, written by
-- hand over pg_stat_activity, pg_blocking_pids(), pg_prepared_xacts,
-- pg_replication_slots, pg_roles and pg_database.  One statement, reading
-- pg_stat_activity once (CTE), one row per finding:
--   question, subject (diagnose()'s subject format), detail (its evidence).
--
--   leaked       CW101: sessions idle in a transaction for 1 s or more, per
--                application (or role, without one): how many, the longest
--                idle, the query of the longest, how many wait on them
--   lock head    CW130: idle-in-transaction sessions (idle 1 s or more)
--                that other sessions wait for (pg_blocking_pids() of every
--                lock waiter, inverted), the waiters, and everything stuck
--                behind them (recursively)
--   limit        CW103 to CW106: client sessions against max_connections -
--                superuser_reserved_connections (server), the reserved
--                slots in use, rolconnlimit (roles) and datconnlimit
--                (databases), at 80 % or more (or any reserved slot used),
--                with the three busiest applications
--   horizon      CW120 to CW123: what holds the xmin horizon (backends: the
--                older of backend_xid and backend_xmin; prepared
--                transactions; replication slots' xmin and catalog_xmin),
--                50,000,000 transactions back or since 1 s or more; of the
--                backends, those holding it furthest back (at most three,
--                the oldest transactions first)
--
-- The thresholds are the ones the benchmark SETs for diagnose()
-- (connwatch.diagnose_idle_in_transaction = 1s, diagnose_horizon_age = 1s,
-- diagnose_xmin_age and warning_pct / critical_pct at their defaults),
-- written as constants.
--
-- Not here, because no plain SQL can answer them: everything diagnose() reads
-- from pg_connwatch's shared-memory ledgers, which only exist with the
-- library preloaded -- refused connections by cause and by who asked
-- (CW110 to CW119: the server keeps no record of a refusal but a log line),
-- sessions ended by timeouts or terminations and how they ended (CW150,
-- CW160, CW161), churn of short sessions (CW140), and an application's pool
-- flat at its peak over the history (CW102: no history of pg_stat_activity
-- exists).  diagnose() does that work on top of this, so the comparison
-- favours the plain SQL.
WITH act AS MATERIALIZED (
    SELECT pid, backend_type, backend_start, datid, datname, usesysid, usename,
           application_name, state, state_change, xact_start, wait_event_type,
           backend_xid, backend_xmin, query
    FROM pg_stat_activity
),
clients AS MATERIALIZED (
    SELECT * FROM act WHERE backend_type = 'client backend'
),
-- who waits for whom: every lock waiter and the sessions it waits for
waits AS MATERIALIZED (
    SELECT w.pid AS waiter, b.pid AS blocker
    FROM act AS w
    CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS b(pid)
    WHERE w.wait_event_type = 'Lock'
),
iit AS MATERIALIZED (
    SELECT c.*, now() - c.state_change AS idle_for,
           (SELECT count(*) FROM waits AS w WHERE w.blocker = c.pid) AS blocked
    FROM clients AS c
    WHERE c.state IN ('idle in transaction', 'idle in transaction (aborted)')
      AND now() - c.state_change >= interval '1 second'
),
-- (1) leaked transactions, per application (per role for sessions without
-- an application_name); the role and database of the longest idle one
leaked AS (
    SELECT 'leaked'::text AS question,
           CASE WHEN i.application_name <> '' THEN format('application "%s"', i.application_name)
                ELSE format('role "%s"', i.usename) END AS subject,
           jsonb_build_object('application', (array_agg(i.application_name ORDER BY i.idle_for DESC))[1],
                              'role', (array_agg(i.usename ORDER BY i.idle_for DESC))[1],
                              'database', (array_agg(i.datname ORDER BY i.idle_for DESC))[1],
                              'sessions', count(*),
                              'longest_idle_s', round(extract(epoch FROM max(i.idle_for)), 1),
                              'pids', array_agg(i.pid ORDER BY i.idle_for DESC),
                              'sessions_waiting_on_them', sum(i.blocked),
                              'last_query', (array_agg(i.query ORDER BY i.idle_for DESC))[1]) AS detail
    FROM iit AS i
    GROUP BY 2
),
-- (2) lock chains headed by a session idle in a transaction
heads AS (
    SELECT i.* FROM iit AS i WHERE i.blocked > 0
),
chain AS (
    WITH RECURSIVE behind(head, pid) AS (
        SELECT w.blocker, w.waiter FROM waits AS w JOIN heads AS h ON h.pid = w.blocker
        UNION
        SELECT b.head, w.waiter FROM behind AS b JOIN waits AS w ON w.blocker = b.pid
    )
    SELECT head, count(*) AS stuck FROM behind GROUP BY head
),
lock_heads AS (
    SELECT 'lock head'::text AS question, format('pid %s', h.pid) AS subject,
           jsonb_build_object('pid', h.pid, 'backend_start', h.backend_start,
                              'application', h.application_name, 'role', h.usename,
                              'database', h.datname,
                              'idle_s', round(extract(epoch FROM h.idle_for), 1),
                              'waiting', h.blocked,
                              'waiting_pids', (SELECT array_agg(w.waiter ORDER BY w.waiter)
                                               FROM waits AS w WHERE w.blocker = h.pid),
                              'stuck_behind', c.stuck, 'last_query', h.query) AS detail
    FROM heads AS h
    JOIN chain AS c ON c.head = h.pid
),
-- (3) connection limits near full
settings AS (
    SELECT current_setting('max_connections')::integer AS max_conn,
           current_setting('superuser_reserved_connections')::integer AS reserved
),
n_clients AS (
    SELECT count(*)::integer AS n FROM clients
),
per_db AS (
    SELECT datid, count(*)::integer AS n
    FROM act
    WHERE backend_type IN ('client backend', 'autovacuum worker', 'walsender')
    GROUP BY datid
),
per_role AS (
    SELECT usesysid, count(*)::integer AS n
    FROM act
    WHERE backend_type IN ('client backend', 'walsender')
    GROUP BY usesysid
),
limits AS (
    SELECT 'server' AS scope, NULL::name AS name, c.n AS used, s.max_conn - s.reserved AS max
    FROM settings AS s, n_clients AS c
    UNION ALL
    SELECT 'reserved', NULL, greatest(0, c.n - (s.max_conn - s.reserved)), s.reserved
    FROM settings AS s, n_clients AS c
    UNION ALL
    SELECT 'database', d.datname, coalesce(p.n, 0), d.datconnlimit
    FROM pg_database AS d
    LEFT JOIN per_db AS p ON p.datid = d.oid
    WHERE d.datallowconn AND d.datconnlimit <> -1
    UNION ALL
    SELECT 'role', r.rolname, coalesce(p.n, 0), r.rolconnlimit
    FROM pg_roles AS r
    LEFT JOIN per_role AS p ON p.usesysid = r.oid
    WHERE r.rolcanlogin AND NOT r.rolsuper AND r.rolconnlimit <> -1
),
near_full AS (
    SELECT l.*,
           CASE WHEN l.max = 0 THEN 100.0 ELSE round(100.0 * l.used / l.max, 1) END AS pct_used
    FROM limits AS l
),
limit_rows AS (
    SELECT 'limit'::text AS question,
           CASE WHEN l.scope IN ('server', 'reserved') THEN 'server'
                ELSE format('%s "%s"', l.scope, l.name) END AS subject,
           jsonb_build_object('scope', l.scope, 'name', l.name, 'used', l.used, 'max', l.max,
                              'headroom', greatest(l.max - l.used, 0), 'pct_used', l.pct_used,
                              'status', CASE WHEN l.max = 0 OR l.pct_used >= 95 THEN 'critical'
                                             WHEN l.pct_used >= 80 THEN 'warning' ELSE 'ok' END,
                              'applications', coalesce(top.counts, '{}')) AS detail
    FROM near_full AS l
    LEFT JOIN LATERAL (
        SELECT jsonb_object_agg(t.application_name, t.n) AS counts
        FROM (SELECT c.application_name, count(*) AS n
              FROM clients AS c
              WHERE l.scope IN ('server', 'reserved')
                 OR (l.scope = 'role' AND c.usename = l.name)
                 OR (l.scope = 'database' AND c.datname = l.name)
              GROUP BY c.application_name
              ORDER BY n DESC, c.application_name
              LIMIT 3) AS t
    ) AS top ON true
    WHERE (l.scope = 'reserved' AND l.used > 0)
       OR (l.scope <> 'reserved' AND (l.max = 0 OR l.pct_used >= 80))
),
-- (4) what holds the xmin horizon
holders AS (
    SELECT CASE WHEN backend_type = 'walsender' THEN 'walsender_feedback'
                ELSE 'backend' END AS holder_type,
           pid::text AS holder, pid, datname, usename, application_name, state,
           CASE WHEN backend_xid IS NULL THEN backend_xmin
                WHEN backend_xmin IS NULL THEN backend_xid
                WHEN age(backend_xid) >= age(backend_xmin) THEN backend_xid
                ELSE backend_xmin END AS xmin,
           greatest(age(backend_xid), age(backend_xmin)) AS xmin_age,
           CASE WHEN backend_type = 'walsender' THEN backend_start ELSE xact_start END AS since
    FROM act
    WHERE (backend_xid IS NOT NULL OR backend_xmin IS NOT NULL)
      AND pid <> pg_backend_pid()
    UNION ALL
    SELECT 'prepared_transaction', gid, NULL, database, owner, NULL, NULL,
           transaction, age(transaction), prepared
    FROM pg_prepared_xacts
    UNION ALL
    SELECT 'replication_slot', slot_name, active_pid, database, NULL, NULL, NULL,
           xmin, age(xmin), NULL
    FROM pg_replication_slots
    WHERE xmin IS NOT NULL
    UNION ALL
    SELECT 'replication_slot', slot_name, active_pid, database, NULL, NULL, NULL,
           catalog_xmin, age(catalog_xmin), NULL
    FROM pg_replication_slots
    WHERE catalog_xmin IS NOT NULL
),
old_holders AS (
    SELECT h.*,
           rank() OVER (PARTITION BY h.holder_type = 'backend'
                        ORDER BY h.xmin_age DESC) AS rank,
           row_number() OVER (PARTITION BY h.holder_type = 'backend'
                              ORDER BY h.xmin_age DESC, h.since) AS n
    FROM holders AS h
    WHERE h.xmin_age >= 50000000
       OR (h.since <= now() - interval '1 second'
           AND h.holder_type IN ('backend', 'prepared_transaction'))
),
horizon AS (
    SELECT 'horizon'::text AS question,
           CASE h.holder_type WHEN 'backend' THEN format('pid %s', h.pid)
                              WHEN 'walsender_feedback' THEN format('pid %s', h.pid)
                              WHEN 'prepared_transaction' THEN format('prepared transaction "%s"', h.holder)
                              ELSE format('replication slot "%s"', h.holder) END AS subject,
           jsonb_build_object('holder_type', h.holder_type, 'holder', h.holder, 'pid', h.pid,
                              'application', h.application_name, 'role', h.usename,
                              'database', h.datname, 'state', h.state,
                              'xmin_age', h.xmin_age, 'since', h.since) AS detail
    FROM old_holders AS h
    -- of the sessions, those that hold it furthest back (at most three)
    WHERE h.holder_type <> 'backend' OR (h.rank = 1 AND h.n <= 3)
)
SELECT * FROM leaked
UNION ALL
SELECT * FROM lock_heads
UNION ALL
SELECT * FROM limit_rows
UNION ALL
SELECT * FROM horizon
ORDER BY 1, 2;
