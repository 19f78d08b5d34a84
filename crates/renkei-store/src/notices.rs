//! Storage for residents told afterwards: the access records under a declaration, the
//! notices written from them once the declaration is over, exactly once per resident and
//! declaration, with the webhook messages of the services residents chose, and those choices.
//!
//! A supertrait of [`crate::Store`], like [`crate::EmergencyStore`]. Which records make a
//! notice, and when a declaration's notices are due, are `renkei_domain`'s
//! (`EmergencyNotice::from_records`, `Declaration::notices_due_at`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use renkei_domain::{
    AccessRecord, Declaration, DeclarationId, EmergencyNotice, ResidentId, ServiceId,
};

use crate::{OutboxMessage, StoreResult};

/// The most notices one resident's listing returns.
pub const MAX_NOTICES_LISTED: u32 = 500;

#[async_trait]
pub trait NoticeStore {
    /// Declarations that may be over at `now` (ended early, or with an end time at or before
    /// `now`) whose notices are not written yet, oldest end first, at most `limit`.
    async fn declarations_awaiting_notices(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Declaration>>;

    /// Every access record whose basis is `emergency:<declaration>`, in log order.
    async fn records_under_declaration(
        &self,
        declaration: DeclarationId,
    ) -> StoreResult<Vec<AccessRecord>>;

    /// Writes `declaration`'s notices and `messages` (for the services residents chose) in
    /// one durable transaction, once: `Ok(false)`, and nothing written, if its notices were
    /// written already (by this replica or another).
    async fn record_notices(
        &self,
        declaration: DeclarationId,
        notices: &[EmergencyNotice],
        messages: &[OutboxMessage],
        at: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// A resident's notices, the latest written first, at most `limit` (capped at
    /// [`MAX_NOTICES_LISTED`]).
    async fn notices(&self, resident: ResidentId, limit: u32) -> StoreResult<Vec<EmergencyNotice>>;

    /// The services each of `residents` chose to hear of their notices.
    async fn notice_channels(
        &self,
        residents: &[ResidentId],
    ) -> StoreResult<Vec<(ResidentId, ServiceId)>>;

    /// Adds (`on`) or removes a service a resident wants told of their notices. Idempotent.
    async fn set_notice_channel(
        &self,
        resident: ResidentId,
        service: &ServiceId,
        on: bool,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
}
