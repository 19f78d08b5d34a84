//! The disclosure package (開示パッケージ) as one JSON file, and its offline check: what
//! `renkei verify-package` runs (the portal's `/static/disclosure.js` checks the same in the
//! browser).
//!
//! What the check trusts: the log's verifier key and the hub's JWK Set the package carries,
//! or those given instead (`trusted`). It proves that every history entry is a leaf of the
//! tree whose root the signed checkpoint states, that each receipt is the hub's signature
//! over that consent, that the list of services that received data says what the history
//! says, and that the package is recorded in the log as this disclosure. The providers'
//! answers are sealed to the resident's key: only `key` opens them, and each is accepted only
//! as its provider's signed answer to this disclosure.

use std::collections::BTreeSet;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use renkei_domain::{
    AccessBasis, AccessOutcome, LogEntry, ProviderId, ProviderKeys, RequestId, ResidentId,
    ServiceId,
};
use renkei_log::checkpoint::Checkpoint;
use renkei_log::merkle::{self, Hash};
use renkei_log::note::Verifier;
use renkei_protocol::envelope::{EnvelopeContext, SealedPayload, ServiceKeyPair};
use renkei_protocol::keys::Jwks;
use renkei_protocol::payload::{PayloadClaims, open_verified};
use renkei_protocol::receipt::verify_receipt;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::broker::SealedPayloadView;
use crate::consents::ConsentView;
use crate::history::LogEntryView;

/// The `format` of a package this hub writes and this check reads.
pub const PACKAGE_FORMAT: &str = "renkei-disclosure/1";

/// Everything the hub knows of one resident, in one file they can check offline.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DisclosurePackage {
    /// Always `renkei-disclosure/1`.
    pub format: String,
    /// The disclosure's id: its access record in the log, and what each provider's sealed
    /// answer is bound to.
    pub disclosure_id: String,
    /// The resident (their id inside the hub).
    pub resident: String,
    /// The hub's URL.
    pub issuer: String,
    pub issued_at: DateTime<Utc>,
    /// The resident's X25519 public key (base64url) the providers sealed their answers to.
    pub recipient_key: String,
    pub log: PackageLog,
    /// The hub's JWK Set when it wrote the package: the receipts verify with it.
    #[schema(value_type = Object)]
    pub jwks: serde_json::Value,
    /// Every consent the resident gave, each with its signed receipt.
    pub consents: Vec<PackageConsent>,
    /// The services that received the resident's data, request by request.
    pub recipients: Vec<Recipient>,
    /// What each provider holds about the resident, sealed to `recipient_key`.
    pub providers: Vec<ProviderPart>,
}

/// The resident's whole history in the signed log, as of one checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PackageLog {
    /// The signed checkpoint (a C2SP signed note) every proof is against.
    pub checkpoint: String,
    /// The log's verifier key.
    pub verifier_key: String,
    /// Every entry naming the resident up to the checkpoint, oldest first, each with its
    /// inclusion proof.
    pub entries: Vec<LogEntryView>,
}

/// A consent and its receipt (a compact JWS by the hub).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PackageConsent {
    pub consent: ConsentView,
    pub receipt: String,
}

/// One granted request: which service received which of the resident's data, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Recipient {
    pub service: String,
    pub purpose: String,
    pub request_id: String,
    pub at: DateTime<Utc>,
    pub categories: Vec<String>,
    pub providers: Vec<String>,
    /// The access record's position in the log.
    pub seq: u64,
}

/// One provider's answer to the disclosure.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProviderPart {
    pub provider: String,
    /// The categories the provider was asked for: every one it is registered for.
    pub categories: Vec<String>,
    /// `ok`, or why the answer is missing (as a data response says).
    pub status: String,
    /// The provider's signed answer, sealed to the resident's key: the hub cannot read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<SealedPayloadView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The keys the provider registered: its answer is signed with one of them.
    #[schema(value_type = Object)]
    pub signing_keys: serde_json::Value,
}

/// Why a package does not verify. Messages name positions and ids, never what an entry or
/// answer says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PackageError {
    #[error("not a disclosure package: {0}")]
    Malformed(String),
    #[error("the package's format `{0}` is not `renkei-disclosure/1`")]
    Format(String),
    #[error("the log's verifier key is not the one trusted")]
    UntrustedLogKey,
    #[error("the checkpoint does not verify: {0}")]
    Checkpoint(String),
    #[error("log entry {seq} does not verify: {why}")]
    Entry { seq: u64, why: String },
    #[error("the log does not record this disclosure")]
    NotRecorded,
    #[error("the receipt of consent `{consent}` does not verify: {why}")]
    Receipt { consent: String, why: String },
    #[error("the services that received data do not match the log: {0}")]
    Recipients(String),
    #[error("`{provider}`'s answer does not open or verify: {why}")]
    Sealed { provider: String, why: String },
}

