/* pg_connwatch--1.1.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION pg_connwatch" to load this file. \quit

-- The schema is created here, not through the control file, as pg_cron does
-- with "cron": if a schema named connwatch exists already, whoever made it
-- owns it and could change what is in it, so CREATE EXTENSION fails instead
-- of installing into it.  Being created here makes the schema a member of
-- the extension, and DROP EXTENSION removes it.
--
-- CREATE EXTENSION runs this script with search_path = pg_catalog, pg_temp
-- (the control file's schema, then pg_temp last); every catalog object below
-- is still schema-qualified, so that nothing a user creates can capture a
-- reference.
CREATE SCHEMA connwatch;

--
-- connwatch.sessions: one row per backend process
--
CREATE FUNCTION connwatch.sessions(
    OUT pid integer,
    OUT backend_type text,
    OUT datid oid,
    OUT datname name,
    OUT usesysid oid,
    OUT usename name,
    OUT application_name text,
    OUT client_addr inet,
    OUT client_port integer,
    OUT backend_start timestamptz,
    OUT xact_start timestamptz,
    OUT query_start timestamptz,
    OUT state_change timestamptz,
    OUT state text,
    OUT wait_event_type text,
    OUT wait_event text,
    OUT backend_xid xid,
    OUT backend_xmin xid,
    OUT xmin_age integer,
    OUT session_age interval,
    OUT xact_age interval,
    OUT state_age interval,
    OUT blocked_by integer[],
    OUT query text
)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'cw_sessions'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

CREATE VIEW connwatch.sessions AS
    SELECT * FROM connwatch.sessions();

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

CREATE VIEW connwatch.idle_in_transaction AS
    SELECT * FROM connwatch.idle_in_transaction()
    ORDER BY idle_for DESC, pid;

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

CREATE VIEW connwatch.long_transactions AS
    SELECT * FROM connwatch.long_transactions()
    ORDER BY xact_age DESC, pid;

--
-- connwatch.connection_limits: every connection limit against its usage
--
CREATE FUNCTION connwatch.connection_limits(
    OUT scope text,
    OUT name name,
    OUT used integer,
    OUT max integer,
    OUT headroom integer,
    OUT pct_used numeric,
    OUT status text
)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'cw_connection_limits'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

CREATE VIEW connwatch.connection_limits AS
    SELECT * FROM connwatch.connection_limits();

--
-- connwatch.connection_headroom: how many more connections each role gets
--
CREATE FUNCTION connwatch.connection_headroom(
    OUT rolname name,
    OUT superuser boolean,
    OUT can_use_reserved boolean,
    OUT role_limit integer,
    OUT used integer,
    OUT headroom integer,
    OUT binding_limit text
)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'cw_connection_headroom'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

CREATE VIEW connwatch.connection_headroom AS
    SELECT * FROM connwatch.connection_headroom()
    ORDER BY headroom, rolname;

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

CREATE VIEW connwatch.connection_summary AS
    SELECT * FROM connwatch.connection_summary()
    ORDER BY idle_in_transaction OPERATOR(pg_catalog.+) idle_in_transaction_aborted DESC,
             total DESC, datname, usename, application_name;

--
-- connwatch.xmin_horizon: everything that holds the xmin horizon back
--
CREATE FUNCTION connwatch.xmin_horizon(
    OUT holder_type text,
    OUT holder text,
    OUT pid integer,
    OUT datname name,
    OUT usename name,
    OUT application_name text,
    OUT state text,
    OUT xmin xid,
    OUT xmin_age integer,
    OUT since timestamptz
)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'cw_xmin_horizon'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

-- The gid and prepare time of a prepared transaction live in twophase.c's
-- private state; pg_prepared_xacts is the supported way to read them.
CREATE VIEW connwatch.xmin_horizon AS
    SELECT h.holder_type,
           COALESCE(p.gid, h.holder) AS holder,
           h.pid, h.datname, h.usename, h.application_name, h.state,
           h.xmin, h.xmin_age,
           COALESCE(p.prepared, h.since) AS since
    FROM connwatch.xmin_horizon() AS h
    LEFT JOIN pg_catalog.pg_prepared_xacts AS p
      ON h.holder_type OPERATOR(pg_catalog.=) 'prepared_transaction'
     AND p.transaction OPERATOR(pg_catalog.=) h.xmin
    ORDER BY h.xmin_age DESC NULLS LAST, h.holder_type, holder;

--
-- Privileges: the views, and the functions behind them, are for pg_monitor
-- (grant them to other roles explicitly).  The functions hide what core
-- hides from roles without pg_read_all_stats, whoever may call them.
--
REVOKE ALL ON FUNCTION connwatch.sessions(),
    connwatch.idle_in_transaction(),
    connwatch.long_transactions(interval), connwatch.long_transactions(),
    connwatch.connection_limits(), connwatch.connection_headroom(),
    connwatch.connection_summary(), connwatch.xmin_horizon()
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION connwatch.sessions(),
    connwatch.idle_in_transaction(),
    connwatch.long_transactions(interval), connwatch.long_transactions(),
    connwatch.connection_limits(), connwatch.connection_headroom(),
    connwatch.connection_summary(), connwatch.xmin_horizon()
    TO pg_monitor;
GRANT SELECT ON connwatch.sessions, connwatch.idle_in_transaction,
    connwatch.long_transactions, connwatch.connection_limits,
    connwatch.connection_headroom, connwatch.connection_summary,
    connwatch.xmin_horizon TO pg_monitor;
GRANT USAGE ON SCHEMA connwatch TO PUBLIC;

--
-- Documentation
--
COMMENT ON SCHEMA connwatch IS
    'pg_connwatch: connection and session watchdog';

COMMENT ON FUNCTION connwatch.sessions() IS
    'One row per backend process, read from shared memory in one pass; backs the view connwatch.sessions';
COMMENT ON VIEW connwatch.sessions IS
    'One row per backend process with ages measured at one instant and the pids blocking each lock wait';
COMMENT ON COLUMN connwatch.sessions.pid IS 'Process ID of the backend';
COMMENT ON COLUMN connwatch.sessions.backend_type IS 'Type of process, as in pg_stat_activity (client backend, autovacuum worker, walsender, a background worker''s type, ...)';
COMMENT ON COLUMN connwatch.sessions.datid IS 'OID of the database the backend is connected to';
COMMENT ON COLUMN connwatch.sessions.datname IS 'Name of the database the backend is connected to';
COMMENT ON COLUMN connwatch.sessions.usesysid IS 'OID of the role the backend logged in as';
COMMENT ON COLUMN connwatch.sessions.usename IS 'Name of the role the backend logged in as';
COMMENT ON COLUMN connwatch.sessions.application_name IS 'application_name reported by the client';
COMMENT ON COLUMN connwatch.sessions.client_addr IS 'Client IP address; NULL for Unix-socket connections, internal processes and hidden sessions';
COMMENT ON COLUMN connwatch.sessions.client_port IS 'Client TCP port; -1 for Unix-socket connections';
COMMENT ON COLUMN connwatch.sessions.backend_start IS 'When the backend process started; together with pid it identifies a session';
COMMENT ON COLUMN connwatch.sessions.xact_start IS 'When the current transaction started (NULL outside a transaction)';
COMMENT ON COLUMN connwatch.sessions.query_start IS 'When the current or last statement started';
COMMENT ON COLUMN connwatch.sessions.state_change IS 'When state last changed';
COMMENT ON COLUMN connwatch.sessions.state IS 'active, idle, idle in transaction, idle in transaction (aborted), fastpath function call or disabled';
COMMENT ON COLUMN connwatch.sessions.wait_event_type IS 'Type of event the backend waits for, if any';
COMMENT ON COLUMN connwatch.sessions.wait_event IS 'Event the backend waits for, if any';
COMMENT ON COLUMN connwatch.sessions.backend_xid IS 'Top-level transaction ID, if one has been assigned';
COMMENT ON COLUMN connwatch.sessions.backend_xmin IS 'The backend''s xmin horizon';
COMMENT ON COLUMN connwatch.sessions.xmin_age IS 'Transactions between backend_xmin and the next transaction ID, as age(backend_xmin)';
COMMENT ON COLUMN connwatch.sessions.session_age IS 'Time since backend_start, measured at the instant of the call';
COMMENT ON COLUMN connwatch.sessions.xact_age IS 'Time since xact_start, measured at the instant of the call';
COMMENT ON COLUMN connwatch.sessions.state_age IS 'Time since state_change, measured at the instant of the call';
COMMENT ON COLUMN connwatch.sessions.blocked_by IS 'Pids holding or awaiting heavyweight locks this backend waits for, as pg_blocking_pids(pid); empty when not waiting on a lock';
COMMENT ON COLUMN connwatch.sessions.query IS 'Current or last statement (truncated at track_activity_query_size); <insufficient privilege> for hidden sessions';

COMMENT ON FUNCTION connwatch.idle_in_transaction() IS
    'Client backends idle inside a transaction; backs the view connwatch.idle_in_transaction';
COMMENT ON VIEW connwatch.idle_in_transaction IS
    'Client backends idle inside a transaction (including aborted ones), longest idle first';
COMMENT ON COLUMN connwatch.idle_in_transaction.pid IS 'Process ID of the backend';
COMMENT ON COLUMN connwatch.idle_in_transaction.backend_start IS 'When the backend started; pass it with pid to act on exactly this session';
COMMENT ON COLUMN connwatch.idle_in_transaction.datname IS 'Database';
COMMENT ON COLUMN connwatch.idle_in_transaction.usename IS 'Login role';
COMMENT ON COLUMN connwatch.idle_in_transaction.application_name IS 'application_name reported by the client';
COMMENT ON COLUMN connwatch.idle_in_transaction.client_addr IS 'Client IP address; NULL for Unix-socket connections';
COMMENT ON COLUMN connwatch.idle_in_transaction.state IS 'idle in transaction or idle in transaction (aborted)';
COMMENT ON COLUMN connwatch.idle_in_transaction.state_change IS 'When the session went idle';
COMMENT ON COLUMN connwatch.idle_in_transaction.idle_for IS 'Time since state_change (not since xact_start)';
COMMENT ON COLUMN connwatch.idle_in_transaction.xact_start IS 'When the transaction started';
COMMENT ON COLUMN connwatch.idle_in_transaction.xact_age IS 'Time since xact_start';
COMMENT ON COLUMN connwatch.idle_in_transaction.backend_xid IS 'Transaction ID, if one has been assigned (the transaction has written)';
COMMENT ON COLUMN connwatch.idle_in_transaction.backend_xmin IS 'xmin held by the session''s snapshot, if any';
COMMENT ON COLUMN connwatch.idle_in_transaction.xmin_age IS 'Age of the older of backend_xid and backend_xmin';
COMMENT ON COLUMN connwatch.idle_in_transaction.holds_xmin IS 'True when this session''s xid or xmin is the oldest of every holder of the horizon (backends, prepared transactions, replication slots), ties included';
COMMENT ON COLUMN connwatch.idle_in_transaction.locks_held IS 'Heavyweight locks granted to the session (as pg_locks rows with granted, excluding SIRead predicate locks)';
COMMENT ON COLUMN connwatch.idle_in_transaction.blocking IS 'Pids of backends waiting on locks this session holds or awaits';
COMMENT ON COLUMN connwatch.idle_in_transaction.query IS 'The last statement the session ran';

COMMENT ON FUNCTION connwatch.long_transactions(interval) IS
    'Client backends whose transaction is older than older_than';
COMMENT ON FUNCTION connwatch.long_transactions() IS
    'Client backends whose transaction is older than connwatch.long_transaction_threshold; backs the view connwatch.long_transactions';
COMMENT ON VIEW connwatch.long_transactions IS
    'Client backends whose transaction is older than connwatch.long_transaction_threshold, oldest first';
COMMENT ON COLUMN connwatch.long_transactions.pid IS 'Process ID of the backend';
COMMENT ON COLUMN connwatch.long_transactions.backend_start IS 'When the backend started';
COMMENT ON COLUMN connwatch.long_transactions.datname IS 'Database';
COMMENT ON COLUMN connwatch.long_transactions.usename IS 'Login role';
COMMENT ON COLUMN connwatch.long_transactions.application_name IS 'application_name reported by the client';
COMMENT ON COLUMN connwatch.long_transactions.client_addr IS 'Client IP address; NULL for Unix-socket connections';
COMMENT ON COLUMN connwatch.long_transactions.state IS 'Current state of the session';
COMMENT ON COLUMN connwatch.long_transactions.xact_start IS 'When the transaction started';
COMMENT ON COLUMN connwatch.long_transactions.xact_age IS 'Time since xact_start';
COMMENT ON COLUMN connwatch.long_transactions.state_age IS 'Time since the last state change';
COMMENT ON COLUMN connwatch.long_transactions.backend_xid IS 'Transaction ID, if assigned';
COMMENT ON COLUMN connwatch.long_transactions.backend_xmin IS 'xmin held by the session, if any';
COMMENT ON COLUMN connwatch.long_transactions.xmin_age IS 'Age of the older of backend_xid and backend_xmin';
COMMENT ON COLUMN connwatch.long_transactions.blocking IS 'Pids of backends waiting on locks this session holds or awaits';
COMMENT ON COLUMN connwatch.long_transactions.query IS 'Current or last statement';

COMMENT ON FUNCTION connwatch.connection_limits() IS
    'Every connection limit with its usage; backs the view connwatch.connection_limits';
COMMENT ON VIEW connwatch.connection_limits IS
    'Every connection limit (server-wide, reserved slots, per database, per role) with what it counts right now';
COMMENT ON COLUMN connwatch.connection_limits.scope IS 'server, reserved, database or role';
COMMENT ON COLUMN connwatch.connection_limits.name IS 'Database or role name; NULL for server-wide rows';
COMMENT ON COLUMN connwatch.connection_limits.used IS 'What the limit counts now: client backends for server and reserved; for database and role rows exactly what PostgreSQL counts when it enforces CONNECTION LIMIT';
COMMENT ON COLUMN connwatch.connection_limits.max IS 'The limit; NULL when unlimited (and for a superuser role, which CONNECTION LIMIT never refuses)';
COMMENT ON COLUMN connwatch.connection_limits.headroom IS 'max - used, never below 0; NULL when unlimited';
COMMENT ON COLUMN connwatch.connection_limits.pct_used IS 'used as a percentage of max, one decimal; NULL when unlimited';
COMMENT ON COLUMN connwatch.connection_limits.status IS 'ok, warning (pct_used >= connwatch.warning_pct) or critical (pct_used >= connwatch.critical_pct)';

COMMENT ON FUNCTION connwatch.connection_headroom() IS
    'Per-role connection headroom; backs the view connwatch.connection_headroom';
COMMENT ON VIEW connwatch.connection_headroom IS
    'For each login role with a session or a CONNECTION LIMIT: how many more connections it could open right now, and which limit binds';
COMMENT ON COLUMN connwatch.connection_headroom.rolname IS 'Role';
COMMENT ON COLUMN connwatch.connection_headroom.superuser IS 'Whether the role is a superuser';
COMMENT ON COLUMN connwatch.connection_headroom.can_use_reserved IS 'Whether the role may take the reserved slots (superuser_reserved_connections)';
COMMENT ON COLUMN connwatch.connection_headroom.role_limit IS 'The role''s CONNECTION LIMIT; NULL when unlimited or not enforced (superusers)';
COMMENT ON COLUMN connwatch.connection_headroom.used IS 'Connections the role''s CONNECTION LIMIT counts (as connection_limits.used for its role row)';
COMMENT ON COLUMN connwatch.connection_headroom.headroom IS 'Connections the role could still open: the minimum over the limits that bind it';
COMMENT ON COLUMN connwatch.connection_headroom.binding_limit IS 'server, reserved or role: which limit gives the minimum';

COMMENT ON FUNCTION connwatch.connection_summary() IS
    'Client backends grouped by database, role, application and client address; backs the view connwatch.connection_summary';
COMMENT ON VIEW connwatch.connection_summary IS
    'Client backends grouped by database, role, application and client address, with counts per state; groups with idle transactions first';
COMMENT ON COLUMN connwatch.connection_summary.datname IS 'Database';
COMMENT ON COLUMN connwatch.connection_summary.usename IS 'Login role';
COMMENT ON COLUMN connwatch.connection_summary.application_name IS 'application_name reported by the client';
COMMENT ON COLUMN connwatch.connection_summary.client_addr IS 'Client IP address; NULL for Unix sockets and for sessions the caller may not see';
COMMENT ON COLUMN connwatch.connection_summary.total IS 'Client backends in the group';
COMMENT ON COLUMN connwatch.connection_summary.active IS 'Of which active';
COMMENT ON COLUMN connwatch.connection_summary.idle IS 'Of which idle';
COMMENT ON COLUMN connwatch.connection_summary.idle_in_transaction IS 'Of which idle in transaction';
COMMENT ON COLUMN connwatch.connection_summary.idle_in_transaction_aborted IS 'Of which idle in transaction (aborted)';
COMMENT ON COLUMN connwatch.connection_summary.other IS 'Of which in another state (fastpath function call, disabled, not yet reported)';
COMMENT ON COLUMN connwatch.connection_summary.insufficient_privilege IS 'Of which the caller may not see the state (no pg_read_all_stats and not a member of the role)';
COMMENT ON COLUMN connwatch.connection_summary.waiting IS 'Of the visible ones, how many wait on a heavyweight lock';
COMMENT ON COLUMN connwatch.connection_summary.oldest_xact_age IS 'Age of the oldest open transaction in the group';
COMMENT ON COLUMN connwatch.connection_summary.longest_idle_in_transaction IS 'Longest time a session of the group has been idle in transaction';

COMMENT ON FUNCTION connwatch.xmin_horizon() IS
    'Holders of the xmin horizon; backs the view connwatch.xmin_horizon';
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
-- Act layer: cancel and terminate stale sessions safely
--

CREATE TYPE connwatch.action AS (
    pid integer,
    backend_start timestamptz,
    datname name,
    usename name,
    application_name text,
    client_addr inet,
    state text,
    state_age interval,
    xact_age interval,
    xmin_age integer,
    action text,
    reason text,
    policy text
);

CREATE TABLE connwatch.terminations (
    logged_at timestamptz NOT NULL,
    policy text,
    pid integer NOT NULL,
    backend_start timestamptz NOT NULL,
    datname name,
    usename name,
    application_name text,
    client_addr inet,
    state text,
    state_age interval,
    xact_age interval,
    query text,
    action text NOT NULL,
    reason text,
    invoked_by name NOT NULL
);
CREATE INDEX terminations_logged_at_idx ON connwatch.terminations (logged_at);
SELECT pg_catalog.pg_extension_config_dump('connwatch.terminations', '');

CREATE TABLE connwatch.policies (
    name text PRIMARY KEY,
    state text NOT NULL
        CHECK (state OPERATOR(pg_catalog.=) ANY
               (ARRAY['idle in transaction', 'idle', 'active', 'any'])),
    older_than interval NOT NULL
        CHECK (older_than OPERATOR(pg_catalog.>=) '0'::interval),
    age_of text NOT NULL DEFAULT 'state'
        CHECK (age_of OPERATOR(pg_catalog.=) ANY (ARRAY['state', 'transaction'])),
    datname text,
    usename text,
    application_name text,
    only_if_holds_xmin boolean NOT NULL DEFAULT false,
    min_pct_used numeric
        CHECK (min_pct_used OPERATOR(pg_catalog.>=) 0
               AND min_pct_used OPERATOR(pg_catalog.<=) 100),
    action text NOT NULL DEFAULT 'terminate'
        CHECK (action OPERATOR(pg_catalog.=) ANY (ARRAY['terminate', 'cancel'])),
    enabled boolean NOT NULL DEFAULT true,
    dry_run boolean NOT NULL DEFAULT false,
    -- a cancel reaches only a running statement
    CONSTRAINT policies_cancel_needs_active
        CHECK (action OPERATOR(pg_catalog.=) 'terminate'
               OR state OPERATOR(pg_catalog.=) ANY (ARRAY['active', 'any']))
);
SELECT pg_catalog.pg_extension_config_dump('connwatch.policies', '');

CREATE FUNCTION connwatch.terminate_backend(
    pid integer, backend_start timestamptz, reason text DEFAULT NULL)
RETURNS boolean
AS 'MODULE_PATHNAME', 'cw_terminate_backend'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION connwatch.cancel_backend(
    pid integer, backend_start timestamptz, reason text DEFAULT NULL)
RETURNS boolean
AS 'MODULE_PATHNAME', 'cw_cancel_backend'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION connwatch.terminate_idle_in_transaction(
    older_than interval, dry_run boolean DEFAULT false,
    datname text DEFAULT NULL, usename text DEFAULT NULL,
    application_name text DEFAULT NULL)
RETURNS SETOF connwatch.action
AS 'MODULE_PATHNAME', 'cw_terminate_idle_in_transaction'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION connwatch.terminate_idle(
    older_than interval, dry_run boolean DEFAULT false,
    datname text DEFAULT NULL, usename text DEFAULT NULL,
    application_name text DEFAULT NULL)
RETURNS SETOF connwatch.action
AS 'MODULE_PATHNAME', 'cw_terminate_idle'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION connwatch.terminate_long_transactions(
    older_than interval, dry_run boolean DEFAULT false,
    datname text DEFAULT NULL, usename text DEFAULT NULL,
    application_name text DEFAULT NULL, cancel_first boolean DEFAULT true)
RETURNS SETOF connwatch.action
AS 'MODULE_PATHNAME', 'cw_terminate_long_transactions'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION connwatch.enforce(dry_run boolean DEFAULT false)
RETURNS SETOF connwatch.action
AS 'MODULE_PATHNAME', 'cw_enforce'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

--
-- Scheduling with pg_cron.  pg_cron is optional: it is looked up at call
-- time, and the job runs in the database the extension is installed in.
--
CREATE FUNCTION connwatch.schedule_enforcement(schedule text DEFAULT '* * * * *')
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    job_id bigint;
    job_database text;
    command text := 'SELECT pg_catalog.count(*) FROM connwatch.enforce()';
BEGIN
    IF schedule IS NULL THEN
        RAISE EXCEPTION 'schedule must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension
                   WHERE extname OPERATOR(pg_catalog.=) 'pg_cron') THEN
        -- pg_cron lives in one database, cron.database_name
        IF pg_catalog.current_setting('cron.database_name', true) IS NOT NULL THEN
            RAISE EXCEPTION 'pg_cron is not installed in this database'
                USING ERRCODE = 'feature_not_supported',
                      DETAIL = pg_catalog.format('pg_cron runs its jobs from database %I (cron.database_name).',
                                                 pg_catalog.current_setting('cron.database_name')),
                      HINT = pg_catalog.format('In database %I, run: SELECT cron.schedule_in_database(''connwatch-enforce'', %L, ''SELECT pg_catalog.count(*) FROM connwatch.enforce()'', %L);',
                                               pg_catalog.current_setting('cron.database_name'),
                                               schedule, pg_catalog.current_database());
        END IF;
        RAISE EXCEPTION 'pg_cron is not installed'
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'connwatch.schedule_enforcement() creates a pg_cron job that runs connwatch.enforce().',
                  HINT = pg_catalog.format('Install pg_cron (Debian: postgresql-%s-cron), set shared_preload_libraries = ''pg_cron'' and cron.database_name in postgresql.conf, restart the server, then run CREATE EXTENSION pg_cron. A role that is not a superuser also needs USAGE on schema cron and EXECUTE on cron.schedule_in_database.',
                                           pg_catalog.current_setting('server_version_num')::pg_catalog.int4 OPERATOR(pg_catalog./) 10000);
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_proc AS p
               JOIN pg_catalog.pg_namespace AS n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
               WHERE n.nspname OPERATOR(pg_catalog.=) 'cron'
                 AND p.proname OPERATOR(pg_catalog.=) 'schedule_in_database') THEN
        EXECUTE 'SELECT cron.schedule_in_database($1, $2, $3, $4)'
            INTO job_id
            USING 'connwatch-enforce', schedule, command,
                  pg_catalog.current_database();
    ELSE
        -- pg_cron 1.3 and older: schedule the job, then point it at this
        -- database if it is not there already, as their documentation says
        -- to (pg_cron lives in cron.database_name, which is this database,
        -- so that takes UPDATE on cron.job only in unusual setups)
        EXECUTE 'SELECT cron.schedule($1, $2, $3)'
            INTO job_id
            USING 'connwatch-enforce', schedule, command;
        EXECUTE 'SELECT database FROM cron.job WHERE jobid OPERATOR(pg_catalog.=) $1'
            INTO job_database
            USING job_id;
        IF job_database IS NULL
           OR job_database OPERATOR(pg_catalog.<>) pg_catalog.current_database() THEN
            EXECUTE 'UPDATE cron.job SET database = $1 WHERE jobid OPERATOR(pg_catalog.=) $2'
                USING pg_catalog.current_database(), job_id;
        END IF;
    END IF;
    RETURN job_id;
END
$$;

CREATE FUNCTION connwatch.unschedule_enforcement()
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    removed boolean := false;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension
                   WHERE extname OPERATOR(pg_catalog.=) 'pg_cron') THEN
        RAISE EXCEPTION 'pg_cron is not installed'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Without pg_cron there is no scheduled enforcement to remove.';
    END IF;
    IF EXISTS (SELECT 1 FROM cron.job
               WHERE jobname OPERATOR(pg_catalog.=) 'connwatch-enforce'
                 AND username OPERATOR(pg_catalog.=) CURRENT_USER) THEN
        EXECUTE 'SELECT cron.unschedule($1)' INTO removed USING 'connwatch-enforce';
    END IF;
    RETURN removed;
END
$$;

--
-- Act-layer privileges: nothing for PUBLIC.  The functions are SECURITY
-- INVOKER: they can signal only what the caller could signal with
-- pg_terminate_backend().
--
REVOKE ALL ON FUNCTION connwatch.terminate_backend(integer, timestamptz, text),
    connwatch.cancel_backend(integer, timestamptz, text),
    connwatch.terminate_idle_in_transaction(interval, boolean, text, text, text),
    connwatch.terminate_idle(interval, boolean, text, text, text),
    connwatch.terminate_long_transactions(interval, boolean, text, text, text, boolean),
    connwatch.enforce(boolean),
    connwatch.schedule_enforcement(text),
    connwatch.unschedule_enforcement()
    FROM PUBLIC;
REVOKE ALL ON connwatch.terminations, connwatch.policies FROM PUBLIC;
GRANT SELECT ON connwatch.terminations, connwatch.policies TO pg_monitor;

COMMENT ON TYPE connwatch.action IS
    'One row of what an action function did, would do, or skipped and why';
COMMENT ON COLUMN connwatch.action.pid IS 'Process ID of the session';
COMMENT ON COLUMN connwatch.action.backend_start IS 'When the session started; with pid, identifies it';
COMMENT ON COLUMN connwatch.action.datname IS 'Database';
COMMENT ON COLUMN connwatch.action.usename IS 'Login role';
COMMENT ON COLUMN connwatch.action.application_name IS 'application_name reported by the client';
COMMENT ON COLUMN connwatch.action.client_addr IS 'Client IP address; NULL for Unix sockets';
COMMENT ON COLUMN connwatch.action.state IS 'State of the session when last read';
COMMENT ON COLUMN connwatch.action.state_age IS 'Time in that state';
COMMENT ON COLUMN connwatch.action.xact_age IS 'Age of its transaction';
COMMENT ON COLUMN connwatch.action.xmin_age IS 'Age of the older of its xid and xmin';
COMMENT ON COLUMN connwatch.action.action IS 'terminated, cancelled, would terminate, would cancel or skipped';
COMMENT ON COLUMN connwatch.action.reason IS 'Why it acted (the rule that matched) or why it skipped (gone, backend_start mismatch, not a client backend, own session, state changed, transaction changed, no statement to cancel, protected role, protected application, superuser, not permitted, signal failed, kill budget reached)';
COMMENT ON COLUMN connwatch.action.policy IS 'Name of the policy that matched, NULL for a direct call';

COMMENT ON TABLE connwatch.terminations IS
    'Audit trail: one row per real cancel or termination (not dry runs), pruned after connwatch.audit_retention';
COMMENT ON COLUMN connwatch.terminations.logged_at IS 'When the signal was sent';
COMMENT ON COLUMN connwatch.terminations.policy IS 'Policy that matched, NULL for a direct call or a rule function';
COMMENT ON COLUMN connwatch.terminations.pid IS 'Process ID of the session';
COMMENT ON COLUMN connwatch.terminations.backend_start IS 'When the session started';
COMMENT ON COLUMN connwatch.terminations.datname IS 'Database';
COMMENT ON COLUMN connwatch.terminations.usename IS 'Login role';
COMMENT ON COLUMN connwatch.terminations.application_name IS 'application_name of the session';
COMMENT ON COLUMN connwatch.terminations.client_addr IS 'Client IP address; NULL for Unix sockets';
COMMENT ON COLUMN connwatch.terminations.state IS 'State of the session right before the signal';
COMMENT ON COLUMN connwatch.terminations.state_age IS 'Time it had been in that state';
COMMENT ON COLUMN connwatch.terminations.xact_age IS 'Age of its transaction';
COMMENT ON COLUMN connwatch.terminations.query IS 'Its last statement, truncated to 512 bytes';
COMMENT ON COLUMN connwatch.terminations.action IS 'terminated or cancelled';
COMMENT ON COLUMN connwatch.terminations.reason IS 'Why: the rule that matched, or the reason given to terminate_backend()';
COMMENT ON COLUMN connwatch.terminations.invoked_by IS 'Role that ran the action function';

COMMENT ON TABLE connwatch.policies IS
    'Cleanup policies applied by connwatch.enforce(); dumped by pg_dump';
COMMENT ON COLUMN connwatch.policies.name IS 'Policy name; policies are applied in name order, and a session is handled by the first that matches';
COMMENT ON COLUMN connwatch.policies.state IS 'idle in transaction (aborted ones included), idle, active or any';
COMMENT ON COLUMN connwatch.policies.older_than IS 'Minimum age to act';
COMMENT ON COLUMN connwatch.policies.age_of IS 'state: age measured from state_change; transaction: from xact_start';
COMMENT ON COLUMN connwatch.policies.datname IS 'LIKE pattern on the database name; NULL matches all';
COMMENT ON COLUMN connwatch.policies.usename IS 'LIKE pattern on the login role; NULL matches all';
COMMENT ON COLUMN connwatch.policies.application_name IS 'LIKE pattern on application_name; NULL matches all';
COMMENT ON COLUMN connwatch.policies.only_if_holds_xmin IS 'Act only on a session whose xid or xmin is what limits the xmin horizon';
COMMENT ON COLUMN connwatch.policies.min_pct_used IS 'Act only when the server row of connwatch.connection_limits is at or above this pct_used';
COMMENT ON COLUMN connwatch.policies.action IS 'terminate or cancel (cancel only for active sessions)';
COMMENT ON COLUMN connwatch.policies.enabled IS 'Whether enforce() applies the policy';
COMMENT ON COLUMN connwatch.policies.dry_run IS 'Report what the policy would do without signalling';

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
