-- Timestamps are UTC without a zone: the one timestamp type PostgreSQL and SQLite share.

CREATE TABLE schools (
    brin              TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    holiday_region    TEXT NOT NULL CHECK (holiday_region IN ('noord', 'midden', 'zuid')),
    locale            TEXT NOT NULL CHECK (locale IN ('nl', 'en')),
    school_day_start  TEXT NOT NULL,
    coordinator_name  TEXT NOT NULL,
    coordinator_email TEXT NOT NULL,
    deputy_name       TEXT,
    deputy_email      TEXT,
    participating     BOOLEAN NOT NULL,
    updated_at        TIMESTAMP NOT NULL
);

-- bsn_hash is HMAC-SHA-256 of the BSN under SCHOOLSIGNAL_BSN_KEY; no BSN is stored.
CREATE TABLE enrollments (
    id          BIGSERIAL PRIMARY KEY,
    bsn_hash    TEXT NOT NULL,
    school_brin TEXT NOT NULL REFERENCES schools (brin),
    grp         TEXT NOT NULL DEFAULT '',
    valid_from  DATE NOT NULL,
    valid_until DATE,
    consent     TEXT NOT NULL CHECK (consent IN ('granted', 'objected')),
    UNIQUE (bsn_hash, school_brin, valid_from)
);
CREATE INDEX enrollments_by_bsn ON enrollments (bsn_hash);

CREATE TABLE objections (
    bsn_hash    TEXT PRIMARY KEY,
    recorded_at TIMESTAMP NOT NULL
);

CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    key_hash   TEXT NOT NULL UNIQUE,
    scopes     TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

-- One row per event id: a redelivery finds its row and has no second effect.
CREATE TABLE inbox_events (
    event_id     TEXT PRIMARY KEY,
    body_hash    TEXT NOT NULL,
    incident_id  TEXT NOT NULL,
    revision     BIGINT NOT NULL,
    status       TEXT NOT NULL,
    source       TEXT NOT NULL,
    received_at  TIMESTAMP NOT NULL,
    committed_at TIMESTAMP NOT NULL
);

CREATE TABLE incidents (
    incident_id      TEXT PRIMARY KEY,
    applied_revision BIGINT NOT NULL,
    status           TEXT NOT NULL,
    updated_at       TIMESTAMP NOT NULL
);

CREATE TABLE notices (
    id                  TEXT PRIMARY KEY,
    incident_id         TEXT NOT NULL,
    child_bsn_hash      TEXT NOT NULL,
    child_index         INTEGER NOT NULL,
    school_brin         TEXT NOT NULL REFERENCES schools (brin),
    child_given_name    TEXT,
    child_family_name   TEXT,
    child_date_of_birth DATE,
    child_group         TEXT,
    visited_at          TIMESTAMP NOT NULL,
    status              TEXT NOT NULL,
    created_at          TIMESTAMP NOT NULL,
    updated_at          TIMESTAMP NOT NULL,
    UNIQUE (incident_id, child_bsn_hash)
);
CREATE INDEX notices_by_school ON notices (school_brin, status);

CREATE TABLE decisions (
    event_id    TEXT NOT NULL REFERENCES inbox_events (event_id),
    child_index INTEGER NOT NULL,
    incident_id TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    notice_id   TEXT REFERENCES notices (id),
    decided_at  TIMESTAMP NOT NULL,
    PRIMARY KEY (event_id, child_index)
);

CREATE TABLE outbox_messages (
    id              BIGSERIAL PRIMARY KEY,
    message_id      TEXT NOT NULL UNIQUE,
    exchange        TEXT NOT NULL,
    routing_key     TEXT NOT NULL,
    message_type    TEXT NOT NULL,
    body            TEXT NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    lease_until     TIMESTAMP,
    published_at    TIMESTAMP
);
CREATE INDEX outbox_pending ON outbox_messages (next_attempt_at) WHERE published_at IS NULL;
