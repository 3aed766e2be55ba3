CREATE FUNCTION connwatch.history(
    since timestamptz DEFAULT '-infinity',
    until timestamptz DEFAULT 'infinity',
    OUT sampled_at timestamptz,
    OUT client_backends integer,
    OUT active integer,
    OUT idle integer,
    OUT idle_in_transaction integer,
    OUT waiting integer,
    OUT oldest_xact_age interval,
    OUT oldest_xmin_age integer,
    OUT refused bigint,
    OUT ended bigint,
    OUT applications text[],
    OUT application_connections integer[],
    OUT application_idle_in_transaction integer[]
)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'cw_history_function'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

REVOKE ALL ON FUNCTION connwatch.history(timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION connwatch.history(timestamptz, timestamptz) TO pg_monitor;

COMMENT ON FUNCTION connwatch.history(timestamptz, timestamptz) IS
    'Samples of the server taken by the pg_connwatch worker between since and until, oldest first (needs shared_preload_libraries)';
