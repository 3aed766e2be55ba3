-- The gid and prepare time of a prepared transaction live in twophase.c's
-- private state; pg_prepared_xacts is the supported way to read them.
CREATE VIEW connwatch.xmin_horizon AS
    SELECT h.holder_type,
           COALESCE(p.gid, h.holder) AS holder,
           h.pid, h.datname, h.usename, h.application_name, h.state,
           h.xmin, h.xmin_age,
           COALESCE(p.prepared, h.since) AS since
    FROM connwatch.xmin_horizon() AS h
    LEFT JOIN pg_catalog.pg_prepared_xacts AS p
      ON h.holder_type OPERATOR(pg_catalog.=) 'prepared_transaction'
     AND p.transaction OPERATOR(pg_catalog.=) h.xmin
    ORDER BY h.xmin_age DESC NULLS LAST, h.holder_type, holder;
