CREATE VIEW connwatch.idle_in_transaction AS
    SELECT * FROM connwatch.idle_in_transaction()
    ORDER BY idle_for DESC, pid;
