-- Location data by purpose (SQLite). Keep in step with
-- ../postgres/0026_location_by_purpose.sql.

-- A category that holds a location (a point or a trace) says so: it is released only at the
-- precision the purpose declared, coarsened by the provider.
ALTER TABLE categories ADD COLUMN location BOOLEAN NOT NULL DEFAULT FALSE;

-- The precision of location data a purpose needs (exact, 100m, 1km-mesh, municipality) and
-- how long the service may keep it, in days; both NULL when the purpose declared none.
ALTER TABLE purposes ADD COLUMN location_precision TEXT;
ALTER TABLE purposes ADD COLUMN location_retention_days BIGINT;
