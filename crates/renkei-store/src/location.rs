//! Storage for the location-data deletions services owe when they end
//! ([`renkei_domain::LocationDeletion`]): recorded when a service is suspended, confirmed by
//! an operator with an entry of the log in the same transaction, and listed for the console.
//! A supertrait of [`crate::Store`], like [`crate::EmergencyStore`]; it decides nothing
//! (what is owed and when it is overdue are `renkei_domain::location`'s).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use renkei_domain::{LocationDeletion, OperatorAction, OperatorActor, OperatorLogEntry};

use crate::StoreResult;

#[async_trait]
pub trait LocationStore {
    /// Records deletions owed; one already recorded for the same service, purpose and
    /// version is kept as it is (a service suspended twice owes from the first time).
    async fn record_location_deletions(&self, owed: &[LocationDeletion]) -> StoreResult<()>;

    /// Every deletion owed, the earliest due first.
    async fn location_deletions(&self) -> StoreResult<Vec<LocationDeletion>>;

    /// Records the service's confirmation of one deletion (`action` names it) and appends
    /// `action` by `actor` to the log, in one transaction; `None` when no unconfirmed
    /// deletion matches (nothing is written then).
    async fn confirm_location_deletion(
        &self,
        deletion: &LocationDeletion,
        actor: &OperatorActor,
        action: &OperatorAction,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<OperatorLogEntry>>;
}
