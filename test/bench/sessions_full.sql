-- Plain-SQL equivalent of connwatch.sessions with every column the view has:
-- ages against one clock reading (now()), xmin_age as age(backend_xmin), and
-- pg_blocking_pids() called only for sessions that wait on a heavyweight lock.
SELECT a.pid, a.backend_type, a.datid, a.datname, a.usesysid, a.usename,
       a.application_name, a.client_addr, a.client_port, a.backend_start,
       a.xact_start, a.query_start, a.state_change, a.state,
       a.wait_event_type, a.wait_event, a.backend_xid, a.backend_xmin,
       age(a.backend_xmin) AS xmin_age,
       now() - a.backend_start AS session_age,
       now() - a.xact_start AS xact_age,
       now() - a.state_change AS state_age,
       CASE WHEN a.wait_event_type = 'Lock' THEN pg_blocking_pids(a.pid)
            ELSE '{}'::integer[] END AS blocked_by,
       a.query
FROM pg_stat_activity AS a;
