-- The transparency log (SQLite). Keep in step with ../postgres/0002_transparency_log.sql.

-- Consent changes are log entries too: their position in the shared log sequence.
ALTER TABLE consent_events ADD COLUMN log_seq BIGINT;
CREATE UNIQUE INDEX consent_events_by_log_seq ON consent_events (log_seq);

-- One Merkle leaf per log entry (access record or consent event), written in the same
-- transaction as the entry. leaf_hash = SHA-256(0x00 || salt || canonical entry).
CREATE TABLE log_leaves (
    seq BIGINT PRIMARY KEY,
    kind TEXT NOT NULL,
    salt BLOB NOT NULL,
    leaf_hash BLOB NOT NULL
);

-- Stored Merkle node hashes in tlog numbering (golang.org/x/mod/sumdb/tlog), written by
-- the integrator: proofs and tiles cost O(log n) lookups.
CREATE TABLE log_hashes (
    idx BIGINT PRIMARY KEY,
    hash BLOB NOT NULL
);

-- Every checkpoint the hub signed (C2SP signed note).
CREATE TABLE log_checkpoints (
    size BIGINT PRIMARY KEY,
    root BLOB NOT NULL,
    note TEXT NOT NULL,
    signed_at BIGINT NOT NULL
);

CREATE TRIGGER log_leaves_no_update BEFORE UPDATE ON log_leaves
BEGIN SELECT RAISE(ABORT, 'the log is append-only'); END;
CREATE TRIGGER log_leaves_no_delete BEFORE DELETE ON log_leaves
BEGIN SELECT RAISE(ABORT, 'the log is append-only'); END;
CREATE TRIGGER consent_events_no_delete BEFORE DELETE ON consent_events
BEGIN SELECT RAISE(ABORT, 'the log is append-only'); END;
CREATE TRIGGER log_checkpoints_no_update BEFORE UPDATE ON log_checkpoints
BEGIN SELECT RAISE(ABORT, 'the log is append-only'); END;
