--
-- The diagnose layer: findings that join the observe views and the remember
-- layer's ledgers into what an application developer can act on.  Plain SQL
-- over the C-backed views; its thresholds are settings the library defines
-- (connwatch.diagnose_*).  Without the library preloaded the checks that
-- read the ledgers are skipped, and one info row says so.
--
CREATE FUNCTION connwatch.preloaded()
RETURNS boolean
AS 'MODULE_PATHNAME', 'cw_preloaded'
LANGUAGE C VOLATILE PARALLEL SAFE;
