-- The decision clock (PostgreSQL). Keep in step with ../sqlite/0010_decision_clock.sql.
--
-- Every change to what a data request's decision reads (services, purposes, subjects,
-- consents, locators, providers, revoked tokens) moves the clock forward, in the transaction
-- that makes the change. A hub keeps what its decisions read in memory beside the clock value
-- it was read at, and reuses it only while the clock, read inside the deciding transaction,
-- still shows that value. Triggers, not the code, move it: no write path can forget to, and
-- every replica sees the same clock. (Consent changes already queue on log_head's row lock,
-- so the clock's row lock adds no new waiting.)
CREATE TABLE decision_clock (
    id SMALLINT PRIMARY KEY CHECK (id = 1),
    value BIGINT NOT NULL
);
INSERT INTO decision_clock (id, value) VALUES (1, 0);

CREATE FUNCTION renkei_move_decision_clock() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE decision_clock SET value = value + 1 WHERE id = 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER services_moves_decision_clock AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON services
FOR EACH STATEMENT EXECUTE FUNCTION renkei_move_decision_clock();
CREATE TRIGGER purposes_moves_decision_clock AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON purposes
FOR EACH STATEMENT EXECUTE FUNCTION renkei_move_decision_clock();
CREATE TRIGGER subjects_moves_decision_clock AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON subjects
FOR EACH STATEMENT EXECUTE FUNCTION renkei_move_decision_clock();
CREATE TRIGGER consents_moves_decision_clock AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON consents
FOR EACH STATEMENT EXECUTE FUNCTION renkei_move_decision_clock();
CREATE TRIGGER locators_moves_decision_clock AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON locators
FOR EACH STATEMENT EXECUTE FUNCTION renkei_move_decision_clock();
CREATE TRIGGER providers_moves_decision_clock AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON providers
FOR EACH STATEMENT EXECUTE FUNCTION renkei_move_decision_clock();
CREATE TRIGGER revoked_tokens_moves_decision_clock AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON revoked_tokens
FOR EACH STATEMENT EXECUTE FUNCTION renkei_move_decision_clock();
