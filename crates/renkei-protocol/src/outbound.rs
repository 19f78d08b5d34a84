//! The outbound-only mode's messages: a provider that may not accept connections polls the
//! hub for grants (`POST /v1/provider/poll`) and posts the answers back, several to a
//! request when several are ready (`POST /v1/provider/answers`). The grant and the answer
//! are exactly what the inbound mode carries; only the direction of the connection differs.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A provider's poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollRequest {
    /// The most grants this poll takes.
    pub max: usize,
    /// How long the hub may hold the poll open when no grant is waiting, in milliseconds
    /// (the hub caps it).
    pub wait_ms: u64,
}

/// The hub's answer to a poll: the grants waiting, none when the wait ran out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollAnswer {
    pub grants: Vec<PolledGrant>,
}

/// One grant handed to the provider, answered under its ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolledGrant {
    pub ticket: uuid::Uuid,
    /// The hub-signed grant, as an inbound provider receives it in `Authorization`.
    pub grant: String,
}

/// A provider's answer to one grant: the HTTP status and JSON body its inbound endpoint
/// would have answered (a sealed payload, or a problem saying why not). The body stays
/// unparsed text until whoever reads it parses it once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GrantAnswer {
    pub status: u16,
    pub body: Box<RawValue>,
}

/// One answer in a batch, under the ticket its grant came with.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketAnswer {
    pub ticket: uuid::Uuid,
    pub status: u16,
    pub body: Box<RawValue>,
}

impl TicketAnswer {
    /// The answer without its ticket, as the request waiting for it reads it.
    pub fn into_answer(self) -> (uuid::Uuid, GrantAnswer) {
        (
            self.ticket,
            GrantAnswer {
                status: self.status,
                body: self.body,
            },
        )
    }
}

/// The answers a provider posts at once: whatever it had ready when it posted.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerBatch {
    pub answers: Vec<TicketAnswer>,
}

/// What the hub did with a batch of answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerBatchResult {
    /// How many answers reached the request waiting for them.
    pub relayed: usize,
    /// Tickets under which no request of this provider waits (answered already, given up,
    /// or never this provider's).
    pub unknown: Vec<uuid::Uuid>,
    /// Tickets whose answer was not an answer, or larger than its request reads: that
    /// request fails as a bad or too large answer from an inbound provider would.
    pub refused: Vec<uuid::Uuid>,
}
