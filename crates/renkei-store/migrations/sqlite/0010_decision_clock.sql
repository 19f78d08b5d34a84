-- The decision clock (SQLite). Keep in step with ../postgres/0010_decision_clock.sql.
--
-- Every change to what a data request's decision reads (services, purposes, subjects,
-- consents, locators, providers, revoked tokens) moves the clock forward, in the transaction
-- that makes the change. A hub keeps what its decisions read in memory beside the clock value
-- it was read at, and reuses it only while the clock, read inside the deciding transaction,
-- still shows that value. Triggers, not the code, move it: no write path can forget to.
CREATE TABLE decision_clock (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT INTO decision_clock (id, value) VALUES (1, 0);

CREATE TRIGGER services_insert_moves_decision_clock AFTER INSERT ON services
BEGIN UPDATE decision_clock SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER services_update_moves_decision_clock AFTER UPDATE ON services
BEGIN UPDATE decision_clock SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER services_delete_moves_decision_clock AFTER DELETE ON services
BEGIN UPDATE decision_clock SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER purposes_insert_moves_decision_clock AFTER INSERT ON purposes
BEGIN UPDATE decision_clock SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER purposes_update_moves_decision_clock AFTER UPDATE ON purposes
BEGIN UPDATE decision_clock SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER purposes_delete_moves_decision_clock AFTER DELETE ON purposes
BEGIN UPDATE decision_clock SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER subjects_insert_moves_decision_clock AFTER INSERT ON subjects
BEGIN UPDATE decision_clock SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER subjects_update_moves_decision_clock AFTER UPDATE ON subjects
BEGIN UPDATE decision_clock SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER subjects_delete_moves_decision_clock AFTER DELETE ON subjects
BEGIN UPDATE decision_clock SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER consents_insert_moves_decision_clock AFTER INSERT ON consents
BEGIN UPDATE decision_clock SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER consents_update_moves_decision_clock AFTER UPDATE ON consents
BEGIN UPDATE decision_clock SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER consents_delete_moves_decision_clock AFTER DELETE ON consents
BEGIN UPDATE decision_clock SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER locators_insert_moves_decision_clock AFTER INSERT ON locators
BEGIN UPDATE decision_clock SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER locators_update_moves_decision_clock AFTER UPDATE ON locators
BEGIN UPDATE decision_clock SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER locators_delete_moves_decision_clock AFTER DELETE ON locators
BEGIN UPDATE decision_clock SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER providers_insert_moves_decision_clock AFTER INSERT ON providers
BEGIN UPDATE decision_clock SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER providers_update_moves_decision_clock AFTER UPDATE ON providers
BEGIN UPDATE decision_clock SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER providers_delete_moves_decision_clock AFTER DELETE ON providers
BEGIN UPDATE decision_clock SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER revoked_tokens_insert_moves_decision_clock AFTER INSERT ON revoked_tokens
BEGIN UPDATE decision_clock SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER revoked_tokens_update_moves_decision_clock AFTER UPDATE ON revoked_tokens
BEGIN UPDATE decision_clock SET value = value + 1 WHERE id = 1; END;
CREATE TRIGGER revoked_tokens_delete_moves_decision_clock AFTER DELETE ON revoked_tokens
BEGIN UPDATE decision_clock SET value = value + 1 WHERE id = 1; END;
