CREATE VIEW connwatch.history AS
    SELECT * FROM connwatch.history()
    ORDER BY sampled_at;
