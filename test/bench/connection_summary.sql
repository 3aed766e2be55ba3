-- Plain-SQL equivalent of connwatch.connection_summary: one GROUP BY over the
-- client backends of pg_stat_activity with count(*) FILTER per state.
SELECT * FROM (
SELECT datname, usename, application_name, client_addr,
       count(*)::integer AS total,
       count(*) FILTER (WHERE state = 'active')::integer AS active,
       count(*) FILTER (WHERE state = 'idle')::integer AS idle,
       count(*) FILTER (WHERE state = 'idle in transaction')::integer
           AS idle_in_transaction,
       count(*) FILTER (WHERE state = 'idle in transaction (aborted)')::integer
           AS idle_in_transaction_aborted,
       count(*) FILTER (WHERE state NOT IN ('active', 'idle',
                                            'idle in transaction',
                                            'idle in transaction (aborted)')
                           OR (state IS NULL
                               AND query <> '<insufficient privilege>'))::integer
           AS other,
       count(*) FILTER (WHERE query = '<insufficient privilege>')::integer
           AS insufficient_privilege,
       count(*) FILTER (WHERE wait_event_type = 'Lock')::integer AS waiting,
       now() - min(xact_start) AS oldest_xact_age,
       now() - min(state_change) FILTER (WHERE state LIKE 'idle in transaction%')
           AS longest_idle_in_transaction
FROM pg_stat_activity
WHERE backend_type = 'client backend'
GROUP BY datname, usename, application_name, client_addr
) AS s
ORDER BY idle_in_transaction + idle_in_transaction_aborted DESC, total DESC,
         datname, usename, application_name;
