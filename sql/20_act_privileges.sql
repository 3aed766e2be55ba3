--
-- 20_act_privileges: catalog lint and grants of the act layer
--
-- Each lint is a function of a schema.  It runs against connwatch, where it
-- must find nothing, and against regress_act_lint, a schema of deliberately
-- good and bad functions, where it must find exactly the bad ones: a lint
-- that cannot fail proves nothing.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS dblink;
CREATE EXTENSION IF NOT EXISTS pg_connwatch;
RESET client_min_messages;

--
-- Lint 1: a SECURITY DEFINER function must pin search_path to trusted
-- schemas: pg_catalog first, pg_temp last, nothing writable by others
-- (no public, no $user).
--
CREATE FUNCTION pg_temp.unpinned_security_definers(nsp regnamespace)
RETURNS TABLE (function regprocedure, search_path text)
LANGUAGE sql AS $$
    SELECT p.oid::regprocedure,
           (SELECT substr(c, length('search_path=') + 1)
            FROM unnest(p.proconfig) AS c WHERE c LIKE 'search\_path=%')
    FROM pg_proc p
    WHERE p.pronamespace = nsp AND p.prosecdef
      AND NOT EXISTS (
          SELECT 1 FROM unnest(p.proconfig) AS c
          WHERE c ~ '^search_path=pg_catalog(, *[a-z_][a-z0-9_]*)*, *pg_temp$'
            AND c !~ '\m(public|\$user)\M')
    ORDER BY p.oid::regprocedure::text COLLATE "C";
$$;

--
-- Lint 2: the action functions (terminate_*, cancel_backend, enforce,
-- schedule_*, unschedule_*) are not executable by PUBLIC.  A NULL proacl
-- is the default ACL, which does grant EXECUTE to PUBLIC.
--
CREATE FUNCTION pg_temp.action_functions(nsp regnamespace)
RETURNS TABLE (function regprocedure, public_execute boolean,
               security_definer boolean)
