-- Location data by purpose (SQLite). Keep in step with
-- ../postgres/0026_location_by_purpose.sql.

-- A category that holds a location (a point or a trace) says so: it is released only at the
-- precision the purpose declared, coarsened by the provider.
ALTER TABLE categories ADD COLUMN location BOOLEAN NOT NULL DEFAULT FALSE;

-- The precision of location data a purpose needs (exact, 100m, 1km-mesh, municipality) and
-- how long the service may keep it, in days; both NULL when the purpose declared none.
ALTER TABLE purposes ADD COLUMN location_precision TEXT;
ALTER TABLE purposes ADD COLUMN location_retention_days BIGINT;

-- The location data a service owes deletion of when it ends (is suspended): one row per
-- purpose version drawing on a location category, due after the days the purpose let it
-- keep them; an operator records the service's confirmation (データ消去証明書).
CREATE TABLE location_deletions (
    service_id TEXT NOT NULL,
    purpose_id TEXT NOT NULL,
    purpose_version BIGINT NOT NULL,
    ended_at BIGINT NOT NULL,
    due_at BIGINT NOT NULL,
    confirmed_at BIGINT,
    confirmed_by TEXT,
    PRIMARY KEY (service_id, purpose_id, purpose_version)
);
CREATE INDEX location_deletions_by_due ON location_deletions (due_at);
