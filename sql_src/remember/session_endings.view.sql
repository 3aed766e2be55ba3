CREATE VIEW connwatch.session_endings AS
    SELECT * FROM connwatch.session_endings()
    ORDER BY last_at DESC, reason, usename, datname, application_name;
