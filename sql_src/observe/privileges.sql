--
-- Privileges: the views, and the functions behind them, are for pg_monitor
-- (grant them to other roles explicitly).  The functions hide what core
-- hides from roles without pg_read_all_stats, whoever may call them.
--
REVOKE ALL ON FUNCTION connwatch.sessions(),
    connwatch.idle_in_transaction(),
    connwatch.long_transactions(interval), connwatch.long_transactions(),
    connwatch.connection_limits(), connwatch.connection_headroom(),
    connwatch.connection_summary(), connwatch.xmin_horizon()
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION connwatch.sessions(),
    connwatch.idle_in_transaction(),
    connwatch.long_transactions(interval), connwatch.long_transactions(),
    connwatch.connection_limits(), connwatch.connection_headroom(),
    connwatch.connection_summary(), connwatch.xmin_horizon()
    TO pg_monitor;
GRANT SELECT ON connwatch.sessions, connwatch.idle_in_transaction,
    connwatch.long_transactions, connwatch.connection_limits,
    connwatch.connection_headroom, connwatch.connection_summary,
    connwatch.xmin_horizon TO pg_monitor;
GRANT USAGE ON SCHEMA connwatch TO PUBLIC;
