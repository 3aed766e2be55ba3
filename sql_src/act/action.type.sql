CREATE TYPE connwatch.action AS (
    pid integer,
    backend_start timestamptz,
    datname name,
    usename name,
    application_name text,
    client_addr inet,
    state text,
    state_age interval,
    xact_age interval,
    xmin_age integer,
    action text,
    reason text,
    policy text
);
