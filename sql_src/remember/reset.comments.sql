COMMENT ON FUNCTION connwatch.reset_ledgers() IS
    'Forget refused connections and session endings';
COMMENT ON FUNCTION connwatch.reset_peaks() IS
    'Start the peaks again from the current figures';
