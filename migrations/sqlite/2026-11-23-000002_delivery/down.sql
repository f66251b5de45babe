DROP TABLE access_tokens;
DROP TABLE deliveries;
DROP INDEX notices_follow_up;
ALTER TABLE notices DROP COLUMN escalated_at;
ALTER TABLE notices DROP COLUMN reminded_at;
ALTER TABLE notices DROP COLUMN acknowledged_at;
ALTER TABLE notices DROP COLUMN received_at;
ALTER TABLE notices DROP COLUMN due_at;
