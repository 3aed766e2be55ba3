COMMENT ON FUNCTION connwatch.xmin_horizon() IS
    'Holders of the xmin horizon; backs the view connwatch.xmin_horizon';
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
