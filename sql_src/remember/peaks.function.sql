CREATE FUNCTION connwatch.peaks(
    OUT scope text,
    OUT name text,
    OUT current integer,
    OUT peak integer,
    OUT peak_at timestamptz
)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'cw_peaks'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

REVOKE ALL ON FUNCTION connwatch.peaks() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION connwatch.peaks() TO pg_monitor;

COMMENT ON FUNCTION connwatch.peaks() IS
    'Current and highest concurrent client sessions; backs the view connwatch.peaks (needs shared_preload_libraries)';
