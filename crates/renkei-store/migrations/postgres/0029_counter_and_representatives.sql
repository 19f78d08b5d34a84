-- The city's counter and statutory representatives (PostgreSQL). Keep in step with
-- ../sqlite/0029_counter_and_representatives.sql.

-- What an operator account may do (renkei_domain::OperatorRole): `operator` (everything,
-- what every account before roles was) or `counter_staff` (counter work only).
ALTER TABLE operators ADD COLUMN role TEXT NOT NULL DEFAULT 'operator';

-- A statutory representative's kind, evidence and registering operator
-- (renkei_domain::Representation, JSON); NULL for a proxy the resident appointed.
ALTER TABLE proxies ADD COLUMN representation TEXT;

-- Counter sessions: a staff member serving a resident they verified in person, until
-- expires_at. How they verified is JSON (renkei_domain::CounterVerification): the kind of
-- document seen, never its number.
CREATE TABLE counter_sessions (
    id TEXT PRIMARY KEY,
    operator_id TEXT NOT NULL REFERENCES operators(id),
    resident_id TEXT NOT NULL REFERENCES residents(id),
    verification TEXT NOT NULL,
    opened_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX counter_sessions_by_expiry ON counter_sessions (expires_at);
