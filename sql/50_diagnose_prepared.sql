--
-- 50_diagnose_prepared: diagnose() finds a prepared transaction left
-- behind that holds the horizon back (CW121), names it by its GID and
-- advises exactly its ROLLBACK PREPARED.
--

-- Needs max_prepared_transactions > 0: without it, the file says so and
-- stops (expected/50_diagnose_prepared_1.out).
SELECT current_setting('max_prepared_transactions')::integer = 0 AS skip_test \gset
\if :skip_test
\echo 'skipped: needs max_prepared_transactions > 0'
\quit
\endif

SET connwatch.diagnose_horizon_age = '1s';
BEGIN;
CREATE TABLE regress_cw_diag (id int);
INSERT INTO regress_cw_diag VALUES (1);
PREPARE TRANSACTION 'regress_cw_diag_gid';
SELECT pg_sleep(1.2);
SELECT severity, code, subject, needs_preload,
       finding LIKE 'Prepared transaction "regress_cw_diag_gid" (role "%", database "%"), prepared at %' AS finding,
       advice LIKE '%ROLLBACK PREPARED ''regress_cw_diag_gid''%' AS advice
FROM connwatch.diagnose() WHERE code LIKE 'CW12%';
ROLLBACK PREPARED 'regress_cw_diag_gid';
RESET connwatch.diagnose_horizon_age;

-- Quiet again: the finding went with the transaction
SELECT count(*) AS cw12x FROM connwatch.diagnose() WHERE code LIKE 'CW12%';
