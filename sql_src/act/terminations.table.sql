CREATE TABLE connwatch.terminations (
    logged_at timestamptz NOT NULL,
    policy text,
    pid integer NOT NULL,
    backend_start timestamptz NOT NULL,
    datname name,
    usename name,
    application_name text,
    client_addr inet,
    state text,
    state_age interval,
    xact_age interval,
    query text,
    action text NOT NULL,
    reason text,
    invoked_by name NOT NULL
);
CREATE INDEX terminations_logged_at_idx ON connwatch.terminations (logged_at);
SELECT pg_catalog.pg_extension_config_dump('connwatch.terminations', '');

REVOKE ALL ON connwatch.terminations FROM PUBLIC;
GRANT SELECT ON connwatch.terminations TO pg_monitor;

COMMENT ON TABLE connwatch.terminations IS
    'Audit trail: one row per real cancel or termination (not dry runs), pruned after connwatch.audit_retention';
COMMENT ON COLUMN connwatch.terminations.logged_at IS 'When the signal was sent';
COMMENT ON COLUMN connwatch.terminations.policy IS 'Policy that matched, NULL for a direct call or a rule function';
COMMENT ON COLUMN connwatch.terminations.pid IS 'Process ID of the session';
COMMENT ON COLUMN connwatch.terminations.backend_start IS 'When the session started';
COMMENT ON COLUMN connwatch.terminations.datname IS 'Database';
COMMENT ON COLUMN connwatch.terminations.usename IS 'Login role';
COMMENT ON COLUMN connwatch.terminations.application_name IS 'application_name of the session';
COMMENT ON COLUMN connwatch.terminations.client_addr IS 'Client IP address; NULL for Unix sockets';
COMMENT ON COLUMN connwatch.terminations.state IS 'State of the session right before the signal';
COMMENT ON COLUMN connwatch.terminations.state_age IS 'Time it had been in that state';
COMMENT ON COLUMN connwatch.terminations.xact_age IS 'Age of its transaction';
COMMENT ON COLUMN connwatch.terminations.query IS 'Its last statement, truncated to 512 bytes';
COMMENT ON COLUMN connwatch.terminations.action IS 'terminated or cancelled';
COMMENT ON COLUMN connwatch.terminations.reason IS 'Why: the rule that matched, or the reason given to terminate_backend()';
COMMENT ON COLUMN connwatch.terminations.invoked_by IS 'Role that ran the action function';
