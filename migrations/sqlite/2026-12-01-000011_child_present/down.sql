ALTER TABLE notices DROP COLUMN child_present;
