-- Signing keys kept in a PKCS#11 token (PostgreSQL). Keep in step with
-- ../sqlite/0017_signing_keys_in_tokens.sql.

-- A key's private half is either in this table (pkcs8, wrapped under the hub's key-encryption
-- key) or in a PKCS#11 token that never lets it out: then the row names the token (its
-- label), the key objects' CKA_ID in it, and holds the public key as a JWK. Never both.
ALTER TABLE signing_keys ALTER COLUMN pkcs8 DROP NOT NULL;
ALTER TABLE signing_keys ADD COLUMN token TEXT;
ALTER TABLE signing_keys ADD COLUMN token_object_id BYTEA;
ALTER TABLE signing_keys ADD COLUMN public_jwk TEXT;
ALTER TABLE signing_keys ADD CONSTRAINT signing_keys_stored_or_in_a_token CHECK (
    (pkcs8 IS NOT NULL AND token IS NULL AND token_object_id IS NULL AND public_jwk IS NULL)
    OR (pkcs8 IS NULL AND token IS NOT NULL AND token_object_id IS NOT NULL
        AND public_jwk IS NOT NULL)
);
