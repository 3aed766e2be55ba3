/* pg_connwatch--1.0.1--1.1.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION pg_connwatch UPDATE TO '1.1'" to load this file. \quit

-- 1.1 adds the remember layer: its functions, views and grants, nothing
-- else changes.  Every object is new, so nothing here replaces an object
-- a user could have made.

--
-- The remember layer (1.1): ledgers in shared memory, filled by hooks when
-- pg_connwatch is in shared_preload_libraries.  Without it every function
-- below raises 55000.
--
CREATE FUNCTION connwatch.refused_connections(
    OUT cause text,
    OUT datname name,
    OUT usename name,
    OUT application_name text,
    OUT client_addr inet,
    OUT count bigint,
    OUT first_at timestamptz,
    OUT last_at timestamptz,
    OUT overflow boolean
)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'cw_refused_connections'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

CREATE VIEW connwatch.refused_connections AS
    SELECT * FROM connwatch.refused_connections()
    ORDER BY last_at DESC, cause, usename, datname;

CREATE FUNCTION connwatch.session_endings(
    OUT datname name,
    OUT usename name,
    OUT application_name text,
    OUT reason text,
    OUT policy text,
    OUT count bigint,
    OUT first_at timestamptz,
    OUT last_at timestamptz,
    OUT total_lifetime interval,
    OUT lifetime_buckets bigint[],
    OUT overflow boolean
)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'cw_session_endings'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

CREATE VIEW connwatch.session_endings AS
    SELECT * FROM connwatch.session_endings()
    ORDER BY last_at DESC, reason, usename, datname, application_name;

CREATE FUNCTION connwatch.peaks(
    OUT scope text,
    OUT name text,
    OUT current integer,
    OUT peak integer,
    OUT peak_at timestamptz
)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'cw_peaks'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

CREATE VIEW connwatch.peaks AS
    SELECT * FROM connwatch.peaks()
    ORDER BY pg_catalog.array_position(
                 ARRAY['server', 'database', 'role', 'application'], scope),
             peak DESC, name;

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

CREATE VIEW connwatch.history AS
    SELECT * FROM connwatch.history()
    ORDER BY sampled_at;

CREATE FUNCTION connwatch.reset_ledgers()
RETURNS void
AS 'MODULE_PATHNAME', 'cw_reset_ledgers'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

CREATE FUNCTION connwatch.reset_peaks()
RETURNS void
AS 'MODULE_PATHNAME', 'cw_reset_peaks_function'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

REVOKE ALL ON FUNCTION connwatch.refused_connections(),
    connwatch.session_endings(), connwatch.peaks(),
    connwatch.history(timestamptz, timestamptz),
    connwatch.reset_ledgers(), connwatch.reset_peaks()
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION connwatch.refused_connections(),
    connwatch.session_endings(), connwatch.peaks(),
    connwatch.history(timestamptz, timestamptz)
    TO pg_monitor;
GRANT SELECT ON connwatch.refused_connections, connwatch.session_endings,
    connwatch.peaks, connwatch.history TO pg_monitor;

COMMENT ON FUNCTION connwatch.refused_connections() IS
    'Refused connection attempts by cause and by what the client claimed; backs the view connwatch.refused_connections (needs shared_preload_libraries)';
COMMENT ON VIEW connwatch.refused_connections IS
    'Refused connection attempts since the last reset, by cause and claimed database, role, application and address, most recent first';
COMMENT ON COLUMN connwatch.refused_connections.cause IS 'too many clients, reserved slots, role limit, database limit, role does not exist, role not permitted to log in, database does not exist, database not accepting connections, no CONNECT privilege, rejected by pg_hba.conf, authentication failed, authentication abandoned, server starting up, server shutting down, server not yet accepting, or other';
COMMENT ON COLUMN connwatch.refused_connections.datname IS 'Database the client asked for (claimed, not checked); NULL if it had not said';
COMMENT ON COLUMN connwatch.refused_connections.usename IS 'Role the client claimed; NULL if it had not said';
COMMENT ON COLUMN connwatch.refused_connections.application_name IS 'application_name the client claimed; NULL if not said, or hidden from the caller';
COMMENT ON COLUMN connwatch.refused_connections.client_addr IS 'Client IP address; NULL for Unix sockets, or hidden from the caller';
COMMENT ON COLUMN connwatch.refused_connections.count IS 'Attempts refused';
COMMENT ON COLUMN connwatch.refused_connections.first_at IS 'First refusal since the last reset';
COMMENT ON COLUMN connwatch.refused_connections.last_at IS 'Latest refusal';
COMMENT ON COLUMN connwatch.refused_connections.overflow IS 'The ledger was full: attempts of this cause counted without their names';

COMMENT ON FUNCTION connwatch.session_endings() IS
    'How client sessions ended; backs the view connwatch.session_endings (needs shared_preload_libraries)';
COMMENT ON VIEW connwatch.session_endings IS
    'Client sessions ended since the last reset, by database, role, application and reason, with their lifetimes';
COMMENT ON COLUMN connwatch.session_endings.datname IS 'Database of the sessions';
COMMENT ON COLUMN connwatch.session_endings.usename IS 'Role they logged in as';
COMMENT ON COLUMN connwatch.session_endings.application_name IS 'application_name when they ended; NULL if hidden from the caller';
COMMENT ON COLUMN connwatch.session_endings.reason IS 'client closed, client vanished (14+; 13 counts both as client closed), terminated by connwatch, terminated by another session, idle-in-transaction timeout, idle-session timeout, transaction timeout, connection check failed, protocol violation, recovery conflict, server shutdown, or fatal error';
COMMENT ON COLUMN connwatch.session_endings.policy IS 'Policy that terminated them, for terminated by connwatch; NULL otherwise or for a direct call';
COMMENT ON COLUMN connwatch.session_endings.count IS 'Sessions';
COMMENT ON COLUMN connwatch.session_endings.first_at IS 'First such ending since the last reset';
COMMENT ON COLUMN connwatch.session_endings.last_at IS 'Latest such ending';
COMMENT ON COLUMN connwatch.session_endings.total_lifetime IS 'Sum of the sessions'' lifetimes (backend start to end)';
COMMENT ON COLUMN connwatch.session_endings.lifetime_buckets IS 'Sessions by lifetime: under 100 ms, 1 s, 10 s, 1 min, 10 min, 1 h, 1 day, and longer';
COMMENT ON COLUMN connwatch.session_endings.overflow IS 'The ledger was full: sessions of this reason counted without their names';

COMMENT ON FUNCTION connwatch.peaks() IS
    'Current and highest concurrent client sessions; backs the view connwatch.peaks (needs shared_preload_libraries)';
COMMENT ON VIEW connwatch.peaks IS
    'Current and highest number of concurrent client sessions, server-wide and per database, role and application, since the last reset';
COMMENT ON COLUMN connwatch.peaks.scope IS 'server, database, role or application';
COMMENT ON COLUMN connwatch.peaks.name IS 'Database, role or application name; NULL for the server, an overflow entry, or an application name hidden from the caller';
COMMENT ON COLUMN connwatch.peaks.current IS 'Client sessions now';
COMMENT ON COLUMN connwatch.peaks.peak IS 'Most client sessions at once';
COMMENT ON COLUMN connwatch.peaks.peak_at IS 'When peak was first reached';

COMMENT ON FUNCTION connwatch.history(timestamptz, timestamptz) IS
    'Samples of the server taken by the pg_connwatch worker between since and until, oldest first (needs shared_preload_libraries)';
COMMENT ON VIEW connwatch.history IS
    'Every sample the pg_connwatch worker keeps (connwatch.history_size, one per connwatch.sample_interval), oldest first';
COMMENT ON COLUMN connwatch.history.sampled_at IS 'When the sample was taken';
COMMENT ON COLUMN connwatch.history.client_backends IS 'Client sessions';
COMMENT ON COLUMN connwatch.history.active IS 'Client sessions running a statement';
COMMENT ON COLUMN connwatch.history.idle IS 'Client sessions idle outside a transaction';
COMMENT ON COLUMN connwatch.history.idle_in_transaction IS 'Client sessions idle in a transaction (aborted ones included)';
COMMENT ON COLUMN connwatch.history.waiting IS 'Client sessions waiting on a heavyweight lock';
COMMENT ON COLUMN connwatch.history.oldest_xact_age IS 'Age of the oldest open transaction of a client session; NULL if none';
COMMENT ON COLUMN connwatch.history.oldest_xmin_age IS 'Age of the xmin horizon, as age(xid), over everything that holds it; NULL if nothing does';
COMMENT ON COLUMN connwatch.history.refused IS 'Connection attempts refused since the previous sample';
COMMENT ON COLUMN connwatch.history.ended IS 'Client sessions ended since the previous sample';
COMMENT ON COLUMN connwatch.history.applications IS 'The applications with the most sessions (connwatch.history_applications of them), then other; NULL without pg_read_all_stats';
COMMENT ON COLUMN connwatch.history.application_connections IS 'Sessions of each application, in the order of applications';
COMMENT ON COLUMN connwatch.history.application_idle_in_transaction IS 'Sessions idle in a transaction, per application, in the order of applications';

COMMENT ON FUNCTION connwatch.reset_ledgers() IS
    'Forget refused connections and session endings';
COMMENT ON FUNCTION connwatch.reset_peaks() IS
    'Start the peaks again from the current figures';
