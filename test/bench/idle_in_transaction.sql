-- Plain-SQL equivalent of connwatch.idle_in_transaction.
-- idle_for from state_change; blocking from pg_blocking_pids() of every lock
-- waiter, inverted; locks_held from pg_locks (granted, no SIRead); holds_xmin
-- against the oldest of every horizon holder (backend xmin and xid, prepared
-- transactions, replication slots).  pg_stat_activity is read once (CTE).
WITH act AS (
    SELECT pid, backend_type, backend_start, datname, usename,
           application_name, client_addr, state, state_change, xact_start,
           wait_event_type, backend_xid, backend_xmin, query
    FROM pg_stat_activity
),
horizon AS (
    SELECT max(h.xmin_age) AS oldest
    FROM (SELECT greatest(age(backend_xid), age(backend_xmin)) FROM act
          UNION ALL
          SELECT age(transaction) FROM pg_prepared_xacts
          UNION ALL
          SELECT greatest(age(xmin), age(catalog_xmin)) FROM pg_replication_slots
         ) AS h(xmin_age)
),
blockers AS (
    SELECT b.pid, array_agg(w.pid ORDER BY w.pid) AS blocking
    FROM act AS w
    CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS b(pid)
    WHERE w.wait_event_type = 'Lock'
    GROUP BY b.pid
),
locks AS (
    SELECT pid, count(*) AS n
    FROM pg_locks
    WHERE granted AND mode <> 'SIReadLock'
    GROUP BY pid
)
SELECT a.pid, a.backend_start, a.datname, a.usename, a.application_name,
       a.client_addr, a.state, a.state_change,
       now() - a.state_change AS idle_for,
       a.xact_start, now() - a.xact_start AS xact_age,
       a.backend_xid, a.backend_xmin,
       greatest(age(a.backend_xid), age(a.backend_xmin)) AS xmin_age,
       coalesce(greatest(age(a.backend_xid), age(a.backend_xmin)) >= h.oldest,
                false) AS holds_xmin,
       coalesce(l.n, 0)::integer AS locks_held,
       coalesce(b.blocking, '{}') AS blocking,
       a.query
FROM act AS a
CROSS JOIN horizon AS h
LEFT JOIN locks AS l ON l.pid = a.pid
LEFT JOIN blockers AS b ON b.pid = a.pid
WHERE a.backend_type = 'client backend'
  AND a.state IN ('idle in transaction', 'idle in transaction (aborted)')
ORDER BY idle_for DESC, a.pid;
