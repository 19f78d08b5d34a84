//! Durable storage for the hub: the catalogue, consents and their history, the access log,
//! pairwise subjects, the webhook outbox, the hub's secrets, and identity ([`IdentityStore`]).
//!
//! [`Store`] is the one interface the rest of the hub sees. It has one implementation per
//! backend — [`SqliteStore`] (embedded, the default) and [`PostgresStore`] (for several hub
//! replicas) — compiled from the same SQL in `sql/`, and one conformance suite
//! ([`conformance`]) that both must pass. This crate never decides anything itself: every
//! rule of the consent check is `renkei_domain::decide`, called inside the transaction that
//! records it; the store only reads what it needs and writes what it returns.
//! It must not know about HTTP, tokens or cryptography.

mod batch;
mod cause;
mod codec;
pub mod conformance;
pub mod counter;
mod decision_cache;
pub mod emergency;
mod hash_cache;
pub mod identity;
pub mod location;
pub mod locators;
pub mod notices;
mod postgres;
pub mod rights;
mod rows;
pub mod security_events;
mod sqlite;
mod wal_sync;

use std::collections::BTreeSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use renkei_domain::{
    AccessRecord, Actor, CategoryId, Consent, ConsentEvent, ConsentId, DataCategory, DataRequest,
    Decision, LegalBasis, LocalizedText, Locator, LogEntry, Provider, ProviderId, ProviderStatus,
    Purpose, PurposeId, PurposeRef, ResidentId, Service, ServiceId, ServiceStatus, ServiceSubject,
};
use serde::{Deserialize, Serialize};

pub use counter::{CounterStore, MAX_NAMED_ENROLMENTS};
pub use emergency::{AreaListOutcome, AreaRelease, EmergencyStore, ReleasedEntry};
pub use identity::{
    AuthorizationCodeRecord, Ceremony, CodeMismatch, CodePresentation, CodeRedemption, Enrolled,
    IdentityStore, KeyCustody, StoredPasskey, StoredSigningKey, TokenKeyRef,
};
pub use location::LocationStore;
pub use locators::{LocatorCursor, LocatorStore};
pub use notices::NoticeStore;
pub use postgres::{DEFAULT_STORAGE_TIMEOUT, PostgresStore};
pub use rights::{AnswerOutcome, RecipientAnswerDraft, RightsStore};
pub use security_events::{
    DueSecurityEvent, SecurityEventAck, SecurityEventStore, StoredSecurityEvent,
};
pub use sqlite::SqliteStore;

/// Why a storage call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("consent `{0}` to this purpose version is already active")]
    ConsentAlreadyActive(ConsentId),
    #[error("consent `{0}` is not active")]
    ConsentNotActive(ConsentId),
    /// A step written over a revision that is no longer the stored one: someone else took
    /// a step meanwhile. Nothing was changed.
    #[error("{0} changed meanwhile")]
    Stale(String),
    #[error("{0}")]
    Invalid(String),
    /// A provider's batch of locator changes was refused; nothing of it was applied.
    #[error(transparent)]
    LocatorsRefused(#[from] renkei_domain::LocatorBatchError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database error")]
    Database(#[source] sqlx::Error),
    /// Storage cannot be reached or written for now (PostgreSQL down or refusing connections,
    /// no connection free within the timeout, a full disk, a read-only file system): nothing
    /// was changed, and the same call may succeed once storage is back.
    #[error("storage is unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Shared by every commit that waited for the same fsync.
    #[error("syncing the database to disk failed")]
    Sync(#[source] std::sync::Arc<std::io::Error>),
    /// A database file others may read or write: it holds personal data and the hub's
    /// (wrapped) secrets, so it must be the owner's alone.
    #[error(
        "`{path}` is open to other users (mode {mode:03o}): the hub's database files must be \
         the owner's alone; run `chmod 600 {path}` and start again"
    )]
    OpenToOthers { path: String, mode: u32 },
    /// Storage is reachable but cannot take writes (a full or read-only file system, a
    /// write-back that failed): says which, never with personal data.
    #[error("storage cannot write: {0}")]
    CannotWrite(String),
    #[error("cannot use `{path}`")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

pub type StoreResult<T> = Result<T, StoreError>;

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if is_unavailable(&e) {
            Self::Unavailable(e)
        } else {
            Self::Database(e)
        }
    }
}

