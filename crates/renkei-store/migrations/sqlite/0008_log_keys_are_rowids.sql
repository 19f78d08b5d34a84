-- The log's tables keyed by position as SQLite's rowid (SQLite only: PostgreSQL's primary
-- keys are already the one index of their table, so ../postgres has no counterpart).
-- A `BIGINT PRIMARY KEY` is a separate unique index beside a rowid table: every append
-- wrote two B-trees and every proof hash or leaf lookup searched two. `INTEGER PRIMARY
-- KEY` is the rowid itself: one B-tree, one search, and no copy of the key. Same tables,
-- columns and triggers as before.

CREATE TABLE log_leaves_by_rowid (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    salt BLOB NOT NULL,
    leaf_hash BLOB NOT NULL
);
INSERT INTO log_leaves_by_rowid (seq, kind, salt, leaf_hash)
    SELECT seq, kind, salt, leaf_hash FROM log_leaves ORDER BY seq;
DROP TABLE log_leaves;
ALTER TABLE log_leaves_by_rowid RENAME TO log_leaves;
CREATE TRIGGER log_leaves_no_update BEFORE UPDATE ON log_leaves
BEGIN SELECT RAISE(ABORT, 'the log is append-only'); END;
CREATE TRIGGER log_leaves_no_delete BEFORE DELETE ON log_leaves
BEGIN SELECT RAISE(ABORT, 'the log is append-only'); END;

CREATE TABLE log_hashes_by_rowid (
    idx INTEGER PRIMARY KEY,
    hash BLOB NOT NULL
);
INSERT INTO log_hashes_by_rowid (idx, hash) SELECT idx, hash FROM log_hashes ORDER BY idx;
DROP TABLE log_hashes;
ALTER TABLE log_hashes_by_rowid RENAME TO log_hashes;
CREATE TRIGGER log_hashes_no_update BEFORE UPDATE ON log_hashes
BEGIN SELECT RAISE(ABORT, 'the log is append-only'); END;
CREATE TRIGGER log_hashes_no_delete BEFORE DELETE ON log_hashes
BEGIN SELECT RAISE(ABORT, 'the log is append-only'); END;

CREATE TABLE access_records_by_rowid (
    seq INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    service_id TEXT NOT NULL,
    resident_id TEXT,
    purpose_id TEXT NOT NULL,
    purpose_version BIGINT,
    categories TEXT NOT NULL,
    basis TEXT NOT NULL,
    outcome TEXT NOT NULL,
    providers TEXT NOT NULL
);
INSERT INTO access_records_by_rowid (seq, request_id, at, service_id, resident_id, purpose_id,
    purpose_version, categories, basis, outcome, providers)
    SELECT seq, request_id, at, service_id, resident_id, purpose_id, purpose_version, categories,
    basis, outcome, providers FROM access_records ORDER BY seq;
DROP TABLE access_records;
ALTER TABLE access_records_by_rowid RENAME TO access_records;
CREATE INDEX access_records_by_resident ON access_records (resident_id, seq);
CREATE TRIGGER access_records_no_update BEFORE UPDATE ON access_records
BEGIN SELECT RAISE(ABORT, 'access records are append-only'); END;
CREATE TRIGGER access_records_no_delete BEFORE DELETE ON access_records
BEGIN SELECT RAISE(ABORT, 'access records are append-only'); END;
-- The audit search's indexes (0005_audit_search) went with the old table: made again.
CREATE INDEX access_records_by_service ON access_records (service_id, purpose_id, seq);
CREATE INDEX access_records_by_time ON access_records (at);
