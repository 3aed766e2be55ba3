-- The gid and prepare time of a prepared transaction live in twophase.c's
-- private state; pg_prepared_xacts is the supported way to read them.  A
-- gid is any login role's choice: shown printable (1.1; the columns and
-- their order are those of 1.0).
CREATE OR REPLACE VIEW connwatch.xmin_horizon AS
    SELECT h.holder_type,
           COALESCE(connwatch.printable(p.gid), h.holder) AS holder,
           h.pid, h.datname, h.usename, h.application_name, h.state,
           h.xmin, h.xmin_age,
           COALESCE(p.prepared, h.since) AS since
    FROM connwatch.xmin_horizon() AS h
    LEFT JOIN pg_catalog.pg_prepared_xacts AS p
      ON h.holder_type OPERATOR(pg_catalog.=) 'prepared_transaction'
     AND p.transaction OPERATOR(pg_catalog.=) h.xmin
    ORDER BY h.xmin_age DESC NULLS LAST, h.holder_type, holder;

GRANT SELECT ON connwatch.xmin_horizon TO pg_monitor;

COMMENT ON VIEW connwatch.xmin_horizon IS
    'Everything that holds the xmin horizon back (backends, prepared transactions, replication slots, hot-standby feedback), oldest first';
COMMENT ON COLUMN connwatch.xmin_horizon.holder_type IS 'backend, prepared_transaction, replication_slot, replication_slot_catalog or walsender_feedback';
COMMENT ON COLUMN connwatch.xmin_horizon.holder IS 'The pid, the prepared transaction''s gid or the slot name';
COMMENT ON COLUMN connwatch.xmin_horizon.pid IS 'Backend pid (the walsender for feedback, the active pid for a slot in use)';
COMMENT ON COLUMN connwatch.xmin_horizon.datname IS 'Database, where the holder belongs to one';
COMMENT ON COLUMN connwatch.xmin_horizon.usename IS 'Role, where the holder has one';
COMMENT ON COLUMN connwatch.xmin_horizon.application_name IS 'application_name of a backend holder';
COMMENT ON COLUMN connwatch.xmin_horizon.state IS 'State of a backend holder (hidden without privileges)';
COMMENT ON COLUMN connwatch.xmin_horizon.xmin IS 'The transaction ID held back: the older of xid and xmin for a backend';
COMMENT ON COLUMN connwatch.xmin_horizon.xmin_age IS 'Transactions between xmin and the next transaction ID';
COMMENT ON COLUMN connwatch.xmin_horizon.since IS 'Transaction start for a backend, prepare time for a prepared transaction, backend start for a walsender, NULL for slots';