impl StoreError {
    /// Whether storage was unavailable (or can no longer make a commit durable), rather than
    /// the call itself wrong: the caller may try again later, elsewhere, or after a restart.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Unavailable(_) | Self::Sync(_) | Self::CannotWrite(_)
        )
    }
}

/// Whether a database error says storage is out of reach or cannot write now, as opposed to
/// a statement that failed on its own account.
fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let Some(code) = db.code() else { return false };
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // SQLite's primary result code is the extended code's low byte.
                return code.parse::<u32>().is_ok_and(|code| {
                    matches!(
                        code & 0xff,
                        SQLITE_BUSY
                            | SQLITE_READONLY
                            | SQLITE_IOERR
                            | SQLITE_FULL
                            | SQLITE_CANTOPEN
                    )
                });
            }
            // PostgreSQL's SQLSTATEs: connection exceptions (08), insufficient resources (53:
            // disk full, out of memory, too many connections), the server shutting down or
            // not accepting connections yet (57P01-57P03), a database not accepting
            // connections (55000), and a read-only server (25006, e.g. a standby).
            code.starts_with("08")
                || code.starts_with("53")
                || matches!(
                    code.as_ref(),
                    "57P01" | "57P02" | "57P03" | "55000" | "25006"
                )
        }
        _ => false,
    }
}

const SQLITE_BUSY: u32 = 5;
const SQLITE_READONLY: u32 = 8;
const SQLITE_IOERR: u32 = 10;
const SQLITE_FULL: u32 = 13;
const SQLITE_CANTOPEN: u32 = 14;

/// A purpose as a service declares it; storage assigns the version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurposeDraft {
    pub service: ServiceId,
    pub id: PurposeId,
    pub title: LocalizedText,
    pub description: LocalizedText,
    pub categories: BTreeSet<CategoryId>,
    pub retention_days: u32,
    pub legal_basis: LegalBasis,
    /// Applies only while a declared emergency is in force (see [`Purpose::emergency_only`]).
    #[serde(default)]
    pub emergency_only: bool,
    /// The location data it needs (see [`Purpose::location`]).
    #[serde(default)]
    pub location: Option<renkei_domain::LocationUse>,
}

/// A message for a service's webhook, written in the same transaction as the change it reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxMessage {
    pub id: uuid::Uuid,
    pub service: ServiceId,
    /// Opaque to storage; the hub signs it when it sends it.
    pub event: serde_json::Value,
}

/// A webhook message waiting for (re)delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueMessage {
    pub message: OutboxMessage,
    pub attempts: u32,
}

/// What became of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    RetryAt(DateTime<Utc>),
    GiveUp,
}

/// One data request waiting for its decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionInput {
    pub request: DataRequest,
    /// How the service names the resident.
    pub subject: ServiceSubject,
    /// The id (`jti`) of the bearer token the service asked with, when it has one: a token
    /// the service revoked denies the request, read in the decision's own transaction.
    pub token_id: Option<String>,
}

/// A decision as recorded, with where to fetch the data when it was granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedDecision {
    pub decision: Decision,
    pub record: AccessRecord,
    /// The record's Merkle leaf hash, as the log stores it (what an inclusion promise signs).
    pub leaf: renkei_log::Hash,
    /// One per requested category the resident has data for (empty when denied).
    pub locators: Vec<Locator>,
    /// The requesting service as the decision saw it (`None` if it is not registered).
    pub service: Option<Service>,
    /// The providers the locators name, as the decision saw them.
    pub providers: Vec<Provider>,
}

