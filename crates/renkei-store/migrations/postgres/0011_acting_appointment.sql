-- The appointment a proxy signed in under (PostgreSQL). Keep in step with
-- ../sqlite/0011_acting_appointment.sql.

-- When a proxy completes an OpenID sign-in for a resident, the code records the appointment
-- (not only the proxy): every token issued for the code is checked against it on each use,
-- so ending the appointment ends them. NULL when the resident signed in themselves.
ALTER TABLE authorization_codes ADD COLUMN acting_appointment TEXT;
