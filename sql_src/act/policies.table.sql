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
