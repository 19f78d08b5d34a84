//! Access records (アクセスログ): one for every decision, granted or denied.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::counter::session::CounterVerification;
use crate::emergency::{Area, EmergencyLegalBasis};
use crate::ids::{
    CategoryId, ConsentId, CounterSessionId, DeclarationId, LocatorBatchId, OperatorId, ProviderId,
    ProxyId, PurposeId, RequestId, ResidentId, ResidentRequestId, ServiceId,
};
use crate::representative::{EvidenceReference, RepresentativeKind};

/// On what ground data was (or would have been) released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AccessBasis {
    Consent {
        consent: ConsentId,
        /// For a purpose that applies only during an emergency: the declaration in force.
        /// Left out otherwise, so entries from before declarations encode as they did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        during: Option<DeclarationId>,
    },
    /// A declared emergency in force, without consent.
    Emergency { declaration: DeclarationId },
    /// Nothing allowed it: the request was denied.
    None,
    /// The data subject's own access (開示請求): what providers hold about the resident,
    /// sealed to a key only the resident holds. `proxy` is set when a proxy asked for them.
    DataSubjectAccess {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        proxy: Option<ResidentId>,
    },
}

impl std::fmt::Display for AccessBasis {
    /// `consent:<id>`, `emergency:<declaration id>`, `data-subject-access` or `none`: what
    /// grants and pages show.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Consent { consent, .. } => write!(f, "consent:{consent}"),
            Self::Emergency { declaration } => write!(f, "emergency:{declaration}"),
            Self::None => f.write_str("none"),
            Self::DataSubjectAccess { .. } => f.write_str(crate::ids::DATA_SUBJECT_ACCESS),
        }
    }
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

/// What one provider's grant came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ProviderDelivery {
    /// The provider answered and its sealed answer went to the service.
    Delivered,
    /// Nothing of this provider's reached the service; `reason` is the answer's status code
    /// for it (`provider-timeout`, `provider-refused`, …).
    Failed { reason: String },
}

/// What a granted request came to, provider by provider: appended after the providers
/// answered, when any of them did not deliver. The access record says `granted` before any
/// provider is asked (it must be durable first); this entry says what was released.
///
/// INVARIANT: a granted access record with no fulfilment entry means every provider it lists
/// delivered, or that the hub stopped before it could say otherwise: the record never
/// understates what may have been released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FulfilmentLogEntry {
    /// Position in the log (shared with every other entry); after the access record's.
    pub seq: u64,
    /// The request, as its access record names it.
    pub request: RequestId,
    pub at: DateTime<Utc>,
    pub service: ServiceId,
    pub resident: ResidentId,
    pub providers: BTreeMap<ProviderId, ProviderDelivery>,
}

