CREATE VIEW connwatch.long_transactions AS
    SELECT * FROM connwatch.long_transactions()
    ORDER BY xact_age DESC, pid;
