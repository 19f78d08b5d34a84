-- The PII controller's contact details (SQLite). Keep in step with ../postgres/0018_controller_contact.sql.

-- Whom residents contact about their data at a service (contact, postal address, email,
-- phone) as JSON: part of its registration, shown at review, carried into every consent
-- receipt (Kantara CR v1.1 piiControllers). NULL for services registered before.
ALTER TABLE service_clients ADD COLUMN controller TEXT;