/// Decisions made and their records written in a transaction that is still to commit.
///
/// The decisions may be acted on before the records are durable (the hub asks the providers
/// meanwhile), but nothing may reach a service until [`StagedDecisions::commit`] resolved
/// `Ok` and then its [`Durability`] did. Dropping it unawaited rolls the transaction back: no
/// record, no gap in the log.
#[must_use = "the records are written only when `commit` is awaited"]
pub struct StagedDecisions {
    pub decisions: Vec<RecordedDecision>,
    /// Commits the transaction, which frees the writer for the next batch; the records are
    /// durable once the [`Durability`] it returns resolves `Ok`.
    pub commit: BoxedFuture<StoreResult<Durability>>,
}

type BoxedFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// The wait until a committed transaction is on disk. PostgreSQL's commit is durable when it
/// returns; SQLite's batches commit first and share one fsync of the write-ahead log
/// afterwards, so the writer goes on with the next batch while the disk works.
#[must_use = "a commit is acknowledged only once it is durable"]
pub struct Durability(BoxedFuture<StoreResult<()>>);

impl Durability {
    /// For a commit that was durable when it returned.
    pub fn already() -> Self {
        Self(Box::pin(std::future::ready(Ok(()))))
    }

    pub(crate) fn after(
        wait: impl std::future::Future<Output = StoreResult<()>> + Send + 'static,
    ) -> Self {
        Self(Box::pin(wait))
    }

    /// Returns once the commit is durable; an error if it could not be made so.
    pub async fn wait(self) -> StoreResult<()> {
        self.0.await
    }
}

/// A filter over the access log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessQuery {
    pub resident: Option<ResidentId>,
    pub service: Option<ServiceId>,
    /// Only entries with `seq` greater than this (the forward paging cursor).
    pub after_seq: Option<u64>,
    /// Only entries with `seq` less than this (the backward paging cursor).
    pub before_seq: Option<u64>,
    /// Which end of the log the page starts from.
    pub order: LogOrder,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub limit: u32,
}

/// The order of a page of log entries, and so which end of the log it starts from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogOrder {
    /// Oldest first: a page starts at the oldest entry (after `after_seq`) and goes forward.
    #[default]
    OldestFirst,
    /// Newest first: a page starts at the newest entry (before `before_seq`) and goes back.
    NewestFirst,
}

impl LogOrder {
    /// The SQL direction of `ORDER BY seq`.
    pub(crate) fn sql(self) -> &'static str {
        match self {
            Self::OldestFirst => "ASC",
            Self::NewestFirst => "DESC",
        }
    }
}

/// Granted or denied, as the operators' audit search filters access entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditOutcome {
    Granted,
    Denied,
}

/// The operators' audit search over the log: access entries and consent changes, newest
/// first. An outcome or basis filter keeps access entries only (consent changes have
/// neither).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub resident: Option<ResidentId>,
    pub service: Option<ServiceId>,
    pub purpose: Option<PurposeId>,
    pub outcome: Option<AuditOutcome>,
    /// The access basis's kind (`consent`, `none`), as `AccessBasis` serialises it.
    pub basis: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Only entries with `seq` below this (paging cursor, newest first).
    pub before_seq: Option<u64>,
    pub limit: u32,
}

/// A checkpoint the hub signed, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub size: u64,
    pub root: renkei_log::Hash,
    /// The C2SP signed note.
    pub note: String,
    pub signed_at: DateTime<Utc>,
}

/// What a granted request came to, to append as a fulfilment entry (see
/// [`renkei_domain::FulfilmentLogEntry`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fulfilment {
    pub request: renkei_domain::RequestId,
    pub service: ServiceId,
    pub resident: ResidentId,
    pub providers:
        std::collections::BTreeMap<renkei_domain::ProviderId, renkei_domain::ProviderDelivery>,
}

