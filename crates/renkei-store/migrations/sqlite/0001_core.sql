-- Renkei core schema (SQLite). Keep in step with ../postgres/0001_core.sql.
-- Times are Unix milliseconds (BIGINT); sets of ids are JSON arrays (TEXT).

CREATE TABLE categories (
    id TEXT PRIMARY KEY,
    name_ja TEXT NOT NULL,
    name_en TEXT NOT NULL,
    special_care BOOLEAN NOT NULL
);

CREATE TABLE services (
    id TEXT PRIMARY KEY,
    name_ja TEXT NOT NULL,
    name_en TEXT NOT NULL,
    sector TEXT NOT NULL,
    hpke_public_key TEXT NOT NULL,
    webhook_url TEXT,
    status TEXT NOT NULL,
    client_secret_hash TEXT NOT NULL
);

CREATE TABLE purposes (
    service_id TEXT NOT NULL REFERENCES services(id),
    purpose_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    title_ja TEXT NOT NULL,
    title_en TEXT NOT NULL,
    description_ja TEXT NOT NULL,
    description_en TEXT NOT NULL,
    categories TEXT NOT NULL,
    retention_days BIGINT NOT NULL,
    legal_basis TEXT NOT NULL,
    published_at BIGINT NOT NULL,
    PRIMARY KEY (service_id, purpose_id, version)
);

CREATE TABLE providers (
    id TEXT PRIMARY KEY,
    name_ja TEXT NOT NULL,
    name_en TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    categories TEXT NOT NULL
);

CREATE TABLE residents (
    id TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    -- Bumped by every consent change: the row write serialises them per resident.
    consent_changes BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE locators (
    resident_id TEXT NOT NULL REFERENCES residents(id),
    category_id TEXT NOT NULL REFERENCES categories(id),
    provider_id TEXT NOT NULL REFERENCES providers(id),
    reference TEXT NOT NULL,
    PRIMARY KEY (resident_id, category_id)
);

CREATE TABLE subjects (
    sector TEXT NOT NULL,
    subject TEXT NOT NULL,
    resident_id TEXT NOT NULL REFERENCES residents(id),
    PRIMARY KEY (sector, subject)
);

CREATE TABLE consents (
    id TEXT PRIMARY KEY,
    resident_id TEXT NOT NULL REFERENCES residents(id),
    service_id TEXT NOT NULL,
    purpose_id TEXT NOT NULL,
    purpose_version BIGINT NOT NULL,
    categories TEXT NOT NULL,
    legal_basis TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    expires_at BIGINT,
    given_via TEXT NOT NULL,
    given_by TEXT NOT NULL,
    revoked_at BIGINT,
    FOREIGN KEY (service_id, purpose_id, purpose_version) REFERENCES purposes(service_id, purpose_id, version)
);
CREATE INDEX consents_by_purpose ON consents (resident_id, service_id, purpose_id, granted_at);

CREATE TABLE consent_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    consent_id TEXT NOT NULL REFERENCES consents(id),
    kind TEXT NOT NULL,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL
);
CREATE INDEX consent_events_by_consent ON consent_events (consent_id, seq);

-- The access log: append-only, gap-free `seq` from log_head (future Merkle leaf index).
CREATE TABLE access_records (
    seq BIGINT PRIMARY KEY,
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
CREATE INDEX access_records_by_resident ON access_records (resident_id, seq);

CREATE TRIGGER access_records_no_update BEFORE UPDATE ON access_records
BEGIN SELECT RAISE(ABORT, 'access records are append-only'); END;
CREATE TRIGGER access_records_no_delete BEFORE DELETE ON access_records
BEGIN SELECT RAISE(ABORT, 'access records are append-only'); END;

CREATE TABLE log_head (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    size BIGINT NOT NULL
);
INSERT INTO log_head (id, size) VALUES (1, 0);

CREATE TABLE webhook_outbox (
    id TEXT PRIMARY KEY,
    service_id TEXT NOT NULL REFERENCES services(id),
    event TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    delivered_at BIGINT,
    given_up_at BIGINT,
    last_error TEXT
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at) WHERE delivered_at IS NULL AND given_up_at IS NULL;

CREATE TABLE hub_secrets (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    created_at BIGINT NOT NULL
);
