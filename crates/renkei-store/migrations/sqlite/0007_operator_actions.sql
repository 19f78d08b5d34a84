-- Operators are audited too (SQLite). Keep in step with ../postgres/0007_operator_actions.sql.

-- An operator's act (approving or suspending a service, answering a resident's request,
-- adding an operator, rotating or retiring a signing key) is an entry of the same log as
-- data access: its position, who did it and what, as JSON.
CREATE TABLE operator_actions (
    log_seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL
);

CREATE TRIGGER operator_actions_no_update BEFORE UPDATE ON operator_actions
BEGIN SELECT RAISE(ABORT, 'the log is append-only'); END;
CREATE TRIGGER operator_actions_no_delete BEFORE DELETE ON operator_actions
BEGIN SELECT RAISE(ABORT, 'the log is append-only'); END;
