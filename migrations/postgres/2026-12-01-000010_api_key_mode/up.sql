-- A key's mode: `live`, or `test` for a police system's integration tests, whose
-- events are decided against the real registry and then rolled back.
ALTER TABLE api_keys ADD COLUMN mode TEXT NOT NULL DEFAULT 'live';
