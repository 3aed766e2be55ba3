CREATE FUNCTION connwatch.unschedule_enforcement()
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    removed boolean := false;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension
                   WHERE extname OPERATOR(pg_catalog.=) 'pg_cron') THEN
        RAISE EXCEPTION 'pg_cron is not installed'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Without pg_cron there is no scheduled enforcement to remove.';
    END IF;
    IF EXISTS (SELECT 1 FROM cron.job
               WHERE jobname OPERATOR(pg_catalog.=) 'connwatch-enforce'
                 AND username OPERATOR(pg_catalog.=) CURRENT_USER) THEN
        EXECUTE 'SELECT cron.unschedule($1)' INTO removed USING 'connwatch-enforce';
    END IF;
    RETURN removed;
END
$$;

REVOKE ALL ON FUNCTION connwatch.unschedule_enforcement() FROM PUBLIC;

COMMENT ON FUNCTION connwatch.unschedule_enforcement() IS
    'Remove the pg_cron job connwatch-enforce; returns whether there was one';
