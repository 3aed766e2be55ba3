COMMENT ON FUNCTION connwatch.metrics() IS
    'pg_connwatch''s metrics as OpenMetrics text (connection limits, sessions per application, idle transactions, xmin horizon, refusals, endings, peaks): the same as prometheus-postgres-exporter gives with pg_connwatch_queries.yaml';
