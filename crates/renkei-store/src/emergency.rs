//! Storage for declared emergencies: each step of a declaration, written with its operator
//! entry of the log in one transaction, and the public listing.
//!
//! A supertrait of [`crate::Store`], like [`crate::IdentityStore`]. It decides nothing: the
//! steps' rules (two different operators, 72 hours, no step after the end) are
//! `renkei_domain::Declaration`'s; storage only makes sure a step is written over the
//! revision it was taken from.

use std::collections::BTreeSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use renkei_domain::{
    AccessRecord, AreaListRequest, CategoryId, Declaration, DeclarationId, DenialReason,
    OperatorAction, OperatorActor, OperatorLogEntry, ProviderId, ProviderSubject, ResidentId,
};

use crate::StoreResult;

/// The most declarations one listing returns.
pub const MAX_DECLARATIONS_LISTED: u32 = 500;

#[async_trait]
pub trait EmergencyStore {
    /// Writes a step of a declaration and appends `action` by `actor` to the log, in one
    /// durable transaction. Revision 0 creates the declaration; a later revision `n`
    /// replaces the stored revision `n - 1` and nothing else: if another step was written
    /// meanwhile, nothing changes and the answer is [`crate::StoreError::Stale`].
    async fn record_declaration_step(
        &self,
        declaration: &Declaration,
        actor: &OperatorActor,
        action: &OperatorAction,
        at: DateTime<Utc>,
    ) -> StoreResult<OperatorLogEntry>;

    async fn declaration(&self, id: DeclarationId) -> StoreResult<Option<Declaration>>;

    /// Decides an area list (`renkei_domain::decide_area_list`, on what this transaction
    /// reads: the service, its current purpose, the declaration, the token) and records what
    /// it comes to, durable on return:
    ///
    /// - denied: one access record with no resident, basis `none`, and the reason;
    /// - granted: one access record per resident the entries name (basis
    ///   `emergency:<declaration>`, the providers and categories of that resident's entries),
    ///   resolving each entry's subject in its provider's sector only. An entry whose subject
    ///   names no one is not recorded and must not be relayed. No entries: nothing is written.
    async fn record_area_list(
        &self,
        release: &AreaRelease,
        now: DateTime<Utc>,
    ) -> StoreResult<AreaListOutcome>;

    /// Declarations, the latest declared first, at most `limit` (capped at
    /// [`MAX_DECLARATIONS_LISTED`]).
    async fn declarations(&self, limit: u32) -> StoreResult<Vec<Declaration>>;
}

/// An area list as the hub hands it to storage: the request, and the entries the providers
/// selected (none when the request is checked before any provider is asked).
#[derive(Debug, Clone)]
pub struct AreaRelease {
    pub request: AreaListRequest,
    /// The `jti` of the service's bearer token, checked against revoked tokens.
    pub token_id: Option<String>,
    pub entries: Vec<ReleasedEntry>,
}

/// One entry a provider selected: whose (its subject for the resident) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleasedEntry {
    pub provider: ProviderId,
    pub subject: ProviderSubject,
    pub categories: BTreeSet<CategoryId>,
}

/// What an area list came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AreaListOutcome {
    /// Refused; `record` is its access record.
    Denied {
        reason: DenialReason,
        record: Box<AccessRecord>,
    },
    /// Granted. `records` has one access record per resident released; `entries` follows
    /// the release's entries, each the resident it names and the position of their record,
    /// or `None` for an entry that names no one (not to be relayed).
    Released {
        records: Vec<AccessRecord>,
        entries: Vec<Option<(ResidentId, u64)>>,
    },
}
