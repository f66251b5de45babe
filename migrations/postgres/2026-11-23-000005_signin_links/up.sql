-- A sign-in link asked for on the portal leads to the list, not to one notice.
ALTER TABLE access_tokens ALTER COLUMN notice_id DROP NOT NULL;
