//! Access records (アクセスログ): one for every decision, granted or denied.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{
    CategoryId, ConsentId, OperatorId, ProviderId, PurposeId, RequestId, ResidentId,
    ResidentRequestId, ServiceId,
};

/// On what ground data was (or would have been) released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AccessBasis {
    Consent {
        consent: ConsentId,
    },
    /// Nothing allowed it: the request was denied.
    None,
}

/// Granted, or denied with a stable reason code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AccessOutcome {
    Granted,
    Denied { reason: String },
}

/// One entry of the access log. Append-only: nothing ever edits or deletes one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRecord {
    /// Position in the log, assigned by storage (0-based, gap-free): the Merkle leaf index.
    pub seq: u64,
    pub request: RequestId,
    pub at: DateTime<Utc>,
    pub service: ServiceId,
    /// `None` when the service named a subject the hub does not know.
    pub resident: Option<ResidentId>,
    pub purpose: PurposeId,
    pub purpose_version: Option<u32>,
    pub categories: BTreeSet<CategoryId>,
    pub basis: AccessBasis,
    pub outcome: AccessOutcome,
    /// The providers the hub sent grants to (empty when denied).
    pub providers: BTreeSet<ProviderId>,
}

/// A consent change as the access log records it (grant, revocation, supersession).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentLogEntry {
    /// Position in the log (shared with access records).
    pub seq: u64,
    pub consent: ConsentId,
    pub resident: ResidentId,
    pub service: ServiceId,
    pub purpose: PurposeId,
    pub purpose_version: u32,
    pub change: crate::consent::ConsentEventKind,
    pub at: DateTime<Utc>,
    pub actor: crate::consent::Actor,
}

/// Who did an operator's act.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum OperatorActor {
    /// A city operator signed in to the console or the API.
    Operator { id: OperatorId },
    /// Someone with the hub's database at hand, through the `renkei` command.
    CommandLine,
}

/// An operator's act that changes what the hub does (DESIGN: operators are audited too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum OperatorAction {
    RegisterService {
        service: ServiceId,
    },
    /// Approval, with the review checklist's risks the operator confirmed.
    ApproveService {
        service: ServiceId,
        acknowledged: Vec<String>,
    },
    SuspendService {
        service: ServiceId,
    },
    AnswerRequest {
        request: ResidentRequestId,
        status: String,
    },
    AddOperator {
        operator: OperatorId,
    },
    RotateSigningKey {
        kid: String,
        active_from: DateTime<Utc>,
    },
    RetireSigningKey {
        kid: String,
    },
    /// A search of the access log (whose entries were looked at is itself audited).
    SearchAccessLog {
        resident: Option<ResidentId>,
        service: Option<ServiceId>,
    },
}

/// An operator's act as the log records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorLogEntry {
    /// Position in the log (shared with access records and consent changes).
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub actor: OperatorActor,
    pub action: OperatorAction,
}

/// One entry of the transparency log: its canonical encoding (see [`LogEntry::canonical`])
/// is what the Merkle leaf commits to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LogEntry {
    Access(AccessRecord),
    Consent(ConsentLogEntry),
    Operator(OperatorLogEntry),
}

impl LogEntry {
    pub fn seq(&self) -> u64 {
        match self {
            Self::Access(r) => r.seq,
            Self::Consent(c) => c.seq,
            Self::Operator(o) => o.seq,
        }
    }

    pub fn resident(&self) -> Option<ResidentId> {
        match self {
            Self::Access(r) => r.resident,
            Self::Consent(c) => Some(c.resident),
            Self::Operator(_) => None,
        }
    }

    /// The bytes a leaf commits to: JSON with fields in declaration order and sets sorted,
    /// so the same entry always encodes the same way.
    pub fn canonical(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The Merkle leaf data: a per-entry random salt, then the canonical encoding. The salt
    /// makes the public leaf hash a hiding commitment: it reveals nothing about the entry.
    pub fn leaf_data(&self, salt: &[u8]) -> Vec<u8> {
        let mut data = Vec::with_capacity(salt.len() + 256);
        data.extend_from_slice(salt);
        data.extend_from_slice(&self.canonical());
        data
    }
}
