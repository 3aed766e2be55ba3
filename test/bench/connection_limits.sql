-- Plain-SQL equivalent of connwatch.connection_limits.
-- server: max_connections - superuser_reserved_connections, used = client
-- backends; reserved: the rest.  database: datconnlimit against what
-- CountDBConnections counts (client backends, autovacuum workers, logical
-- walsenders); role: rolconnlimit against client backends and walsenders
-- (superusers are never refused: max NULL).  Thresholds 80 / 95 %.
WITH settings AS (
    SELECT current_setting('max_connections')::integer AS max_conn,
           current_setting('superuser_reserved_connections')::integer AS reserved
),
act AS (
    SELECT datid, usesysid, backend_type FROM pg_stat_activity
),
clients AS (
    SELECT count(*) FILTER (WHERE backend_type = 'client backend')::integer AS n
    FROM act
),
per_db AS (
    SELECT datid, count(*)::integer AS n
    FROM act
    WHERE backend_type IN ('client backend', 'autovacuum worker', 'walsender')
    GROUP BY datid
),
per_role AS (
    SELECT usesysid, count(*)::integer AS n
    FROM act
    WHERE backend_type IN ('client backend', 'walsender')
    GROUP BY usesysid
),
limits AS (
    SELECT 'server' AS scope, NULL::name AS name, c.n AS used,
           s.max_conn - s.reserved AS max
    FROM settings AS s, clients AS c
    UNION ALL
    SELECT 'reserved', NULL, greatest(0, c.n - (s.max_conn - s.reserved)),
           s.reserved
    FROM settings AS s, clients AS c
    UNION ALL
    SELECT 'database', d.datname, coalesce(p.n, 0),
           nullif(d.datconnlimit, -1)
    FROM pg_database AS d
    LEFT JOIN per_db AS p ON p.datid = d.oid
    WHERE d.datallowconn
    UNION ALL
    SELECT 'role', r.rolname, coalesce(p.n, 0),
           CASE WHEN r.rolsuper THEN NULL ELSE nullif(r.rolconnlimit, -1) END
    FROM pg_roles AS r
    LEFT JOIN per_role AS p ON p.usesysid = r.oid
    WHERE r.rolcanlogin AND (r.rolconnlimit <> -1 OR p.n > 0)
)
SELECT scope, name, used, max,
       CASE WHEN max IS NOT NULL THEN greatest(max - used, 0) END AS headroom,
       CASE WHEN max = 0 THEN 100.0
            ELSE round(100.0 * used / max, 1) END AS pct_used,
       CASE WHEN max IS NULL THEN 'ok'
            WHEN max = 0 OR round(100.0 * used / max, 1) >= 95 THEN 'critical'
            WHEN round(100.0 * used / max, 1) >= 80 THEN 'warning'
            ELSE 'ok' END AS status
FROM limits;