/// What a package that verifies holds.
#[derive(Debug, Clone, PartialEq)]
pub struct PackageReport {
    pub resident: ResidentId,
    pub disclosure: RequestId,
    /// The checkpoint's tree size.
    pub checkpoint_size: u64,
    pub entries: usize,
    pub receipts: usize,
    pub recipients: usize,
    /// The providers' answers: sealed ones opened when a key was given.
    pub providers: Vec<ProviderReport>,
}

/// One provider's part, as far as the check could go.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderReport {
    pub provider: ProviderId,
    pub status: String,
    /// The provider's signed answer, opened with the resident's key.
    pub opened: Option<PayloadClaims>,
}

/// What the check trusts beyond the package itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Trust<'a> {
    /// The hub's JWK Set fetched or kept apart: receipts must verify with it.
    pub jwks: Option<&'a Jwks>,
    /// The log's verifier key kept apart: the package's must be it.
    pub log_key: Option<&'a str>,
}

fn malformed(what: impl std::fmt::Display) -> PackageError {
    PackageError::Malformed(what.to_string())
}

/// Checks `package` offline; opens the providers' answers with `key` when given.
pub fn verify_package(
    package: &DisclosurePackage,
    trust: Trust<'_>,
    key: Option<&ServiceKeyPair>,
) -> Result<PackageReport, PackageError> {
    if package.format != PACKAGE_FORMAT {
        return Err(PackageError::Format(
            package.format.chars().take(40).collect(),
        ));
    }
    let resident = ResidentId::from_str(&package.resident).map_err(malformed)?;
    let disclosure = RequestId::from_str(&package.disclosure_id).map_err(malformed)?;
    let checkpoint = open_checkpoint(&package.log, trust.log_key)?;
    let entries = check_entries(&package.log.entries, &checkpoint, resident)?;
    let recorded = entries.iter().find_map(|e| match e {
        LogEntry::Access(r)
            if r.request == disclosure
                && r.service.is_data_subject()
                && matches!(r.basis, AccessBasis::DataSubjectAccess { .. }) =>
        {
            Some(r)
        }
        _ => None,
    });
    let recorded = recorded.ok_or(PackageError::NotRecorded)?;
    check_recipients(&package.recipients, &entries)?;
    let jwks: Jwks = serde_json::from_value(package.jwks.clone())
        .map_err(|_| malformed("`jwks` is not a JWK Set"))?;
    for c in &package.consents {
        let fail = |why: String| PackageError::Receipt {
            consent: c.consent.id.clone(),
            why,
        };
        let receipt = verify_receipt(&c.receipt, &jwks).map_err(|e| fail(e.to_string()))?;
        if let Some(trusted) = trust.jwks {
            verify_receipt(&c.receipt, trusted)
                .map_err(|e| fail(format!("with the trusted keys: {e}")))?;
        }
        if receipt.consent_id.to_string() != c.consent.id
            || receipt.pii_principal_id != package.resident
            || receipt.service_id.as_str() != c.consent.service
            || receipt.purpose_id.as_str() != c.consent.purpose
        {
            return Err(fail("it is another consent's".into()));
        }
    }
    let mut providers = Vec::with_capacity(package.providers.len());
    for part in &package.providers {
        let provider = ProviderId::new(part.provider.as_str()).map_err(malformed)?;
        if !recorded.providers.contains(&provider) {
            return Err(PackageError::Sealed {
                provider: provider.to_string(),
                why: "the log does not record it was asked".into(),
            });
        }
        let opened = match (&part.payload, key) {
            (Some(payload), Some(key)) => Some(open_part(part, payload, disclosure, key)?),
            _ => None,
        };
        providers.push(ProviderReport {
            provider,
            status: part.status.clone(),
            opened,
        });
    }
    Ok(PackageReport {
        resident,
        disclosure,
        checkpoint_size: checkpoint.size(),
        entries: entries.len(),
        receipts: package.consents.len(),
        recipients: package.recipients.len(),
        providers,
    })
}

fn open_checkpoint(log: &PackageLog, trusted: Option<&str>) -> Result<Checkpoint, PackageError> {
    if trusted.is_some_and(|k| k.trim() != log.verifier_key.trim()) {
        return Err(PackageError::UntrustedLogKey);
    }
    let verifier = Verifier::from_str(log.verifier_key.trim())
        .map_err(|e| PackageError::Checkpoint(e.to_string()))?;
    Checkpoint::open(log.checkpoint.as_bytes(), verifier.name(), &verifier)
        .map_err(|e| PackageError::Checkpoint(e.to_string()))
}

