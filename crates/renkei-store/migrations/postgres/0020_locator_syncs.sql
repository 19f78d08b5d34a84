-- Providers keep their own locators current, authenticated by client assertions
-- (PostgreSQL). Keep in step with ../sqlite/0020_locator_syncs.sql.

-- One batch of a provider's locator changes: a log entry of its own, with how many items
-- came to what and never which (no resident, no reference). The row is also what makes a
-- retried batch harmless: a batch id a provider already used is answered from it, and
-- nothing else changes.
CREATE TABLE locator_syncs (
    log_seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    provider_id TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    upserted BIGINT NOT NULL,
    removed BIGINT NOT NULL,
    unchanged BIGINT NOT NULL,
    not_applied BIGINT NOT NULL,
    UNIQUE (provider_id, batch_id)
);

CREATE TRIGGER locator_syncs_no_update BEFORE UPDATE OR DELETE ON locator_syncs
FOR EACH ROW EXECUTE FUNCTION renkei_append_only();
CREATE TRIGGER locator_syncs_no_truncate BEFORE TRUNCATE ON locator_syncs
FOR EACH STATEMENT EXECUTE FUNCTION renkei_append_only();

-- The ids (`jti`) of providers' client assertions (RFC 7523) already used, until they expire:
-- an assertion is taken here atomically before it is accepted, so it is accepted once, on any
-- replica.
CREATE TABLE used_client_assertions (
    issuer TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (issuer, jti)
);
CREATE INDEX used_client_assertions_by_expiry ON used_client_assertions (expires_at);