impl FulfilmentLogEntry {
    /// Whether anything at all reached the service.
    pub fn released_anything(&self) -> bool {
        self.providers
            .values()
            .any(|d| *d == ProviderDelivery::Delivered)
    }
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
    /// A resident request's due date moved (the reason, for the resident, stays with it).
    ExtendRequest {
        request: ResidentRequestId,
        due_at: DateTime<Utc>,
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
    /// A search of the access log (whose entries were looked at is itself audited). A search
    /// naming a resident is an entry of that resident's history too, with the operator's
    /// reason (required since it is shown to them; absent from searches made before).
    SearchAccessLog {
        resident: Option<ResidentId>,
        service: Option<ServiceId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A purpose of a registered service published: a new version when anything the
    /// resident is asked changed (consents to the old version no longer serve).
    PublishPurpose {
        service: ServiceId,
        purpose: PurposeId,
        version: u32,
    },
    /// A data category added to the vocabulary, with its 要配慮 flag.
    PutCategory {
        category: CategoryId,
        special_care: bool,
    },
    /// A provider registered, pending review: the categories it serves, the ids of the
    /// keys it signs with, and how it connects (`inbound` or `outbound`).
    RegisterProvider {
        provider: ProviderId,
        categories: BTreeSet<CategoryId>,
        kids: Vec<String>,
        connection: String,
    },
    ApproveProvider {
        provider: ProviderId,
    },
    SuspendProvider {
        provider: ProviderId,
    },
    /// The first step of an emergency: its whole scope (the reason, free text, stays with
    /// the public declaration, out of the log).
    DeclareEmergency {
        declaration: DeclarationId,
        legal_basis: EmergencyLegalBasis,
        categories: BTreeSet<CategoryId>,
        services: BTreeSet<ServiceId>,
        area: Area,
        starts_at: DateTime<Utc>,
        ends_at: DateTime<Utc>,
    },
    /// The second, different operator's step: the declaration takes effect.
    ConfirmEmergency {
        declaration: DeclarationId,
    },
    ProposeEmergencyRenewal {
        declaration: DeclarationId,
        ends_at: DateTime<Utc>,
    },
    /// The renewal's second step: the end moves to `ends_at`.
    ConfirmEmergencyRenewal {
        declaration: DeclarationId,
        ends_at: DateTime<Utc>,
    },
    EndEmergency {
        declaration: DeclarationId,
    },
    /// A service's confirmation that it deleted the location data it received under a
    /// purpose version, after it ended, recorded by an operator.
    ConfirmLocationDeletion {
        service: ServiceId,
        purpose: PurposeId,
        version: u32,
    },
    // The counter (窓口) and statutory representatives (issue 25, items 5 and 6).
    /// Counter staff verified a resident in person and opened a session to act for them:
    /// how (the card, or the kind of document seen; never its number).
    OpenCounterSession {
        session: CounterSessionId,
        resident: ResidentId,
        verification: CounterVerification,
    },
    /// A statutory representative registered, with the evidence the operator saw (a
    /// reference to it).
    RegisterRepresentative {
        appointment: ProxyId,
        resident: ResidentId,
        representative: ResidentId,
        kind: RepresentativeKind,
        evidence: EvidenceReference,
    },
    /// A statutory representation ended (the court's decision, a change of custody).
    EndRepresentative {
        appointment: ProxyId,
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

impl OperatorAction {
    /// The resident the act names, whose history shows it: an audit search naming them.
    pub fn resident(&self) -> Option<ResidentId> {
        match self {
            Self::SearchAccessLog { resident, .. } => *resident,
            _ => None,
        }
    }
}

/// One batch of a provider's locator changes as the log records it: who, which batch and
/// how many of each outcome, never which residents or references.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocatorSyncLogEntry {
    /// Position in the log (shared with every other entry).
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub provider: ProviderId,
    pub batch: LocatorBatchId,
    pub counts: crate::locator_sync::LocatorSyncCounts,
}

/// One entry of the transparency log: its canonical encoding (see [`LogEntry::canonical`])
/// is what the Merkle leaf commits to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LogEntry {
    Access(AccessRecord),
    Consent(ConsentLogEntry),
    Operator(OperatorLogEntry),
    Fulfilment(FulfilmentLogEntry),
    LocatorSync(LocatorSyncLogEntry),
    /// A resident's request routed to whoever holds the data, or a recipient's answer.
    Rights(crate::rights::RightsLogEntry),
}

impl LogEntry {
    pub fn seq(&self) -> u64 {
        match self {
            Self::Access(r) => r.seq,
            Self::Consent(c) => c.seq,
            Self::Operator(o) => o.seq,
            Self::Fulfilment(f) => f.seq,
            Self::LocatorSync(l) => l.seq,
            Self::Rights(r) => r.seq,
        }
    }

    /// The entry's kind, as its canonical encoding tags it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Access(_) => "access",
            Self::Consent(_) => "consent",
            Self::Operator(_) => "operator",
            Self::Fulfilment(_) => "fulfilment",
            Self::LocatorSync(_) => "locator_sync",
            Self::Rights(_) => "rights",
        }
    }

    pub fn resident(&self) -> Option<ResidentId> {
        match self {
            Self::Access(r) => r.resident,
            Self::Consent(c) => Some(c.resident),
            Self::Operator(o) => o.action.resident(),
            Self::Fulfilment(f) => Some(f.resident),
            Self::LocatorSync(_) => None,
            Self::Rights(r) => Some(r.resident),
        }
    }

    /// The bytes a leaf commits to: JSON with fields in declaration order and sets sorted,
    /// so the same entry always encodes the same way.
    pub fn canonical(&self) -> Vec<u8> {
        // An empty encoding would be a wrong leaf that verifies nowhere: better loud than that.
        #[expect(
            clippy::expect_used,
            reason = "JSON encoding of these types cannot fail: plain structs and enums, every map keyed by a string id"
        )]
        serde_json::to_vec(self).expect("a log entry encodes as JSON")
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

#[cfg(test)]
mod tests {
    use super::*;

    fn fulfilment(deliveries: &[(&str, ProviderDelivery)]) -> FulfilmentLogEntry {
        FulfilmentLogEntry {
            seq: 7,
            request: RequestId::from_uuid(uuid::Uuid::nil()),
            at: DateTime::UNIX_EPOCH,
            service: ServiceId::new("health-advice").expect("valid"),
            resident: ResidentId::from_uuid(uuid::Uuid::nil()),
            providers: deliveries
                .iter()
                .map(|(p, d)| (ProviderId::new(*p).expect("valid"), d.clone()))
                .collect(),
        }
    }

    #[test]
    fn a_request_whose_providers_all_failed_released_nothing() {
        let failed = ProviderDelivery::Failed {
            reason: "provider-timeout".into(),
        };
        assert!(
            !fulfilment(&[("clinic", failed.clone()), ("pay", failed.clone())]).released_anything()
        );
        assert!(
            fulfilment(&[("clinic", failed), ("pay", ProviderDelivery::Delivered)])
                .released_anything()
        );
    }

    #[test]
    fn a_fulfilment_entry_encodes_each_providers_outcome_under_its_kind() {
        let entry = LogEntry::Fulfilment(fulfilment(&[(
            "clinic",
            ProviderDelivery::Failed {
                reason: "provider-refused".into(),
            },
        )]));
        let json: serde_json::Value =
            serde_json::from_slice(&entry.canonical()).expect("canonical JSON");
        assert_eq!(json["kind"], entry.kind());
        assert_eq!(json["providers"]["clinic"]["status"], "failed");
        assert_eq!(json["providers"]["clinic"]["reason"], "provider-refused");
    }
}
