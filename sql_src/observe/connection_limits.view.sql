CREATE VIEW connwatch.connection_limits AS
    SELECT * FROM connwatch.connection_limits();
