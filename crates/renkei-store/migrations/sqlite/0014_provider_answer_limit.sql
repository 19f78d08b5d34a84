-- How much of a provider's answer the hub reads (SQLite). Keep in step with
-- ../postgres/0014_provider_answer_limit.sql.

-- NULL: the hub's default limit. Answers beyond the limit are refused unread.
ALTER TABLE providers ADD COLUMN max_answer_bytes INTEGER;