/// Every entry is the resident's, in log order, and a leaf of the checkpoint's tree.
fn check_entries(
    views: &[LogEntryView],
    checkpoint: &Checkpoint,
    resident: ResidentId,
) -> Result<Vec<LogEntry>, PackageError> {
    let mut entries = Vec::with_capacity(views.len());
    let mut last: Option<u64> = None;
    for view in views {
        let fail = |why: &str| PackageError::Entry {
            seq: view.seq,
            why: why.to_owned(),
        };
        if last.is_some_and(|l| view.seq <= l) {
            return Err(fail("entries are not in log order"));
        }
        last = Some(view.seq);
        let entry: LogEntry =
            serde_json::from_str(&view.entry).map_err(|_| fail("not a log entry"))?;
        if entry.seq() != view.seq || entry.kind() != view.kind {
            return Err(fail("the entry says another position or kind"));
        }
        if entry.resident() != Some(resident) {
            return Err(fail("the entry is not the resident's"));
        }
        let salt = STANDARD
            .decode(&view.salt)
            .map_err(|_| fail("the salt is not base64"))?;
        let mut data = salt;
        data.extend_from_slice(view.entry.as_bytes());
        let leaf = merkle::leaf_hash(&data);
        if STANDARD.encode(leaf.as_bytes()) != view.leaf_hash {
            return Err(fail("the leaf hash is not the entry's"));
        }
        let proof = view
            .proof
            .as_ref()
            .ok_or_else(|| fail("no inclusion proof"))?
            .iter()
            .map(|p| {
                STANDARD
                    .decode(p)
                    .ok()
                    .and_then(|b| Hash::from_slice(&b).ok())
            })
            .collect::<Option<Vec<Hash>>>()
            .ok_or_else(|| fail("a proof hash is not 32 bytes of base64"))?;
        merkle::verify_inclusion(
            view.seq,
            checkpoint.size(),
            &leaf,
            &proof,
            checkpoint.root(),
        )
        .map_err(|e| fail(&e.to_string()))?;
        entries.push(entry);
    }
    Ok(entries)
}

/// The recipients listed are exactly the granted requests of services in the history.
fn check_recipients(recipients: &[Recipient], entries: &[LogEntry]) -> Result<(), PackageError> {
    let expected = recipients_of(entries);
    if recipients == expected.as_slice() {
        Ok(())
    } else {
        Err(PackageError::Recipients(format!(
            "the package lists {} requests, the log {}",
            recipients.len(),
            expected.len()
        )))
    }
}

/// The services that received data, request by request, as the log says: each granted
/// access record of a service (a disclosure's recipient is the resident), oldest first.
pub fn recipients_of(entries: &[LogEntry]) -> Vec<Recipient> {
    entries
        .iter()
        .filter_map(|e| match e {
            LogEntry::Access(r)
                if r.outcome == AccessOutcome::Granted && !r.service.is_data_subject() =>
            {
                Some(Recipient {
                    service: r.service.to_string(),
                    purpose: r.purpose.to_string(),
                    request_id: r.request.to_string(),
                    at: r.at,
                    categories: r.categories.iter().map(ToString::to_string).collect(),
                    providers: r.providers.iter().map(ToString::to_string).collect(),
                    seq: r.seq,
                })
            }
            _ => None,
        })
        .collect()
}

fn open_part(
    part: &ProviderPart,
    payload: &SealedPayloadView,
    disclosure: RequestId,
    key: &ServiceKeyPair,
) -> Result<PayloadClaims, PackageError> {
    let fail = |why: String| PackageError::Sealed {
        provider: part.provider.clone(),
        why,
    };
    let provider = ProviderId::new(part.provider.as_str()).map_err(|e| fail(e.to_string()))?;
    let keys = ProviderKeys::parse(&part.signing_keys).map_err(|e| fail(e.to_string()))?;
    let context = EnvelopeContext {
        provider,
        request: disclosure,
    };
    let sealed = SealedPayload {
        suite: payload.suite.clone(),
        enc: payload.enc.clone(),
        ciphertext: payload.ciphertext.clone(),
    };
    let claims = open_verified(
        key,
        &ServiceId::data_subject(),
        &context,
        &Jwks::from_provider_keys(&keys),
        &sealed,
    )
    .map_err(|e| fail(e.to_string()))?;
    let asked: BTreeSet<&str> = part.categories.iter().map(String::as_str).collect();
    if claims
        .categories
        .iter()
        .any(|c| !asked.contains(c.as_str()))
    {
        return Err(fail("it holds a category it was not asked for".into()));
    }
    Ok(claims)
}
