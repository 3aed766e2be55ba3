CREATE FUNCTION connwatch.reset_ledgers()
RETURNS void
AS 'MODULE_PATHNAME', 'cw_reset_ledgers'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

REVOKE ALL ON FUNCTION connwatch.reset_ledgers() FROM PUBLIC;

COMMENT ON FUNCTION connwatch.reset_ledgers() IS
    'Forget refused connections and session endings';
