-- Every table of the log refuses edits (PostgreSQL). Keep in step with ../sqlite/0003_append_only_everywhere.sql.
CREATE TRIGGER consent_events_no_update BEFORE UPDATE ON consent_events
FOR EACH ROW EXECUTE FUNCTION renkei_append_only();
CREATE TRIGGER log_hashes_no_update BEFORE UPDATE OR DELETE ON log_hashes
FOR EACH ROW EXECUTE FUNCTION renkei_append_only();
CREATE TRIGGER log_append_only_no_truncate BEFORE TRUNCATE ON log_leaves
FOR EACH STATEMENT EXECUTE FUNCTION renkei_append_only();
