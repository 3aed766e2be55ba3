--
-- 04_connection_limits: connwatch.connection_limits and
-- connwatch.connection_headroom against the limits PostgreSQL enforces.
--
SELECT regress_cw_settle() AS settled;

-- Leftovers of an interrupted earlier run, if any.
SET client_min_messages = warning;
DROP DATABASE IF EXISTS regress_cw_db;
DROP ROLE IF EXISTS regress_cw_limited, regress_cw_unlimited, regress_cw_super,
    regress_cw_nologin, regress_cw_zero, regress_cw_unused, regress_cw_tie;
RESET client_min_messages;

CREATE ROLE regress_cw_limited LOGIN CONNECTION LIMIT 2;
CREATE ROLE regress_cw_unlimited LOGIN;
CREATE ROLE regress_cw_super SUPERUSER LOGIN CONNECTION LIMIT 1;
CREATE ROLE regress_cw_nologin NOLOGIN CONNECTION LIMIT 5;
CREATE ROLE regress_cw_zero LOGIN CONNECTION LIMIT 0;
CREATE ROLE regress_cw_unused LOGIN;
CREATE ROLE regress_cw_tie LOGIN;
CREATE DATABASE regress_cw_db CONNECTION LIMIT 3;

-- Before any connection: a role with a limit has a row, used 0; roles
-- without a limit or a connection, and roles that cannot log in, have none.
SELECT scope, name, used, max, headroom, pct_used, status
FROM connwatch.connection_limits
WHERE name::text LIKE 'regress\_cw\_%'
ORDER BY scope COLLATE "C", name COLLATE "C";

-- One connection as the limited role, two into the limited database.
SELECT dblink_connect('r1', regress_cw_connstr('regress_cw_lim1', username => 'regress_cw_limited'));
SELECT dblink_connect('d1', regress_cw_connstr('regress_cw_db1', dbname => 'regress_cw_db', username => 'regress_cw_unlimited'));
SELECT dblink_connect('d2', regress_cw_connstr('regress_cw_db2', dbname => 'regress_cw_db'));
-- A superuser past its CONNECTION LIMIT 1: never refused.
SELECT dblink_connect('s1', regress_cw_connstr('regress_cw_super1', username => 'regress_cw_super'));
SELECT dblink_connect('s2', regress_cw_connstr('regress_cw_super2', username => 'regress_cw_super'));

SELECT scope, name, used, max, headroom, pct_used, status
FROM connwatch.connection_limits
WHERE name::text LIKE 'regress\_cw\_%'
ORDER BY scope COLLATE "C", name COLLATE "C";

-- The server and reserved rows against the settings and pg_stat_activity
-- (client backends only: no background process takes a connection slot).
SELECT scope, name IS NULL AS no_name, status
FROM connwatch.connection_limits
WHERE scope IN ('server', 'reserved')
ORDER BY scope COLLATE "C";
SELECT regress_cw_wait($$
    WITH cfg AS (
        SELECT current_setting('max_connections')::integer AS max_conn,
               current_setting('superuser_reserved_connections')::integer AS reserved,
               (SELECT count(*)::integer FROM pg_stat_activity
                WHERE backend_type = 'client backend') AS clients),
    expected(scope, used, max) AS (
        SELECT 'server', clients, max_conn - reserved FROM cfg
        UNION ALL
        SELECT 'reserved', greatest(0, clients - (max_conn - reserved)), reserved FROM cfg)
    SELECT count(*) = 2
    FROM expected AS e
    JOIN connwatch.connection_limits AS l ON l.scope = e.scope
    WHERE l.name IS NULL
      AND l.used = e.used AND l.max = e.max
      AND l.headroom = greatest(e.max - e.used, 0)
      AND l.pct_used = round(100.0 * e.used / e.max, 1)
    $$) AS server_and_reserved;
SELECT count(*) FILTER (WHERE scope = 'server') AS server_rows,
       count(*) FILTER (WHERE scope = 'reserved') AS reserved_rows
FROM connwatch.connection_limits;

-- One row per database that accepts connections, used as
-- CountDBConnections counts (client backends, autovacuum workers, logical
-- walsenders; not background workers), max NULL when unlimited.
SELECT regress_cw_wait($$
    SELECT count(*) = 0
    FROM (SELECT * FROM connwatch.connection_limits WHERE scope = 'database') AS l
    FULL JOIN (SELECT d.datname,
                      nullif(d.datconnlimit, -1) AS max,
                      (SELECT count(*)::integer FROM pg_stat_activity AS a
                       WHERE a.datid = d.oid
                         AND a.backend_type IN ('client backend', 'autovacuum worker', 'walsender')) AS used
               FROM pg_database AS d WHERE d.datallowconn) AS d
           ON d.datname = l.name
    WHERE l.name IS NULL OR d.datname IS NULL
       OR l.used <> d.used OR l.max IS DISTINCT FROM d.max
       OR l.headroom IS DISTINCT FROM CASE WHEN d.max IS NOT NULL THEN greatest(d.max - d.used, 0) END
       OR l.pct_used IS DISTINCT FROM
          CASE WHEN d.max = 0 THEN 100 ELSE round(100.0 * d.used / d.max, 1) END
    $$) AS databases;
