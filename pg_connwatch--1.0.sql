/* pg_connwatch--1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION pg_connwatch" to load this file. \quit

-- CREATE EXTENSION already sets search_path to connwatch, pg_temp; every
-- catalog object below is still schema-qualified so that nothing a user
-- creates can capture a reference.

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
-- Privileges: like pg_stat_activity, every role may look; the functions
-- themselves hide what core hides from roles without pg_read_all_stats.
--
GRANT SELECT ON connwatch.sessions, connwatch.idle_in_transaction,
    connwatch.long_transactions, connwatch.connection_limits,
    connwatch.connection_headroom, connwatch.connection_summary,
    connwatch.xmin_horizon TO PUBLIC;
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
