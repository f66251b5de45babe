-- Retention: when a notice was closed, and when its personal data was purged.
ALTER TABLE notices ADD COLUMN closed_at TIMESTAMP;
ALTER TABLE notices ADD COLUMN close_outcome TEXT;
ALTER TABLE notices ADD COLUMN purged_at TIMESTAMP;
CREATE INDEX notices_unpurged ON notices (updated_at) WHERE purged_at IS NULL;

-- Who did what to which notice, and when; never the content. Append-only: no code
-- path updates or deletes it, and this trigger refuses both.
CREATE TABLE audit_log (
    id        BIGSERIAL PRIMARY KEY,
    at        TIMESTAMP NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    notice_id TEXT,
    result    TEXT NOT NULL
);

CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
