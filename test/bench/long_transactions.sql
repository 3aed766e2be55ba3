-- Plain-SQL equivalent of connwatch.long_transactions.
-- The benchmark runs the view with connwatch.long_transaction_threshold = 1s
-- (sessions it holds are seconds old), so the threshold here is 1 second too.
WITH act AS (
    SELECT pid, backend_type, backend_start, datname, usename,
           application_name, client_addr, state, state_change, xact_start,
           wait_event_type, backend_xid, backend_xmin, query
    FROM pg_stat_activity
),
blockers AS (
    SELECT b.pid, array_agg(w.pid ORDER BY w.pid) AS blocking
    FROM act AS w
    CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS b(pid)
    WHERE w.wait_event_type = 'Lock'
    GROUP BY b.pid
)
SELECT a.pid, a.backend_start, a.datname, a.usename, a.application_name,
       a.client_addr, a.state, a.xact_start,
       now() - a.xact_start AS xact_age,
       now() - a.state_change AS state_age,
       a.backend_xid, a.backend_xmin,
       greatest(age(a.backend_xid), age(a.backend_xmin)) AS xmin_age,
       coalesce(b.blocking, '{}') AS blocking,
       a.query
FROM act AS a
LEFT JOIN blockers AS b ON b.pid = a.pid
WHERE a.backend_type = 'client backend'
  AND now() - a.xact_start > interval '1 second'
ORDER BY xact_age DESC, a.pid;
