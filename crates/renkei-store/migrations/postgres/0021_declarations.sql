-- Declared emergencies and dual-mode purposes (PostgreSQL). Keep in step with
-- ../sqlite/0021_declarations.sql.

-- A purpose that applies only while a declared emergency is in force (幸田町's dual mode).
ALTER TABLE purposes ADD COLUMN emergency_only BOOLEAN NOT NULL DEFAULT FALSE;

-- One row per declaration, rewritten at each step (confirmation, renewal, end): `body` is the
-- whole `renkei_domain::Declaration` as JSON, and the columns beside it are what queries
-- select and order by. A step is written only over the revision it was taken from, so two
-- operators cannot both take it; every step is also an operator entry of the log, written in
-- the same transaction. Public: no personal data.
CREATE TABLE declarations (
    id TEXT PRIMARY KEY,
    revision BIGINT NOT NULL,
    declared_at BIGINT NOT NULL,
    ends_at BIGINT NOT NULL,
    ended_at BIGINT,
    body TEXT NOT NULL
);
CREATE INDEX declarations_by_declared_at ON declarations (declared_at, id);

-- Decisions read the declarations that are not over (see 0010): every step moves the clock.
-- An end time passing moves nothing: decisions compare the window with their own time.
CREATE TRIGGER declarations_moves_decision_clock AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON declarations
FOR EACH STATEMENT EXECUTE FUNCTION renkei_move_decision_clock();
