--
-- connwatch.long_transactions: client backends whose transaction is old
--
-- The zero-argument form uses connwatch.long_transaction_threshold; it is
-- read in C so that the view works before the library has been loaded.
--
CREATE FUNCTION connwatch.long_transactions(
    older_than interval,
    OUT pid integer,
    OUT backend_start timestamptz,
    OUT datname name,
    OUT usename name,
    OUT application_name text,
    OUT client_addr inet,
    OUT state text,
    OUT xact_start timestamptz,
    OUT xact_age interval,
    OUT state_age interval,
    OUT backend_xid xid,
    OUT backend_xmin xid,
    OUT xmin_age integer,
    OUT blocking integer[],
    OUT query text
)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'cw_long_transactions'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

CREATE FUNCTION connwatch.long_transactions(
    OUT pid integer,
    OUT backend_start timestamptz,
    OUT datname name,
    OUT usename name,
    OUT application_name text,
    OUT client_addr inet,
    OUT state text,
    OUT xact_start timestamptz,
    OUT xact_age interval,
    OUT state_age interval,
    OUT backend_xid xid,
    OUT backend_xmin xid,
    OUT xmin_age integer,
    OUT blocking integer[],
    OUT query text
)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'cw_long_transactions'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

REVOKE ALL ON FUNCTION connwatch.long_transactions(interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION connwatch.long_transactions() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION connwatch.long_transactions(interval) TO pg_monitor;
GRANT EXECUTE ON FUNCTION connwatch.long_transactions() TO pg_monitor;

COMMENT ON FUNCTION connwatch.long_transactions(interval) IS
    'Client backends whose transaction is older than older_than';
COMMENT ON FUNCTION connwatch.long_transactions() IS
    'Client backends whose transaction is older than connwatch.long_transaction_threshold; backs the view connwatch.long_transactions';
