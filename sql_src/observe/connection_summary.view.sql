CREATE VIEW connwatch.connection_summary AS
    SELECT * FROM connwatch.connection_summary()
    ORDER BY idle_in_transaction OPERATOR(pg_catalog.+) idle_in_transaction_aborted DESC,
             total DESC, datname, usename, application_name;
