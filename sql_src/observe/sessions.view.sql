CREATE VIEW connwatch.sessions AS
    SELECT * FROM connwatch.sessions();
