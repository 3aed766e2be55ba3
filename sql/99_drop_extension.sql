--
-- 99_drop_extension: the extension drops cleanly and installs again.
--
DROP EXTENSION pg_connwatch;
-- The schema goes with it: it is a member.
SELECT count(*) AS schemas_left FROM pg_namespace WHERE nspname = 'connwatch';
SELECT count(*) AS objects_left
FROM pg_class AS c
WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = 'connwatch');
SELECT count(*) AS functions_left
FROM pg_proc AS p
WHERE p.pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = 'connwatch');
CREATE EXTENSION pg_connwatch;
SELECT count(*) = 1 AS me_listed FROM connwatch.sessions WHERE pid = pg_backend_pid();
DROP EXTENSION pg_connwatch;
DROP EXTENSION dblink;
