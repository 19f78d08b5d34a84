-- Operators are audited too (PostgreSQL). Keep in step with ../sqlite/0007_operator_actions.sql.

-- An operator's act (approving or suspending a service, answering a resident's request,
-- adding an operator, rotating or retiring a signing key) is an entry of the same log as
-- data access: its position, who did it and what, as JSON.
CREATE TABLE operator_actions (
    log_seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL
);

CREATE TRIGGER operator_actions_no_update BEFORE UPDATE OR DELETE ON operator_actions
FOR EACH ROW EXECUTE FUNCTION renkei_append_only();
CREATE TRIGGER operator_actions_no_truncate BEFORE TRUNCATE ON operator_actions
FOR EACH STATEMENT EXECUTE FUNCTION renkei_append_only();
