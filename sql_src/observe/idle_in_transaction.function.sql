--
-- connwatch.idle_in_transaction: client backends idle inside a transaction
--
CREATE FUNCTION connwatch.idle_in_transaction(
    OUT pid integer,
    OUT backend_start timestamptz,
    OUT datname name,
    OUT usename name,
    OUT application_name text,
    OUT client_addr inet,
    OUT state text,
    OUT state_change timestamptz,
    OUT idle_for interval,
    OUT xact_start timestamptz,
    OUT xact_age interval,
    OUT backend_xid xid,
    OUT backend_xmin xid,
    OUT xmin_age integer,
    OUT holds_xmin boolean,
    OUT locks_held integer,
    OUT blocking integer[],
    OUT query text
)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'cw_idle_in_transaction'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

REVOKE ALL ON FUNCTION connwatch.idle_in_transaction() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION connwatch.idle_in_transaction() TO pg_monitor;

COMMENT ON FUNCTION connwatch.idle_in_transaction() IS
    'Client backends idle inside a transaction; backs the view connwatch.idle_in_transaction';
