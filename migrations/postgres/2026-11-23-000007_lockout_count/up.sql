-- Consecutive lockouts of an account since its last accepted code: each one lasts
-- twice as long as the one before, up to a cap.
ALTER TABLE staff_accounts ADD COLUMN lockouts INTEGER NOT NULL DEFAULT 0;
