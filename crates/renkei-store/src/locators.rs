//! Storage for providers' own locator syncs, and the single use of the client assertions
//! providers authenticate with: a supertrait of [`crate::Store`], like
//! [`crate::IdentityStore`], so every backend implements it and the hub reaches it through the
//! same `Arc<dyn Store>`.
//!
//! A provider names residents by its pairwise subjects (sector `provider:<id>`, kept in the
//! `subjects` table beside services' ones), so storage resolves a subject only within the
//! provider's own sector: another provider's subjects, or a service's, name no one here.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use renkei_domain::{
    CategoryId, LocatorBatch, LocatorSyncLogEntry, ProviderId, ProviderLocator, ProviderSubject,
    ResidentId,
};

use crate::StoreResult;

/// Where a page of a provider's locators starts: after this subject and category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocatorCursor {
    pub subject: ProviderSubject,
    pub category: CategoryId,
}

#[async_trait]
pub trait LocatorStore {
    /// Records that `subject` names `resident` for `provider` (idempotent): the hub does so
    /// whenever it hands a resident's subject out, so that the provider's syncs resolve it.
    async fn link_provider_subject(
        &self,
        provider: &ProviderId,
        subject: &ProviderSubject,
        resident: ResidentId,
    ) -> StoreResult<()>;

    /// The resident `subject` names for `provider`, if the hub issued it to that provider:
    /// another provider's subject, or a service's, names no one here.
    async fn provider_subject_resident(
        &self,
        provider: &ProviderId,
        subject: &ProviderSubject,
    ) -> StoreResult<Option<ResidentId>>;

    /// Applies one provider's batch and appends its log entry (counts only), in one
    /// transaction, durable on return; answers the entry.
    ///
    /// A batch id the provider used before changes nothing: with the same content it answers
    /// that batch's entry again (same position, same counts), so a retry is harmless; with
    /// other content it is refused ([`renkei_domain::LocatorBatchError::IdReused`]). The batch is checked against
    /// the provider's registered categories as the transaction reads them
    /// ([`LocatorBatch::check_categories`]); a refused batch changes nothing. An upsert never
    /// replaces another provider's locator, and a removal deletes only the provider's own.
    async fn sync_locators(
        &self,
        batch: &LocatorBatch,
        at: DateTime<Utc>,
    ) -> StoreResult<LocatorSyncLogEntry>;

    /// Spends the client assertion `jti` of `issuer` (valid until `expires_at`): `true` the
    /// first time, `false` for one already spent, on any replica. Spent ids that expired
    /// before `now` are forgotten (an expired assertion is refused before it gets here).
    async fn spend_client_assertion(
        &self,
        issuer: &str,
        jti: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// The provider's own locators as it names them (its subjects), in subject then category
    /// order, at most `limit` after `after`.
    async fn provider_locators(
        &self,
        provider: &ProviderId,
        after: Option<&LocatorCursor>,
        limit: u32,
    ) -> StoreResult<Vec<ProviderLocator>>;
}
