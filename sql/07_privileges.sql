--
-- 07_privileges: the views hide exactly what pg_stat_activity hides
-- (HAS_PGSTAT_PERMISSIONS: has_privs_of_role on the session's role or on
-- pg_read_all_stats).  Each viewer is a dblink session logged in as the
-- role, so session and current user are that role.
--
SELECT regress_cw_settle() AS settled;

-- Leftovers of an interrupted earlier run, if any.
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_cw_nopriv, regress_cw_reader, regress_cw_noinherit,
    regress_cw_monitor, regress_cw_member, regress_cw_owner, regress_cw_viewers;
RESET client_min_messages;

CREATE ROLE regress_cw_nopriv LOGIN;
CREATE ROLE regress_cw_reader LOGIN IN ROLE pg_read_all_stats;
-- A NOINHERIT member of pg_read_all_stats sees other roles' sessions in
-- pg_stat_activity on 13 and 14 (any membership counted there), not from 15
-- on: the views follow the server's rule (07_privileges_1.out is 13/14's).
CREATE ROLE regress_cw_noinherit LOGIN NOINHERIT IN ROLE pg_read_all_stats;
CREATE ROLE regress_cw_monitor LOGIN IN ROLE pg_monitor;
CREATE ROLE regress_cw_owner LOGIN;
CREATE ROLE regress_cw_member LOGIN IN ROLE regress_cw_owner;

-- The watched sessions: each idle in a transaction that has an xid.
SELECT dblink_connect('t_super', regress_cw_connstr('regress_cw_priv_super'));
SELECT dblink_exec('t_super', 'BEGIN');
SELECT * FROM dblink('t_super', 'SELECT txid_current() > 0') AS t(result boolean);
SELECT dblink_connect('t_owner', regress_cw_connstr('regress_cw_priv_owner', username => 'regress_cw_owner'));
SELECT dblink_exec('t_owner', 'BEGIN');
SELECT * FROM dblink('t_owner', 'SELECT txid_current() > 0') AS t(result boolean);
SELECT dblink_connect('t_nopriv', regress_cw_connstr('regress_cw_priv_nopriv', username => 'regress_cw_nopriv'));
SELECT dblink_exec('t_nopriv', 'BEGIN');
SELECT * FROM dblink('t_nopriv', 'SELECT txid_current() > 0') AS t(result boolean);

-- The views and the functions behind them are pg_monitor's: a role that is
-- not a member reads nothing until it is granted both.
SELECT dblink_connect('q_nopriv', regress_cw_connstr('regress_cw_q_nopriv', username => 'regress_cw_nopriv'));
SELECT c.relname AS view, t.sqlstate
FROM pg_class AS c,
     LATERAL dblink('q_nopriv', format('SELECT regress_cw_sqlstate_of(%L)',
                                       'SELECT 1 FROM connwatch.' || c.relname)) AS t(sqlstate text)
WHERE c.relnamespace = 'connwatch'::regnamespace AND c.relkind = 'v'
ORDER BY c.relname COLLATE "C";
SELECT * FROM dblink('q_nopriv', $$
    SELECT regress_cw_sqlstate_of('SELECT 1 FROM connwatch.long_transactions(''0'')')
$$) AS t(sqlstate text);
-- The grant the documentation gives: SELECT on the views, EXECUTE on their
-- functions, here to every viewer that is not in pg_monitor.
CREATE ROLE regress_cw_viewers;
GRANT SELECT ON ALL TABLES IN SCHEMA connwatch TO regress_cw_viewers;
GRANT EXECUTE ON FUNCTION connwatch.sessions(), connwatch.idle_in_transaction(),
    connwatch.long_transactions(), connwatch.long_transactions(interval),
    connwatch.connection_limits(), connwatch.connection_headroom(),
    connwatch.connection_summary(), connwatch.xmin_horizon()
    TO regress_cw_viewers;
GRANT regress_cw_viewers TO regress_cw_nopriv, regress_cw_reader,
    regress_cw_noinherit, regress_cw_member;
-- (NOINHERIT: granted privileges need SET ROLE, and this test is about
-- what a login role sees as itself; give that one the grants directly.)
GRANT SELECT ON ALL TABLES IN SCHEMA connwatch TO regress_cw_noinherit;
GRANT EXECUTE ON FUNCTION connwatch.sessions(), connwatch.idle_in_transaction(),
    connwatch.long_transactions(), connwatch.long_transactions(interval),
    connwatch.connection_limits(), connwatch.connection_headroom(),
    connwatch.connection_summary(), connwatch.xmin_horizon()
    TO regress_cw_noinherit;