LANGUAGE sql AS $$
    SELECT p.oid::regprocedure,
           EXISTS (SELECT 1
                   FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                   WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE'),
           p.prosecdef
    FROM pg_proc p
    WHERE p.pronamespace = nsp
      AND p.proname ~ '^(terminate_.*|cancel_backend|enforce|schedule_.*|unschedule_.*)$'
    ORDER BY p.oid::regprocedure::text COLLATE "C";
$$;

--
-- Lint 3: no unqualified operator in the body of a LANGUAGE sql or plpgsql
-- function: an operator is resolved through the caller's search_path, so
-- it must be written OPERATOR(pg_catalog.=).  A function that pins its own
-- search_path to exactly pg_catalog, pg_temp (SET search_path, as
-- diagnose() does) is exempt: pg_temp is never searched for operators, so
-- only pg_catalog's can be found.  This is a lexical check, not a parser:
--  * comments, quoted identifiers and string literals are removed first,
--    except that a literal that is itself a statement (EXECUTE 'SELECT ...')
--    is checked like code;
--  * what remains is searched for runs of operator characters and for the
--    keyword forms that hide an operator (LIKE, ILIKE, SIMILAR TO, BETWEEN,
--    x IN (...), IS DISTINCT FROM, NULLIF, simple CASE x WHEN);
--  * allowed are: OPERATOR(pg_catalog.op), casts (::), plpgsql assignment
--    (:=), named arguments (=>), the * of count(*), t.* and SELECT *,
--    %TYPE/%ROWTYPE, RAISE ... USING option = value, and FOR x IN loops.
-- It errs on the side of reporting (a unary minus is reported too), and
-- does not see E'' escapes or queries built in C (SPI).
--
CREATE FUNCTION pg_temp.code_of(src text) RETURNS text
LANGUAGE plpgsql AS $f$
DECLARE
    code text := '';
    i integer := 1;
    j integer;
    n integer := length(src);
    tag text;
    lit text;
BEGIN
    WHILE i <= n LOOP
        IF substr(src, i, 2) = '--' THEN
            j := strpos(substr(src, i), E'\n');
            EXIT WHEN j = 0;
            i := i + j - 1;
        ELSIF substr(src, i, 2) = '/*' THEN
            j := strpos(substr(src, i + 2), '*/');
            EXIT WHEN j = 0;
            i := i + j + 3;
            code := code || ' ';
        ELSIF substr(src, i, 1) = '''' THEN
            j := i + 1;
            WHILE j <= n LOOP
                IF substr(src, j, 2) = '''''' THEN
                    j := j + 2;
                ELSIF substr(src, j, 1) = '''' THEN
                    EXIT;
                ELSE
                    j := j + 1;
                END IF;
            END LOOP;
            lit := replace(substr(src, i + 1, j - i - 1), '''''', '''');
            IF lit ~* '^\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\M' THEN
                code := code || ' (' || pg_temp.code_of(lit) || ') ';
            ELSE
                code := code || ' '''' ';
            END IF;
            i := j + 1;
        ELSIF substr(src, i, 1) = '"' THEN
            j := strpos(substr(src, i + 1), '"');
            EXIT WHEN j = 0;
            i := i + j + 1;
            code := code || ' "" ';
        ELSIF substr(src, i) ~ '^\$([A-Za-z_][A-Za-z0-9_]*)?\$' THEN
            tag := substring(substr(src, i) FROM '^\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$');
            j := strpos(substr(src, i + length(tag)), tag);
            EXIT WHEN j = 0;
            i := i + length(tag) + j - 1 + length(tag);
            code := code || ' $ $ ';
        ELSE
            code := code || substr(src, i, 1);
            i := i + 1;
        END IF;
    END LOOP;
    RETURN code;
END
$f$;

CREATE FUNCTION pg_temp.without_allowed(code text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    code := regexp_replace(code,
        'OPERATOR\s*\(\s*pg_catalog\s*\.\s*[-+*/<>=~!@#%^&|`?]+\s*\)', ' ', 'gi');
    code := replace(code, '::', ' ');
    code := replace(code, ':=', ' ');
    code := replace(code, '=>', ' ');
    code := regexp_replace(code, '\(\s*\*\s*\)', ' ', 'g');
    code := regexp_replace(code, '\.\s*\*', ' ', 'g');
    code := regexp_replace(code, '\m(SELECT|RETURNING)\s+\*', ' ', 'gi');
    code := regexp_replace(code, '%(ROW)?TYPE\M', ' ', 'gi');
    code := regexp_replace(code, '\mFOR\s+\w+(\s*,\s*\w+)*\s+IN\M', ' ', 'gi');
    -- UPDATE ... SET column = value assigns, it compares nothing
    code := regexp_replace(code, '\mSET\s+\w+\s*=', ' ', 'gi');
    -- RAISE ... USING option = value, statement by statement (the
    -- literals are gone, so every ; ends a statement)
    SELECT string_agg(CASE WHEN r > 0
                           THEN substr(stmt, 1, r - 1) ||
                                regexp_replace(substr(stmt, r),
                                '\m(ERRCODE|MESSAGE|DETAIL|HINT|COLUMN|CONSTRAINT|DATATYPE|TABLE|SCHEMA)\s*=',
                                ' ', 'gi')
                           ELSE stmt END, ';' ORDER BY n)
    INTO code
    FROM regexp_split_to_table(code, ';') WITH ORDINALITY AS t(stmt, n),
         -- where RAISE starts, 0 if nowhere (regexp_instr is 15+)
         LATERAL (SELECT COALESCE(length((regexp_match(stmt, '^(.*?)\mRAISE\M', 'i'))[1]) + 1, 0))
             AS p(r);
    RETURN code;
END
$$;

CREATE FUNCTION pg_temp.unqualified_operators(nsp regnamespace)
RETURNS TABLE (function regprocedure, operator text)
LANGUAGE sql AS $$
    SELECT f, op FROM (
        SELECT p.oid::regprocedure, btrim(lower(regexp_replace(m[1], '\s+', ' ', 'g')))
        FROM pg_proc p
             JOIN pg_language l ON l.oid = p.prolang,
             LATERAL regexp_matches(
                 pg_temp.without_allowed(pg_temp.code_of(p.prosrc)),
                 '([-+*/<>=~!@#%^&|`?]+|\m(?:LIKE|ILIKE|SIMILAR|BETWEEN|NULLIF|IN\s*\(|DISTINCT\s+FROM|CASE\s+(?!WHEN\M)))',
                 'gi') AS m
        WHERE p.pronamespace = nsp AND l.lanname IN ('sql', 'plpgsql')
          AND 'search_path=pg_catalog, pg_temp' <> ALL (COALESCE(p.proconfig, '{}'))
    ) AS s(f, op)
    ORDER BY f::text COLLATE "C", op COLLATE "C";
$$;

--
-- The control schema: what each lint must catch, and must let pass
--
CREATE SCHEMA regress_act_lint;
CREATE FUNCTION regress_act_lint.definer_unpinned() RETURNS int
LANGUAGE sql SECURITY DEFINER AS 'SELECT 1';
CREATE FUNCTION regress_act_lint.definer_public() RETURNS int
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS 'SELECT 1';
CREATE FUNCTION regress_act_lint.definer_temp_first() RETURNS int
LANGUAGE sql SECURITY DEFINER SET search_path = pg_temp, pg_catalog
AS 'SELECT 1';
CREATE FUNCTION regress_act_lint.definer_pinned() RETURNS int
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS 'SELECT 1';
CREATE FUNCTION regress_act_lint.invoker_unpinned() RETURNS int
LANGUAGE sql AS 'SELECT 1';

CREATE FUNCTION regress_act_lint.terminate_granted() RETURNS int
LANGUAGE sql AS 'SELECT 1';
CREATE FUNCTION regress_act_lint.enforce() RETURNS int
LANGUAGE sql AS 'SELECT 1';
REVOKE ALL ON FUNCTION regress_act_lint.enforce() FROM PUBLIC;

CREATE FUNCTION regress_act_lint.bad_sql(a int) RETURNS boolean
LANGUAGE sql AS 'SELECT a=1 OR a IN (2, 3) OR a::text LIKE ''4%''';
CREATE FUNCTION regress_act_lint.bad_plpgsql(a int) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    IF a > 0 AND a IS DISTINCT FROM 7 THEN
        RETURN a::text || 'x';
    END IF;
    CASE a WHEN 1 THEN RETURN NULLIF(a, 2)::text; ELSE NULL; END CASE;
    RETURN (a BETWEEN 1 AND 9)::text;
END
$$;
CREATE FUNCTION regress_act_lint.bad_execute(a int) RETURNS int
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE 'SELECT 1 WHERE $1 <> 0' USING a;
    EXECUTE 'UPDATE pg_temp.t SET c = 1 WHERE d = $1' USING a;
    RETURN -a;
END
$$;
CREATE FUNCTION regress_act_lint.good_plpgsql(a int) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint := 0;          -- a = b in a comment
    r pg_catalog.pg_class%ROWTYPE;
BEGIN
    /* a < b in a block comment */
    FOR i IN 1..3 LOOP
        n := n OPERATOR(pg_catalog.+) i;
    END LOOP;
    IF a OPERATOR(pg_catalog.>) 0 AND "a = b" IS NULL THEN
        RAISE EXCEPTION 'a = %, b <> c', a
            USING ERRCODE = 'data_exception', HINT = 'x > y';
    END IF;
    EXECUTE 'SELECT count(*) FROM pg_catalog.pg_class' INTO n;
    EXECUTE 'UPDATE pg_temp.t SET c = $1 WHERE d OPERATOR(pg_catalog.=) $2' USING a, n;
    SELECT * INTO r FROM pg_catalog.pg_class LIMIT 1;
    RETURN n OPERATOR(pg_catalog.+) pg_catalog.length($q$ not = code $q$);
END
$$;

-- pinned to pg_catalog, pg_temp: exempt; pinned with public: not
CREATE FUNCTION regress_act_lint.pinned_sql(a int) RETURNS boolean
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS 'SELECT a = 1';
CREATE FUNCTION regress_act_lint.pinned_public_sql(a int) RETURNS boolean
LANGUAGE sql SET search_path = pg_catalog, public, pg_temp AS 'SELECT a <= 1';

SELECT * FROM pg_temp.unpinned_security_definers('regress_act_lint');
SELECT * FROM pg_temp.action_functions('regress_act_lint');
SELECT * FROM pg_temp.unqualified_operators('regress_act_lint');

--
-- The lints on connwatch: nothing found
--
SELECT * FROM pg_temp.unpinned_security_definers('connwatch');
SELECT * FROM pg_temp.action_functions('connwatch');
SELECT * FROM pg_temp.unqualified_operators('connwatch');
-- what lint 3 read: the LANGUAGE sql/plpgsql functions of connwatch
SELECT p.oid::regprocedure AS function, l.lanname, p.prosecdef, p.proconfig
FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
WHERE p.pronamespace = 'connwatch'::regnamespace AND l.lanname IN ('sql', 'plpgsql')
ORDER BY p.oid::regprocedure::text COLLATE "C";
-- and nothing in connwatch is SECURITY DEFINER at all
SELECT count(*) AS security_definers FROM pg_proc
WHERE pronamespace = 'connwatch'::regnamespace AND prosecdef;

SET client_min_messages = warning;
DROP SCHEMA regress_act_lint CASCADE;
RESET client_min_messages;

--
-- Grants: a role without grants may execute no action function
--
CREATE ROLE regress_act_priv_nobody;
CREATE ROLE regress_act_priv_monitor IN ROLE pg_monitor;
SELECT p.oid::regprocedure AS function,
       has_function_privilege('regress_act_priv_nobody', p.oid, 'EXECUTE') AS nobody,
       has_function_privilege('regress_act_priv_monitor', p.oid, 'EXECUTE') AS monitor,
       has_function_privilege('pg_signal_backend', p.oid, 'EXECUTE') AS signal_backend
FROM pg_temp.action_functions('connwatch') AS f JOIN pg_proc p ON p.oid = f.function
ORDER BY p.oid::regprocedure::text COLLATE "C";

SET ROLE regress_act_priv_nobody;
SELECT connwatch.terminate_backend(1, now());
SELECT connwatch.cancel_backend(1, now());
SELECT * FROM connwatch.terminate_idle_in_transaction('1 hour');
SELECT * FROM connwatch.terminate_idle('1 hour');
SELECT * FROM connwatch.terminate_long_transactions('1 hour');
SELECT * FROM connwatch.enforce(true);
SELECT connwatch.schedule_enforcement();
SELECT connwatch.unschedule_enforcement();
RESET ROLE;

--
-- The audit trail and the policies: nothing for PUBLIC, SELECT for
-- pg_monitor, writable only by their owner
--
SELECT c.relname, a.privilege_type
FROM pg_class c, aclexplode(c.relacl) AS a
WHERE c.relnamespace = 'connwatch'::regnamespace AND c.relkind = 'r'
  AND a.grantee = 0;
SELECT c.relname, c.relacl IS NOT NULL AS has_acl,
       has_table_privilege('pg_monitor', c.oid, 'SELECT') AS monitor_select,
       has_table_privilege('pg_monitor', c.oid,
                           'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER') AS monitor_write,
       has_table_privilege('regress_act_priv_nobody', c.oid,
                           'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER') AS nobody_any
FROM pg_class c
WHERE c.relnamespace = 'connwatch'::regnamespace AND c.relkind = 'r'
ORDER BY c.relname COLLATE "C";

SET ROLE regress_act_priv_nobody;
SELECT count(*) FROM connwatch.terminations;
SELECT count(*) FROM connwatch.policies;
INSERT INTO connwatch.terminations (logged_at, pid, backend_start, action, invoked_by)
VALUES (now(), 0, now(), 'terminated', 'forged');
INSERT INTO connwatch.policies (name, state, older_than) VALUES ('x', 'idle', '0');
RESET ROLE;

SET ROLE regress_act_priv_monitor;
-- (no rows asked for: what counts is that there is no error)
SELECT FROM connwatch.terminations LIMIT 0;
SELECT FROM connwatch.policies LIMIT 0;
INSERT INTO connwatch.terminations (logged_at, pid, backend_start, action, invoked_by)
VALUES (now(), 0, now(), 'terminated', 'forged');
DELETE FROM connwatch.terminations;
UPDATE connwatch.policies SET enabled = false;
INSERT INTO connwatch.policies (name, state, older_than) VALUES ('x', 'idle', '0');
RESET ROLE;

--
-- The recipe for a cleanup role: pg_monitor (to see sessions and read the
-- policies), pg_signal_backend and EXECUTE.  It terminates other roles'
-- sessions, never a superuser's, and the audit row is written although the
-- role cannot write the table.
--
CREATE ROLE regress_act_priv_cleaner IN ROLE pg_monitor, pg_signal_backend;
CREATE ROLE regress_act_priv_app LOGIN;
GRANT EXECUTE ON FUNCTION connwatch.enforce(boolean),
    connwatch.terminate_idle_in_transaction(interval, boolean, text, text, text)
    TO regress_act_priv_cleaner;
SELECT format('dbname=%s port=%s host=%s', current_database(),
              current_setting('port'),
              split_part(current_setting('unix_socket_directories'), ',', 1)) AS connstr \gset
SELECT dblink_connect('app1', :'connstr' || ' user=regress_act_priv_app application_name=regress_act_priv_app1');
SELECT dblink_exec('app1', 'BEGIN');
SELECT dblink_connect('su1', :'connstr' || ' user=' || current_user || ' application_name=regress_act_priv_su1');
SELECT dblink_exec('su1', 'BEGIN');
INSERT INTO connwatch.policies (name, state, older_than, application_name)
VALUES ('regress_priv', 'idle in transaction', '0', 'regress_act_priv_%');

SET ROLE regress_act_priv_cleaner;
SELECT application_name, action,
       regexp_replace(reason, ' for .*', ' for ...') AS reason, policy
FROM connwatch.enforce(dry_run => true) ORDER BY application_name COLLATE "C";
SELECT application_name, action, regexp_replace(reason, ' for .*', ' for ...') AS reason,
       policy
FROM connwatch.enforce() ORDER BY application_name COLLATE "C";
RESET ROLE;
SELECT regress_cw_wait_gone('regress_act_priv_app1') AS app1_gone;
SELECT policy, usename, application_name, action, invoked_by
FROM connwatch.terminations WHERE application_name LIKE 'regress_act_priv_%';
SELECT * FROM dblink('su1', 'SELECT 1') AS t(su1_alive int);
DELETE FROM connwatch.policies;

-- without pg_signal_backend, a role may signal only its own role's sessions
CREATE ROLE regress_act_priv_peer IN ROLE regress_act_priv_app;
GRANT EXECUTE ON FUNCTION
    connwatch.terminate_idle_in_transaction(interval, boolean, text, text, text)
    TO regress_act_priv_nobody, regress_act_priv_peer;
SELECT dblink_connect('app2', :'connstr' || ' user=regress_act_priv_app application_name=regress_act_priv_app2');
SELECT dblink_exec('app2', 'BEGIN');
-- regress_act_priv_nobody cannot even see the sessions' state: no rows
SET ROLE regress_act_priv_nobody;
SELECT application_name, action, reason
FROM connwatch.terminate_idle_in_transaction('0', application_name => 'regress_act_priv_%');
RESET ROLE;
-- a member of the sessions' role sees its own and may signal it; the
-- superuser's session it cannot see
SET ROLE regress_act_priv_peer;
SELECT application_name, action, regexp_replace(reason, ' for .*', ' for ...') AS reason
FROM connwatch.terminate_idle_in_transaction('0', application_name => 'regress_act_priv_%');
RESET ROLE;
SELECT regress_cw_wait_gone('regress_act_priv_app2') AS app2_gone;
SELECT * FROM dblink('su1', 'SELECT 2') AS t(su1_alive int);

--
-- Scheduling needs pg_cron
--
SELECT count(*) AS pg_cron_installed FROM pg_extension WHERE extname = 'pg_cron';
-- The error in full; its hint names the server's own Debian package,
-- postgresql-NN-cron (NN normalised here).
CREATE FUNCTION pg_temp.error_of(stmt text) RETURNS TABLE (field text, value text)
LANGUAGE plpgsql AS $$
DECLARE
    state text;
    message text;
    detail text;
    hint text;
BEGIN
    EXECUTE stmt;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
        detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
    RETURN QUERY VALUES ('sqlstate', state), ('message', message),
        ('detail', detail),
        ('hint', regexp_replace(hint, 'postgresql-[0-9]+-cron', 'postgresql-NN-cron'));
END
$$;
SELECT * FROM pg_temp.error_of('SELECT connwatch.schedule_enforcement()');
\set SHOW_CONTEXT never
SELECT connwatch.unschedule_enforcement();
\set SHOW_CONTEXT errors
SELECT regress_cw_sqlstate_of('SELECT connwatch.schedule_enforcement()');
SELECT regress_cw_sqlstate_of($$SELECT connwatch.schedule_enforcement('*/5 * * * *')$$);
SELECT regress_cw_sqlstate_of('SELECT connwatch.unschedule_enforcement()');
SELECT regress_cw_sqlstate_of('SELECT connwatch.schedule_enforcement(NULL)');

-- clean up
SELECT dblink_disconnect('su1');
SELECT regress_cw_sqlstate_of($$SELECT dblink_disconnect('app1')$$) IS NOT NULL AS app1_closed;
SELECT regress_cw_sqlstate_of($$SELECT dblink_disconnect('app2')$$) IS NOT NULL AS app2_closed;
DELETE FROM connwatch.terminations WHERE application_name LIKE 'regress_act_priv_%';
DROP OWNED BY regress_act_priv_cleaner, regress_act_priv_nobody, regress_act_priv_peer;
DROP ROLE regress_act_priv_cleaner;
DROP ROLE regress_act_priv_nobody;
DROP ROLE regress_act_priv_monitor;
DROP ROLE regress_act_priv_peer;
DROP ROLE regress_act_priv_app;
