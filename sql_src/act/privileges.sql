--
-- Act-layer privileges: nothing for PUBLIC.  The functions are SECURITY
-- INVOKER: they can signal only what the caller could signal with
-- pg_terminate_backend().
--
REVOKE ALL ON FUNCTION connwatch.terminate_backend(integer, timestamptz, text),
    connwatch.cancel_backend(integer, timestamptz, text),
    connwatch.terminate_idle_in_transaction(interval, boolean, text, text, text),
    connwatch.terminate_idle(interval, boolean, text, text, text),
    connwatch.terminate_long_transactions(interval, boolean, text, text, text, boolean),
    connwatch.enforce(boolean),
    connwatch.schedule_enforcement(text),
    connwatch.unschedule_enforcement()
    FROM PUBLIC;
REVOKE ALL ON connwatch.terminations, connwatch.policies FROM PUBLIC;
GRANT SELECT ON connwatch.terminations, connwatch.policies TO pg_monitor;
