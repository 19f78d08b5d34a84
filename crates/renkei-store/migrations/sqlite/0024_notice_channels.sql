-- Where residents asked to be told of releases under declarations besides the portal
-- (SQLite). Keep in step with ../postgres/0024_notice_channels.sql.

-- A resident's choice that a service they use (one with a webhook) also hears of their
-- notices: that service is sent an `emergency-release-notice` event naming them by its own
-- pairwise subject. Without a row, no service hears of a resident's notice.
CREATE TABLE notice_channels (
    resident_id TEXT NOT NULL REFERENCES residents(id),
    service_id TEXT NOT NULL REFERENCES services(id),
    since BIGINT NOT NULL,
    PRIMARY KEY (resident_id, service_id)
);
