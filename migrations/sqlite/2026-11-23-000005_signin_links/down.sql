CREATE TABLE access_tokens_old (
    token_hash      TEXT PRIMARY KEY,
    notice_id       TEXT NOT NULL REFERENCES notices (id),
    recipient_email TEXT NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    expires_at      TIMESTAMP NOT NULL,
    used_at         TIMESTAMP
);
INSERT INTO access_tokens_old SELECT * FROM access_tokens WHERE notice_id IS NOT NULL;
DROP TABLE access_tokens;
ALTER TABLE access_tokens_old RENAME TO access_tokens;
CREATE INDEX access_tokens_by_notice ON access_tokens (notice_id);
