CREATE VIEW connwatch.connection_headroom AS
    SELECT * FROM connwatch.connection_headroom()
    ORDER BY headroom, rolname;
