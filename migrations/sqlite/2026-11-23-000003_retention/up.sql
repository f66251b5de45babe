-- Retention: when a notice was closed, and when its personal data was purged.
ALTER TABLE notices ADD COLUMN closed_at TIMESTAMP;
ALTER TABLE notices ADD COLUMN close_outcome TEXT;
ALTER TABLE notices ADD COLUMN purged_at TIMESTAMP;
CREATE INDEX notices_unpurged ON notices (updated_at) WHERE purged_at IS NULL;

-- Who did what to which notice, and when; never the content. Append-only: no code
-- path updates or deletes it, and these triggers refuse both.
CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        TIMESTAMP NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    notice_id TEXT,
    result    TEXT NOT NULL
);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
