-- The coordinator portal: accounts with their second factor, server-side sessions,
-- follow-up notes and signals to Veilig Thuis.

-- One account per email address. Which schools it may see follows from the schools
-- table (coordinator or deputy address) at each request.
CREATE TABLE staff_accounts (
    email            TEXT PRIMARY KEY,
    totp_secret      TEXT,
    totp_enrolled_at TIMESTAMP,
    -- The last accepted TOTP time step: a code works once.
    totp_last_step   BIGINT NOT NULL DEFAULT 0,
    failed_attempts  INTEGER NOT NULL DEFAULT 0,
    locked_until     TIMESTAMP,
    created_at       TIMESTAMP NOT NULL
);

-- Only a hash of the cookie's value is kept.
CREATE TABLE sessions (
    id_hash      TEXT PRIMARY KEY,
    email        TEXT NOT NULL,
    csrf_token   TEXT NOT NULL,
    notice_id    TEXT,
    created_at   TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    verified_at  TIMESTAMP
);
CREATE INDEX sessions_by_email ON sessions (email);

-- Append-only; the body is erased with the notice's other personal data.
CREATE TABLE notice_notes (
    id         BIGSERIAL PRIMARY KEY,
    notice_id  TEXT NOT NULL REFERENCES notices (id),
    author     TEXT NOT NULL,
    body       TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX notice_notes_by_notice ON notice_notes (notice_id);

CREATE TABLE school_signals (
    signal_id         TEXT PRIMARY KEY,
    notice_id         TEXT NOT NULL REFERENCES notices (id),
    category          TEXT NOT NULL,
    urgency           TEXT NOT NULL,
    description       TEXT,
    reporter_email    TEXT NOT NULL,
    reported_at       TIMESTAMP NOT NULL,
    outbox_message_id TEXT NOT NULL
);
CREATE INDEX school_signals_by_notice ON school_signals (notice_id);
