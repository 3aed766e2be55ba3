COMMENT ON FUNCTION connwatch.terminate_backend(integer, timestamptz, text) IS
    'Terminate exactly the session (pid, backend_start) after a live re-check; returns whether it was signalled, and warns why not';
COMMENT ON FUNCTION connwatch.cancel_backend(integer, timestamptz, text) IS
    'Cancel the running statement of exactly the session (pid, backend_start) after a live re-check; returns whether it was signalled';
COMMENT ON FUNCTION connwatch.terminate_idle_in_transaction(interval, boolean, text, text, text) IS
    'Terminate client sessions idle in transaction (aborted included) for at least older_than, measured from state_change';
COMMENT ON FUNCTION connwatch.terminate_idle(interval, boolean, text, text, text) IS
    'Terminate client sessions idle (outside a transaction) for at least older_than';
COMMENT ON FUNCTION connwatch.terminate_long_transactions(interval, boolean, text, text, text, boolean) IS
    'Terminate client sessions whose transaction is at least older_than old; with cancel_first, cancel a running statement first and terminate only if the transaction is still open after connwatch.cancel_grace_period';
COMMENT ON FUNCTION connwatch.enforce(boolean) IS
    'Apply every enabled policy of connwatch.policies in one pass over live backend state';
COMMENT ON FUNCTION connwatch.schedule_enforcement(text) IS
    'Create or update the pg_cron job connwatch-enforce that runs connwatch.enforce() in this database';
COMMENT ON FUNCTION connwatch.unschedule_enforcement() IS
    'Remove the pg_cron job connwatch-enforce; returns whether there was one';