/// A resident's disclosure (開示), to append as an access record whose recipient is the
/// data subject itself ([`ServiceId::data_subject`]) and whose basis is
/// [`renkei_domain::AccessBasis::DataSubjectAccess`]: the providers asked and the categories
/// each was asked for, united.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disclosure {
    /// The disclosure's id: its grants and sealed answers are bound to it.
    pub request: renkei_domain::RequestId,
    pub resident: ResidentId,
    /// The proxy who asked for the resident, if one did.
    pub proxy: Option<ResidentId>,
    pub categories: std::collections::BTreeSet<renkei_domain::CategoryId>,
    pub providers: std::collections::BTreeSet<renkei_domain::ProviderId>,
}

/// The Merkle leaf of one log entry, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLeaf {
    pub seq: u64,
    /// `access`, `consent`, `operator` or `fulfilment`.
    pub kind: String,
    pub salt: Vec<u8>,
    pub leaf_hash: Vec<u8>,
}

/// One log position as storage holds it, read back for verification: either half may be
/// missing or unreadable when someone tampered with the tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    pub seq: u64,
    pub leaf: Option<StoredLeaf>,
    /// The entry rebuilt from its table row; `Err` says why the row is unreadable.
    pub entry: Option<Result<LogEntry, String>>,
}

/// Whether storage can serve the hub now: what a readiness probe asks.
#[async_trait]
pub trait Readiness {
    /// `Ok` when storage is reachable within the connection timeout and can take writes;
    /// otherwise why not ([`StoreError::is_unavailable`]). Cheap enough to be asked every
    /// second.
    async fn readiness(&self) -> StoreResult<()>;
}

