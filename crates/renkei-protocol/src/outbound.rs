//! The outbound-only mode's messages: a provider that may not accept connections polls the
//! hub for grants (`POST /v1/provider/poll`) and posts each answer back
//! (`POST /v1/provider/answers/{ticket}`). The grant and the answer are exactly what the
//! inbound mode carries; only the direction of the connection differs.

use serde::{Deserialize, Serialize};

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
/// would have answered (a sealed payload, or a problem saying why not).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantAnswer {
    pub status: u16,
    pub body: serde_json::Value,
}
