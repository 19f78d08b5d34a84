-- Counter consents and locator batches told apart from reused ids (SQLite). Keep in step
-- with ../postgres/0025_counter_consents.sql.

-- The paper form a resident signed at a provider's counter (channel `counter`), as the
-- provider files it; NULL for every other consent.
ALTER TABLE consents ADD COLUMN form_reference TEXT;

-- What a locator batch asked for (renkei_domain::LocatorBatch::digest): a batch id used
-- again with other content is refused rather than answered as the first time. NULL for
-- batches applied before it was kept.
ALTER TABLE locator_syncs ADD COLUMN digest TEXT;
