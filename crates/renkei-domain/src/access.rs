//! Access records (アクセスログ): one for every decision, granted or denied.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{CategoryId, ConsentId, ProviderId, PurposeId, RequestId, ResidentId, ServiceId};

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
