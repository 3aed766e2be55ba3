CREATE FUNCTION connwatch.session_endings(
    OUT datname text,
    OUT usename text,
    OUT application_name text,
    OUT reason text,
    OUT policy text,
    OUT count bigint,
    OUT first_at timestamptz,
    OUT last_at timestamptz,
    OUT total_lifetime interval,
    OUT lifetime_buckets bigint[],
    OUT in_transaction bigint,
    OUT transaction_warnings bigint,
    OUT last_in_transaction_at timestamptz,
    OUT last_transaction_warning_at timestamptz,
    OUT overflow boolean
)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'cw_session_endings'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

REVOKE ALL ON FUNCTION connwatch.session_endings() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION connwatch.session_endings() TO pg_monitor;

COMMENT ON FUNCTION connwatch.session_endings() IS
    'How client sessions ended; backs the view connwatch.session_endings (needs shared_preload_libraries)';
