//! Storage for residents' requests routed to whoever holds the data
//! ([`renkei_domain::rights`]): a request filed with its recipients, their webhook messages
//! and its log entry in one transaction; each recipient's answer written with the request's
//! new status, the locators a provider's deletion removed and its log entry, in another; an
//! operator's extension of a due date with its operator entry. A supertrait of
//! [`crate::Store`], like [`crate::LocationStore`]; the rules (where a request goes, which
//! answer may follow which, the status answers lead to) are `renkei_domain::rights`'s.

use std::collections::BTreeSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use renkei_domain::{
    CategoryId, OperatorAction, OperatorActor, Recipient, RecipientAnswer, RequestRecipient,
    ResidentRequest, ResidentRequestId, RightsLogEntry,
};

use crate::{OutboxMessage, StoreResult};

/// The most requests one listing for a recipient returns.
pub const MAX_ROUTED_LISTED: u32 = 500;

/// What an answer came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerOutcome {
    /// Written: the request as it now stands, every recipient's answer, the log entry.
    Answered {
        request: Box<ResidentRequest>,
        recipients: Vec<RequestRecipient>,
        entry: Box<RightsLogEntry>,
    },
    /// The request was not routed to this recipient (or does not exist): nothing written.
    NotARecipient,
    /// The recipient's earlier answer is final: nothing written.
    AlreadyAnswered(RecipientAnswer),
}

/// One recipient's answer, as the store writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientAnswerDraft<'a> {
    pub request: ResidentRequestId,
    pub recipient: &'a Recipient,
    pub answer: RecipientAnswer,
    pub note: Option<&'a str>,
    pub at: DateTime<Utc>,
}

#[async_trait]
pub trait RightsStore {
    /// Files `request` routed to `recipients` (each with its categories), writes the webhook
    /// `messages` for the services among them, and appends the routing to the log
    /// (`consents_revoked`: how many consents a suspension revoked before), in one transaction.
    async fn file_routed_request(
        &self,
        request: &ResidentRequest,
        recipients: &[(Recipient, BTreeSet<CategoryId>)],
        messages: &[OutboxMessage],
        consents_revoked: u32,
    ) -> StoreResult<RightsLogEntry>;

    /// The recipients of these requests and their answers, by request then recipient.
    async fn request_recipients(
        &self,
        requests: &[ResidentRequestId],
    ) -> StoreResult<Vec<RequestRecipient>>;

    /// The requests routed to `recipient`, oldest first, with its own row: only those it has
    /// not answered finally when `open_only`; at most [`MAX_ROUTED_LISTED`].
    async fn routed_to(
        &self,
        recipient: &Recipient,
        open_only: bool,
    ) -> StoreResult<Vec<(ResidentRequest, RequestRecipient)>>;

    /// Writes one recipient's answer, the request's status that follows from every answer,
    /// the provider's locators of the recipient's categories when the answer removes them
    /// (`renkei_domain::rights::removes_locators`), and its log entry, in one transaction.
    async fn answer_routed_request(
        &self,
        draft: &RecipientAnswerDraft<'_>,
    ) -> StoreResult<AnswerOutcome>;

    /// Moves a request's due date to `due_at` for `reason` (which the resident reads) and
    /// appends `action` by `actor` to the log, in one transaction; `None` when there is no
    /// such request (nothing is written then).
    async fn extend_request(
        &self,
        id: ResidentRequestId,
        due_at: DateTime<Utc>,
        reason: &str,
        actor: &OperatorActor,
        action: &OperatorAction,
    ) -> StoreResult<Option<ResidentRequest>>;
}