/// Everything the hub keeps. See the crate documentation.
#[async_trait]
pub trait Store:
    IdentityStore
    + CounterStore
    + EmergencyStore
    + NoticeStore
    + SecurityEventStore
    + LocatorStore
    + LocationStore
    + RightsStore
    + Readiness
    + Send
    + Sync
    + 'static
{
    // --- catalogue ---
    async fn put_category(&self, category: &DataCategory) -> StoreResult<()>;
    async fn categories(&self) -> StoreResult<Vec<DataCategory>>;
    /// Registers or updates a service (its status included).
    async fn put_service(&self, service: &Service, client_secret_hash: &str) -> StoreResult<()>;
    async fn service(&self, id: &ServiceId) -> StoreResult<Option<Service>>;
    async fn services(&self) -> StoreResult<Vec<Service>>;
    async fn client_secret_hash(&self, id: &ServiceId) -> StoreResult<Option<String>>;
    async fn set_service_status(&self, id: &ServiceId, status: ServiceStatus) -> StoreResult<()>;
    /// Publishes a purpose: version 1, a new version if anything changed, or the current one.
    async fn publish_purpose(
        &self,
        draft: &PurposeDraft,
        at: DateTime<Utc>,
    ) -> StoreResult<Purpose>;
    async fn current_purpose(
        &self,
        service: &ServiceId,
        purpose: &PurposeId,
    ) -> StoreResult<Option<Purpose>>;
    async fn purpose_version(&self, reference: &PurposeRef) -> StoreResult<Option<Purpose>>;
    /// The current version of each purpose of a service.
    async fn purposes(&self, service: &ServiceId) -> StoreResult<Vec<Purpose>>;
    /// Registers or updates a provider (its status included).
    async fn put_provider(&self, provider: &Provider) -> StoreResult<()>;
    async fn providers(&self) -> StoreResult<Vec<Provider>>;
    async fn provider(&self, id: &ProviderId) -> StoreResult<Option<Provider>>;
    /// Moves a provider's review status; `NotFound` for an unknown provider.
    async fn set_provider_status(&self, id: &ProviderId, status: ProviderStatus)
    -> StoreResult<()>;

    // --- residents ---
    async fn add_resident(&self, id: ResidentId, at: DateTime<Utc>) -> StoreResult<()>;
    async fn resident_exists(&self, id: ResidentId) -> StoreResult<bool>;
    async fn put_locators(&self, locators: &[Locator]) -> StoreResult<()>;
    async fn locators_of(&self, resident: ResidentId) -> StoreResult<Vec<Locator>>;
    /// Records that `subject` names `resident` for services of `sector` (idempotent).
    async fn link_subject(
        &self,
        sector: &str,
        subject: &ServiceSubject,
        resident: ResidentId,
    ) -> StoreResult<()>;

    // --- consents ---
    /// Grants a consent. An active consent to an older version of the same purpose is
    /// superseded in the same transaction; one to the same version is a conflict.
    async fn grant_consent(
        &self,
        consent: &Consent,
        notify: Option<&OutboxMessage>,
    ) -> StoreResult<()>;
    /// Revokes an active consent of `resident`. Durable when this returns.
    async fn revoke_consent(
        &self,
        resident: ResidentId,
        id: ConsentId,
        actor: &Actor,
        at: DateTime<Utc>,
        notify: Option<&OutboxMessage>,
    ) -> StoreResult<Consent>;
    async fn consent(&self, id: ConsentId) -> StoreResult<Option<Consent>>;
    /// Every consent of a resident, newest first.
    async fn consents_of(&self, resident: ResidentId) -> StoreResult<Vec<Consent>>;
    /// Every consent of every resident in id order, up to `limit` after `after` (for checking
    /// the stored state against the log).
    async fn consents_after(
        &self,
        after: Option<ConsentId>,
        limit: u32,
    ) -> StoreResult<Vec<Consent>>;
    async fn consent_history(&self, id: ConsentId) -> StoreResult<Vec<ConsentEvent>>;
    /// Writes an `expired` event (a log entry) for up to `limit` consents that reached their
    /// expiry by `now` and have none yet; returns how many.
    async fn record_expiries(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<u32>;

    // --- the decision and the access log ---
    /// Decides each request with `renkei_domain::decide` against the stored consents and
    /// appends its access record, all in one transaction, and hands back the decisions with
    /// the commit still to await (so the commit's fsync can overlap other work).
    async fn decide_and_stage(
        &self,
        batch: &[DecisionInput],
        now: DateTime<Utc>,
    ) -> StoreResult<StagedDecisions>;
    /// [`Store::decide_and_stage`] and its commit: durable on return.
    async fn decide_and_record(
        &self,
        batch: &[DecisionInput],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<RecordedDecision>> {
        let staged = self.decide_and_stage(batch, now).await?;
        staged.commit.await?.wait().await?;
        Ok(staged.decisions)
    }
    async fn access_records(&self, query: &AccessQuery) -> StoreResult<Vec<AccessRecord>>;
    /// The operators' audit search: matching log entries, newest first, at most `limit`.
    async fn audit_search(&self, query: &AuditQuery) -> StoreResult<Vec<LogEntry>>;
    /// Number of entries in the access log.
    async fn log_size(&self) -> StoreResult<u64>;

    // --- transparency log ---
    /// Leaf hashes of entries `from..`, at most `limit`, in log order.
    async fn log_leaf_hashes(&self, from: u64, limit: u32) -> StoreResult<Vec<renkei_log::Hash>>;
    /// Stored Merkle node hashes (tlog numbering), in the order asked; a missing one is `NotFound`.
    async fn read_log_hashes(&self, indexes: &[u64]) -> StoreResult<Vec<renkei_log::Hash>>;
    /// Stores newly computed node hashes and the checkpoint that covers them, together.
    async fn integrate(
        &self,
        hashes: &[(u64, renkei_log::Hash)],
        checkpoint: &StoredCheckpoint,
    ) -> StoreResult<()>;
    async fn latest_checkpoint(&self) -> StoreResult<Option<StoredCheckpoint>>;
    async fn checkpoint(&self, size: u64) -> StoreResult<Option<StoredCheckpoint>>;
    /// Every checkpoint ever signed, oldest first.
    async fn checkpoints(&self) -> StoreResult<Vec<StoredCheckpoint>>;
    /// Log positions `from..from + limit` with their leaves and rows, for verification.
    async fn log_range(&self, from: u64, limit: u32) -> StoreResult<Vec<StoredEntry>>;
    /// Appends an operator's act to the log (its own transaction, durable on return).
    async fn record_operator_action(
        &self,
        actor: &renkei_domain::OperatorActor,
        action: &renkei_domain::OperatorAction,
        at: DateTime<Utc>,
    ) -> StoreResult<renkei_domain::OperatorLogEntry>;
    /// Appends what a granted request came to, provider by provider (its own transaction,
    /// durable on return).
    async fn record_fulfilment(
        &self,
        fulfilment: &Fulfilment,
        at: DateTime<Utc>,
    ) -> StoreResult<renkei_domain::FulfilmentLogEntry>;
    /// Appends a disclosure's access record and its leaf (its own transaction, durable on
    /// return): in the log before any provider is asked.
    async fn record_disclosure(
        &self,
        disclosure: &Disclosure,
        at: DateTime<Utc>,
    ) -> StoreResult<AccessRecord>;
    /// Operators' acts, newest first, before log position `before` if given.
    async fn operator_log(
        &self,
        before: Option<u64>,
        limit: u32,
    ) -> StoreResult<Vec<renkei_domain::OperatorLogEntry>>;
    /// A resident's log entries (access records naming them, their consent changes, what
    /// their requests came to, and operators' searches naming them, those only when no
    /// service is asked for) with their leaves, filtered like [`Store::access_records`], in the query's order.
    async fn resident_log(
        &self,
        resident: ResidentId,
        query: &AccessQuery,
    ) -> StoreResult<Vec<(LogEntry, StoredLeaf)>>;

    // --- webhook outbox ---
    /// Takes up to `limit` due messages and leases them until `lease_until`, so another
    /// replica does not send them at the same time.
    async fn take_due_messages(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<DueMessage>>;
    async fn record_delivery(
        &self,
        id: uuid::Uuid,
        outcome: DeliveryOutcome,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// How many messages are neither delivered nor given up (what `/metrics` reports).
    async fn webhook_backlog(&self) -> StoreResult<u64>;

    // --- secrets ---
    /// Returns the secret stored under `name`, storing `candidate` first if there is none.
    /// Every replica thus agrees on one value.
    async fn ensure_secret(
        &self,
        name: &str,
        candidate: &[u8],
        at: DateTime<Utc>,
    ) -> StoreResult<Vec<u8>>;
    /// Every secret stored: the `hub_secrets` rows and the private halves of the signing keys
    /// kept in storage (retired keys too; not those in a token), as stored.
    async fn stored_secrets(&self) -> StoreResult<Vec<StoredSecret>>;
    /// Rewrites stored secrets in one transaction: each replacement takes effect only if its
    /// slot still holds `expected`. If any does not, nothing changes and `false` is returned.
    async fn replace_secrets(&self, replacements: &[SecretReplacement]) -> StoreResult<bool>;
}

/// Where a secret is kept.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SecretSlot {
    /// A row of `hub_secrets`, by name.
    Hub(String),
    /// The private half of a signing key, by `kid`.
    SigningKey(String),
}

impl std::fmt::Display for SecretSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Hub(name) => write!(f, "hub secret `{name}`"),
            Self::SigningKey(kid) => write!(f, "signing key `{kid}`"),
        }
    }
}

/// A secret as stored. `value` is secret, so `Debug` leaves it out.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSecret {
    pub slot: SecretSlot,
    pub value: Vec<u8>,
}

impl std::fmt::Debug for StoredSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSecret")
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}

/// One change of [`Store::replace_secrets`]. Secret, so `Debug` leaves the values out.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretReplacement {
    pub slot: SecretSlot,
    /// What the slot must still hold.
    pub expected: Vec<u8>,
    pub value: Vec<u8>,
}

impl std::fmt::Debug for SecretReplacement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretReplacement")
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}
