DELETE FROM access_tokens WHERE notice_id IS NULL;
ALTER TABLE access_tokens ALTER COLUMN notice_id SET NOT NULL;
