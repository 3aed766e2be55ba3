--
-- connwatch.metrics(): the figures prometheus-postgres-exporter gets with
-- prometheus/pg_connwatch_queries.yaml, as OpenMetrics text, for a scraper
-- that runs SQL.  The queries are that file's, written once there: at make
-- time scripts/metrics_from_yaml.awk puts each in a CTE named after it, then
-- samples (a row per metric and series) and meta (each metric's type and
-- help), where the line "--@ metrics from ..." is below.  A metric is
-- <query name>_<column>; a counter's family drops the _total its only sample
-- carries, as OpenMetrics wants.  Families without samples (the remember
-- layer's, without shared_preload_libraries) are left out, as the exporter
-- leaves them out.  test/t/402 checks that both give the same series.
--
CREATE FUNCTION connwatch.metrics()
RETURNS text
LANGUAGE sql VOLATILE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $metrics$
WITH
--@ metrics from prometheus/pg_connwatch_queries.yaml
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
