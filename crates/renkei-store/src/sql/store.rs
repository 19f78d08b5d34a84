//! [`crate::Store`] for this backend: each method calls the function of the same name in
//! the file of its concern, so this is the index of where each one lives.

use chrono::{DateTime, Utc};
use renkei_domain::{
    AccessRecord, Actor, Consent, ConsentEvent, ConsentId, DataCategory, FulfilmentLogEntry,
    Locator, LogEntry, OperatorAction, OperatorActor, OperatorLogEntry, Provider, ProviderId,
    ProviderStatus, Purpose, PurposeId, PurposeRef, ResidentId, Service, ServiceId, ServiceStatus,
    ServiceSubject,
};

use super::{Backend, catalogue, consents, decisions, log, log_tree, outbox, residents, secrets};
use crate::{
    AccessQuery, AuditQuery, DecisionInput, DeliveryOutcome, Disclosure, DueMessage, Fulfilment,
    OutboxMessage, PurposeDraft, SecretReplacement, StagedDecisions, Store, StoreResult,
    StoredCheckpoint, StoredEntry, StoredLeaf, StoredSecret,
};

#[async_trait::async_trait]
impl Store for Backend {
    async fn put_category(&self, c: &DataCategory) -> StoreResult<()> {
        catalogue::put_category(self, c).await
    }

    async fn categories(&self) -> StoreResult<Vec<DataCategory>> {
        catalogue::categories(self).await
    }

    async fn put_service(&self, s: &Service, client_secret_hash: &str) -> StoreResult<()> {
        catalogue::put_service(self, s, client_secret_hash).await
    }

    async fn service(&self, id: &ServiceId) -> StoreResult<Option<Service>> {
        catalogue::service(self, id).await
    }

    async fn services(&self) -> StoreResult<Vec<Service>> {
        catalogue::services(self).await
    }

    async fn client_secret_hash(&self, id: &ServiceId) -> StoreResult<Option<String>> {
        catalogue::client_secret_hash(self, id).await
    }

    async fn set_service_status(&self, id: &ServiceId, status: ServiceStatus) -> StoreResult<()> {
        catalogue::set_service_status(self, id, status).await
    }

    async fn publish_purpose(&self, d: &PurposeDraft, at: DateTime<Utc>) -> StoreResult<Purpose> {
        catalogue::publish_purpose(self, d, at).await
    }

    async fn current_purpose(
        &self,
        service: &ServiceId,
        purpose: &PurposeId,
    ) -> StoreResult<Option<Purpose>> {
        catalogue::current_purpose(self, service, purpose).await
    }

    async fn purpose_version(&self, r: &PurposeRef) -> StoreResult<Option<Purpose>> {
        catalogue::purpose_version(self, r).await
    }

    async fn purposes(&self, service: &ServiceId) -> StoreResult<Vec<Purpose>> {
        catalogue::purposes(self, service).await
    }

    async fn put_provider(&self, p: &Provider) -> StoreResult<()> {
        catalogue::put_provider(self, p).await
    }

    async fn providers(&self) -> StoreResult<Vec<Provider>> {
        catalogue::providers(self).await
    }

    async fn provider(&self, id: &ProviderId) -> StoreResult<Option<Provider>> {
        catalogue::provider(self, id).await
    }

    async fn set_provider_status(
        &self,
        id: &ProviderId,
        status: ProviderStatus,
    ) -> StoreResult<()> {
        catalogue::set_provider_status(self, id, status).await
    }

    async fn add_resident(&self, id: ResidentId, at: DateTime<Utc>) -> StoreResult<()> {
        residents::add_resident(self, id, at).await
    }

    async fn resident_exists(&self, id: ResidentId) -> StoreResult<bool> {
        residents::resident_exists(self, id).await
    }

    async fn put_locators(&self, locators: &[Locator]) -> StoreResult<()> {
        residents::put_locators(self, locators).await
    }

    async fn locators_of(&self, resident: ResidentId) -> StoreResult<Vec<Locator>> {
        residents::locators_of(self, resident).await
    }

    async fn link_subject(
        &self,
        sector: &str,
        subject: &ServiceSubject,
        resident: ResidentId,
    ) -> StoreResult<()> {
        residents::link_subject(self, sector, subject, resident).await
    }

    async fn grant_consent(&self, c: &Consent, notify: Option<&OutboxMessage>) -> StoreResult<()> {
        consents::grant_consent(self, c, notify).await
    }

    async fn revoke_consent(
        &self,
        resident: ResidentId,
        id: ConsentId,
        actor: &Actor,
        at: DateTime<Utc>,
        notify: Option<&OutboxMessage>,
    ) -> StoreResult<Consent> {
        consents::revoke_consent(self, resident, id, actor, at, notify).await
    }

