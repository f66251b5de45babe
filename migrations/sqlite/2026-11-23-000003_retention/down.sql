DROP TRIGGER audit_log_no_delete;
DROP TRIGGER audit_log_no_update;
DROP TABLE audit_log;
DROP INDEX notices_unpurged;
ALTER TABLE notices DROP COLUMN purged_at;
ALTER TABLE notices DROP COLUMN close_outcome;
ALTER TABLE notices DROP COLUMN closed_at;
