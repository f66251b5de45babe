-- Personal data is sealed at rest (src/sealing): a sealed date of birth is text.
-- Existing clear values stay readable until `schoolsignal keys rotate` seals them.
ALTER TABLE notices ALTER COLUMN child_date_of_birth TYPE TEXT
    USING to_char(child_date_of_birth, 'YYYY-MM-DD');

-- One row per data key (and, later, other keys) this database has seen: a wrong key
-- with a known id is refused before it writes anything no one can read.
CREATE TABLE key_fingerprints (
    purpose TEXT NOT NULL,
    key_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    recorded_at TIMESTAMP NOT NULL,
    PRIMARY KEY (purpose, key_id)
);