    async fn consent(&self, id: ConsentId) -> StoreResult<Option<Consent>> {
        consents::consent(self, id).await
    }

    async fn consents_of(&self, resident: ResidentId) -> StoreResult<Vec<Consent>> {
        consents::consents_of(self, resident).await
    }

    async fn consents_after(
        &self,
        after: Option<ConsentId>,
        limit: u32,
    ) -> StoreResult<Vec<Consent>> {
        consents::consents_after(self, after, limit).await
    }

    async fn consent_history(&self, id: ConsentId) -> StoreResult<Vec<ConsentEvent>> {
        consents::consent_history(self, id).await
    }

    async fn record_expiries(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<u32> {
        consents::record_expiries(self, now, limit).await
    }

    async fn decide_and_stage(
        &self,
        batch: &[DecisionInput],
        now: DateTime<Utc>,
    ) -> StoreResult<StagedDecisions> {
        decisions::decide_and_stage(self, batch, now).await
    }

    async fn access_records(&self, q: &AccessQuery) -> StoreResult<Vec<AccessRecord>> {
        log::access_records(self, q).await
    }

    async fn audit_search(&self, q: &AuditQuery) -> StoreResult<Vec<LogEntry>> {
        log::audit_search(self, q).await
    }

    async fn log_size(&self) -> StoreResult<u64> {
        log::log_size(self).await
    }

    async fn record_operator_action(
        &self,
        actor: &OperatorActor,
        action: &OperatorAction,
        at: DateTime<Utc>,
    ) -> StoreResult<OperatorLogEntry> {
        log::record_operator_action(self, actor, action, at).await
    }

    async fn record_fulfilment(
        &self,
        fulfilment: &Fulfilment,
        at: DateTime<Utc>,
    ) -> StoreResult<FulfilmentLogEntry> {
        log::record_fulfilment(self, fulfilment, at).await
    }

    async fn record_disclosure(
        &self,
        disclosure: &Disclosure,
        at: DateTime<Utc>,
    ) -> StoreResult<AccessRecord> {
        log::record_disclosure(self, disclosure, at).await
    }

    async fn operator_log(
        &self,
        before: Option<u64>,
        limit: u32,
    ) -> StoreResult<Vec<OperatorLogEntry>> {
        log::operator_log(self, before, limit).await
    }

    async fn resident_log(
        &self,
        resident: ResidentId,
        q: &AccessQuery,
    ) -> StoreResult<Vec<(LogEntry, StoredLeaf)>> {
        log::resident_log(self, resident, q).await
    }

    async fn log_leaf_hashes(&self, from: u64, limit: u32) -> StoreResult<Vec<renkei_log::Hash>> {
        log_tree::log_leaf_hashes(self, from, limit).await
    }

    async fn read_log_hashes(&self, indexes: &[u64]) -> StoreResult<Vec<renkei_log::Hash>> {
        log_tree::read_log_hashes(self, indexes).await
    }

    async fn integrate(
        &self,
        hashes: &[(u64, renkei_log::Hash)],
        checkpoint: &StoredCheckpoint,
    ) -> StoreResult<()> {
        log_tree::integrate(self, hashes, checkpoint).await
    }

    async fn latest_checkpoint(&self) -> StoreResult<Option<StoredCheckpoint>> {
        log_tree::latest_checkpoint(self).await
    }

    async fn checkpoint(&self, size: u64) -> StoreResult<Option<StoredCheckpoint>> {
        log_tree::checkpoint(self, size).await
    }

    async fn checkpoints(&self) -> StoreResult<Vec<StoredCheckpoint>> {
        log_tree::checkpoints(self).await
    }

    async fn log_range(&self, from: u64, limit: u32) -> StoreResult<Vec<StoredEntry>> {
        log_tree::log_range(self, from, limit).await
    }

    async fn take_due_messages(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<DueMessage>> {
        outbox::take_due_messages(self, now, lease_until, limit).await
    }

    async fn record_delivery(
        &self,
        id: uuid::Uuid,
        outcome: DeliveryOutcome,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        outbox::record_delivery(self, id, outcome, error, at).await
    }

    async fn webhook_backlog(&self) -> StoreResult<u64> {
        outbox::webhook_backlog(self).await
    }

    async fn ensure_secret(
        &self,
        name: &str,
        candidate: &[u8],
        at: DateTime<Utc>,
    ) -> StoreResult<Vec<u8>> {
        secrets::ensure_secret(self, name, candidate, at).await
    }

    async fn stored_secrets(&self) -> StoreResult<Vec<StoredSecret>> {
        secrets::stored_secrets(self).await
    }

    async fn replace_secrets(&self, replacements: &[SecretReplacement]) -> StoreResult<bool> {
        secrets::replace_secrets(self, replacements).await
    }
}
