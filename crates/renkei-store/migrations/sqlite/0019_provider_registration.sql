-- Providers registered and reviewed through the product (SQLite). Keep in step with
-- ../postgres/0019_provider_registration.sql.

-- Where the provider's registration stands in the operators' review: pending, approved or
-- suspended. Providers that existed before were put there by hand and keep serving.
ALTER TABLE providers ADD COLUMN status TEXT NOT NULL DEFAULT 'approved';
-- How the hub reaches the provider: 'inbound' (grants are POSTed to `endpoint`) or
-- 'outbound' (the provider connects to the hub; `endpoint` is then '' and never read).
ALTER TABLE providers ADD COLUMN connection TEXT NOT NULL DEFAULT 'inbound';
-- The public keys the provider signs its answers with, as a JWK Set (JSON). Providers
-- from before registered none.
ALTER TABLE providers ADD COLUMN signing_keys TEXT NOT NULL DEFAULT '{"keys":[]}';
-- Whom the city contacts about the provider (JSON, as a service's controller contact);
-- NULL for providers from before.
ALTER TABLE providers ADD COLUMN contact TEXT;
