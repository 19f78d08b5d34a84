-- The operators' audit search: access entries by service and purpose, and by time, newest
-- first (by resident it uses access_records_by_resident; consent changes are found through
-- consents_by_purpose and consent_events_by_log_seq).
CREATE INDEX access_records_by_service ON access_records (service_id, purpose_id, seq);
CREATE INDEX access_records_by_time ON access_records (at);
