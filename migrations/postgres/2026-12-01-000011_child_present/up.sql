-- Whether the child was present during the incident, as the police event says:
-- the coordinator reads it on the notice page. Sealed like the child's name
-- (`yes` or `no` inside the seal); NULL for notices from before this column, and
-- once the personal data is erased.
ALTER TABLE notices ADD COLUMN child_present TEXT;