SELECT name, max, headroom, pct_used, status
FROM connwatch.connection_limits
WHERE scope = 'database' AND name IN ('contrib_regression', 'template0', 'template1')
ORDER BY name COLLATE "C";

-- One row per login role with a limit or a connection, used as
-- CountUserConnections counts.
SELECT regress_cw_wait($$
    SELECT count(*) = 0
    FROM (SELECT * FROM connwatch.connection_limits WHERE scope = 'role') AS l
    FULL JOIN (SELECT r.rolname,
                      CASE WHEN r.rolsuper THEN NULL ELSE nullif(r.rolconnlimit, -1) END AS max,
                      c.used
               FROM pg_roles AS r,
                    LATERAL (SELECT count(*)::integer AS used FROM pg_stat_activity AS a
                             WHERE a.usesysid = r.oid
                               AND a.backend_type IN ('client backend', 'walsender')) AS c
               WHERE r.rolcanlogin AND (r.rolconnlimit <> -1 OR c.used > 0)) AS r
           ON r.rolname = l.name
    WHERE l.name IS NULL OR r.rolname IS NULL
       OR l.used <> r.used OR l.max IS DISTINCT FROM r.max
       OR l.headroom IS DISTINCT FROM CASE WHEN r.max IS NOT NULL THEN greatest(r.max - r.used, 0) END
       OR l.pct_used IS DISTINCT FROM
          CASE WHEN r.max = 0 THEN 100 ELSE round(100.0 * r.used / r.max, 1) END
    $$) AS roles;

-- Status thresholds are per session GUCs.
SET connwatch.warning_pct = 50;
SELECT scope, name, pct_used, status
FROM connwatch.connection_limits
WHERE name::text LIKE 'regress\_cw\_%'
ORDER BY scope COLLATE "C", name COLLATE "C";
SET connwatch.critical_pct = 60;
SELECT scope, name, pct_used, status
FROM connwatch.connection_limits
WHERE name::text LIKE 'regress\_cw\_%'
ORDER BY scope COLLATE "C", name COLLATE "C";
SET connwatch.warning_pct = 0;
SET connwatch.critical_pct = 0;
SELECT scope, status FROM connwatch.connection_limits
WHERE scope IN ('server', 'reserved') ORDER BY scope COLLATE "C";
SET connwatch.critical_pct = 100;
SELECT scope, status FROM connwatch.connection_limits
WHERE scope IN ('server', 'reserved') ORDER BY scope COLLATE "C";
RESET connwatch.warning_pct;
RESET connwatch.critical_pct;
SHOW connwatch.warning_pct;
SHOW connwatch.critical_pct;

-- connection_headroom: the limited role is bound by its own limit, the
-- unlimited one by the server; a superuser may also take the reserved
-- slots.  (Headroom from the server depends on the cluster's settings and
-- sessions: checked against them just below.)
SELECT rolname, superuser, can_use_reserved, role_limit, used,
       CASE WHEN binding_limit = 'role' THEN headroom::text ELSE '(server)' END AS headroom,
       binding_limit
FROM connwatch.connection_headroom
WHERE rolname::text LIKE 'regress\_cw\_%'
ORDER BY rolname COLLATE "C";
SELECT regress_cw_wait($$
    WITH cfg AS (
        SELECT current_setting('max_connections')::integer AS max_conn,
               current_setting('superuser_reserved_connections')::integer AS reserved,
               (SELECT count(*)::integer FROM pg_stat_activity
                WHERE backend_type = 'client backend') AS clients)
    SELECT bool_and(CASE h.rolname
               WHEN 'regress_cw_limited' THEN h.headroom = least(cfg.max_conn - cfg.reserved - cfg.clients, 2 - 1)
               WHEN 'regress_cw_unlimited' THEN h.headroom = cfg.max_conn - cfg.reserved - cfg.clients
               WHEN 'regress_cw_super' THEN h.headroom = cfg.max_conn - cfg.clients
               WHEN 'postgres' THEN h.headroom = cfg.max_conn - cfg.clients
           END) AND count(*) = 4
    FROM connwatch.connection_headroom AS h, cfg
    WHERE h.rolname IN ('regress_cw_limited', 'regress_cw_unlimited', 'regress_cw_super', 'postgres')
    $$) AS headroom_values;
