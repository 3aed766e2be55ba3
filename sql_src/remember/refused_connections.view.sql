CREATE VIEW connwatch.refused_connections AS
    SELECT * FROM connwatch.refused_connections()
    ORDER BY last_at DESC, cause, usename, datname;
