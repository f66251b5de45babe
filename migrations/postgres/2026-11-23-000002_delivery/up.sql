-- Delivery: when each notice is due, the emails that carry it, and the links in them.

ALTER TABLE notices ADD COLUMN due_at TIMESTAMP;
-- When the event that made the notice arrived, for the event-to-email metric.
ALTER TABLE notices ADD COLUMN received_at TIMESTAMP;
ALTER TABLE notices ADD COLUMN acknowledged_at TIMESTAMP;
ALTER TABLE notices ADD COLUMN reminded_at TIMESTAMP;
ALTER TABLE notices ADD COLUMN escalated_at TIMESTAMP;
CREATE INDEX notices_follow_up ON notices (due_at) WHERE acknowledged_at IS NULL AND escalated_at IS NULL;

-- One email to one recipient. The unique key makes a second reminder (or a second
-- anything) for the same notice and recipient impossible.
CREATE TABLE deliveries (
    id              BIGSERIAL PRIMARY KEY,
    notice_id       TEXT NOT NULL REFERENCES notices (id),
    kind            TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    state           TEXT NOT NULL,
    message_id      TEXT NOT NULL UNIQUE,
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      TIMESTAMP NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    expires_at      TIMESTAMP NOT NULL,
    lease_until     TIMESTAMP,
    finished_at     TIMESTAMP,
    sent_to         TEXT,
    last_error      TEXT,
    UNIQUE (notice_id, kind, recipient)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_by_notice ON deliveries (notice_id);

-- The links in notice emails. Only a hash of each token is kept; a token is bound to
-- its notice and to the address it was sent to.
CREATE TABLE access_tokens (
    token_hash      TEXT PRIMARY KEY,
    notice_id       TEXT NOT NULL REFERENCES notices (id),
    recipient_email TEXT NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    expires_at      TIMESTAMP NOT NULL,
    used_at         TIMESTAMP
);
CREATE INDEX access_tokens_by_notice ON access_tokens (notice_id);
