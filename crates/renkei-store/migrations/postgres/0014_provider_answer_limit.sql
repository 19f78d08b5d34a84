-- How much of a provider's answer the hub reads (PostgreSQL). Keep in step with
-- ../sqlite/0014_provider_answer_limit.sql.

-- NULL: the hub's default limit. Answers beyond the limit are refused unread.
ALTER TABLE providers ADD COLUMN max_answer_bytes BIGINT;
