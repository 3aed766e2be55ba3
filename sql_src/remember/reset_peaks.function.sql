CREATE FUNCTION connwatch.reset_peaks()
RETURNS void
AS 'MODULE_PATHNAME', 'cw_reset_peaks_function'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

REVOKE ALL ON FUNCTION connwatch.reset_peaks() FROM PUBLIC;

COMMENT ON FUNCTION connwatch.reset_peaks() IS
    'Start the peaks again from the current figures';
