ALTER TABLE staff_accounts DROP COLUMN lockouts;
