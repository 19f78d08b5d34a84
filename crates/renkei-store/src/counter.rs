//! Storage for the city's counter and for statutory representatives
//! ([`renkei_domain::CounterSession`], [`renkei_domain::Representation`]): a counter session
//! opened, and a representative registered or ended, each with its operator entry of the log
//! in the same transaction; the sessions read back; and the enrolled residents staff may
//! find by the name and birth date on a document they saw. A supertrait of
//! [`crate::Store`], like [`crate::EmergencyStore`]; it decides nothing (who may use a
//! session, whose authority holds, are `renkei_domain`'s).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use renkei_domain::{
    CounterSession, CounterSessionId, Enrolment, OperatorAction, OperatorActor, OperatorLogEntry,
    ProxyAppointment, ProxyId,
};

use crate::StoreResult;

/// The most enrolments [`CounterStore::enrolments_named`] reads.
pub const MAX_NAMED_ENROLMENTS: u32 = 20;

#[async_trait]
pub trait CounterStore {
    /// Stores a new counter session and appends `action` by `actor` to the log, in one
    /// transaction.
    async fn open_counter_session(
        &self,
        session: &CounterSession,
        actor: &OperatorActor,
        action: &OperatorAction,
    ) -> StoreResult<OperatorLogEntry>;

    async fn counter_session(&self, id: CounterSessionId) -> StoreResult<Option<CounterSession>>;

    /// The enrolments whose kept attributes hold exactly this `name` (at most
    /// [`MAX_NAMED_ENROLMENTS`], newest first): whom staff may be looking at. The caller
    /// compares the rest (the birth date).
    async fn enrolments_named(&self, name: &str) -> StoreResult<Vec<Enrolment>>;

    /// Stores a statutory representative's appointment (its `representation` set) and
    /// appends `action` by `actor` to the log, in one transaction.
    async fn register_representative(
        &self,
        appointment: &ProxyAppointment,
        actor: &OperatorActor,
        action: &OperatorAction,
        at: DateTime<Utc>,
    ) -> StoreResult<OperatorLogEntry>;

    /// Ends a statutory representative's appointment at `at` and appends `action` by `actor`
    /// to the log, in one transaction; `None` when no active representation has this id (a
    /// proxy the resident appointed is theirs to end, not an operator's).
    async fn end_representative(
        &self,
        id: ProxyId,
        actor: &OperatorActor,
        action: &OperatorAction,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<ProxyAppointment>>;
}
