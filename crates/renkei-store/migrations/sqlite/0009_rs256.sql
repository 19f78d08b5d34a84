-- RS256 beside EdDSA (SQLite). Keep in step with ../postgres/0009_rs256.sql.

-- Each signing key has a JWS algorithm: 'EdDSA' (Ed25519, every key so far, and what signs
-- receipts, grants and events) or 'RS256' (RSA-2048, for ID tokens of relying parties that
-- accept only what OpenID Connect requires).
ALTER TABLE signing_keys ADD COLUMN alg TEXT NOT NULL DEFAULT 'EdDSA';

-- How a service's ID tokens are signed (OIDC Dynamic Client Registration's
-- id_token_signed_response_alg). Services registered before keep EdDSA, what their relying
-- parties were set up to accept; new registrations default to RS256.
ALTER TABLE service_clients ADD COLUMN id_token_alg TEXT NOT NULL DEFAULT 'EdDSA';