-- The viewers.
SELECT dblink_connect('q_reader', regress_cw_connstr('regress_cw_q_reader', username => 'regress_cw_reader'));
SELECT dblink_connect('q_noinherit', regress_cw_connstr('regress_cw_q_noinherit', username => 'regress_cw_noinherit'));
SELECT dblink_connect('q_monitor', regress_cw_connstr('regress_cw_q_monitor', username => 'regress_cw_monitor'));
SELECT dblink_connect('q_member', regress_cw_connstr('regress_cw_q_member', username => 'regress_cw_member'));

--
-- What a role without pg_read_all_stats sees.
--
-- sessions: its own sessions in full (its query text too), others' with
-- only pid, database, role, application_name, xid and xmin.
SELECT * FROM dblink('q_nopriv', $$
    SELECT application_name, datname, usename, backend_type, state,
           CASE WHEN query = connwatch.printable(current_query()) THEN '(this very query)' ELSE query END AS query,
           backend_xid IS NOT NULL AS has_xid,
           client_port IS NULL AS no_port,
           backend_start IS NULL AS no_start, xact_start IS NULL AS no_xact_start,
           session_age IS NULL AS no_session_age, xact_age IS NULL AS no_xact_age,
           wait_event_type IS NULL AS no_wait, blocked_by IS NULL AS no_blocked_by
    FROM connwatch.sessions
    WHERE application_name LIKE 'regress\_cw\_priv\_%'
       OR application_name = 'regress_cw_q_nopriv'
    ORDER BY application_name COLLATE "C"
$$) AS t(application_name text, datname name, usename name, backend_type text,
         state text, query text, has_xid boolean,
         no_port boolean, no_start boolean, no_xact_start boolean,
         no_session_age boolean, no_xact_age boolean, no_wait boolean,
         no_blocked_by boolean);
-- idle_in_transaction and long_transactions: only its own.
SELECT * FROM dblink('q_nopriv', $$
    SELECT application_name, state, query
    FROM connwatch.idle_in_transaction
    WHERE application_name LIKE 'regress\_cw\_%'
    ORDER BY application_name COLLATE "C"
$$) AS t(application_name text, state text, query text);
SELECT * FROM dblink('q_nopriv', $$
    SELECT application_name, state, query
    FROM connwatch.long_transactions('0')
    WHERE application_name LIKE 'regress\_cw\_priv\_%'
    ORDER BY application_name COLLATE "C"
$$) AS t(application_name text, state text, query text);
-- connection_summary: others' sessions counted in total and
-- insufficient_privilege only.
SELECT * FROM dblink('q_nopriv', $$
    SELECT application_name, usename, client_addr, total, active, idle,
           idle_in_transaction, idle_in_transaction_aborted, other,
           insufficient_privilege, waiting,
           oldest_xact_age IS NOT NULL AS has_xact_age,
           longest_idle_in_transaction IS NOT NULL AS has_idle_age
    FROM connwatch.connection_summary
    WHERE application_name LIKE 'regress\_cw\_priv\_%'
    ORDER BY application_name COLLATE "C"
$$) AS t(application_name text, usename name, client_addr inet, total integer,
         active integer, idle integer, idle_in_transaction integer,
         idle_in_transaction_aborted integer, other integer,
         insufficient_privilege integer, waiting integer,
         has_xact_age boolean, has_idle_age boolean);
-- xmin_horizon: every holder is listed (xids are not hidden), but the state
-- and transaction start of others' sessions are.
SELECT * FROM dblink('q_nopriv', $$
    SELECT application_name, holder_type, state, since IS NOT NULL AS has_since,
           xmin IS NOT NULL AS has_xmin, xmin_age > 0 AS xmin_age_positive
    FROM connwatch.xmin_horizon
    WHERE application_name LIKE 'regress\_cw\_priv\_%'
    ORDER BY application_name COLLATE "C"
$$) AS t(application_name text, holder_type text, state text,
         has_since boolean, has_xmin boolean, xmin_age_positive boolean);

