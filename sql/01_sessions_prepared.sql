--
-- 01_sessions_prepared: a prepared transaction has a PGPROC but is not a
-- backend.  connwatch.sessions shows no row for it, and still covers
-- exactly pg_stat_activity's backends.
--

-- Needs max_prepared_transactions > 0: without it, the file says so and
-- stops (expected/01_sessions_prepared_1.out).
SELECT current_setting('max_prepared_transactions')::integer = 0 AS skip_test \gset
\if :skip_test
\echo 'skipped: needs max_prepared_transactions > 0'
\quit
\endif

SELECT regress_cw_settle() AS settled;

CREATE TABLE regress_cw_t (id integer PRIMARY KEY, v integer);
-- A prepared transaction that wrote: it holds an xid, and no backend does.
BEGIN;
INSERT INTO regress_cw_t VALUES (1, 0);
PREPARE TRANSACTION 'regress_cw_sessions_gid';
SELECT gid, database FROM pg_prepared_xacts
WHERE gid = 'regress_cw_sessions_gid';

-- The view covers exactly pg_stat_activity's backends, background
-- processes included, and nothing else: no row for the prepared
-- transaction.  Polled: autovacuum workers come and go.
SELECT regress_cw_wait($$
    SELECT count(*) = 0
    FROM connwatch.sessions AS s
    FULL JOIN pg_stat_activity AS a ON a.pid = s.pid
    WHERE s.pid IS NULL OR a.pid IS NULL
       OR (s.backend_type, s.datid, s.datname, s.usesysid, s.usename,
           s.application_name, s.client_addr, s.client_port, s.backend_start)
          IS DISTINCT FROM
          (a.backend_type, a.datid, a.datname, a.usesysid, a.usename,
           a.application_name, a.client_addr, a.client_port, a.backend_start)
    $$) AS same_backends;
SELECT count(*) FILTER (WHERE pid = 0 OR pid IS NULL) AS no_pid,
       count(*) FILTER (WHERE backend_xid = p.transaction) AS with_its_xid,
       count(*) FILTER (WHERE pid = pg_backend_pid()) AS me
FROM connwatch.sessions,
     (SELECT transaction FROM pg_prepared_xacts
      WHERE gid = 'regress_cw_sessions_gid') AS p;

COMMIT PREPARED 'regress_cw_sessions_gid';
SELECT count(*) AS left_over FROM pg_prepared_xacts
WHERE gid = 'regress_cw_sessions_gid';
DROP TABLE regress_cw_t;
