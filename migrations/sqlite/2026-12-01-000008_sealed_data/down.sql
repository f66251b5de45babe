DROP TABLE key_fingerprints;
ALTER TABLE notices ADD COLUMN child_date_of_birth_date DATE;
UPDATE notices SET child_date_of_birth_date = child_date_of_birth;
ALTER TABLE notices DROP COLUMN child_date_of_birth;
ALTER TABLE notices RENAME COLUMN child_date_of_birth_date TO child_date_of_birth;
