/* pg_connwatch--1.0.1--1.1.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION pg_connwatch UPDATE TO '1.1'" to load this file. \quit

-- 1.1 adds the remember layer, diagnose(), metrics() and the printable
-- functions they use: every object is new but connwatch.xmin_horizon, which
-- 1.1 replaces (a prepared transaction's gid shown printable).

--
-- Client-chosen text as data (src/printable.c): every name and text that
-- diagnose() and metrics() quote goes through these.
--
CREATE FUNCTION connwatch.printable(text)
RETURNS text
AS 'MODULE_PATHNAME', 'cw_printable_text'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION connwatch.printable(text) IS
    'The text with control characters, invalid bytes and a backslash as visible escapes (\n, \xNN, \uXXXX, \\), and non-ASCII as \uXXXX unless server and client use UTF8: safe to print, one-to-one';

CREATE FUNCTION connwatch.printable_literal(text)
RETURNS text
AS 'MODULE_PATHNAME', 'cw_printable_literal_text'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION connwatch.printable_literal(text) IS
    'An SQL string literal meaning exactly the text, itself printable (E''...'' with escapes where needed); NULL when the text is not valid in the server encoding';

CREATE FUNCTION connwatch.printable_ident(text)
RETURNS text
AS 'MODULE_PATHNAME', 'cw_printable_ident_text'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION connwatch.printable_ident(text) IS
    'An SQL identifier meaning exactly the text, itself printable (U&"..." with escapes where needed); NULL when the text is not valid in the server encoding';

-- The gid and prepare time of a prepared transaction live in twophase.c's
-- private state; pg_prepared_xacts is the supported way to read them.  A
-- gid is any login role's choice: shown printable (1.1; the columns and
-- their order are those of 1.0).
CREATE OR REPLACE VIEW connwatch.xmin_horizon AS
    SELECT h.holder_type,
           COALESCE(connwatch.printable(p.gid), h.holder) AS holder,
           h.pid, h.datname, h.usename, h.application_name, h.state,
           h.xmin, h.xmin_age,
           COALESCE(p.prepared, h.since) AS since
    FROM connwatch.xmin_horizon() AS h
    LEFT JOIN pg_catalog.pg_prepared_xacts AS p
      ON h.holder_type OPERATOR(pg_catalog.=) 'prepared_transaction'
     AND p.transaction OPERATOR(pg_catalog.=) h.xmin
    ORDER BY h.xmin_age DESC NULLS LAST, h.holder_type, holder;

GRANT SELECT ON connwatch.xmin_horizon TO pg_monitor;

COMMENT ON VIEW connwatch.xmin_horizon IS
    'Everything that holds the xmin horizon back (backends, prepared transactions, replication slots, hot-standby feedback), oldest first';
COMMENT ON COLUMN connwatch.xmin_horizon.holder_type IS 'backend, prepared_transaction, replication_slot, replication_slot_catalog or walsender_feedback';
COMMENT ON COLUMN connwatch.xmin_horizon.holder IS 'The pid, the prepared transaction''s gid or the slot name';
COMMENT ON COLUMN connwatch.xmin_horizon.pid IS 'Backend pid (the walsender for feedback, the active pid for a slot in use)';
COMMENT ON COLUMN connwatch.xmin_horizon.datname IS 'Database, where the holder belongs to one';
COMMENT ON COLUMN connwatch.xmin_horizon.usename IS 'Role, where the holder has one';
COMMENT ON COLUMN connwatch.xmin_horizon.application_name IS 'application_name of a backend holder';
COMMENT ON COLUMN connwatch.xmin_horizon.state IS 'State of a backend holder (hidden without privileges)';
COMMENT ON COLUMN connwatch.xmin_horizon.xmin IS 'The transaction ID held back: the older of xid and xmin for a backend';
COMMENT ON COLUMN connwatch.xmin_horizon.xmin_age IS 'Transactions between xmin and the next transaction ID';
COMMENT ON COLUMN connwatch.xmin_horizon.since IS 'Transaction start for a backend, prepare time for a prepared transaction, backend start for a walsender, NULL for slots';

--
-- The remember layer (1.1): ledgers in shared memory, filled by hooks when
-- pg_connwatch is in shared_preload_libraries.  Without it every function
-- below raises 55000.
--
CREATE FUNCTION connwatch.refused_connections(
    OUT cause text,
    OUT datname text,
    OUT usename text,
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

REVOKE ALL ON FUNCTION connwatch.refused_connections() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION connwatch.refused_connections() TO pg_monitor;

COMMENT ON FUNCTION connwatch.refused_connections() IS
    'Refused connection attempts by cause and by what the client claimed; backs the view connwatch.refused_connections (needs shared_preload_libraries)';

CREATE VIEW connwatch.refused_connections AS
    SELECT * FROM connwatch.refused_connections()
    ORDER BY last_at DESC, cause, usename, datname;

GRANT SELECT ON connwatch.refused_connections TO pg_monitor;

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

CREATE VIEW connwatch.session_endings AS
    SELECT * FROM connwatch.session_endings()
    ORDER BY last_at DESC, reason, usename, datname, application_name;

GRANT SELECT ON connwatch.session_endings TO pg_monitor;

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
COMMENT ON COLUMN connwatch.session_endings.in_transaction IS 'Of these sessions, those that ended with a transaction open';
COMMENT ON COLUMN connwatch.session_endings.transaction_warnings IS 'Of these sessions, those that were sent BEGIN inside a transaction or COMMIT/ROLLBACK outside one (WARNING 25001/25P01, "there is already / no transaction in progress"): two processes sharing the connection';
COMMENT ON COLUMN connwatch.session_endings.last_in_transaction_at IS 'Latest such ending with a transaction open; NULL if none';
COMMENT ON COLUMN connwatch.session_endings.last_transaction_warning_at IS 'Latest such ending of a session sent a misplaced BEGIN or COMMIT; NULL if none';
COMMENT ON COLUMN connwatch.session_endings.overflow IS 'The ledger was full: sessions of this reason counted without their names';

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

REVOKE ALL ON FUNCTION connwatch.peaks() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION connwatch.peaks() TO pg_monitor;

COMMENT ON FUNCTION connwatch.peaks() IS
    'Current and highest concurrent client sessions; backs the view connwatch.peaks (needs shared_preload_libraries)';

CREATE VIEW connwatch.peaks AS
    SELECT * FROM connwatch.peaks()
    ORDER BY pg_catalog.array_position(
                 ARRAY['server', 'database', 'role', 'application'], scope),
             peak DESC, name;

GRANT SELECT ON connwatch.peaks TO pg_monitor;

COMMENT ON VIEW connwatch.peaks IS
    'Current and highest number of concurrent client sessions, server-wide and per database, role and application, since the last reset';
COMMENT ON COLUMN connwatch.peaks.scope IS 'server, database, role or application';
COMMENT ON COLUMN connwatch.peaks.name IS 'Database, role or application name; NULL for the server, an overflow entry, or an application name hidden from the caller';
COMMENT ON COLUMN connwatch.peaks.current IS 'Client sessions now';
COMMENT ON COLUMN connwatch.peaks.peak IS 'Most client sessions at once';
COMMENT ON COLUMN connwatch.peaks.peak_at IS 'When peak was first reached';

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

CREATE VIEW connwatch.history AS
    SELECT * FROM connwatch.history()
    ORDER BY sampled_at;

GRANT SELECT ON connwatch.history TO pg_monitor;

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

CREATE FUNCTION connwatch.reset_ledgers()
RETURNS void
AS 'MODULE_PATHNAME', 'cw_reset_ledgers'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

REVOKE ALL ON FUNCTION connwatch.reset_ledgers() FROM PUBLIC;

COMMENT ON FUNCTION connwatch.reset_ledgers() IS
    'Forget refused connections and session endings';

CREATE FUNCTION connwatch.reset_peaks()
RETURNS void
AS 'MODULE_PATHNAME', 'cw_reset_peaks_function'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

REVOKE ALL ON FUNCTION connwatch.reset_peaks() FROM PUBLIC;

COMMENT ON FUNCTION connwatch.reset_peaks() IS
    'Start the peaks again from the current figures';

-- Whether the ledgers exist: diagnose() and metrics() skip what needs them.
CREATE FUNCTION connwatch.preloaded()
RETURNS boolean
AS 'MODULE_PATHNAME', 'cw_preloaded'
LANGUAGE C VOLATILE PARALLEL SAFE;

REVOKE ALL ON FUNCTION connwatch.preloaded() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION connwatch.preloaded() TO pg_monitor;

COMMENT ON FUNCTION connwatch.preloaded() IS
    'Whether pg_connwatch was loaded by shared_preload_libraries, so that its ledgers and history exist';

--
-- The diagnose layer: findings that join the observe views and the remember
-- layer's ledgers into what an application developer can act on.  Plain SQL
-- over the C-backed views; its thresholds are settings the library defines
-- (connwatch.diagnose_*).  Without the library preloaded the checks that
-- read the ledgers are skipped, and one info row says so.
--
CREATE FUNCTION connwatch.diagnose(
    OUT severity text,
    OUT code text,
    OUT subject text,
    OUT finding text,
    OUT evidence jsonb,
    OUT client_symptom text,
    OUT advice text,
    OUT needs_preload boolean
)
RETURNS SETOF record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
-- planned once per session: the thresholds are parameters of one plan;
-- and never JIT-compiled, which would cost more than the whole run
SET plan_cache_mode = force_generic_plan
SET jit = off
AS $diagnose$
DECLARE
    -- preloaded() also loads the library, which defines the settings below
    preloaded CONSTANT boolean := connwatch.preloaded();
    win CONSTANT interval := current_setting('connwatch.diagnose_window')::interval;
    iit_setting CONSTANT text := current_setting('connwatch.diagnose_idle_in_transaction');
    iit_after CONSTANT interval := iit_setting::interval;
    horizon_after CONSTANT interval := current_setting('connwatch.diagnose_horizon_age')::interval;
    xmin_after CONSTANT integer := current_setting('connwatch.diagnose_xmin_age')::integer;
    churn_rate CONSTANT float8 := current_setting('connwatch.diagnose_churn_rate')::float8;
    net_idle CONSTANT interval := current_setting('connwatch.diagnose_network_idle_timeout')::interval;
    sample_every CONSTANT interval := COALESCE(current_setting('connwatch.sample_interval', true), '1s')::interval;
    named_apps CONSTANT integer := COALESCE(current_setting('connwatch.history_applications', true), '5')::integer;
    -- an idle-in-transaction session heads a lock chain once idle this long
    head_after CONSTANT interval := LEAST(iit_after, interval '5 s');
    t0 CONSTANT timestamptz := clock_timestamp();
    -- a backend_start in the advice's SQL: ISO 8601 in UTC, read the same
    -- whatever the DateStyle and TimeZone of the session it is pasted into
    iso CONSTANT text := 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"';
    -- what a client sees on its next use of a connection the server ended
    closed_text CONSTANT text :=
        'psycopg2.OperationalError: server closed the connection unexpectedly'
        || E'\n\tThis probably means the server terminated abnormally'
        || E'\n\tbefore or while processing the request.'
        || E'\nsqlalchemy.exc.OperationalError: (psycopg2.OperationalError) server closed the connection unexpectedly'
        || E'\nsqlalchemy.exc.PendingRollbackError: Can''t reconnect until invalid transaction is rolled back.'
        || E'\nJDBC: org.postgresql.util.PSQLException: An I/O error occurred while sending to the backend. / This connection has been closed.';
    pool_text CONSTANT text :=
        'sqlalchemy.exc.TimeoutError: QueuePool limit of size <pool_size> overflow <max_overflow> reached, connection timed out, timeout <pool_timeout>'
        || E'\nJDBC (HikariCP): java.sql.SQLTransientConnectionException: <pool> - Connection is not available, request timed out after <n>ms.';
    -- libpq 14 and later; libpq 13 starts the message at FATAL
    libpq_prefix CONSTANT text :=
        'psycopg2.OperationalError: connection to server at "<host>", port <port> failed: ';
BEGIN
    RETURN QUERY
    WITH
    iit AS MATERIALIZED (
        SELECT * FROM connwatch.idle_in_transaction()
    ),
    summary AS MATERIALIZED (
        SELECT * FROM connwatch.connection_summary()
    ),
    limits AS MATERIALIZED (
        SELECT * FROM connwatch.connection_limits()
    ),
    -- who blocks whom, among sessions in a transaction (for CW130's chains)
    in_xact AS MATERIALIZED (
        SELECT t.pid, t.blocking FROM connwatch.long_transactions(interval '0') AS t
        WHERE cardinality(t.blocking) > 0
          AND EXISTS (SELECT 1 FROM iit AS i
                      WHERE cardinality(i.blocking) > 0 AND i.idle_for >= head_after)
    ),
    -- per application: its sessions now, and the role and database it uses most
    apps AS (
        SELECT s.application_name,
               sum(s.total)::integer AS total,
               sum(s.waiting)::integer AS waiting,
               sum(s.idle)::integer AS idle,
               sum(s.idle_in_transaction + s.idle_in_transaction_aborted)::integer AS idle_in_transaction,
               (array_agg(s.usename ORDER BY s.total DESC))[1] AS usename,
               (array_agg(s.datname ORDER BY s.total DESC))[1] AS datname
        FROM summary AS s
        WHERE s.application_name <> ''
        GROUP BY s.application_name
    ),
    -- what holds the xmin horizon back for long (the view's columns, unsorted)
    held AS MATERIALIZED (
        SELECT h.holder_type, COALESCE(p.gid, h.holder) AS holder, h.pid,
               h.datname, h.usename, h.application_name, h.state, h.xmin,
               h.xmin_age, COALESCE(p.prepared, h.since) AS since
        FROM connwatch.xmin_horizon() AS h
        LEFT JOIN pg_prepared_xacts AS p
          ON h.holder_type = 'prepared_transaction' AND p.transaction = h.xmin
        WHERE h.xmin_age >= xmin_after
           OR (COALESCE(p.prepared, h.since) <= t0 - horizon_after
               AND h.holder_type IN ('backend', 'prepared_transaction'))
    ),
    -- the remember layer: empty, and never called, without the library
    -- preloaded.  Its views show names printable already (they came from
    -- startup packets), and so do the live views query text; the live views
    -- show names as pg_stat_activity does, and every finding below renders
    -- those with connwatch.printable().
    refusals AS (
        SELECT r.*,
               -- who asked, as a key that joins by hashing
               COALESCE(r.application_name, '') AS app_key,
               COALESCE(r.usename::text, '') AS role_key
        FROM connwatch.refused_connections() AS r
        WHERE preloaded AND r.last_at >= t0 - win
    ),
    endings AS MATERIALIZED (
        SELECT e.datname, e.usename, e.application_name, e.reason, e.policy,
               e.count, e.first_at, e.last_at, e.in_transaction,
               e.transaction_warnings, e.last_in_transaction_at,
               e.last_transaction_warning_at, e.overflow,
               -- sessions shorter than a second
               e.lifetime_buckets[1] + e.lifetime_buckets[2] AS short
        FROM connwatch.session_endings() AS e
        WHERE preloaded AND e.last_at >= t0 - win
    ),
    -- CW102's candidates, cheap to find: applications none of whose
    -- connections is idle (a pool that still has one is not exhausted: a
    -- warmed-up QueuePool or HikariCP pool is flat at its size), some
    -- waiting or idle in a transaction, while no limit they use is full,
    -- on a server whose history reaches back to the start of the window.
    -- Only these have their history read; no more than the history names
    -- in a sample.
    plateau_candidates AS MATERIALIZED (
        SELECT a.*
        FROM apps AS a
        WHERE preloaded
          AND a.total >= 2 AND a.idle = 0
          AND a.waiting + a.idle_in_transaction > 0
          AND EXISTS (SELECT 1 FROM limits AS l WHERE l.scope = 'server' AND l.status = 'ok')
          AND NOT EXISTS (SELECT 1 FROM limits AS l
                          WHERE l.headroom = 0
                            AND ((l.scope = 'role' AND l.name = a.usename)
                              OR (l.scope = 'database' AND l.name = a.datname)))
          AND EXISTS (SELECT 1 FROM connwatch.history(t0 - win, t0 - win + 2 * sample_every))
        ORDER BY a.total DESC
        LIMIT named_apps
    ),
    -- each candidate's connections in every sample of the window (NULL where
    -- it was not among the named applications), in one pass over the history
    plateaus AS (
        SELECT c.application_name,
               min(h.application_connections[x.i]) AS level,
               max(h.application_connections[x.i]) AS hi,
               count(x.i) AS samples, count(*) AS taken
        FROM connwatch.history(t0 - win, 'infinity') AS h
        CROSS JOIN plateau_candidates AS c
        CROSS JOIN LATERAL (SELECT array_position(h.applications[1:named_apps],
                                                  c.application_name) AS i) AS x
        WHERE EXISTS (SELECT 1 FROM plateau_candidates)
        GROUP BY c.application_name
    ),
    -- CW102's evidence that a candidate's pool is stuck, not just busy: its
    -- client sessions idle in a transaction for at least
    -- connwatch.diagnose_idle_in_transaction (so in every sample of that
    -- time), or running a statement that long and blocked now by another
    -- session's lock.  A busy, healthy pool is flat at its size too, and at
    -- any instant has no idle connection and some between two statements of
    -- a transaction or in a short lock wait; it has no session stuck that
    -- long.
    plateau_stuck AS (
        SELECT s.application_name,
               count(*) FILTER (WHERE s.state <> 'active')::integer AS idle_in_transaction,
               count(*) FILTER (WHERE s.state = 'active')::integer AS waiting,
               max(s.state_age) AS longest
        FROM connwatch.sessions() AS s
        WHERE EXISTS (SELECT 1 FROM plateau_candidates)
          AND s.backend_type = 'client backend'
          AND s.application_name IN (SELECT c.application_name FROM plateau_candidates AS c)
          AND s.state_age >= iit_after
          AND (s.state IN ('idle in transaction', 'idle in transaction (aborted)')
               OR (s.state = 'active' AND s.wait_event_type = 'Lock'
                   AND cardinality(s.blocked_by) > 0))
        GROUP BY s.application_name
    ),
    -- refusals by cause and by who asked
    refusal_groups AS MATERIALIZED (
        SELECT c.cause, c.app_key, c.role_key,
               min(c.application_name) AS application_name,
               min(c.usename) AS usename, min(c.datname) AS datname,
               sum(c.count::float8)::bigint AS n,
               min(c.first_at) AS first_at, max(c.last_at) AS last_at
        FROM refusals AS c
        GROUP BY c.cause, c.app_key, c.role_key
        -- psql hangs up once at the password prompt before it asks: a few are normal
        HAVING c.cause <> 'authentication abandoned' OR sum(c.count::float8) >= 10
    ),
    -- the five largest groups of each cause (a bounded sort per cause, not
    -- a sort of every group)
    refusal_top AS (
        SELECT t.*
        FROM (SELECT DISTINCT g.cause FROM refusal_groups AS g) AS k
        CROSS JOIN LATERAL (
            SELECT g.* FROM refusal_groups AS g
            WHERE g.cause = k.cause
            ORDER BY g.n DESC, g.app_key COLLATE "C", g.role_key COLLATE "C"
            LIMIT 5
        ) AS t
    ),
    -- and the addresses they came from
    refusal_addrs AS (
        SELECT c.cause, c.app_key, c.role_key,
               string_agg(DISTINCT host(c.client_addr), ', ') AS addrs,
               jsonb_agg(DISTINCT host(c.client_addr)) AS addr_list
        FROM refusals AS c
        JOIN refusal_top AS t USING (cause, app_key, role_key)
        WHERE c.client_addr IS NOT NULL
        GROUP BY c.cause, c.app_key, c.role_key
    ),
    -- what a refused client sees, and what to do, by cause
    refusal_text (cause, code, severity, symptom, fix) AS (
        VALUES
        ('too many clients', 'CW110', 'critical',
         libpq_prefix || 'FATAL:  sorry, too many clients already'
         || E'\nJDBC: org.postgresql.util.PSQLException: FATAL: sorry, too many clients already',
         'Every connection slot was taken. Find who holds them (connwatch.connection_summary, CW101, CW103); put a pooler in front of many processes; give each application role a CONNECTION LIMIT so that one cannot take every slot.'),
        ('reserved slots', 'CW111', 'critical',
         libpq_prefix || 'FATAL:  remaining connection slots are reserved for non-replication superuser connections'
         || E'\n(16 and later) ' || libpq_prefix || 'FATAL:  remaining connection slots are reserved for roles with the SUPERUSER attribute'
         || E'\n(17 and later, with reserved_connections) ' || libpq_prefix || 'FATAL:  remaining connection slots are reserved for roles with privileges of the "pg_use_reserved_connections" role',
         'Every ordinary slot was taken. Find who holds them (connwatch.connection_summary, CW101, CW103); size the pools so that their sum, times the worker processes, stays below max_connections - superuser_reserved_connections.'),
        ('role limit', 'CW112', 'critical',
         libpq_prefix || 'FATAL:  too many connections for role "<role>"'
         || E'\nJDBC: org.postgresql.util.PSQLException: FATAL: too many connections for role "<role>"',
         'The role''s pools outgrew its CONNECTION LIMIT: pool_size + max_overflow, times the worker processes of every application logging in as the role, must fit below it; or raise it (ALTER ROLE ... CONNECTION LIMIT). Leaked sessions (CW101) fill it too.'),
        ('database limit', 'CW113', 'critical',
         libpq_prefix || 'FATAL:  too many connections for database "<database>"',
         'The pools of the applications on the database outgrew its CONNECTION LIMIT: size them to fit, or raise it (ALTER DATABASE ... CONNECTION LIMIT).'),
        ('role does not exist', 'CW114', 'warning',
         libpq_prefix || 'FATAL:  role "<role>" does not exist',
         'A client is configured with a role that does not exist: fix its connection string (DATABASE_URL), or create the role.'),
        ('role not permitted to log in', 'CW114', 'warning',
         libpq_prefix || 'FATAL:  role "<role>" is not permitted to log in',
         'The role has NOLOGIN: use a login role in the client, or ALTER ROLE ... LOGIN.'),
        ('database does not exist', 'CW114', 'warning',
         libpq_prefix || 'FATAL:  database "<database>" does not exist',
         'A client asks for a database that does not exist: fix its connection string.'),
        ('database not accepting connections', 'CW114', 'warning',
         libpq_prefix || 'FATAL:  database "<database>" is not currently accepting connections',
         'The database has ALLOW_CONNECTIONS false: point the client elsewhere, or ALTER DATABASE ... ALLOW_CONNECTIONS true.'),
        ('no CONNECT privilege', 'CW114', 'warning',
         libpq_prefix || 'FATAL:  permission denied for database "<database>"',
         'GRANT CONNECT ON DATABASE ... TO the role, or fix the client''s role.'),
        ('rejected by pg_hba.conf', 'CW114', 'warning',
         libpq_prefix || 'FATAL:  pg_hba.conf rejects connection for host "<addr>", user "<role>", database "<database>"'
         || E'\n' || libpq_prefix || 'FATAL:  no pg_hba.conf entry for host "<addr>", user "<role>", database "<database>"',
         'No pg_hba.conf line lets this client in: add one (and SELECT pg_reload_conf()), or stop the client.'),
        ('authentication failed', 'CW114', 'warning',
         libpq_prefix || 'FATAL:  password authentication failed for user "<role>"',
         'Wrong credentials: fix the client''s password (a rotated secret not rolled out everywhere), or look for someone guessing.'),
        ('authentication abandoned', 'CW114', 'warning',
         libpq_prefix || 'fe_sendauth: no password supplied',
         'Clients connect without the password the server asks for: give them one (PGPASSWORD, .pgpass, the connection string).'),
        ('server starting up', 'CW115', 'warning',
         libpq_prefix || 'FATAL:  the database system is starting up',
         'Clients tried while the server started (or recovered from a crash): retry with backoff (pool_pre_ping, connect retries); look in the server log for why it restarted.'),
        ('server shutting down', 'CW115', 'warning',
         libpq_prefix || 'FATAL:  the database system is shutting down',
         'Clients tried while the server was stopping: retry with backoff; stop the applications first when planned.'),
        ('server not yet accepting', 'CW115', 'warning',
         libpq_prefix || 'FATAL:  the database system is not yet accepting connections',
         'Clients tried a server still in recovery (a standby without hot_standby, or one catching up): retry with backoff, or point them at the primary.'),
        ('other', 'CW119', 'warning',
         libpq_prefix || 'FATAL:  <message>',
         'Look in the server log at the time of the refusals for the FATAL message.')
    ),
    -- what a client sees on the next use of a pooled connection the server ended
    ending_text (reason, fatal) AS (
        VALUES
        ('idle-in-transaction timeout', 'FATAL:  terminating connection due to idle-in-transaction timeout'),
        ('idle-session timeout', 'FATAL:  terminating connection due to idle-session timeout'),
        ('transaction timeout', 'FATAL:  terminating connection due to transaction timeout'),
        ('terminated by connwatch', 'FATAL:  terminating connection due to administrator command'),
        ('terminated by another session', 'FATAL:  terminating connection due to administrator command')
    ),
    findings AS (
    -- CW101: sessions idle in a transaction for long, per application
    SELECT CASE WHEN l.n >= 5 OR l.blocked > 0 THEN 'critical' ELSE 'warning' END AS severity,
           'CW101' AS code,
           l.subject,
           format('%s session%s of application "%s" (role "%s", database "%s") %s idle in a transaction for up to %s (threshold %s): a Session or connection checked out and never committed, rolled back or closed%s. The longest last ran: %s',
                  l.n, CASE WHEN l.n = 1 THEN '' ELSE 's' END,
                  l.application_name, l.usename, l.datname,
                  CASE WHEN l.n = 1 THEN 'has sat' ELSE 'have sat' END,
                  date_trunc('second', l.longest), iit_setting,
                  CASE WHEN l.blocked > 0
                       THEN format(', and %s other session%s for their locks', l.blocked,
                                   CASE WHEN l.blocked = 1 THEN ' waits' ELSE 's wait' END)
                       ELSE '' END,
                  left(COALESCE(l.last_query, '(hidden)'), 200)) AS finding,
           jsonb_build_object('application', l.application_name, 'role', l.usename,
                              'database', l.datname, 'sessions', l.n,
                              'longest_idle_s', round(extract(epoch FROM l.longest)::numeric, 1),
                              'pids', l.pids, 'sessions_waiting_on_them', l.blocked,
                              'last_query', l.last_query,
                              'threshold_s', round(extract(epoch FROM iit_after)::numeric, 1)) AS evidence,
           pool_text
           || E'\nsqlalchemy.exc.PendingRollbackError: This Session''s transaction has been rolled back due to a previous exception during flush.'
           || E'\n(once idle_in_transaction_session_timeout ends them, on the next use) sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) server closed the connection unexpectedly' AS client_symptom,
           '-- In the application: end every Session and connection ("with Session(engine) as session:", "with engine.begin() as conn:", or scoped_session.remove() in Flask''s teardown_appcontext) and commit or roll back before slow work.'
           || format(E'\n-- On the server, this ends exactly these %s session%s now (one that has ended since, or whose pid was reused, is left alone):',
                     l.n, CASE WHEN l.n = 1 THEN '' ELSE 's' END)
           || format(E'\nSELECT connwatch.terminate_backend(s.pid, s.backend_start, %L) FROM (VALUES %s) AS s(pid, backend_start);',
                     'diagnose CW101', l.identities)
           || E'\n-- and this, once you choose to, ends such sessions of the role in this database from their next login on:'
           || CASE WHEN l.role_ident IS NOT NULL AND l.database_ident IS NOT NULL
                   THEN format(E'\n-- ALTER ROLE %s IN DATABASE %s SET idle_in_transaction_session_timeout = %L;',
                               l.role_ident, l.database_ident, iit_setting)
                   ELSE E'\n-- ALTER ROLE ... IN DATABASE ... SET idle_in_transaction_session_timeout = ...; (the role or database name cannot be written in this encoding)' END AS advice,
           false AS needs_preload,
           l.n::float8 AS weight
    -- one finding per application, role and database: the advice acts on
    -- the sessions found, each by (pid, backend_start), and nothing else
    FROM (SELECT CASE WHEN i.application_name <> ''
                      THEN format('application "%s"', connwatch.printable(i.application_name))
                      ELSE format('role "%s"', connwatch.printable(i.usename)) END AS subject,
                 connwatch.printable(i.application_name) AS application_name,
                 connwatch.printable(i.usename) AS usename,
                 connwatch.printable(i.datname) AS datname,
                 connwatch.printable_ident(i.usename) AS role_ident,
                 connwatch.printable_ident(i.datname) AS database_ident,
                 count(*)::integer AS n,
                 max(i.idle_for) AS longest,
                 (array_agg(i.query ORDER BY i.idle_for DESC))[1] AS last_query,
                 array_agg(i.pid ORDER BY i.idle_for DESC) AS pids,
                 string_agg(format('(%s, %L::timestamptz)', i.pid,
                                   to_char(i.backend_start AT TIME ZONE 'UTC', iso)),
                            ', ' ORDER BY i.idle_for DESC, i.pid) AS identities,
                 sum(cardinality(i.blocking))::integer AS blocked
          FROM iit AS i
          WHERE i.idle_for >= iit_after
          GROUP BY i.application_name, i.usename, i.datname) AS l

    UNION ALL
    -- CW102: an application's connections flat at their peak for the whole
    -- window, none idle, and some of them stuck (plateau_stuck) while every
    -- limit has room.  Critical when every connection of the pool is stuck:
    -- then no request gets one, and the client's pool times out.
    SELECT CASE WHEN st.idle_in_transaction + st.waiting >= p.level
                THEN 'critical' ELSE 'warning' END,
           'CW102',
           format('application "%s"', connwatch.printable(a.application_name)),
           format('Application "%s" has held exactly %s connections for the last %s, none of them idle now, and %s of them have been stuck for at least %s (%s idle in a transaction, %s in a statement blocked by another session''s lock; the longest for %s), while the server has %s free slots: %s',
                  connwatch.printable(a.application_name), p.level, win,
                  st.idle_in_transaction + st.waiting, iit_setting,
                  st.idle_in_transaction, st.waiting,
                  date_trunc('second', st.longest), srv.headroom,
                  CASE WHEN st.idle_in_transaction + st.waiting >= p.level
                       THEN 'every connection of the application''s pool is stuck, so its requests wait in the client until the pool times out'
                       ELSE format('the application''s pool works with %s of its %s connections, and its requests queue in the client when they are busy',
                                   p.level - st.idle_in_transaction - st.waiting, p.level) END),
           jsonb_build_object('application', connwatch.printable(a.application_name),
                              'role', connwatch.printable(a.usename),
                              'database', connwatch.printable(a.datname), 'connections', p.level,
                              'peak', p.hi, 'samples', p.samples,
                              'window_s', round(extract(epoch FROM win)::numeric, 1),
                              'stuck_idle_in_transaction', st.idle_in_transaction,
                              'stuck_waiting', st.waiting,
                              'stuck_for_s', round(extract(epoch FROM st.longest)::numeric, 1),
                              'stuck_after_s', round(extract(epoch FROM iit_after)::numeric, 1),
                              'waiting', a.waiting,
                              'idle_in_transaction', a.idle_in_transaction,
                              'server_headroom', srv.headroom),
           pool_text,
           '-- In the application: find what holds the pool''s connections, leaked Sessions (CW101) or lock waits (CW130):'
           || CASE WHEN connwatch.printable_literal(a.application_name) IS NOT NULL
                   THEN format(E'\nSELECT * FROM connwatch.sessions WHERE application_name = %s;',
                               connwatch.printable_literal(a.application_name))
                   ELSE '' END
           || E'\n-- Raise pool_size or max_overflow only if the role and the server have room for pool_size + max_overflow times the worker processes. On the server nothing is full; idle_in_transaction_session_timeout and lock_timeout free connections that are stuck.',
           true,
           a.total::float8
    FROM plateau_candidates AS a
    JOIN plateaus AS p ON p.application_name = a.application_name
    JOIN plateau_stuck AS st ON st.application_name = a.application_name
    CROSS JOIN (SELECT l.headroom FROM limits AS l WHERE l.scope = 'server') AS srv
    WHERE p.level = p.hi AND p.level = a.total
      AND p.samples = p.taken AND p.taken >= 2

    UNION ALL
    -- CW103 to CW106: a connection limit near or at full
    SELECT CASE WHEN lim.status = 'critical' OR lim.headroom = 0 OR lim.scope = 'reserved'
                THEN 'critical' ELSE 'warning' END,
           CASE lim.scope WHEN 'server' THEN 'CW103' WHEN 'reserved' THEN 'CW104'
                          WHEN 'role' THEN 'CW105' ELSE 'CW106' END,
           CASE WHEN lim.scope IN ('server', 'reserved') THEN 'server'
                ELSE format('%s "%s"', lim.scope, connwatch.printable(lim.name)) END,
           CASE lim.scope
           WHEN 'server' THEN
               format('%s of the %s connection slots ordinary roles may use are taken (%s%%)%s; the busiest applications: %s',
                      lim.used, lim.max, lim.pct_used,
                      CASE WHEN lim.headroom = 0 THEN ': the next ordinary login is refused' ELSE '' END,
                      COALESCE(top.list, '(hidden)'))
           WHEN 'reserved' THEN
               format('%s of the %s reserved connection slots are in use: every ordinary slot is taken, so ordinary roles are refused, and %s more connection%s will make the server refuse everybody; the busiest applications: %s',
                      lim.used, lim.max, lim.headroom,
                      CASE WHEN lim.headroom = 1 THEN '' ELSE 's' END,
                      COALESCE(top.list, '(hidden)'))
           ELSE
               format('%s "%s" uses %s of its CONNECTION LIMIT %s (%s%%)%s; its applications: %s',
                      initcap(lim.scope), connwatch.printable(lim.name), lim.used, lim.max, lim.pct_used,
                      CASE WHEN lim.headroom = 0 THEN ': its next login is refused' ELSE '' END,
                      COALESCE(top.list, '(hidden)'))
           END,
           jsonb_build_object('scope', lim.scope, 'used', lim.used, 'max', lim.max,
                              'headroom', lim.headroom, 'pct_used', lim.pct_used,
                              'applications', COALESCE(top.counts, '{}'))
           || CASE lim.scope WHEN 'role' THEN jsonb_build_object('role', connwatch.printable(lim.name))
                             WHEN 'database' THEN jsonb_build_object('database', connwatch.printable(lim.name))
                             ELSE '{}' END,
           CASE lim.scope
           WHEN 'role' THEN
               libpq_prefix || format('FATAL:  too many connections for role "%s"', connwatch.printable(lim.name))
               || format(E'\nJDBC: org.postgresql.util.PSQLException: FATAL: too many connections for role "%s"', connwatch.printable(lim.name))
           WHEN 'database' THEN
               libpq_prefix || format('FATAL:  too many connections for database "%s"', connwatch.printable(lim.name))
           ELSE
               libpq_prefix || 'FATAL:  remaining connection slots are reserved for non-replication superuser connections'
               || E'\n(16 and later) ' || libpq_prefix || 'FATAL:  remaining connection slots are reserved for roles with the SUPERUSER attribute'
               || E'\n' || libpq_prefix || 'FATAL:  sorry, too many clients already'
               || E'\nJDBC: org.postgresql.util.PSQLException: FATAL: sorry, too many clients already'
           END || E'\n(applications whose pools wait for a connection) ' || pool_text,
           CASE lim.scope
           WHEN 'role' THEN
               format('Size the pools of role "%s" to fit: pool_size + max_overflow, times the worker processes of every application logging in as it, must stay below %s; or raise the role''s CONNECTION LIMIT (ALTER ROLE). Look for leaked sessions first (CW101).',
                      connwatch.printable(lim.name), lim.max)
           WHEN 'database' THEN
               format('Size the pools of the applications on database "%s" to fit below %s, or raise the database''s CONNECTION LIMIT (ALTER DATABASE). Look for leaked sessions first (CW101).',
                      connwatch.printable(lim.name), lim.max)
           ELSE
               'Find who holds the slots (SELECT * FROM connwatch.connection_summary): leaked sessions (CW101) and pools larger than needed; put a pooler (PgBouncer) in front of many application processes; give each application role a CONNECTION LIMIT so that one cannot take every slot; raise max_connections only with the memory for it.'
           END,
           false,
           lim.pct_used::float8
    FROM limits AS lim
    LEFT JOIN LATERAL (
        SELECT string_agg(format('%s (%s)', connwatch.printable(t.application_name), t.n), ', '
                          ORDER BY t.n DESC, t.application_name) AS list,
               jsonb_object_agg(connwatch.printable(t.application_name), t.n) AS counts
        FROM (SELECT s.application_name, sum(s.total)::integer AS n
              FROM summary AS s
              WHERE s.application_name IS NOT NULL
                AND (lim.scope IN ('server', 'reserved')
                     OR (lim.scope = 'role' AND s.usename = lim.name)
                     OR (lim.scope = 'database' AND s.datname = lim.name))
              GROUP BY s.application_name
              ORDER BY n DESC, s.application_name
              LIMIT 3) AS t
    ) AS top ON true
    WHERE (lim.scope = 'reserved' AND lim.used > 0)
       OR (lim.scope <> 'reserved' AND lim.status <> 'ok')

    UNION ALL
    -- CW110 to CW119: connections refused in the window, by cause and by who asked
    SELECT r.severity, r.code,
           CASE WHEN r.application_name <> '' THEN format('application "%s"', r.application_name)
                WHEN r.usename IS NOT NULL THEN format('role "%s"', r.usename)
                ELSE format('cause "%s"', r.cause) END,
           format('%s connection attempt%s refused (%s) since %s, the last at %s, claiming %s, from %s',
                  r.n, CASE WHEN r.n = 1 THEN ' was' ELSE 's were' END, r.cause,
                  date_trunc('second', r.first_at), date_trunc('second', r.last_at),
                  COALESCE(NULLIF(concat_ws(', ',
                      CASE WHEN r.application_name <> '' THEN format('application "%s"', r.application_name) END,
                      CASE WHEN r.usename IS NOT NULL THEN format('role "%s"', r.usename) END,
                      CASE WHEN r.datname IS NOT NULL THEN format('database "%s"', r.datname) END), ''),
                      'nothing'),
                  COALESCE(r.addrs, 'the local socket')),
           jsonb_build_object('cause', r.cause, 'application', r.application_name,
                              'role', r.usename, 'database', r.datname,
                              'count', r.n, 'first_at', r.first_at, 'last_at', r.last_at,
                              'client_addrs', COALESCE(r.addr_list, '[]')),
           r.symptom || CASE WHEN r.code IN ('CW110', 'CW111', 'CW112', 'CW113')
                             THEN E'\n(pools that cannot grow) ' || pool_text ELSE '' END,
           r.fix, true, r.n::float8
    FROM (SELECT g.cause, g.application_name, g.usename, g.n, g.first_at, g.last_at,
                 g.datname, d.addrs, d.addr_list, m.code, m.severity, m.symptom, m.fix
          FROM refusal_top AS g
          JOIN refusal_text AS m ON m.cause = g.cause
          LEFT JOIN refusal_addrs AS d
            ON d.cause = g.cause AND d.app_key = g.app_key AND d.role_key = g.role_key) AS r

    UNION ALL
    -- CW120 to CW123: the xmin horizon held back for long, by what
    SELECT CASE WHEN x.xmin_age >= xmin_after THEN 'critical' ELSE 'warning' END,
           CASE x.holder_type WHEN 'backend' THEN 'CW120'
                              WHEN 'prepared_transaction' THEN 'CW121'
                              WHEN 'walsender_feedback' THEN 'CW123'
                              ELSE 'CW122' END,
           CASE x.holder_type WHEN 'backend' THEN format('pid %s', x.pid)
                              WHEN 'prepared_transaction' THEN format('prepared transaction "%s"', x.holder)
                              WHEN 'walsender_feedback' THEN format('pid %s', x.pid)
                              ELSE format('replication slot "%s"', x.holder) END,
           CASE x.holder_type
           WHEN 'backend' THEN
               format('Session pid %s of application "%s" (role "%s", database "%s", %s) has held the xmin horizon %s transactions back since %s: VACUUM cannot remove any row version deleted since, in any table of any database',
                      x.pid, COALESCE(x.application_name, '(hidden)'), x.usename, x.datname,
                      COALESCE(x.state, 'state hidden'), x.xmin_age,
                      COALESCE(date_trunc('second', x.since)::text, 'an unknown time'))
           WHEN 'prepared_transaction' THEN
               format('Prepared transaction "%s" (role "%s", database "%s"), prepared at %s and never committed or rolled back, holds the xmin horizon %s transactions back and keeps its locks: typically left behind by a transaction manager or an application that crashed between PREPARE and COMMIT',
                      x.holder, x.usename, x.datname,
                      COALESCE(date_trunc('second', x.since)::text, 'an unknown time'), x.xmin_age)
           WHEN 'walsender_feedback' THEN
               format('Standby feedback through walsender pid %s (application "%s") holds the xmin horizon %s transactions back: a long query on a hot standby with hot_standby_feedback = on',
                      x.pid, COALESCE(x.application_name, '(hidden)'), x.xmin_age)
           ELSE
               format('Replication slot "%s"%s holds the xmin horizon %s transactions back%s',
                      x.holder, CASE WHEN x.datname IS NOT NULL THEN format(' (database "%s")', x.datname) ELSE '' END,
                      x.xmin_age,
                      CASE WHEN x.pid IS NULL THEN ': nothing consumes it'
                           ELSE format(': its consumer (pid %s) is behind', x.pid) END)
           END,
           jsonb_build_object('holder_type', x.holder_type, 'holder', x.holder, 'pid', x.pid,
                              'application', x.application_name, 'role', x.usename,
                              'database', x.datname, 'state', x.state,
                              'xmin_age', x.xmin_age, 'since', x.since,
                              'held_s', round(extract(epoch FROM t0 - x.since)::numeric, 1)),
           'No error at first: tables and indexes bloat and queries slow down; in the end every write fails with'
           || E'\nERROR:  database is not accepting commands to avoid wraparound data loss in database "<database>"'
           || CASE x.holder_type WHEN 'prepared_transaction'
                   THEN E'\nand queries touching its rows wait on its locks (then: ERROR:  canceling statement due to lock timeout)'
                   ELSE '' END,
           CASE x.holder_type
           WHEN 'backend' THEN
               '-- End the transaction: in the application commit or roll back (a leaked Session, a long report in one transaction, a cursor left open).'
               || CASE WHEN b.backend_start IS NOT NULL
                       THEN E'\n-- On the server this ends it now, and nothing else (not a session that reuses its pid):'
                            || format(E'\nSELECT connwatch.terminate_backend(%s, %L::timestamptz, %L);',
                                      x.pid, to_char(b.backend_start AT TIME ZONE 'UTC', iso), 'diagnose CW120')
                       ELSE E'\n-- On the server, end it once its session is found in connwatch.sessions (its start time was not visible).' END
               || E'\n-- idle_in_transaction_session_timeout or a connwatch policy keeps it from coming back.'
           WHEN 'prepared_transaction' THEN
               format('-- Ask the transaction manager whether "%s" committed; then, connected to database %s, run the one it says:',
                      x.holder, COALESCE(x.database_ident, x.datname))
               || CASE WHEN x.holder_literal IS NOT NULL
                       THEN format(E'\n-- COMMIT PREPARED %s;\n-- ROLLBACK PREPARED %s;', x.holder_literal, x.holder_literal)
                       ELSE E'\n-- COMMIT PREPARED ...; or ROLLBACK PREPARED ...; (the GID cannot be written in this encoding)' END
               || E'\n-- If nothing uses two-phase commit, set max_prepared_transactions = 0.'
           WHEN 'walsender_feedback' THEN
               'Shorten the standby''s queries, or set hot_standby_feedback = off there and accept query cancellations (max_standby_streaming_delay).'
           ELSE
               '-- If nothing will consume it again, drop it (otherwise bring its consumer back); max_slot_wal_keep_size bounds what a slot may keep:'
               || format(E'\n-- SELECT pg_drop_replication_slot(%s);', COALESCE(x.holder_literal, '...'))
           END,
           false,
           x.xmin_age::float8
    FROM (SELECT h.holder_type, h.pid, h.xmin, h.xmin_age, h.since,
                 connwatch.printable(h.holder) AS holder,
                 connwatch.printable_literal(h.holder) AS holder_literal,
                 connwatch.printable(h.application_name) AS application_name,
                 connwatch.printable(h.usename) AS usename,
                 connwatch.printable(h.datname) AS datname,
                 connwatch.printable_ident(h.datname) AS database_ident,
                 h.state,
                 row_number() OVER (PARTITION BY h.holder_type = 'backend'
                                    ORDER BY h.since) AS n
          FROM held AS h
          -- of the sessions, those that hold it furthest back (at most
          -- three): the others, lock waiters among them, are held back with it
          WHERE h.holder_type <> 'backend'
             OR h.xmin_age = (SELECT max(b.xmin_age) FROM held AS b
                              WHERE b.holder_type = 'backend')) AS x
    -- the session's start, so that the advice cannot reach a reused pid:
    -- read again, so the session must still hold the same xmin
    LEFT JOIN LATERAL (
        SELECT t.backend_start FROM connwatch.long_transactions(interval '0') AS t
        WHERE x.holder_type = 'backend' AND t.pid = x.pid
          AND (t.backend_xmin = x.xmin OR t.backend_xid = x.xmin)
    ) AS b ON true
    WHERE x.holder_type <> 'backend' OR x.n <= 3

    UNION ALL
    -- CW130: an idle-in-transaction session at the head of a lock chain
    SELECT 'critical', 'CW130', format('pid %s', i.pid),
           format('Session pid %s of application "%s" (role "%s", database "%s") has been idle in a transaction for %s holding locks that %s session%s for directly, %s in all behind it; its last statement: %s',
                  i.pid, connwatch.printable(i.application_name),
                  connwatch.printable(i.usename), connwatch.printable(i.datname),
                  date_trunc('second', i.idle_for), cardinality(i.blocking),
                  CASE WHEN cardinality(i.blocking) = 1 THEN ' waits' ELSE 's wait' END,
                  chain.stuck, left(COALESCE(i.query, '(hidden)'), 200)),
           jsonb_build_object('pid', i.pid, 'backend_start', i.backend_start,
                              'application', connwatch.printable(i.application_name),
                              'role', connwatch.printable(i.usename),
                              'database', connwatch.printable(i.datname),
                              'idle_s', round(extract(epoch FROM i.idle_for)::numeric, 1),
                              'waiting', cardinality(i.blocking), 'waiting_pids', i.blocking,
                              'stuck_behind', chain.stuck, 'last_query', i.query),
           'The sessions behind it hang until a timeout:'
           || E'\npsycopg2.errors.LockNotAvailable: canceling statement due to lock timeout'
           || E'\npsycopg2.errors.QueryCanceled: canceling statement due to statement timeout'
           || E'\n(their pools then run dry) ' || pool_text,
           '-- End the transaction that holds the locks; this ends it now, and nothing else (not a session that reuses its pid):'
           || format(E'\nSELECT connwatch.terminate_backend(%s, %L::timestamptz, %L);',
                     i.pid, to_char(i.backend_start AT TIME ZONE 'UTC', iso), 'diagnose CW130')
           || E'\n-- In the application, commit before slow work (HTTP calls, user think time) and close every Session; on the server idle_in_transaction_session_timeout and lock_timeout bound the damage.',
           false,
           chain.stuck::float8
    FROM iit AS i
    -- everything stuck behind the head: waiters, their waiters, and so on
    CROSS JOIN LATERAL (
        WITH RECURSIVE behind(pid) AS (
            SELECT unnest(i.blocking)
            UNION
            SELECT unnest(w.blocking)
            FROM behind AS b
            JOIN in_xact AS w ON w.pid = b.pid
        )
        SELECT count(*)::integer AS stuck FROM behind
    ) AS chain
    WHERE cardinality(i.blocking) > 0 AND i.idle_for >= head_after

    UNION ALL
    -- CW140: churn, many sub-second sessions per second from one application
    SELECT 'warning', 'CW140',
           CASE WHEN COALESCE(c.application_name, '') <> '' THEN format('application "%s"', c.application_name)
                ELSE format('role "%s"', c.usename) END,
           format('Application "%s" (role "%s", database "%s") opened and closed %s sessions that lasted under a second between %s and %s, %s per second: it connects per request instead of keeping a pool',
                  COALESCE(c.application_name, '(hidden)'), c.usename, c.datname, c.short,
                  date_trunc('second', c.first_at), date_trunc('second', c.last_at),
                  round(c.rate::numeric, 1)),
           jsonb_build_object('application', c.application_name, 'role', c.usename,
                              'database', c.datname, 'short_sessions', c.short,
                              'sessions', c.n, 'per_second', round(c.rate::numeric, 1),
                              'first_at', c.first_at, 'last_at', c.last_at),
           'No error at first: every request pays a connection (a process fork and authentication) and latency grows; under load the bursts become refusals:'
           || E'\n' || libpq_prefix || 'FATAL:  sorry, too many clients already'
           || E'\n' || libpq_prefix || 'could not fork new process for connection: Resource temporarily unavailable',
           'Keep connections: create one engine per process at start-up and reuse it (SQLAlchemy''s default QueuePool; not NullPool, not create_engine() or engine.dispose() per request); with many short-lived processes put PgBouncer in front.',
           true,
           c.rate
    FROM (SELECT min(e.application_name) AS application_name,
                 min(e.usename) AS usename, min(e.datname) AS datname,
                 sum(e.count::float8)::bigint AS n,
                 sum(e.short::float8)::bigint AS short,
                 min(e.first_at) AS first_at, max(e.last_at) AS last_at,
                 sum(e.short::float8)
                     / GREATEST(extract(epoch FROM max(e.last_at) - min(e.first_at))::float8, 1) AS rate
          FROM endings AS e
          WHERE NOT e.overflow AND e.short > 0
          GROUP BY e.application_name,
                   CASE WHEN COALESCE(e.application_name, '') = '' THEN e.usename END) AS c
    WHERE c.short >= 20 AND c.rate >= churn_rate

    UNION ALL
    -- CW150: sessions the server ended, whose pooled connections fail on next use
    SELECT 'warning', 'CW150',
           CASE WHEN COALESCE(e.application_name, '') <> '' THEN format('application "%s"', e.application_name)
                ELSE format('role "%s"', e.usename) END,
           format('%s session%s of application "%s" (role "%s", database "%s") %s ended by the server (%s%s) since %s, the last at %s: %s',
                  e.count, CASE WHEN e.count = 1 THEN '' ELSE 's' END,
                  COALESCE(e.application_name, '(hidden)'), e.usename, e.datname,
                  CASE WHEN e.count = 1 THEN 'was' ELSE 'were' END, e.reason,
                  CASE WHEN e.policy IS NOT NULL THEN format(', policy "%s"', e.policy) ELSE '' END,
                  date_trunc('second', e.first_at), date_trunc('second', e.last_at),
                  -- a connection cut inside a transaction was checked out:
                  -- the application's next statement fails, validated pool
                  -- or not; one cut while idle in the pool fails only where
                  -- the pool hands it out untested
                  CASE WHEN e.reason IN ('idle-in-transaction timeout', 'transaction timeout')
                            OR e.in_transaction >= e.count
                       THEN 'they were in a transaction, checked out of the application''s pool, so its next statement on each failed, whatever the pool does'
                       ELSE CASE WHEN e.in_transaction > 0
                                 THEN format('%s of them were in a transaction, and the application''s next statement there failed; of the others, idle in the pool, ',
                                             e.in_transaction)
                                 ELSE 'they were idle in the pool: ' END
                            || 'a pool that hands such a connection out again without testing it (SQLAlchemy without pool_pre_ping, psycopg2''s own pools) fails on its next use, and one that validates connections (pool_pre_ping, psycopg_pool with check, HikariCP, asyncpg, PgBouncer) replaces it without an error'
                  END),
           jsonb_build_object('application', e.application_name, 'role', e.usename,
                              'database', e.datname, 'reason', e.reason, 'policy', e.policy,
                              'sessions', e.count, 'in_transaction', e.in_transaction,
                              'first_at', e.first_at, 'last_at', e.last_at),
           closed_text
           || E'\n(psql, which reads the server''s last message, shows the reason first) ' || t.fatal
           || E'\n(psycopg2 2.8 with libpq 13) ' || substr(t.fatal, 9),
           CASE e.reason
           WHEN 'idle-session timeout' THEN
               'In the application: create_engine(..., pool_pre_ping=True) tests a connection before handing it out, and pool_recycle below idle_session_timeout (in seconds) replaces connections before the server ends them. On the server: idle_session_timeout for this role longer than the pool keeps connections idle, or not set.'
           WHEN 'idle-in-transaction timeout' THEN
               'The timeout ended leaked transactions (see CW101): close or commit every Session; create_engine(..., pool_pre_ping=True) lets the pool replace the connections the server ended.'
           WHEN 'transaction timeout' THEN
               'Transactions ran longer than transaction_timeout: split the work, or raise it for this role; pool_pre_ping=True lets the pool replace the connections the server ended.'
           ELSE
               'Someone (a person, a cron job or a connwatch policy) terminates this application''s sessions: create_engine(..., pool_pre_ping=True) lets the pool replace them transparently; find out why they are terminated (connwatch.terminations, the server log) and fix that cause, typically leaked transactions (CW101).'
           END,
           true,
           e.count::float8
    FROM (SELECT min(e.application_name) AS application_name,
                 min(e.usename) AS usename, min(e.datname) AS datname,
                 e.reason, e.policy,
                 sum(e.count::float8)::bigint AS count,
                 sum(e.in_transaction::float8)::bigint AS in_transaction,
                 min(e.first_at) AS first_at, max(e.last_at) AS last_at
          FROM endings AS e
          WHERE NOT e.overflow
            AND e.reason IN (SELECT t.reason FROM ending_text AS t)
          GROUP BY e.application_name,
                   CASE WHEN COALESCE(e.application_name, '') = '' THEN e.usename END,
                   e.reason, e.policy) AS e
    JOIN ending_text AS t ON t.reason = e.reason

    UNION ALL
    -- CW160, CW161: sessions that ended broken, the fingerprint of a connection
    -- shared by forked processes or of a client killed in the middle of work
    SELECT b.severity, b.code,
           CASE WHEN COALESCE(b.application_name, '') <> '' THEN format('application "%s"', b.application_name)
                ELSE format('role "%s"', b.usename) END,
           CASE b.code
           WHEN 'CW160' THEN
               format('%s session%s of application "%s" (role "%s", database "%s") ended since %s after %s: two processes were using one connection, as happens when a process forks (gunicorn, multiprocessing, Celery) with a pool already open',
                      b.sessions, CASE WHEN b.sessions = 1 THEN '' ELSE 's' END,
                      COALESCE(b.application_name, '(hidden)'), b.usename, b.datname,
                      date_trunc('second', b.first_at),
                      concat_ws(' or ',
                                CASE WHEN b.violations > 0 THEN format('a protocol violation (%s)', b.violations) END,
                                CASE WHEN b.warnings > 0 THEN format('BEGIN inside a transaction or COMMIT outside one (%s)', b.warnings) END))
           ELSE
               format('%s session%s of application "%s" (role "%s", database "%s") ended in the middle of a transaction without a COMMIT or ROLLBACK since %s: the client process was killed, lost its connection, or a forked process closed a connection its parent was using',
                      b.sessions, CASE WHEN b.sessions = 1 THEN '' ELSE 's' END,
                      COALESCE(b.application_name, '(hidden)'), b.usename, b.datname,
                      date_trunc('second', b.first_at))
           END,
           jsonb_build_object('application', b.application_name, 'role', b.usename,
                              'database', b.datname, 'sessions', b.sessions,
                              'protocol_violations', b.violations,
                              'transaction_warnings', b.warnings,
                              'first_at', b.first_at, 'last_at', b.last_at),
           CASE b.code
           WHEN 'CW160' THEN
               'Nonsense errors in different processes at once:'
               || E'\nAttributeError: Could not locate column in row for column ''<column>'' (SQLAlchemy 1.4 and 2.0, row.<column>; 1.3 and ORM rows: sqlalchemy.exc.NoSuchColumnError: Could not locate column in row for column ''<column>'')'
               || E'\nsqlalchemy.exc.ResourceClosedError: This result object does not return rows. It has been closed automatically.'
               || E'\npsycopg2.DatabaseError: error with status PGRES_TUPLES_OK and no message from the libpq'
               || E'\npsycopg2.OperationalError: lost synchronization with server: got message type "<c>", length <n>'
               || E'\npsycopg2.OperationalError: SSL error: decryption failed or bad record mac'
               || E'\n' || closed_text
           ELSE
               'In the process that was using the connection, or the one it shared it with:'
               || E'\n' || closed_text
               || E'\n(gunicorn) [CRITICAL] WORKER TIMEOUT (pid:<pid>)'
           END,
           'Never let two processes use one connection: with gunicorn --preload, Celery or multiprocessing, call engine.dispose(close=False) in each child right after the fork (gunicorn''s post_fork hook, Celery''s worker_process_init signal), or create the engine only after the fork; a psycopg2 connection must not cross os.fork(). Give workers time to finish (graceful_timeout) so that they are not killed mid-transaction.',
           true,
           b.sessions::float8
    FROM (SELECT min(e.application_name) AS application_name,
                 min(e.usename) AS usename, min(e.datname) AS datname,
                 CASE WHEN sum(e.shared) > 0 THEN 'CW160' ELSE 'CW161' END AS code,
                 CASE WHEN sum(e.shared) > 0 THEN 'critical' ELSE 'warning' END AS severity,
                 CASE WHEN sum(e.shared) > 0 THEN sum(e.shared)
                      ELSE sum(e.cut) END AS sessions,
                 sum(e.violations) AS violations,
                 sum(e.warnings) AS warnings,
                 min(e.first_at) AS first_at, max(e.last_at) AS last_at
          FROM (SELECT e.*,
                       -- sessions that broke the protocol, or were sent a
                       -- misplaced BEGIN/COMMIT, within the window
                       CASE WHEN e.reason = 'protocol violation' THEN e.count ELSE 0 END AS violations,
                       CASE WHEN e.last_transaction_warning_at >= t0 - win
                            THEN e.transaction_warnings ELSE 0 END AS warnings,
                       CASE WHEN e.reason = 'protocol violation' THEN e.count ELSE 0 END
                       + CASE WHEN e.last_transaction_warning_at >= t0 - win
                              THEN e.transaction_warnings ELSE 0 END AS shared,
                       -- clients gone in the middle of a transaction (13
                       -- cannot tell a vanished client from a closing one)
                       CASE WHEN e.last_in_transaction_at >= t0 - win
                             AND (e.reason = 'client vanished'
                                  OR (e.reason = 'client closed'
                                      AND current_setting('server_version_num')::integer < 140000))
                            THEN e.in_transaction ELSE 0 END AS cut
                FROM endings AS e
                WHERE NOT e.overflow
                  AND (e.reason = 'protocol violation'
                       OR e.transaction_warnings > 0 OR e.in_transaction > 0)) AS e
          WHERE e.shared > 0 OR e.cut > 0
          GROUP BY e.application_name,
                   CASE WHEN COALESCE(e.application_name, '') = '' THEN e.usename END) AS b

    UNION ALL
    -- CW170: pooled connections idle longer than a firewall lets them
    SELECT 'warning', 'CW170',
           CASE WHEN s.application_name <> '' THEN format('application "%s"', s.application_name)
                ELSE format('role "%s"', s.usename) END,
           format('%s connection%s of application "%s" (role "%s", database "%s") %s idle for up to %s, longer than the %s after which the network between them drops idle connections (connwatch.diagnose_network_idle_timeout)',
                  s.n, CASE WHEN s.n = 1 THEN '' ELSE 's' END,
                  s.application_name, s.usename, s.datname,
                  CASE WHEN s.n = 1 THEN 'has been' ELSE 'have been' END,
                  date_trunc('second', s.longest), net_idle),
           jsonb_build_object('application', s.application_name, 'role', s.usename,
                              'database', s.datname, 'connections', s.n,
                              'longest_idle_s', round(extract(epoch FROM s.longest)::numeric, 1),
                              'network_idle_timeout_s', round(extract(epoch FROM net_idle)::numeric, 1)),
           'On the next use of such a connection, after a wait:'
           || E'\npsycopg2.OperationalError: could not receive data from server: Connection timed out'
           || E'\npsycopg2.OperationalError: SSL SYSCALL error: EOF detected'
           || E'\n' || closed_text,
           format('In the application: pool_recycle below %s seconds and pool_pre_ping=True; or keepalives in the connection string (keepalives_idle below the timeout). On the server: tcp_keepalives_idle below the timeout (it is %s).',
                  round(extract(epoch FROM net_idle)::numeric), current_setting('tcp_keepalives_idle')),
           false,
           s.n::float8
    FROM (SELECT connwatch.printable(a.application_name) AS application_name,
                 connwatch.printable(a.usename) AS usename,
                 connwatch.printable(a.datname) AS datname,
                 count(*) AS n, max(a.state_age) AS longest
          FROM connwatch.sessions() AS a
          WHERE net_idle > interval '0'
            AND a.backend_type = 'client backend' AND a.state = 'idle'
            AND a.client_addr IS NOT NULL AND a.state_age >= net_idle
          GROUP BY a.application_name, a.usename, a.datname) AS s

    UNION ALL
    -- CW190: checks skipped without the library preloaded
    SELECT 'info', 'CW190', 'server',
           'pg_connwatch is not in shared_preload_libraries, so the checks that read its ledgers and history were skipped: CW102, CW110 to CW119, CW140, CW150, CW160, CW161',
           jsonb_build_object('skipped', jsonb_build_array('CW102', 'CW110', 'CW111', 'CW112', 'CW113', 'CW114', 'CW115', 'CW119', 'CW140', 'CW150', 'CW160', 'CW161')),
           'Refused connections, the sessions ended by timeouts, and the errors of shared connections are not explained.',
           'Add pg_connwatch to shared_preload_libraries and restart the server.',
           true,
           0::float8
    WHERE NOT preloaded

    UNION ALL
    -- CW191: sessions whose state the caller may not see were not judged
    SELECT 'info', 'CW191', 'server',
           format('%s session%s of other roles %s hidden from role "%s": their state was not judged', h.n,
                  CASE WHEN h.n = 1 THEN '' ELSE 's' END,
                  CASE WHEN h.n = 1 THEN 'is' ELSE 'are' END, connwatch.printable(current_user)),
           jsonb_build_object('hidden_sessions', h.n, 'role', connwatch.printable(current_user)),
           '',
           'Run diagnose() as a member of pg_monitor or pg_read_all_stats.',
           false,
           h.n::float8
    FROM (SELECT sum(s.insufficient_privilege)::integer AS n FROM summary AS s) AS h
    WHERE h.n > 0
    )
    -- every advice is a psql script: prose as -- comments (no name can end
    -- one: printable() escapes line breaks), each statement on its own line
    SELECT f.severity, f.code, f.subject, f.finding, f.evidence,
           f.client_symptom,
           CASE WHEN f.advice LIKE '--%' THEN f.advice ELSE '-- ' || f.advice END,
           f.needs_preload
    FROM (SELECT f.*,
                 row_number() OVER (PARTITION BY f.code
                                    ORDER BY array_position(ARRAY['critical', 'warning', 'info'],
                                                            f.severity),
                                             f.weight DESC, f.subject, f.finding) AS n
          FROM findings AS f) AS f
    -- at most ten of a kind, the largest first: a thousand applications
    -- each churning make one finding's worth of reading, not a thousand
    WHERE f.n <= 10
    ORDER BY array_position(ARRAY['critical', 'warning', 'info'], f.severity),
             f.code, f.subject, f.finding;
END
$diagnose$;

REVOKE ALL ON FUNCTION connwatch.diagnose() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION connwatch.diagnose() TO pg_monitor;

COMMENT ON FUNCTION connwatch.diagnose() IS
    'Findings, most severe first: what is wrong, the evidence, what the application sees (SQLAlchemy, psycopg2, libpq, JDBC wording) and the fix; codes are documented in doc/diagnose.md';

--
-- connwatch.metrics(): the figures prometheus-postgres-exporter gets with
-- prometheus/pg_connwatch_queries.yaml, as OpenMetrics text, for a scraper
-- that runs SQL.  The queries are that file's, written once there: at make
-- time scripts/metrics_from_yaml.awk puts each in a CTE named after it, then
-- samples (a row per metric and series) and meta (each metric's type and
-- help), where the line "--@ metrics from ..." is below.  A metric is
-- <query name>_<column>; a counter's family drops the _total its only sample
-- carries, as OpenMetrics wants.  Families without samples (the remember
-- layer's, without shared_preload_libraries) are left out, as the exporter
-- leaves them out.  test/t/402 checks that both give the same series.
--
CREATE FUNCTION connwatch.metrics()
RETURNS text
LANGUAGE sql VOLATILE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $metrics$
WITH
pg_connwatch_connection_limit AS (
    SELECT l.scope, COALESCE(connwatch.printable(l.name), '') AS name, l.used, l.max, l.headroom
    FROM connwatch.connection_limits() AS l
    WHERE l.max IS NOT NULL
    ORDER BY l.scope, 2
),
pg_connwatch_application AS (
    WITH g AS (
      SELECT COALESCE(NULLIF(connwatch.printable(s.application_name), ''), '(none)') AS application,
             s.total, s.active, s.idle, s.idle_in_transaction,
             s.idle_in_transaction_aborted, s.other, s.insufficient_privilege
      FROM connwatch.connection_summary() AS s
    ), ranked AS (
      SELECT g.application,
             CASE WHEN row_number() OVER (
                         ORDER BY sum(g.idle_in_transaction + g.idle_in_transaction_aborted) DESC,
                                  sum(g.total) DESC, g.application) <= 10
                  THEN g.application ELSE 'other' END AS label
      FROM g GROUP BY g.application
    ), a AS (
      SELECT r.label AS application, sum(g.active) AS active, sum(g.idle) AS idle,
             sum(g.idle_in_transaction) AS idle_in_transaction,
             sum(g.idle_in_transaction_aborted) AS idle_in_transaction_aborted,
             sum(g.other) AS other, sum(g.insufficient_privilege) AS unknown
      FROM g JOIN ranked AS r ON r.application = g.application
      GROUP BY r.label
    )
    SELECT a.application, st.state,
           CASE st.state WHEN 'active' THEN a.active
                         WHEN 'idle' THEN a.idle
                         WHEN 'idle_in_transaction' THEN a.idle_in_transaction
                         WHEN 'idle_in_transaction_aborted' THEN a.idle_in_transaction_aborted
                         WHEN 'other' THEN a.other
                         ELSE a.unknown END AS sessions
    FROM a CROSS JOIN (VALUES ('active'), ('idle'), ('idle_in_transaction'),
                              ('idle_in_transaction_aborted'), ('other'), ('unknown')) AS st(state)
    ORDER BY 1, 2
),
pg_connwatch_idle_in_transaction AS (
    WITH g AS (
      SELECT COALESCE(NULLIF(connwatch.printable(s.application_name), ''), '(none)') AS application,
             s.total, s.idle_in_transaction, s.idle_in_transaction_aborted,
             s.longest_idle_in_transaction
      FROM connwatch.connection_summary() AS s
    ), ranked AS (
      SELECT g.application,
             CASE WHEN row_number() OVER (
                         ORDER BY sum(g.idle_in_transaction + g.idle_in_transaction_aborted) DESC,
                                  sum(g.total) DESC, g.application) <= 10
                  THEN g.application ELSE 'other' END AS label
      FROM g GROUP BY g.application
    )
    SELECT r.label AS application,
           sum(g.idle_in_transaction + g.idle_in_transaction_aborted) AS sessions,
           COALESCE(round(extract(epoch FROM max(g.longest_idle_in_transaction))::numeric, 3), 0) AS longest_seconds
    FROM g JOIN ranked AS r ON r.application = g.application
    GROUP BY r.label
    ORDER BY 1
),
pg_connwatch_oldest_transaction AS (
    SELECT COALESCE(round(extract(epoch FROM max(s.oldest_xact_age))::numeric, 3), 0) AS age_seconds
    FROM connwatch.connection_summary() AS s
),
pg_connwatch_xmin_horizon AS (
    SELECT t.holder_type, COALESCE(h.holders, 0) AS holders, COALESCE(h.age_xids, 0) AS age_xids
    FROM (VALUES ('backend'), ('prepared_transaction'), ('replication_slot'),
                 ('replication_slot_catalog'), ('walsender_feedback')) AS t(holder_type)
    FULL JOIN (SELECT x.holder_type, count(*) AS holders, max(x.xmin_age) AS age_xids
               FROM connwatch.xmin_horizon() AS x
               WHERE x.pid IS DISTINCT FROM pg_backend_pid()
               GROUP BY x.holder_type) AS h
      ON h.holder_type = t.holder_type
    WHERE t.holder_type IS NOT NULL
    ORDER BY 1
),
pg_connwatch_refused_connections AS (
    SELECT COALESCE(c.cause, r.cause) AS cause, COALESCE(r.total, 0) AS total
    FROM (VALUES ('too many clients'), ('reserved slots'), ('role limit'), ('database limit'),
                 ('role does not exist'), ('role not permitted to log in'),
                 ('database does not exist'), ('database not accepting connections'),
                 ('no CONNECT privilege'), ('rejected by pg_hba.conf'),
                 ('authentication failed'), ('authentication abandoned'),
                 ('server starting up'), ('server shutting down'),
                 ('server not yet accepting'), ('other')) AS c(cause)
    FULL JOIN (SELECT f.cause, sum(f.count) AS total
               FROM connwatch.refused_connections() AS f
               GROUP BY f.cause) AS r
      ON r.cause = c.cause
    WHERE (SELECT connwatch.preloaded())
    ORDER BY 1
),
pg_connwatch_session_endings AS (
    SELECT COALESCE(c.reason, e.reason) AS reason, COALESCE(e.total, 0) AS total
    FROM (VALUES ('client closed'), ('client vanished'), ('terminated by connwatch'),
                 ('terminated by another session'), ('idle-in-transaction timeout'),
                 ('idle-session timeout'), ('transaction timeout'),
                 ('connection check failed'), ('protocol violation'),
                 ('recovery conflict'), ('server shutdown'), ('fatal error')) AS c(reason)
    FULL JOIN (SELECT f.reason, sum(f.count) AS total
               FROM connwatch.session_endings() AS f
               GROUP BY f.reason) AS e
      ON e.reason = c.reason
    WHERE (SELECT connwatch.preloaded())
    ORDER BY 1
),
pg_connwatch_server_sessions AS (
    SELECT p.current, p.peak
    FROM connwatch.peaks() AS p
    WHERE p.scope = 'server' AND (SELECT connwatch.preloaded())
),
pg_connwatch_remember AS (
    SELECT CASE WHEN connwatch.preloaded() THEN 1 ELSE 0 END AS enabled
),
pg_connwatch AS (
    SELECT d.severity, d.code, count(*) AS findings
    FROM connwatch.diagnose() AS d
    GROUP BY d.severity, d.code
    ORDER BY 1, 2
),
samples(metric, labels, value) AS (
    SELECT 'pg_connwatch_connection_limit_used', pg_catalog.jsonb_build_object('scope', q.scope, 'name', q.name), q.used::numeric FROM pg_connwatch_connection_limit AS q
    UNION ALL
    SELECT 'pg_connwatch_connection_limit_max', pg_catalog.jsonb_build_object('scope', q.scope, 'name', q.name), q.max::numeric FROM pg_connwatch_connection_limit AS q
    UNION ALL
    SELECT 'pg_connwatch_connection_limit_headroom', pg_catalog.jsonb_build_object('scope', q.scope, 'name', q.name), q.headroom::numeric FROM pg_connwatch_connection_limit AS q
    UNION ALL
    SELECT 'pg_connwatch_application_sessions', pg_catalog.jsonb_build_object('application', q.application, 'state', q.state), q.sessions::numeric FROM pg_connwatch_application AS q
    UNION ALL
    SELECT 'pg_connwatch_idle_in_transaction_sessions', pg_catalog.jsonb_build_object('application', q.application), q.sessions::numeric FROM pg_connwatch_idle_in_transaction AS q
    UNION ALL
    SELECT 'pg_connwatch_idle_in_transaction_longest_seconds', pg_catalog.jsonb_build_object('application', q.application), q.longest_seconds::numeric FROM pg_connwatch_idle_in_transaction AS q
    UNION ALL
    SELECT 'pg_connwatch_oldest_transaction_age_seconds', '{}'::jsonb, q.age_seconds::numeric FROM pg_connwatch_oldest_transaction AS q
    UNION ALL
    SELECT 'pg_connwatch_xmin_horizon_holders', pg_catalog.jsonb_build_object('holder_type', q.holder_type), q.holders::numeric FROM pg_connwatch_xmin_horizon AS q
    UNION ALL
    SELECT 'pg_connwatch_xmin_horizon_age_xids', pg_catalog.jsonb_build_object('holder_type', q.holder_type), q.age_xids::numeric FROM pg_connwatch_xmin_horizon AS q
    UNION ALL
    SELECT 'pg_connwatch_refused_connections_total', pg_catalog.jsonb_build_object('cause', q.cause), q.total::numeric FROM pg_connwatch_refused_connections AS q
    UNION ALL
    SELECT 'pg_connwatch_session_endings_total', pg_catalog.jsonb_build_object('reason', q.reason), q.total::numeric FROM pg_connwatch_session_endings AS q
    UNION ALL
    SELECT 'pg_connwatch_server_sessions_current', '{}'::jsonb, q.current::numeric FROM pg_connwatch_server_sessions AS q
    UNION ALL
    SELECT 'pg_connwatch_server_sessions_peak', '{}'::jsonb, q.peak::numeric FROM pg_connwatch_server_sessions AS q
    UNION ALL
    SELECT 'pg_connwatch_remember_enabled', '{}'::jsonb, q.enabled::numeric FROM pg_connwatch_remember AS q
    UNION ALL
    SELECT 'pg_connwatch_findings', pg_catalog.jsonb_build_object('severity', q.severity, 'code', q.code), q.findings::numeric FROM pg_connwatch AS q
),
meta(metric, type, help) AS (
    VALUES
        ('pg_connwatch_connection_limit_used', 'gauge',
         'Connections the limit counts now (connwatch.connection_limits.used)'),
        ('pg_connwatch_connection_limit_max', 'gauge',
         'The limit (connwatch.connection_limits.max); limits that are unlimited are not exported'),
        ('pg_connwatch_connection_limit_headroom', 'gauge',
         'max - used, never below 0 (connwatch.connection_limits.headroom)'),
        ('pg_connwatch_application_sessions', 'gauge',
         'Client sessions of the application in the state (connwatch.connection_summary)'),
        ('pg_connwatch_idle_in_transaction_sessions', 'gauge',
         'Client sessions idle in a transaction, aborted ones included (connwatch.connection_summary)'),
        ('pg_connwatch_idle_in_transaction_longest_seconds', 'gauge',
         'Longest time one of them has been idle in its transaction, in seconds; 0 when none (connwatch.connection_summary.longest_idle_in_transaction)'),
        ('pg_connwatch_oldest_transaction_age_seconds', 'gauge',
         'Age of the oldest open transaction of a client session, in seconds; 0 when none (connwatch.connection_summary.oldest_xact_age)'),
        ('pg_connwatch_xmin_horizon_holders', 'gauge',
         'Holders of the xmin horizon of the type, the querying session excluded (connwatch.xmin_horizon)'),
        ('pg_connwatch_xmin_horizon_age_xids', 'gauge',
         'Age in transaction IDs of the oldest xmin the type holds; 0 when none (connwatch.xmin_horizon.xmin_age)'),
        ('pg_connwatch_refused_connections_total', 'counter',
         'Connection attempts refused since the ledgers were last reset (sum of connwatch.refused_connections.count); needs shared_preload_libraries'),
        ('pg_connwatch_session_endings_total', 'counter',
         'Client sessions ended since the ledgers were last reset (sum of connwatch.session_endings.count); needs shared_preload_libraries'),
        ('pg_connwatch_server_sessions_current', 'gauge',
         'Client sessions now, as the remember layer counts them (connwatch.peaks, scope server); needs shared_preload_libraries'),
        ('pg_connwatch_server_sessions_peak', 'gauge',
         'Most client sessions at once since the peaks were last reset (connwatch.peaks, scope server); needs shared_preload_libraries'),
        ('pg_connwatch_remember_enabled', 'gauge',
         '1 when pg_connwatch is in shared_preload_libraries (refusals, endings and peaks are recorded), else 0'),
        ('pg_connwatch_findings', 'gauge',
         'Findings of connwatch.diagnose() with the code and severity (one per application, role, database, pid or cause it names); no series when there are none')
),
families AS (
    SELECT m.metric, m.type,
           '# HELP ' OPERATOR(pg_catalog.||)
               CASE m.type WHEN 'counter' THEN pg_catalog.left(m.metric, -6) ELSE m.metric END
               OPERATOR(pg_catalog.||) ' '
               OPERATOR(pg_catalog.||) pg_catalog.replace(pg_catalog.replace(m.help, E'\\', E'\\\\'), E'\n', E'\\n')
               OPERATOR(pg_catalog.||) E'\n# TYPE '
               OPERATOR(pg_catalog.||)
               CASE m.type WHEN 'counter' THEN pg_catalog.left(m.metric, -6) ELSE m.metric END
               OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) m.type
               OPERATOR(pg_catalog.||) E'\n'
               OPERATOR(pg_catalog.||) pg_catalog.string_agg(
                   s.metric OPERATOR(pg_catalog.||) s.labeltext
                   OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) s.value::text
                   OPERATOR(pg_catalog.||) E'\n',
                   '' ORDER BY s.labeltext COLLATE "C") AS block
    FROM meta AS m
    JOIN (SELECT s.metric, s.value,
                 COALESCE('{' OPERATOR(pg_catalog.||)
                          (SELECT pg_catalog.string_agg(
                                      l.key OPERATOR(pg_catalog.||) '="'
                                      OPERATOR(pg_catalog.||) pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
                                          l.value, E'\\', E'\\\\'), '"', E'\\"'), E'\n', E'\\n')
                                      OPERATOR(pg_catalog.||) '"',
                                      ',' ORDER BY l.key COLLATE "C")
                           FROM pg_catalog.jsonb_each_text(s.labels) AS l)
                          OPERATOR(pg_catalog.||) '}', '') AS labeltext
          FROM samples AS s) AS s
      ON s.metric OPERATOR(pg_catalog.=) m.metric
    GROUP BY m.metric, m.type, m.help
)
SELECT COALESCE(pg_catalog.string_agg(f.block, '' ORDER BY f.metric COLLATE "C"), '')
       OPERATOR(pg_catalog.||) E'# EOF\n'
FROM families AS f
$metrics$;

REVOKE ALL ON FUNCTION connwatch.metrics() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION connwatch.metrics() TO pg_monitor;

COMMENT ON FUNCTION connwatch.metrics() IS
    'pg_connwatch''s metrics as OpenMetrics text (connection limits, sessions per application, idle transactions, xmin horizon, refusals, endings, peaks): the same as prometheus-postgres-exporter gives with pg_connwatch_queries.yaml';
