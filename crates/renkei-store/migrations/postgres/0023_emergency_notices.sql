-- Residents told afterwards (PostgreSQL). Keep in step with ../sqlite/0023_emergency_notices.sql.

-- One row per declaration whose notices are written: its primary key makes the writing happen
-- once, whichever replica gets there first, and however often the sender looks.
CREATE TABLE emergency_notice_runs (
    declaration_id TEXT PRIMARY KEY REFERENCES declarations(id),
    done_at BIGINT NOT NULL,
    notices BIGINT NOT NULL
);

-- One notice per resident per declaration: `body` is the whole
-- `renkei_domain::EmergencyNotice` as JSON (what was released to whom, with each release's
-- log position). Never changed once written.
CREATE TABLE emergency_notices (
    resident_id TEXT NOT NULL REFERENCES residents(id),
    declaration_id TEXT NOT NULL REFERENCES emergency_notice_runs(declaration_id),
    created_at BIGINT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (resident_id, declaration_id)
);
CREATE TRIGGER emergency_notices_no_update BEFORE UPDATE ON emergency_notices
FOR EACH ROW EXECUTE FUNCTION renkei_append_only();
CREATE TRIGGER emergency_notice_runs_no_update BEFORE UPDATE ON emergency_notice_runs
FOR EACH ROW EXECUTE FUNCTION renkei_append_only();

-- The access records under some declaration (their basis is `{"kind":"emergency",...}`),
-- read once per declaration when its notices are written. Partial, so the decisions' appends
-- pay for it only when they release under a declaration. The query names the basis exactly
-- and repeats the range, so the index serves it; the range is only for the planner.
CREATE INDEX access_records_under_emergency ON access_records (basis, seq)
WHERE basis >= '{"kind":"emergency"' AND basis < '{"kind":"emergencz';
