CREATE VIEW connwatch.peaks AS
    SELECT * FROM connwatch.peaks()
    ORDER BY pg_catalog.array_position(
                 ARRAY['server', 'database', 'role', 'application'], scope),
             peak DESC, name;
