-- Indexes for purging what expired (PostgreSQL). Keep in step with
-- ../sqlite/0015_purge_expired.sql.

-- Enrolment challenges and WebAuthn ceremonies are written by requests nobody authenticated;
-- the hub's purger (`IdentityStore::purge_expired`) deletes them once expired, and a code
-- never redeemed or a revoked token id once it can no longer matter. Each delete reads only
-- the expired rows through these.
CREATE INDEX enrolment_challenges_by_expiry ON enrolment_challenges (expires_at);
CREATE INDEX webauthn_ceremonies_by_expiry ON webauthn_ceremonies (expires_at);
CREATE INDEX revoked_tokens_by_expiry ON revoked_tokens (expires_at);
CREATE INDEX unredeemed_codes_by_expiry ON authorization_codes (expires_at) WHERE redeemed_at IS NULL;
