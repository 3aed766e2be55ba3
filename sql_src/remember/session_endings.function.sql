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
