COMMENT ON FUNCTION connwatch.preloaded() IS
    'Whether pg_connwatch was loaded by shared_preload_libraries, so that its ledgers and history exist';
COMMENT ON FUNCTION connwatch.diagnose() IS
    'Findings, most severe first: what is wrong, the evidence, what the application sees (SQLAlchemy, psycopg2, libpq, JDBC wording) and the fix; codes are documented in doc/diagnose.md';
