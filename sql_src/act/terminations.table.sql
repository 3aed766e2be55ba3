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