-- Every login role with a session or a limit, and no other.
SELECT regress_cw_wait($$
    SELECT count(*) = 0
    FROM connwatch.connection_headroom AS h
    FULL JOIN (SELECT r.rolname, r.rolsuper
               FROM pg_roles AS r
               WHERE r.rolcanlogin
                 AND (r.rolconnlimit <> -1
                      OR EXISTS (SELECT FROM pg_stat_activity AS a
                                 WHERE a.usesysid = r.oid
                                   AND a.backend_type IN ('client backend', 'walsender')))) AS r
           ON r.rolname = h.rolname
    WHERE h.rolname IS NULL OR r.rolname IS NULL OR h.superuser <> r.rolsuper
    $$) AS headroom_roles;

-- A tie between the role's and the server's headroom binds on the role;
-- one more on the role and the server binds.
SELECT current_setting('max_connections')::integer
       - current_setting('superuser_reserved_connections')::integer
       - (SELECT count(*)::integer FROM pg_stat_activity WHERE backend_type = 'client backend')
       AS server_headroom \gset
ALTER ROLE regress_cw_tie CONNECTION LIMIT :server_headroom;
SELECT role_limit = :server_headroom AS limit_is_server_headroom,
       headroom = :server_headroom AS headroom_matches, used, binding_limit
FROM connwatch.connection_headroom WHERE rolname = 'regress_cw_tie';
SELECT :server_headroom + 1 AS one_more \gset
ALTER ROLE regress_cw_tie CONNECTION LIMIT :one_more;
SELECT headroom = :server_headroom AS headroom_matches, binding_limit
FROM connwatch.connection_headroom WHERE rolname = 'regress_cw_tie';

-- Fill the limited role and the limited database; the next connection is
-- refused by the server, and the views said so.
SELECT dblink_connect('r2', regress_cw_connstr('regress_cw_lim2', username => 'regress_cw_limited'));
SELECT dblink_connect('d3', regress_cw_connstr('regress_cw_db3', dbname => 'regress_cw_db', username => 'regress_cw_unlimited'));
SELECT scope, name, used, max, headroom, pct_used, status
FROM connwatch.connection_limits
WHERE name IN ('regress_cw_limited', 'regress_cw_db')
ORDER BY scope COLLATE "C", name COLLATE "C";
SELECT rolname, used, headroom, binding_limit
FROM connwatch.connection_headroom
WHERE rolname = 'regress_cw_limited';
DO $$
DECLARE
    detail text;
BEGIN
    PERFORM dblink_connect('r3', regress_cw_connstr('regress_cw_lim3', username => 'regress_cw_limited'));
    RAISE NOTICE 'r3 connected';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    RAISE NOTICE 'r3 refused: % (%)', substring(detail FROM 'FATAL: +(.*)$'), SQLSTATE;
END
$$;
DO $$
DECLARE
    detail text;
BEGIN
    PERFORM dblink_connect('d4', regress_cw_connstr('regress_cw_db4', dbname => 'regress_cw_db', username => 'regress_cw_unlimited'));
    RAISE NOTICE 'd4 connected';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    RAISE NOTICE 'd4 refused: % (%)', substring(detail FROM 'FATAL: +(.*)$'), SQLSTATE;
END
$$;
-- A superuser still gets in: used over max, headroom stays at 0.
SELECT dblink_connect('d5', regress_cw_connstr('regress_cw_db5', dbname => 'regress_cw_db'));
SELECT regress_cw_wait($$
    SELECT count(*) = 2 FROM connwatch.connection_limits
    WHERE (scope, name, used) IN (('database', 'regress_cw_db', 4),
                                  ('role', 'regress_cw_limited', 2))
    $$) AS refused_ones_gone;
SELECT scope, name, used, max, headroom, pct_used, status
FROM connwatch.connection_limits
WHERE name IN ('regress_cw_limited', 'regress_cw_db')
ORDER BY scope COLLATE "C", name COLLATE "C";

-- Bad GUC values.
\set VERBOSITY sqlstate
SET connwatch.warning_pct = 150;
SET connwatch.critical_pct = -1;
SET connwatch.warning_pct = 'most';
SET connwatch.warning_pct = 90;
SET connwatch.critical_pct = 85;
SELECT * FROM connwatch.connection_limits;
\set VERBOSITY default
SHOW connwatch.warning_pct;
SHOW connwatch.critical_pct;
-- Equal thresholds are fine: straight from ok to critical.
SET connwatch.critical_pct = 90;
SELECT scope, name, pct_used, status
FROM connwatch.connection_limits
WHERE name IN ('regress_cw_limited', 'regress_cw_db')
ORDER BY scope COLLATE "C", name COLLATE "C";
RESET connwatch.warning_pct;
RESET connwatch.critical_pct;
SELECT count(*) > 0 AS readable_again FROM connwatch.connection_limits;

-- Clean up.
SELECT dblink_disconnect(c) FROM unnest(dblink_get_connections()) AS c ORDER BY c;
SELECT regress_cw_settle() AS settled;
DROP DATABASE regress_cw_db;
DROP ROLE regress_cw_limited, regress_cw_unlimited, regress_cw_super,
    regress_cw_nologin, regress_cw_zero, regress_cw_unused, regress_cw_tie;
