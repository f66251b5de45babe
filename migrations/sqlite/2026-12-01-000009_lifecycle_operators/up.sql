-- The notice's lifecycle in its status (acknowledged, closed), when it was withdrawn
-- and at which level it was escalated, so that the timeliness report reads states and
-- timestamps only; and the operators who may see the dashboard.

ALTER TABLE notices ADD COLUMN withdrawn_at TIMESTAMP;
ALTER TABLE notices ADD COLUMN escalation_level TEXT;

-- A withdrawn notice was last updated by its withdrawal: nothing changes one after.
UPDATE notices SET withdrawn_at = updated_at WHERE status = 'withdrawn';
UPDATE notices SET status = 'closed'
    WHERE status <> 'withdrawn' AND closed_at IS NOT NULL;
UPDATE notices SET status = 'acknowledged'
    WHERE status <> 'withdrawn' AND closed_at IS NULL AND acknowledged_at IS NOT NULL;
-- An undeliverable escalation is written in the transaction that records the email's
-- final failure, with the same instant; any other escalation was for no acknowledgement.
UPDATE notices SET escalation_level = CASE
    WHEN EXISTS (
        SELECT 1 FROM deliveries d
        WHERE d.notice_id = notices.id AND d.kind = 'notice'
          AND d.state IN ('permanent_failure', 'expired')
          AND d.finished_at = notices.escalated_at)
    THEN 'undeliverable' ELSE 'unacknowledged' END
    WHERE escalated_at IS NOT NULL;

-- The report reads notices by when they were made; the dashboard the open backlog.
CREATE INDEX notices_by_created ON notices (created_at);
CREATE INDEX notices_unacknowledged ON notices (due_at) WHERE acknowledged_at IS NULL;
CREATE INDEX deliveries_failing ON deliveries (notice_id) WHERE state = 'pending' AND attempts > 0;

CREATE TABLE operators (
    email    TEXT PRIMARY KEY,
    added_at TIMESTAMP NOT NULL
);
