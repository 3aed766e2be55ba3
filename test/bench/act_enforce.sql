-- The every-minute cron job a careful DBA writes instead of
-- connwatch.enforce() with act_run.sh's three policies: one scan of
-- pg_stat_activity selecting the pids it would terminate.  Same conditions:
-- client backends only, never its own session, never the protected
-- applications, idle measured from state_change (aborted transactions
-- included), the long transaction from xact_start.
SELECT pid
FROM pg_catalog.pg_stat_activity
WHERE backend_type = 'client backend'
  AND pid <> pg_catalog.pg_backend_pid()
  AND application_name NOT IN ('pg_dump', 'pg_basebackup', 'pg_restore', 'pg_rewind')
  AND ((state IN ('idle in transaction', 'idle in transaction (aborted)')
        AND state_change <= now() - interval '1 hour')
    OR (state = 'idle' AND application_name LIKE 'batch%'
        AND state_change <= now() - interval '1 day')
    OR (state = 'active' AND xact_start <= now() - interval '1 hour'));
