-- Plain-SQL equivalent of connwatch.xmin_horizon: every holder of the xmin
-- horizon, oldest first.  For a backend the held xid is the older of
-- backend_xid and backend_xmin.
SELECT holder_type, holder, pid, datname, usename, application_name, state,
       xmin, xmin_age, since
FROM (
    SELECT CASE WHEN backend_type = 'walsender' THEN 'walsender_feedback'
                ELSE 'backend' END AS holder_type,
           pid::text AS holder, pid, datname, usename, application_name, state,
           CASE WHEN backend_xid IS NULL THEN backend_xmin
                WHEN backend_xmin IS NULL THEN backend_xid
                WHEN age(backend_xid) >= age(backend_xmin) THEN backend_xid
                ELSE backend_xmin END AS xmin,
           greatest(age(backend_xid), age(backend_xmin)) AS xmin_age,
           CASE WHEN backend_type = 'walsender' THEN backend_start
                ELSE xact_start END AS since
    FROM pg_stat_activity
    WHERE backend_xid IS NOT NULL OR backend_xmin IS NOT NULL
    UNION ALL
    SELECT 'prepared_transaction', gid, NULL, database, owner, NULL, NULL,
           transaction, age(transaction), prepared
    FROM pg_prepared_xacts
    UNION ALL
    SELECT 'replication_slot', slot_name, active_pid, database, NULL, NULL,
           NULL, xmin, age(xmin), NULL
    FROM pg_replication_slots
    WHERE xmin IS NOT NULL
    UNION ALL
    SELECT 'replication_slot_catalog', slot_name, active_pid, database, NULL,
           NULL, NULL, catalog_xmin, age(catalog_xmin), NULL
    FROM pg_replication_slots
    WHERE catalog_xmin IS NOT NULL
) AS h
ORDER BY xmin_age DESC NULLS LAST, holder_type, holder;
