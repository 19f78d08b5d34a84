-- Identity (PostgreSQL): enrolments, passkeys, OpenID Connect state, proxies, operators and
-- resident requests. Keep in step with ../sqlite/0004_identity.sql.

-- What the hub keeps of a proven identity: a hash of the certificate's key, never the certificate.
CREATE TABLE enrolments (
    key_hash TEXT PRIMARY KEY,
    resident_id TEXT NOT NULL REFERENCES residents(id),
    attributes TEXT NOT NULL,
    enrolled_at BIGINT NOT NULL,
    certificate_not_after BIGINT NOT NULL
);
CREATE INDEX enrolments_by_resident ON enrolments (resident_id, enrolled_at);

-- Single-use challenges for enrolment; stored so any replica can finish what another began.
CREATE TABLE enrolment_challenges (
    id TEXT PRIMARY KEY,
    challenge BYTEA NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE passkeys (
    credential_id TEXT PRIMARY KEY,
    resident_id TEXT NOT NULL REFERENCES residents(id),
    name TEXT NOT NULL,
    passkey TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX passkeys_by_resident ON passkeys (resident_id);

-- WebAuthn registration and sign-in state between the two halves of a ceremony.
CREATE TABLE webauthn_ceremonies (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    resident_id TEXT,
    state TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE service_clients (
    service_id TEXT PRIMARY KEY REFERENCES services(id),
    redirect_uris TEXT NOT NULL,
    privacy_impact TEXT NOT NULL,
    registered_at BIGINT NOT NULL
);

-- Codes are stored by hash: whoever reads the database cannot redeem them.
CREATE TABLE authorization_codes (
    code_hash TEXT PRIMARY KEY,
    service_id TEXT NOT NULL REFERENCES services(id),
    resident_id TEXT NOT NULL REFERENCES residents(id),
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    nonce TEXT,
    scope TEXT NOT NULL,
    consents TEXT NOT NULL,
    acting_proxy TEXT,
    auth_time BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    redeemed_at BIGINT,
    tokens_revoked_at BIGINT
);

-- Revoked access tokens until they would have expired anyway (RFC 7009).
CREATE TABLE revoked_tokens (
    jti TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT NOT NULL
);

CREATE TABLE proxies (
    id TEXT PRIMARY KEY,
    resident_id TEXT NOT NULL REFERENCES residents(id),
    proxy_id TEXT NOT NULL REFERENCES residents(id),
    label TEXT NOT NULL,
    scope TEXT NOT NULL,
    appointed_at BIGINT NOT NULL,
    ended_at BIGINT
);
CREATE INDEX proxies_by_resident ON proxies (resident_id);
CREATE INDEX proxies_by_proxy ON proxies (proxy_id);

CREATE TABLE operators (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    identity_id TEXT NOT NULL UNIQUE REFERENCES residents(id),
    added_at BIGINT NOT NULL
);

CREATE TABLE resident_requests (
    id TEXT PRIMARY KEY,
    resident_id TEXT NOT NULL REFERENCES residents(id),
    kind TEXT NOT NULL,
    service_id TEXT,
    details TEXT NOT NULL,
    status TEXT NOT NULL,
    filed_by TEXT NOT NULL,
    filed_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    response TEXT
);
CREATE INDEX resident_requests_by_resident ON resident_requests (resident_id, filed_at);
