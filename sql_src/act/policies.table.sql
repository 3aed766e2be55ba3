CREATE TABLE connwatch.policies (
    name text PRIMARY KEY,
    state text NOT NULL
        CHECK (state OPERATOR(pg_catalog.=) ANY
               (ARRAY['idle in transaction', 'idle', 'active', 'any'])),
    older_than interval NOT NULL
        CHECK (older_than OPERATOR(pg_catalog.>=) '0'::interval),
    age_of text NOT NULL DEFAULT 'state'
        CHECK (age_of OPERATOR(pg_catalog.=) ANY (ARRAY['state', 'transaction'])),
    datname text,
    usename text,
    application_name text,
    only_if_holds_xmin boolean NOT NULL DEFAULT false,
    min_pct_used numeric
        CHECK (min_pct_used OPERATOR(pg_catalog.>=) 0
               AND min_pct_used OPERATOR(pg_catalog.<=) 100),
    action text NOT NULL DEFAULT 'terminate'
        CHECK (action OPERATOR(pg_catalog.=) ANY (ARRAY['terminate', 'cancel'])),
    enabled boolean NOT NULL DEFAULT true,
    dry_run boolean NOT NULL DEFAULT false,
    -- a cancel reaches only a running statement
    CONSTRAINT policies_cancel_needs_active
        CHECK (action OPERATOR(pg_catalog.=) 'terminate'
               OR state OPERATOR(pg_catalog.=) ANY (ARRAY['active', 'any']))
);
SELECT pg_catalog.pg_extension_config_dump('connwatch.policies', '');

REVOKE ALL ON connwatch.policies FROM PUBLIC;
GRANT SELECT ON connwatch.policies TO pg_monitor;

COMMENT ON TABLE connwatch.policies IS
    'Cleanup policies applied by connwatch.enforce(); dumped by pg_dump';
COMMENT ON COLUMN connwatch.policies.name IS 'Policy name; policies are applied in name order, and a session is handled by the first that matches';
COMMENT ON COLUMN connwatch.policies.state IS 'idle in transaction (aborted ones included), idle, active or any';
COMMENT ON COLUMN connwatch.policies.older_than IS 'Minimum age to act';
COMMENT ON COLUMN connwatch.policies.age_of IS 'state: age measured from state_change; transaction: from xact_start';
COMMENT ON COLUMN connwatch.policies.datname IS 'LIKE pattern on the database name; NULL matches all';
COMMENT ON COLUMN connwatch.policies.usename IS 'LIKE pattern on the login role; NULL matches all';
COMMENT ON COLUMN connwatch.policies.application_name IS 'LIKE pattern on application_name; NULL matches all';
COMMENT ON COLUMN connwatch.policies.only_if_holds_xmin IS 'Act only on a session whose xid or xmin is what limits the xmin horizon';
COMMENT ON COLUMN connwatch.policies.min_pct_used IS 'Act only when the server row of connwatch.connection_limits is at or above this pct_used';
COMMENT ON COLUMN connwatch.policies.action IS 'terminate or cancel (cancel only for active sessions)';
COMMENT ON COLUMN connwatch.policies.enabled IS 'Whether enforce() applies the policy';
COMMENT ON COLUMN connwatch.policies.dry_run IS 'Report what the policy would do without signalling';
