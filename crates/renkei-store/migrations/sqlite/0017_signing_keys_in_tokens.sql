-- Signing keys kept in a PKCS#11 token (SQLite). Keep in step with
-- ../postgres/0017_signing_keys_in_tokens.sql.

-- A key's private half is either in this table (pkcs8, wrapped under the hub's key-encryption
-- key) or in a PKCS#11 token that never lets it out: then the row names the token (its
-- label), the key objects' CKA_ID in it, and holds the public key as a JWK. Never both.
-- SQLite cannot relax a NOT NULL in place, so the table is rebuilt with the same rows.
CREATE TABLE signing_keys_with_tokens (
    kid TEXT PRIMARY KEY,
    pkcs8 BLOB,
    created_at BIGINT NOT NULL,
    active_from BIGINT NOT NULL,
    retired_at BIGINT,
    alg TEXT NOT NULL DEFAULT 'EdDSA',
    token TEXT,
    token_object_id BLOB,
    public_jwk TEXT,
    CHECK (
        (pkcs8 IS NOT NULL AND token IS NULL AND token_object_id IS NULL AND public_jwk IS NULL)
        OR (pkcs8 IS NULL AND token IS NOT NULL AND token_object_id IS NOT NULL
            AND public_jwk IS NOT NULL)
    )
);
INSERT INTO signing_keys_with_tokens (kid, pkcs8, created_at, active_from, retired_at, alg)
    SELECT kid, pkcs8, created_at, active_from, retired_at, alg FROM signing_keys;
DROP TABLE signing_keys;
ALTER TABLE signing_keys_with_tokens RENAME TO signing_keys;
