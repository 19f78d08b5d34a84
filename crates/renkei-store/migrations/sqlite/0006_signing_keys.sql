-- The hub's signing keys and their rotation (sqlite). Keep in step with ../postgres/0006_signing_keys.sql.

-- Ed25519 keys (PKCS#8) that sign ID tokens, consent receipts, provider grants and webhook
-- events. A key is published in the JWK Set from creation, signs from active_from (the
-- newest active key signs), and leaves the set only when retired (after a compromise).
-- Keys are never deleted, so what was once published stays explainable.
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    pkcs8 BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    active_from BIGINT NOT NULL,
    retired_at BIGINT
);