--
-- Who sees what: for each viewer and each watched session, whether the
-- session is visible in sessions (query text), idle_in_transaction,
-- long_transactions and xmin_horizon (state).
--
SELECT v.viewer, t.*
FROM unnest(ARRAY['nopriv', 'reader', 'noinherit', 'monitor', 'member']) WITH ORDINALITY AS v(viewer, n),
     LATERAL dblink('q_' || v.viewer, $$
        SELECT s.application_name,
               s.query <> '<insufficient privilege>' AS sessions,
               EXISTS (SELECT FROM connwatch.idle_in_transaction AS i WHERE i.pid = s.pid) AS idle_in_xact,
               EXISTS (SELECT FROM connwatch.long_transactions('0') AS l WHERE l.pid = s.pid) AS long_xact,
               (SELECT h.state IS NOT NULL FROM connwatch.xmin_horizon AS h WHERE h.pid = s.pid) AS horizon,
               (SELECT c.insufficient_privilege = 0 FROM connwatch.connection_summary AS c
                WHERE c.application_name = s.application_name) AS summary
        FROM connwatch.sessions AS s
        WHERE s.application_name LIKE 'regress\_cw\_priv\_%'
        ORDER BY s.application_name COLLATE "C"
     $$) AS t(application_name text, sessions boolean, idle_in_xact boolean,
              long_xact boolean, horizon boolean, summary boolean)
ORDER BY v.n, t.application_name COLLATE "C";

--
-- For every viewer, every row of every view agrees with pg_stat_activity
-- as that viewer sees it (polled: other sessions may change state).
--
CREATE FUNCTION regress_cw_checks_as(conn text)
RETURNS TABLE (sessions boolean, idle_in_transaction boolean,
               long_transactions boolean, xmin_horizon boolean)
LANGUAGE sql AS $f$
    SELECT * FROM dblink(conn, $r$ SELECT
      regress_cw_wait($w$
        SELECT count(*) = 0
        FROM connwatch.sessions AS s
        FULL JOIN pg_stat_activity AS a ON a.pid = s.pid
        WHERE s.pid IS NULL OR a.pid IS NULL
           OR (s.backend_type, s.datid, s.datname, s.usesysid, s.usename,
               s.application_name, s.client_addr, s.client_port,
               s.backend_start, s.xact_start, s.query_start, s.state_change,
               s.state, s.wait_event_type, s.wait_event,
               s.backend_xid, s.backend_xmin, s.xmin_age, s.query,
               s.session_age IS NULL, s.xact_age IS NULL, s.state_age IS NULL,
               s.blocked_by)
              IS DISTINCT FROM
              (a.backend_type, a.datid, a.datname, a.usesysid, a.usename,
               a.application_name, a.client_addr, a.client_port,
               a.backend_start, a.xact_start, a.query_start, a.state_change,
               a.state, a.wait_event_type, a.wait_event,
               a.backend_xid, a.backend_xmin, age(a.backend_xmin), connwatch.printable(a.query),
               a.backend_start IS NULL, a.xact_start IS NULL, a.state_change IS NULL,
               CASE WHEN a.query <> '<insufficient privilege>' THEN pg_blocking_pids(a.pid) END)
      $w$, 10),
      regress_cw_wait($w$
        SELECT count(*) = 0
        FROM connwatch.idle_in_transaction AS t
        FULL JOIN (SELECT * FROM pg_stat_activity
                   WHERE backend_type = 'client backend'
                     AND state IN ('idle in transaction', 'idle in transaction (aborted)')) AS a
               ON a.pid = t.pid
        WHERE t.pid IS NULL OR a.pid IS NULL
           OR (t.datname, t.usename, t.application_name, t.client_addr, t.state,
               t.state_change, t.xact_start, t.backend_xid, t.backend_xmin, t.query)
              IS DISTINCT FROM
              (a.datname, a.usename, a.application_name, a.client_addr, a.state,
               a.state_change, a.xact_start, a.backend_xid, a.backend_xmin, connwatch.printable(a.query))
      $w$, 10),
      regress_cw_wait($w$
        SELECT count(*) = 0
        FROM (SELECT * FROM connwatch.long_transactions('0')
              WHERE pid <> pg_backend_pid()) AS t
        FULL JOIN (SELECT * FROM pg_stat_activity
                   WHERE backend_type = 'client backend'
                     AND xact_start IS NOT NULL
                     AND pid <> pg_backend_pid()) AS a
               ON a.pid = t.pid
        WHERE t.pid IS NULL OR a.pid IS NULL
           OR (t.state, t.xact_start, t.query) IS DISTINCT FROM (a.state, a.xact_start, connwatch.printable(a.query))
      $w$, 10),
      regress_cw_wait($w$
        SELECT count(*) = 0
        FROM (SELECT * FROM connwatch.xmin_horizon WHERE holder_type = 'backend') AS h
        FULL JOIN (SELECT * FROM pg_stat_activity
                   WHERE backend_xid IS NOT NULL OR backend_xmin IS NOT NULL) AS a
               ON a.pid = h.pid
        WHERE h.pid IS NULL OR a.pid IS NULL
           OR (h.state, h.since, h.application_name) IS DISTINCT FROM
              (a.state, a.xact_start, a.application_name)
      $w$, 10)
    $r$) AS t(sessions boolean, idle_in_transaction boolean,
              long_transactions boolean, xmin_horizon boolean)
