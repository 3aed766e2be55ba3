REVOKE ALL ON FUNCTION connwatch.refused_connections(),
    connwatch.session_endings(), connwatch.peaks(),
    connwatch.history(timestamptz, timestamptz),
    connwatch.reset_ledgers(), connwatch.reset_peaks()
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION connwatch.refused_connections(),
    connwatch.session_endings(), connwatch.peaks(),
    connwatch.history(timestamptz, timestamptz)
    TO pg_monitor;
GRANT SELECT ON connwatch.refused_connections, connwatch.session_endings,
    connwatch.peaks, connwatch.history TO pg_monitor;
