--
-- 31_upgrade: CREATE EXTENSION pg_connwatch VERSION '1.0' followed by
-- ALTER EXTENSION pg_connwatch UPDATE gives exactly the objects of a fresh
-- install of the default version.  Each of two databases describes its
-- install as lines of text (members, definitions, columns, constraints,
-- privileges, comments, the extension's own row); the lines must match.
--
SELECT $describe$
WITH ext AS (
    SELECT oid, extowner FROM pg_extension WHERE extname = 'pg_connwatch'
), members AS (
    SELECT d.classid, d.objid
    FROM pg_depend AS d, ext
    WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid
      AND d.deptype = 'e'
), member_relations AS (
    SELECT objid AS relid FROM members WHERE classid = 'pg_class'::regclass
), lines(line) AS (
    SELECT format('extension %s %s schema=%s relocatable=%s config=%s',
                  e.extname, e.extversion, e.extnamespace::regnamespace,
                  e.extrelocatable,
                  (SELECT array_agg(c::regclass::text ORDER BY c::regclass::text)
                   FROM unnest(e.extconfig) AS c))
    FROM pg_extension AS e WHERE e.extname = 'pg_connwatch'
    UNION ALL
    SELECT 'member ' || pg_describe_object(classid, objid, 0) FROM members
    UNION ALL
    SELECT format('schema %s owned_by_extension_owner=%s acl=%s comment=%s',
                  n.nspname, n.nspowner = ext.extowner, n.nspacl,
                  obj_description(n.oid, 'pg_namespace'))
    FROM pg_namespace AS n, ext WHERE n.nspname = 'connwatch'
    UNION ALL
    SELECT format('function %s acl=%s comment=%s', pg_get_functiondef(p.oid),
                  p.proacl, obj_description(p.oid, 'pg_proc'))
    FROM pg_proc AS p JOIN members AS m
      ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
    UNION ALL
    SELECT format('relation %s kind=%s acl=%s comment=%s definition=%s',
                  c.oid::regclass, c.relkind, c.relacl,
                  obj_description(c.oid, 'pg_class'),
                  CASE WHEN c.relkind = 'v' THEN pg_get_viewdef(c.oid) END)
    FROM pg_class AS c JOIN member_relations AS r ON r.relid = c.oid
    UNION ALL
    SELECT format('column %s.%s %s not_null=%s default=%s comment=%s',
                  a.attrelid::regclass, a.attname,
                  format_type(a.atttypid, a.atttypmod), a.attnotnull,
                  pg_get_expr(ad.adbin, ad.adrelid),
                  col_description(a.attrelid, a.attnum))
    FROM pg_attribute AS a
    JOIN member_relations AS r ON r.relid = a.attrelid
    LEFT JOIN pg_attrdef AS ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
    WHERE a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT format('type %s comment=%s', t.oid::regtype,
                  obj_description(t.oid, 'pg_type'))
    FROM pg_type AS t JOIN members AS m
      ON m.classid = 'pg_type'::regclass AND m.objid = t.oid
    UNION ALL
    SELECT format('type column %s.%s %s comment=%s', t.oid::regtype, a.attname,
                  format_type(a.atttypid, a.atttypmod),
                  col_description(t.typrelid, a.attnum))
    FROM pg_type AS t
    JOIN members AS m ON m.classid = 'pg_type'::regclass AND m.objid = t.oid
    JOIN pg_attribute AS a ON a.attrelid = t.typrelid AND a.attnum > 0
    UNION ALL
    SELECT format('constraint %s %s %s', co.conrelid::regclass, co.conname,
                  pg_get_constraintdef(co.oid))
    FROM pg_constraint AS co JOIN member_relations AS r ON r.relid = co.conrelid
    UNION ALL
    SELECT 'index ' || pg_get_indexdef(i.indexrelid)
    FROM pg_index AS i JOIN member_relations AS r ON r.relid = i.indrelid
    UNION ALL
    SELECT format('initial privileges %s %s %s',
                  pg_describe_object(ip.classoid, ip.objoid, ip.objsubid),
                  ip.privtype, ip.initprivs)
    FROM pg_init_privs AS ip
    WHERE (ip.classoid, ip.objoid) IN (SELECT classid, objid FROM members)
       OR ip.objoid = 'connwatch'::regnamespace
)
SELECT string_agg(line, E'\n' ORDER BY line COLLATE "C") AS catalog FROM lines
$describe$ AS describe \gset

CREATE DATABASE regress_cw_fresh;
CREATE DATABASE regress_cw_upgraded;

\c regress_cw_fresh
CREATE EXTENSION pg_connwatch;
:describe \gset fresh_

\c regress_cw_upgraded
CREATE EXTENSION pg_connwatch VERSION '1.0';
-- the 1.0 objects keep working with the current library until the update
SELECT count(*) > 0 AS sessions_readable FROM connwatch.sessions;
ALTER EXTENSION pg_connwatch UPDATE;
:describe \gset upgraded_

\c contrib_regression
-- Something was described at all (every member and more) ...
SELECT count(*) > 100 AS described
FROM regexp_split_to_table(:'fresh_catalog', E'\n');
-- ... and both installs are described alike: no line of one is missing
-- from the other.
SELECT side, line
FROM (SELECT 'only after CREATE EXTENSION', line
      FROM (SELECT regexp_split_to_table(:'fresh_catalog', E'\n')
            EXCEPT
            SELECT regexp_split_to_table(:'upgraded_catalog', E'\n')) AS f(line)
      UNION ALL
      SELECT 'only after ALTER EXTENSION UPDATE', line
      FROM (SELECT regexp_split_to_table(:'upgraded_catalog', E'\n')
            EXCEPT
            SELECT regexp_split_to_table(:'fresh_catalog', E'\n')) AS u(line))
     AS d(side, line)
ORDER BY side, line COLLATE "C";

DROP DATABASE regress_cw_fresh;
DROP DATABASE regress_cw_upgraded;