$f$;
SELECT v.viewer, c.*
FROM unnest(ARRAY['nopriv', 'reader', 'noinherit', 'monitor', 'member']) WITH ORDINALITY AS v(viewer, n),
     LATERAL regress_cw_checks_as('q_' || v.viewer) AS c
ORDER BY v.n;

-- connection_summary as the role without privileges, against the same
-- grouping computed here with its privileges emulated (pg_has_role USAGE is
-- has_privs_of_role): hidden sessions are counted in total and
-- insufficient_privilege, with client_addr NULL.  The viewer's own session
-- (active while it runs the query) is left out on both sides.
SELECT regress_cw_wait($$
    WITH got AS (
        SELECT * FROM dblink('q_nopriv', $r$
            SELECT datname, usename, application_name, client_addr, total, active,
                   idle, idle_in_transaction, idle_in_transaction_aborted, other,
                   insufficient_privilege, waiting
            FROM connwatch.connection_summary
            WHERE application_name IS DISTINCT FROM 'regress_cw_q_nopriv'
        $r$) AS t(datname name, usename name, application_name text, client_addr inet,
                  total integer, active integer, idle integer, iit integer,
                  aborted integer, other integer, insufficient integer, waiting integer)),
    seen AS (
        SELECT a.*, (pg_has_role('regress_cw_nopriv', a.usesysid, 'USAGE')
                     OR pg_has_role('regress_cw_nopriv', 'pg_read_all_stats', 'USAGE')) AS visible
        FROM pg_stat_activity AS a
        WHERE a.backend_type = 'client backend'
          AND a.application_name IS DISTINCT FROM 'regress_cw_q_nopriv'),
    expected AS (
        SELECT datname, usename, application_name,
               CASE WHEN visible THEN client_addr END AS client_addr,
               count(*)::integer AS total,
               count(*) FILTER (WHERE visible AND state = 'active')::integer,
               count(*) FILTER (WHERE visible AND state = 'idle')::integer,
               count(*) FILTER (WHERE visible AND state = 'idle in transaction')::integer,
               count(*) FILTER (WHERE visible AND state = 'idle in transaction (aborted)')::integer,
               count(*) FILTER (WHERE visible AND (state IS NULL OR state NOT IN
                   ('active', 'idle', 'idle in transaction', 'idle in transaction (aborted)')))::integer,
               count(*) FILTER (WHERE NOT visible)::integer,
               count(*) FILTER (WHERE visible AND wait_event_type = 'Lock')::integer
        FROM seen
        GROUP BY 1, 2, 3, 4)
    SELECT NOT EXISTS (SELECT * FROM got EXCEPT ALL SELECT * FROM expected)
       AND NOT EXISTS (SELECT * FROM expected EXCEPT ALL SELECT * FROM got)
    $$) AS summary_as_nopriv;

-- A role that later loses pg_read_all_stats sees less at once (privileges
-- are checked at every call, not cached in the session).
REVOKE pg_read_all_stats FROM regress_cw_reader;
SELECT * FROM dblink('q_reader', $$
    SELECT application_name, query <> '<insufficient privilege>' AS sees
    FROM connwatch.sessions
    WHERE application_name LIKE 'regress\_cw\_priv\_%'
    ORDER BY application_name COLLATE "C"
$$) AS t(application_name text, sees boolean);

-- Clean up.
SELECT dblink_exec(c, 'ROLLBACK') FROM unnest(ARRAY['t_super', 't_owner', 't_nopriv']) AS c;
SELECT dblink_disconnect(c) FROM unnest(dblink_get_connections()) AS c ORDER BY c;
SELECT regress_cw_settle() AS settled;
DROP FUNCTION regress_cw_checks_as(text);
DROP OWNED BY regress_cw_viewers, regress_cw_noinherit;
DROP ROLE regress_cw_nopriv, regress_cw_reader, regress_cw_noinherit,
    regress_cw_monitor, regress_cw_member, regress_cw_owner, regress_cw_viewers;
