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
