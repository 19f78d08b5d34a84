-- Operators' look-ups a resident sees, and disclosures (PostgreSQL). Keep in step with
-- ../sqlite/0028_residents_see_lookups.sql.

-- An audit search naming a resident is an entry of that resident's history: the resident
-- it names is kept beside the act, so their history finds it by index. Searches made
-- before are found too (their JSON already names the resident). A disclosure is an access
-- record (its recipient the data subject), so it needs no table of its own.
ALTER TABLE operator_actions ADD COLUMN resident_id TEXT;

ALTER TABLE operator_actions DISABLE TRIGGER operator_actions_no_update;
UPDATE operator_actions SET resident_id = action::jsonb ->> 'resident'
WHERE action::jsonb ->> 'action' = 'search_access_log'
  AND action::jsonb ->> 'resident' IS NOT NULL;
ALTER TABLE operator_actions ENABLE TRIGGER operator_actions_no_update;

CREATE INDEX operator_actions_by_resident ON operator_actions (resident_id, log_seq);
