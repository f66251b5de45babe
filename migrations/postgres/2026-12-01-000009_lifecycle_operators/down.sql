DROP TABLE operators;
DROP INDEX deliveries_failing;
DROP INDEX notices_unacknowledged;
DROP INDEX notices_by_created;
UPDATE notices SET status = 'delivered' WHERE status IN ('acknowledged', 'closed');
ALTER TABLE notices DROP COLUMN escalation_level;
ALTER TABLE notices DROP COLUMN withdrawn_at;
