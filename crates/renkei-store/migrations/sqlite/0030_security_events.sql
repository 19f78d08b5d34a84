-- The security events kept for the city's SOC (SQLite). Keep in step with
-- ../postgres/0030_security_events.sql.

-- One row per event the hub raised: `token` is the signed Security Event Token (RFC 8417),
-- kept until the SOC acknowledges it, by its push receiver's 202 (RFC 8935) or by a poll's
-- `ack` (RFC 8936). `next_attempt_at` is the next push (or a replica's lease on it).
CREATE TABLE security_events (
    jti TEXT PRIMARY KEY,
    raised_at INTEGER NOT NULL,
    token TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error TEXT,
    acknowledged_at INTEGER,
    receiver_error TEXT
);
CREATE INDEX security_events_waiting ON security_events (raised_at, jti)
WHERE acknowledged_at IS NULL;
