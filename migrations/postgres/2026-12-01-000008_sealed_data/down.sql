DROP TABLE key_fingerprints;
-- Only dates in the clear convert back: a database whose dates are sealed cannot
-- go below this migration.
ALTER TABLE notices ALTER COLUMN child_date_of_birth TYPE DATE
    USING child_date_of_birth::date;
