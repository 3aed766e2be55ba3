--
-- connwatch.connection_summary: client backends grouped by who and where
--
CREATE FUNCTION connwatch.connection_summary(
    OUT datname name,
    OUT usename name,
    OUT application_name text,
    OUT client_addr inet,
    OUT total integer,
    OUT active integer,
    OUT idle integer,
    OUT idle_in_transaction integer,
    OUT idle_in_transaction_aborted integer,
    OUT other integer,
    OUT insufficient_privilege integer,
    OUT waiting integer,
    OUT oldest_xact_age interval,
    OUT longest_idle_in_transaction interval
)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'cw_connection_summary'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

REVOKE ALL ON FUNCTION connwatch.connection_summary() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION connwatch.connection_summary() TO pg_monitor;

COMMENT ON FUNCTION connwatch.connection_summary() IS
    'Client backends grouped by database, role, application and client address; backs the view connwatch.connection_summary';
