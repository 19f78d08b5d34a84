-- The transparency log (PostgreSQL). Keep in step with ../sqlite/0002_transparency_log.sql.

ALTER TABLE consent_events ADD COLUMN log_seq BIGINT;
CREATE UNIQUE INDEX consent_events_by_log_seq ON consent_events (log_seq);

CREATE TABLE log_leaves (
    seq BIGINT PRIMARY KEY,
    kind TEXT NOT NULL,
    salt BYTEA NOT NULL,
    leaf_hash BYTEA NOT NULL
);

CREATE TABLE log_hashes (
    idx BIGINT PRIMARY KEY,
    hash BYTEA NOT NULL
);

CREATE TABLE log_checkpoints (
    size BIGINT PRIMARY KEY,
    root BYTEA NOT NULL,
    note TEXT NOT NULL,
    signed_at BIGINT NOT NULL
);

CREATE TRIGGER log_leaves_no_update BEFORE UPDATE OR DELETE ON log_leaves
FOR EACH ROW EXECUTE FUNCTION renkei_append_only();
CREATE TRIGGER consent_events_no_delete BEFORE DELETE ON consent_events
FOR EACH ROW EXECUTE FUNCTION renkei_append_only();
CREATE TRIGGER log_checkpoints_no_update BEFORE UPDATE OR DELETE ON log_checkpoints
FOR EACH ROW EXECUTE FUNCTION renkei_append_only();
