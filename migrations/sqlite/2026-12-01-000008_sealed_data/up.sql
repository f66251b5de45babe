-- Personal data is sealed at rest (src/sealing): a sealed date of birth is text.
-- SQLite stored the dates as 'YYYY-MM-DD' text already; the column is remade as
-- TEXT so that its affinity says so.
ALTER TABLE notices ADD COLUMN child_date_of_birth_text TEXT;
UPDATE notices SET child_date_of_birth_text = child_date_of_birth;
ALTER TABLE notices DROP COLUMN child_date_of_birth;
ALTER TABLE notices RENAME COLUMN child_date_of_birth_text TO child_date_of_birth;

-- One row per data key (and, later, other keys) this database has seen: a wrong key
-- with a known id is refused before it writes anything no one can read.
CREATE TABLE key_fingerprints (
    purpose TEXT NOT NULL,
    key_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    recorded_at TIMESTAMP NOT NULL,
    PRIMARY KEY (purpose, key_id)
);
