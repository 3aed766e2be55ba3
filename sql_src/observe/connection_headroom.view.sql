CREATE VIEW connwatch.connection_headroom AS
    SELECT * FROM connwatch.connection_headroom()
    ORDER BY headroom, rolname;

GRANT SELECT ON connwatch.connection_headroom TO pg_monitor;

COMMENT ON VIEW connwatch.connection_headroom IS
    'For each login role with a session or a CONNECTION LIMIT: how many more connections it could open right now, and which limit binds';
COMMENT ON COLUMN connwatch.connection_headroom.rolname IS 'Role';
COMMENT ON COLUMN connwatch.connection_headroom.superuser IS 'Whether the role is a superuser';
COMMENT ON COLUMN connwatch.connection_headroom.can_use_reserved IS 'Whether the role may take the reserved slots (superuser_reserved_connections)';
COMMENT ON COLUMN connwatch.connection_headroom.role_limit IS 'The role''s CONNECTION LIMIT; NULL when unlimited or not enforced (superusers)';
COMMENT ON COLUMN connwatch.connection_headroom.used IS 'Connections the role''s CONNECTION LIMIT counts (as connection_limits.used for its role row)';
COMMENT ON COLUMN connwatch.connection_headroom.headroom IS 'Connections the role could still open: the minimum over the limits that bind it';
COMMENT ON COLUMN connwatch.connection_headroom.binding_limit IS 'server, reserved or role: which limit gives the minimum';
