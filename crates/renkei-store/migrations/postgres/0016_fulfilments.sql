-- What a granted request came to, provider by provider (PostgreSQL). Keep in step with
-- ../sqlite/0016_fulfilments.sql.

-- Appended after the providers answered, when any of them did not deliver: a log entry of
-- its own, since the access record is durable (and says granted) before any provider is asked.
-- `providers` is JSON: provider id -> {"status": "delivered"} or {"status": "failed", "reason": …}.
CREATE TABLE fulfilments (
    log_seq BIGINT PRIMARY KEY,
    request_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    service_id TEXT NOT NULL,
    resident_id TEXT NOT NULL,
    providers TEXT NOT NULL
);

CREATE INDEX fulfilments_by_resident ON fulfilments (resident_id, log_seq);

CREATE TRIGGER fulfilments_no_update BEFORE UPDATE OR DELETE ON fulfilments
FOR EACH ROW EXECUTE FUNCTION renkei_append_only();
CREATE TRIGGER fulfilments_no_truncate BEFORE TRUNCATE ON fulfilments
FOR EACH STATEMENT EXECUTE FUNCTION renkei_append_only();
