//! Storage for declared emergencies: each step of a declaration, written with its operator
//! entry of the log in one transaction, and the public listing.
//!
//! A supertrait of [`crate::Store`], like [`crate::IdentityStore`]. It decides nothing: the
//! steps' rules (two different operators, 72 hours, no step after the end) are
//! `renkei_domain::Declaration`'s; storage only makes sure a step is written over the
//! revision it was taken from.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use renkei_domain::{Declaration, DeclarationId, OperatorAction, OperatorActor, OperatorLogEntry};

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

    /// Declarations, the latest declared first, at most `limit` (capped at
    /// [`MAX_DECLARATIONS_LISTED`]).
    async fn declarations(&self, limit: u32) -> StoreResult<Vec<Declaration>>;
}
