-- A sign-in link asked for on the portal leads to the list, not to one notice.
-- SQLite cannot drop NOT NULL, so the table is rebuilt.
CREATE TABLE access_tokens_new (
    token_hash      TEXT PRIMARY KEY,
    notice_id       TEXT REFERENCES notices (id),
    recipient_email TEXT NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    expires_at      TIMESTAMP NOT NULL,
    used_at         TIMESTAMP
);
INSERT INTO access_tokens_new SELECT token_hash, notice_id, recipient_email, created_at, expires_at, used_at FROM access_tokens;
DROP TABLE access_tokens;
ALTER TABLE access_tokens_new RENAME TO access_tokens;
CREATE INDEX access_tokens_by_notice ON access_tokens (notice_id);
