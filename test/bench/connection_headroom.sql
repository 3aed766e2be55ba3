-- Plain-SQL equivalent of connwatch.connection_headroom.
-- Ordinary roles: the least of the general pool's headroom and their own
-- CONNECTION LIMIT's (ties: role).  Superusers: every slot left, reserved
-- ones included; binding 'reserved' once the general pool is full.
WITH settings AS (
    SELECT current_setting('max_connections')::integer AS max_conn,
           current_setting('superuser_reserved_connections')::integer AS reserved
),
act AS (
    SELECT usesysid, backend_type FROM pg_stat_activity
),
clients AS (
    SELECT count(*) FILTER (WHERE backend_type = 'client backend')::integer AS n
    FROM act
),
per_role AS (
    SELECT usesysid, count(*)::integer AS n
    FROM act
    WHERE backend_type IN ('client backend', 'walsender')
    GROUP BY usesysid
),
roles AS (
    SELECT r.rolname, r.rolsuper,
           CASE WHEN r.rolsuper THEN NULL
                ELSE nullif(r.rolconnlimit, -1) END AS role_limit,
           coalesce(p.n, 0) AS used,
           greatest(s.max_conn - s.reserved - c.n, 0) AS server_headroom,
           greatest(s.max_conn - c.n, 0) AS all_slots_headroom,
           c.n >= s.max_conn - s.reserved AS general_pool_full
    FROM pg_roles AS r
    LEFT JOIN per_role AS p ON p.usesysid = r.oid
    CROSS JOIN settings AS s
    CROSS JOIN clients AS c
    WHERE r.rolcanlogin AND (r.rolconnlimit <> -1 OR p.n > 0)
)
SELECT rolname, rolsuper AS superuser, rolsuper AS can_use_reserved,
       role_limit, used,
       CASE WHEN rolsuper THEN all_slots_headroom
            ELSE greatest(least(server_headroom, role_limit - used), 0)
       END AS headroom,
       CASE WHEN rolsuper THEN
                CASE WHEN general_pool_full THEN 'reserved' ELSE 'server' END
            WHEN role_limit IS NOT NULL
                 AND greatest(role_limit - used, 0) <= server_headroom THEN 'role'
            ELSE 'server' END AS binding_limit
FROM roles
ORDER BY headroom, rolname;
