//! Storage for the security events the hub raises for the city's SOC: each signed token kept
//! until the SOC has it, acknowledged either by its push receiver's `202` (RFC 8935) or by a
//! poll's `ack` (RFC 8936), so none is lost across restarts or while the receiver is down.
//!
//! A supertrait of [`crate::Store`], like [`crate::NoticeStore`]. Which events are raised, and
//! when a push is retried, are the hub's.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::StoreResult;

/// The most events one read returns.
pub const MAX_SECURITY_EVENTS_READ: u32 = 1000;

/// A signed security event token, as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSecurityEvent {
    /// The token's `jti`.
    pub jti: Uuid,
    /// The compact JWS.
    pub token: String,
    pub raised_at: DateTime<Utc>,
}

/// An event whose push is due, with the pushes tried before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueSecurityEvent {
    pub event: StoredSecurityEvent,
    pub attempts: u32,
}

/// How the SOC acknowledged an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityEventAck {
    pub jti: Uuid,
    /// The error the SOC reported for it (RFC 8936 `setErrs`: `err` and `description`), if
    /// it could not process it; it is acknowledged all the same and not sent again.
    pub error: Option<String>,
}

#[async_trait]
pub trait SecurityEventStore {
    /// Keeps a raised event (durable on return), due for a push at once.
    async fn raise_security_event(&self, event: &StoredSecurityEvent) -> StoreResult<()>;

    /// Takes up to `limit` unacknowledged events whose push is due, oldest first, and leases
    /// them until `lease_until`, so another replica does not push them at the same time.
    async fn take_due_security_events(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<DueSecurityEvent>>;

    /// A push that failed with `error`: tried again from `next`.
    async fn retry_security_event(
        &self,
        jti: Uuid,
        next: DateTime<Utc>,
        error: &str,
    ) -> StoreResult<()>;

    /// Unacknowledged events, oldest first, at most `limit` (capped at
    /// [`MAX_SECURITY_EVENTS_READ`]).
    async fn unacknowledged_security_events(
        &self,
        limit: u32,
    ) -> StoreResult<Vec<StoredSecurityEvent>>;

    /// Marks events acknowledged. Ids unknown or acknowledged already are ignored.
    async fn acknowledge_security_events(
        &self,
        acks: &[SecurityEventAck],
        at: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Deletes the events acknowledged before `before` (the SOC keeps its own copy); returns
    /// how many. Unacknowledged events are kept however old.
    async fn forget_acknowledged_security_events(&self, before: DateTime<Utc>) -> StoreResult<u64>;
}
