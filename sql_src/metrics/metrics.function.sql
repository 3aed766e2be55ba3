--
-- connwatch.metrics(): the figures prometheus-postgres-exporter gets with
-- prometheus/pg_connwatch_queries.yaml, as OpenMetrics text, for a scraper
-- that runs SQL.  Each CTE is, word for word, a query of that file, named
-- after it (test/t/402 checks both, and that they agree).  A metric is
-- <query name>_<column>; a counter's family drops the _total its only sample
-- carries, as OpenMetrics wants.  Families without samples (the remember
-- layer's, without shared_preload_libraries) are left out, as the exporter
-- leaves them out.
--
CREATE FUNCTION connwatch.metrics()
RETURNS text
LANGUAGE sql VOLATILE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $metrics$
WITH
connection_limit AS (
    SELECT l.scope, COALESCE(connwatch.printable(l.name), '') AS name, l.used, l.max, l.headroom
    FROM connwatch.connection_limits() AS l
    WHERE l.max IS NOT NULL
    ORDER BY l.scope, 2
),
application AS (
    WITH g AS (
      SELECT COALESCE(NULLIF(connwatch.printable(s.application_name), ''), '(none)') AS application,
             s.total, s.active, s.idle, s.idle_in_transaction,
             s.idle_in_transaction_aborted, s.other, s.insufficient_privilege
      FROM connwatch.connection_summary() AS s
    ), ranked AS (
      SELECT g.application,
             CASE WHEN row_number() OVER (
                         ORDER BY sum(g.idle_in_transaction + g.idle_in_transaction_aborted) DESC,
                                  sum(g.total) DESC, g.application) <= 10
                  THEN g.application ELSE 'other' END AS label
      FROM g GROUP BY g.application
    ), a AS (
      SELECT r.label AS application, sum(g.active) AS active, sum(g.idle) AS idle,
             sum(g.idle_in_transaction) AS idle_in_transaction,
             sum(g.idle_in_transaction_aborted) AS idle_in_transaction_aborted,
             sum(g.other) AS other, sum(g.insufficient_privilege) AS unknown
      FROM g JOIN ranked AS r ON r.application = g.application
      GROUP BY r.label
    )
    SELECT a.application, st.state,
           CASE st.state WHEN 'active' THEN a.active
                         WHEN 'idle' THEN a.idle
                         WHEN 'idle_in_transaction' THEN a.idle_in_transaction
                         WHEN 'idle_in_transaction_aborted' THEN a.idle_in_transaction_aborted
                         WHEN 'other' THEN a.other
                         ELSE a.unknown END AS sessions
    FROM a CROSS JOIN (VALUES ('active'), ('idle'), ('idle_in_transaction'),
                              ('idle_in_transaction_aborted'), ('other'), ('unknown')) AS st(state)
    ORDER BY 1, 2
),
idle_in_transaction AS (
    WITH g AS (
      SELECT COALESCE(NULLIF(connwatch.printable(s.application_name), ''), '(none)') AS application,
             s.total, s.idle_in_transaction, s.idle_in_transaction_aborted,
             s.longest_idle_in_transaction
      FROM connwatch.connection_summary() AS s
    ), ranked AS (
      SELECT g.application,
             CASE WHEN row_number() OVER (
                         ORDER BY sum(g.idle_in_transaction + g.idle_in_transaction_aborted) DESC,
                                  sum(g.total) DESC, g.application) <= 10
                  THEN g.application ELSE 'other' END AS label
      FROM g GROUP BY g.application
    )
    SELECT r.label AS application,
           sum(g.idle_in_transaction + g.idle_in_transaction_aborted) AS sessions,
           COALESCE(round(extract(epoch FROM max(g.longest_idle_in_transaction))::numeric, 3), 0) AS longest_seconds
    FROM g JOIN ranked AS r ON r.application = g.application
    GROUP BY r.label
    ORDER BY 1
),
oldest_transaction AS (
    SELECT COALESCE(round(extract(epoch FROM max(s.oldest_xact_age))::numeric, 3), 0) AS age_seconds
    FROM connwatch.connection_summary() AS s
),
xmin_horizon AS (
    SELECT t.holder_type, COALESCE(h.holders, 0) AS holders, COALESCE(h.age_xids, 0) AS age_xids
    FROM (VALUES ('backend'), ('prepared_transaction'), ('replication_slot'),
                 ('replication_slot_catalog'), ('walsender_feedback')) AS t(holder_type)
    FULL JOIN (SELECT x.holder_type, count(*) AS holders, max(x.xmin_age) AS age_xids
               FROM connwatch.xmin_horizon() AS x
               WHERE x.pid IS DISTINCT FROM pg_backend_pid()
               GROUP BY x.holder_type) AS h
      ON h.holder_type = t.holder_type
    WHERE t.holder_type IS NOT NULL
    ORDER BY 1
),
refused_connections AS (
    SELECT COALESCE(c.cause, r.cause) AS cause, COALESCE(r.total, 0) AS total
    FROM (VALUES ('too many clients'), ('reserved slots'), ('role limit'), ('database limit'),
                 ('role does not exist'), ('role not permitted to log in'),
                 ('database does not exist'), ('database not accepting connections'),
                 ('no CONNECT privilege'), ('rejected by pg_hba.conf'),
                 ('authentication failed'), ('authentication abandoned'),
                 ('server starting up'), ('server shutting down'),
                 ('server not yet accepting'), ('other')) AS c(cause)
    FULL JOIN (SELECT f.cause, sum(f.count) AS total
               FROM connwatch.refused_connections() AS f
               GROUP BY f.cause) AS r
      ON r.cause = c.cause
    WHERE (SELECT connwatch.preloaded())
    ORDER BY 1
),
session_endings AS (
    SELECT COALESCE(c.reason, e.reason) AS reason, COALESCE(e.total, 0) AS total
    FROM (VALUES ('client closed'), ('client vanished'), ('terminated by connwatch'),
                 ('terminated by another session'), ('idle-in-transaction timeout'),
                 ('idle-session timeout'), ('transaction timeout'),
                 ('connection check failed'), ('protocol violation'),
                 ('recovery conflict'), ('server shutdown'), ('fatal error')) AS c(reason)
    FULL JOIN (SELECT f.reason, sum(f.count) AS total
               FROM connwatch.session_endings() AS f
               GROUP BY f.reason) AS e
      ON e.reason = c.reason
    WHERE (SELECT connwatch.preloaded())
    ORDER BY 1
),
server_sessions AS (
    SELECT p.current, p.peak
    FROM connwatch.peaks() AS p
    WHERE p.scope = 'server' AND (SELECT connwatch.preloaded())
),
remember AS (
    SELECT CASE WHEN connwatch.preloaded() THEN 1 ELSE 0 END AS enabled
),
diagnose AS (
    SELECT d.severity, d.code, count(*) AS findings
    FROM connwatch.diagnose() AS d
    GROUP BY d.severity, d.code
    ORDER BY 1, 2
),
samples(metric, labels, value) AS (
    SELECT 'pg_connwatch_connection_limit_used', pg_catalog.jsonb_build_object('scope', q.scope, 'name', q.name), q.used::numeric FROM connection_limit AS q
    UNION ALL
    SELECT 'pg_connwatch_connection_limit_max', pg_catalog.jsonb_build_object('scope', q.scope, 'name', q.name), q.max::numeric FROM connection_limit AS q
    UNION ALL
    SELECT 'pg_connwatch_connection_limit_headroom', pg_catalog.jsonb_build_object('scope', q.scope, 'name', q.name), q.headroom::numeric FROM connection_limit AS q
    UNION ALL
    SELECT 'pg_connwatch_application_sessions', pg_catalog.jsonb_build_object('application', q.application, 'state', q.state), q.sessions::numeric FROM application AS q
    UNION ALL
    SELECT 'pg_connwatch_idle_in_transaction_sessions', pg_catalog.jsonb_build_object('application', q.application), q.sessions::numeric FROM idle_in_transaction AS q
    UNION ALL
    SELECT 'pg_connwatch_idle_in_transaction_longest_seconds', pg_catalog.jsonb_build_object('application', q.application), q.longest_seconds::numeric FROM idle_in_transaction AS q
    UNION ALL
    SELECT 'pg_connwatch_oldest_transaction_age_seconds', '{}'::jsonb, q.age_seconds::numeric FROM oldest_transaction AS q
    UNION ALL
    SELECT 'pg_connwatch_xmin_horizon_holders', pg_catalog.jsonb_build_object('holder_type', q.holder_type), q.holders::numeric FROM xmin_horizon AS q
    UNION ALL
    SELECT 'pg_connwatch_xmin_horizon_age_xids', pg_catalog.jsonb_build_object('holder_type', q.holder_type), q.age_xids::numeric FROM xmin_horizon AS q
    UNION ALL
    SELECT 'pg_connwatch_refused_connections_total', pg_catalog.jsonb_build_object('cause', q.cause), q.total::numeric FROM refused_connections AS q
    UNION ALL
    SELECT 'pg_connwatch_session_endings_total', pg_catalog.jsonb_build_object('reason', q.reason), q.total::numeric FROM session_endings AS q
    UNION ALL
    SELECT 'pg_connwatch_server_sessions_current', '{}'::jsonb, q.current::numeric FROM server_sessions AS q
    UNION ALL
    SELECT 'pg_connwatch_server_sessions_peak', '{}'::jsonb, q.peak::numeric FROM server_sessions AS q
    UNION ALL
    SELECT 'pg_connwatch_remember_enabled', '{}'::jsonb, q.enabled::numeric FROM remember AS q
    UNION ALL
    SELECT 'pg_connwatch_findings', pg_catalog.jsonb_build_object('severity', q.severity, 'code', q.code), q.findings::numeric FROM diagnose AS q
),
meta(metric, type, help) AS (
    VALUES
        ('pg_connwatch_connection_limit_used', 'gauge',
         'Connections the limit counts now (connwatch.connection_limits.used)'),
        ('pg_connwatch_connection_limit_max', 'gauge',
         'The limit (connwatch.connection_limits.max); limits that are unlimited are not exported'),
        ('pg_connwatch_connection_limit_headroom', 'gauge',
         'max - used, never below 0 (connwatch.connection_limits.headroom)'),
        ('pg_connwatch_application_sessions', 'gauge',
         'Client sessions of the application in the state (connwatch.connection_summary)'),
        ('pg_connwatch_idle_in_transaction_sessions', 'gauge',
         'Client sessions idle in a transaction, aborted ones included (connwatch.connection_summary)'),
        ('pg_connwatch_idle_in_transaction_longest_seconds', 'gauge',
         'Longest time one of them has been idle in its transaction, in seconds; 0 when none (connwatch.connection_summary.longest_idle_in_transaction)'),
        ('pg_connwatch_oldest_transaction_age_seconds', 'gauge',
         'Age of the oldest open transaction of a client session, in seconds; 0 when none (connwatch.connection_summary.oldest_xact_age)'),
        ('pg_connwatch_xmin_horizon_holders', 'gauge',
         'Holders of the xmin horizon of the type, the querying session excluded (connwatch.xmin_horizon)'),
        ('pg_connwatch_xmin_horizon_age_xids', 'gauge',
         'Age in transaction IDs of the oldest xmin the type holds; 0 when none (connwatch.xmin_horizon.xmin_age)'),
        ('pg_connwatch_refused_connections_total', 'counter',
         'Connection attempts refused since the ledgers were last reset (sum of connwatch.refused_connections.count); needs shared_preload_libraries'),
        ('pg_connwatch_session_endings_total', 'counter',
         'Client sessions ended since the ledgers were last reset (sum of connwatch.session_endings.count); needs shared_preload_libraries'),
        ('pg_connwatch_server_sessions_current', 'gauge',
         'Client sessions now, as the remember layer counts them (connwatch.peaks, scope server); needs shared_preload_libraries'),
        ('pg_connwatch_server_sessions_peak', 'gauge',
         'Most client sessions at once since the peaks were last reset (connwatch.peaks, scope server); needs shared_preload_libraries'),
        ('pg_connwatch_remember_enabled', 'gauge',
         '1 when pg_connwatch is in shared_preload_libraries (refusals, endings and peaks are recorded), else 0'),
        ('pg_connwatch_findings', 'gauge',
         'Findings of connwatch.diagnose() with the code and severity (one per application, role, database, pid or cause it names); no series when there are none')
),
families AS (
    SELECT m.metric, m.type,
           '# HELP ' OPERATOR(pg_catalog.||)
               CASE m.type WHEN 'counter' THEN pg_catalog.left(m.metric, -6) ELSE m.metric END
               OPERATOR(pg_catalog.||) ' '
               OPERATOR(pg_catalog.||) pg_catalog.replace(pg_catalog.replace(m.help, E'\\', E'\\\\'), E'\n', E'\\n')
               OPERATOR(pg_catalog.||) E'\n# TYPE '
               OPERATOR(pg_catalog.||)
               CASE m.type WHEN 'counter' THEN pg_catalog.left(m.metric, -6) ELSE m.metric END
               OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) m.type
               OPERATOR(pg_catalog.||) E'\n'
               OPERATOR(pg_catalog.||) pg_catalog.string_agg(
                   s.metric OPERATOR(pg_catalog.||) s.labeltext
                   OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) s.value::text
                   OPERATOR(pg_catalog.||) E'\n',
                   '' ORDER BY s.labeltext COLLATE "C") AS block
    FROM meta AS m
    JOIN (SELECT s.metric, s.value,
                 COALESCE('{' OPERATOR(pg_catalog.||)
                          (SELECT pg_catalog.string_agg(
                                      l.key OPERATOR(pg_catalog.||) '="'
                                      OPERATOR(pg_catalog.||) pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
                                          l.value, E'\\', E'\\\\'), '"', E'\\"'), E'\n', E'\\n')
                                      OPERATOR(pg_catalog.||) '"',
                                      ',' ORDER BY l.key COLLATE "C")
                           FROM pg_catalog.jsonb_each_text(s.labels) AS l)
                          OPERATOR(pg_catalog.||) '}', '') AS labeltext
          FROM samples AS s) AS s
      ON s.metric OPERATOR(pg_catalog.=) m.metric
    GROUP BY m.metric, m.type, m.help
)
SELECT COALESCE(pg_catalog.string_agg(f.block, '' ORDER BY f.metric COLLATE "C"), '')
       OPERATOR(pg_catalog.||) E'# EOF\n'
FROM families AS f
$metrics$;

REVOKE ALL ON FUNCTION connwatch.metrics() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION connwatch.metrics() TO pg_monitor;

COMMENT ON FUNCTION connwatch.metrics() IS
    'pg_connwatch''s metrics as OpenMetrics text (connection limits, sessions per application, idle transactions, xmin horizon, refusals, endings, peaks): the same as prometheus-postgres-exporter gives with pg_connwatch_queries.yaml';
