-- Residents' requests routed to whoever holds the data, with their due dates (SQLite).
-- Keep in step with ../postgres/0027_rights_routing.sql.

-- A request may name a data category (at every service and provider) instead of, or as well
-- as, a service. Each has a due date for a first answer (the filing day plus the city's
-- setting; fourteen days for those filed before there was one), which an operator moves
-- only with a reason the resident reads.
ALTER TABLE resident_requests ADD COLUMN category_id TEXT;
ALTER TABLE resident_requests ADD COLUMN due_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE resident_requests ADD COLUMN extension_reason TEXT;
UPDATE resident_requests SET due_at = filed_at + 14 * 86400000;
CREATE INDEX resident_requests_by_due ON resident_requests (status, due_at);

-- Who a correction, deletion or suspension request went to (a service that received the
-- data, a provider that keeps it) and what each answered: pending, done, refused or partly,
-- with the note the resident reads, and the categories it concerns there (JSON).
CREATE TABLE resident_request_recipients (
    request_id TEXT NOT NULL REFERENCES resident_requests(id),
    recipient_kind TEXT NOT NULL,
    recipient_id TEXT NOT NULL,
    categories TEXT NOT NULL,
    routed_at BIGINT NOT NULL,
    answer TEXT NOT NULL,
    note TEXT,
    answered_at BIGINT,
    PRIMARY KEY (request_id, recipient_kind, recipient_id)
);
CREATE INDEX resident_request_recipients_by_recipient
    ON resident_request_recipients (recipient_kind, recipient_id, answer);

-- Each routing and each answer as an entry of the log: ids and counts (the event, JSON),
-- never the resident's words nor a recipient's note.
CREATE TABLE rights_log (
    log_seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    request_id TEXT NOT NULL,
    resident_id TEXT NOT NULL,
    request_kind TEXT NOT NULL,
    event TEXT NOT NULL
);

CREATE TRIGGER rights_log_no_update BEFORE UPDATE ON rights_log
BEGIN SELECT RAISE(ABORT, 'the log is append-only'); END;
CREATE TRIGGER rights_log_no_delete BEFORE DELETE ON rights_log
BEGIN SELECT RAISE(ABORT, 'the log is append-only'); END;
