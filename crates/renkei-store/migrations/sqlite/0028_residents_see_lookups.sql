-- Operators' look-ups a resident sees, and disclosures (SQLite). Keep in step with
-- ../postgres/0028_residents_see_lookups.sql.

-- An audit search naming a resident is an entry of that resident's history: the resident
-- it names is kept beside the act, so their history finds it by index. Searches made
-- before are found too (their JSON already names the resident). A disclosure is an access
-- record (its recipient the data subject), so it needs no table of its own.
ALTER TABLE operator_actions ADD COLUMN resident_id TEXT;

DROP TRIGGER operator_actions_no_update;
UPDATE operator_actions SET resident_id = json_extract(action, '$.resident')
WHERE json_extract(action, '$.action') = 'search_access_log'
  AND json_extract(action, '$.resident') IS NOT NULL;
CREATE TRIGGER operator_actions_no_update BEFORE UPDATE ON operator_actions
BEGIN SELECT RAISE(ABORT, 'the log is append-only'); END;

CREATE INDEX operator_actions_by_resident ON operator_actions (resident_id, log_seq);
