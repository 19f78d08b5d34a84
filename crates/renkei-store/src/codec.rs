//! Row shapes shared by both backends and their conversion to domain types.
//!
//! Rows are read into plain structs of strings and integers (`Raw*`), then converted here,
//! so the conversion is written once and every malformed row becomes [`StoreError::Corrupt`].

use std::collections::BTreeSet;
use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use renkei_domain::{
    AccessBasis, AccessOutcome, AccessRecord, Actor, CategoryId, Consent, ConsentChannel,
    ConsentEvent, ConsentEventKind, DataCategory, LegalBasis, LocalizedText, Locator, Provider,
    Purpose, PurposeRef, Service, ServiceStatus,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{StoreError, StoreResult};

pub fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub fn time(ms: i64) -> StoreResult<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {ms} out of range")))
}

pub fn opt_time(ms: Option<i64>) -> StoreResult<Option<DateTime<Utc>>> {
    ms.map(time).transpose()
}

pub fn to_json<T: Serialize>(v: &T) -> StoreResult<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Invalid(format!("cannot encode value: {e}")))
}

pub fn from_json<T: DeserializeOwned>(s: &str, what: &str) -> StoreResult<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

pub fn parse<T: FromStr>(s: &str, what: &str) -> StoreResult<T>
where
    T::Err: std::fmt::Display,
{
    s.parse()
        .map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

pub(crate) fn enum_field<T>(v: Option<T>, s: &str, what: &str) -> StoreResult<T> {
    v.ok_or_else(|| StoreError::Corrupt(format!("unknown {what} `{s}`")))
}

fn u32_field(v: i64, what: &str) -> StoreResult<u32> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} {v} out of range")))
}

#[derive(sqlx::FromRow)]
pub struct RawCategory {
    pub id: String,
    pub name_ja: String,
    pub name_en: String,
    pub special_care: bool,
}

impl RawCategory {
    pub fn into_domain(self) -> StoreResult<DataCategory> {
        Ok(DataCategory {
            id: parse(&self.id, "category id")?,
            name: LocalizedText::new(self.name_ja, self.name_en),
            special_care: self.special_care,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct RawService {
    pub id: String,
    pub name_ja: String,
    pub name_en: String,
    pub sector: String,
    pub hpke_public_key: String,
    pub webhook_url: Option<String>,
    pub status: String,
}

impl RawService {
    pub fn into_domain(self) -> StoreResult<Service> {
        Ok(Service {
            id: parse(&self.id, "service id")?,
            name: LocalizedText::new(self.name_ja, self.name_en),
            sector: self.sector,
            hpke_public_key: self.hpke_public_key,
            webhook_url: self.webhook_url,
            status: enum_field(
                ServiceStatus::parse(&self.status),
                &self.status,
                "service status",
            )?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct RawPurpose {
    pub service_id: String,
    pub purpose_id: String,
    pub version: i64,
    pub title_ja: String,
    pub title_en: String,
    pub description_ja: String,
    pub description_en: String,
    pub categories: String,
    pub retention_days: i64,
    pub legal_basis: String,
}

impl RawPurpose {
    pub fn into_domain(self) -> StoreResult<Purpose> {
        Ok(Purpose {
            service: parse(&self.service_id, "service id")?,
            id: parse(&self.purpose_id, "purpose id")?,
            version: u32_field(self.version, "purpose version")?,
            title: LocalizedText::new(self.title_ja, self.title_en),
            description: LocalizedText::new(self.description_ja, self.description_en),
            categories: from_json(&self.categories, "purpose categories")?,
            retention_days: u32_field(self.retention_days, "retention days")?,
            legal_basis: enum_field(
                LegalBasis::parse(&self.legal_basis),
                &self.legal_basis,
                "legal basis",
            )?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct RawProvider {
    pub id: String,
    pub name_ja: String,
    pub name_en: String,
    pub endpoint: String,
    pub categories: String,
    pub max_answer_bytes: Option<i64>,
}

impl RawProvider {
    pub fn into_domain(self) -> StoreResult<Provider> {
        Ok(Provider {
            id: parse(&self.id, "provider id")?,
            name: LocalizedText::new(self.name_ja, self.name_en),
            endpoint: self.endpoint,
            categories: from_json(&self.categories, "provider categories")?,
            max_answer_bytes: self
                .max_answer_bytes
                .map(|n| {
                    u64::try_from(n).map_err(|_| {
                        StoreError::Corrupt(format!("negative answer limit {n} of a provider"))
                    })
                })
                .transpose()?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct RawLocator {
    pub resident_id: String,
    pub category_id: String,
    pub provider_id: String,
    pub reference: String,
}

impl RawLocator {
    pub fn into_domain(self) -> StoreResult<Locator> {
        Ok(Locator {
            resident: parse(&self.resident_id, "resident id")?,
            category: parse(&self.category_id, "category id")?,
            provider: parse(&self.provider_id, "provider id")?,
            reference: self.reference,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct RawConsent {
    pub id: String,
    pub resident_id: String,
    pub service_id: String,
    pub purpose_id: String,
    pub purpose_version: i64,
    pub categories: String,
    pub legal_basis: String,
    pub granted_at: i64,
    pub expires_at: Option<i64>,
    pub given_via: String,
    pub given_by: String,
    pub revoked_at: Option<i64>,
}

impl RawConsent {
    pub fn into_domain(self) -> StoreResult<Consent> {
        Ok(Consent {
            id: parse(&self.id, "consent id")?,
            resident: parse(&self.resident_id, "resident id")?,
            purpose: PurposeRef {
                service: parse(&self.service_id, "service id")?,
                purpose: parse(&self.purpose_id, "purpose id")?,
                version: u32_field(self.purpose_version, "purpose version")?,
            },
            categories: from_json::<BTreeSet<CategoryId>>(&self.categories, "consent categories")?,
            legal_basis: enum_field(
                LegalBasis::parse(&self.legal_basis),
                &self.legal_basis,
                "legal basis",
            )?,
            granted_at: time(self.granted_at)?,
            expires_at: opt_time(self.expires_at)?,
            given_via: enum_field(
                ConsentChannel::parse(&self.given_via),
                &self.given_via,
                "consent channel",
            )?,
            given_by: from_json::<Actor>(&self.given_by, "consent actor")?,
            revoked_at: opt_time(self.revoked_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct RawConsentEvent {
    pub consent_id: String,
    pub kind: String,
    pub at: i64,
    pub actor: String,
}

impl RawConsentEvent {
    pub fn into_domain(self) -> StoreResult<ConsentEvent> {
        Ok(ConsentEvent {
            consent: parse(&self.consent_id, "consent id")?,
            kind: enum_field(
                ConsentEventKind::parse(&self.kind),
                &self.kind,
                "consent event",
            )?,
            at: time(self.at)?,
            actor: from_json(&self.actor, "consent event actor")?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct RawAccessRecord {
    pub seq: i64,
    pub request_id: String,
    pub at: i64,
    pub service_id: String,
    pub resident_id: Option<String>,
    pub purpose_id: String,
    pub purpose_version: Option<i64>,
    pub categories: String,
    pub basis: String,
    pub outcome: String,
    pub providers: String,
}

impl RawAccessRecord {
    pub fn into_domain(self) -> StoreResult<AccessRecord> {
        Ok(AccessRecord {
            seq: u64::try_from(self.seq)
                .map_err(|_| StoreError::Corrupt(format!("negative seq {}", self.seq)))?,
            request: parse(&self.request_id, "request id")?,
            at: time(self.at)?,
            service: parse(&self.service_id, "service id")?,
            resident: self
                .resident_id
                .as_deref()
                .map(|r| parse(r, "resident id"))
                .transpose()?,
            purpose: parse(&self.purpose_id, "purpose id")?,
            purpose_version: self
                .purpose_version
                .map(|v| u32_field(v, "purpose version"))
                .transpose()?,
            categories: from_json(&self.categories, "access categories")?,
            basis: from_json::<AccessBasis>(&self.basis, "access basis")?,
            outcome: outcome_from_column(&self.outcome),
            providers: from_json(&self.providers, "access providers")?,
        })
    }
}

/// `granted`, or the denial's reason code.
pub fn outcome_column(outcome: &AccessOutcome) -> &str {
    match outcome {
        AccessOutcome::Granted => "granted",
        AccessOutcome::Denied { reason } => reason,
    }
}

fn outcome_from_column(s: &str) -> AccessOutcome {
    if s == "granted" {
        AccessOutcome::Granted
    } else {
        AccessOutcome::Denied {
            reason: s.to_owned(),
        }
    }
}

pub fn seq_u64(seq: i64) -> StoreResult<u64> {
    u64::try_from(seq).map_err(|_| StoreError::Corrupt(format!("negative log position {seq}")))
}

pub fn byte_count_i64(n: u64) -> StoreResult<i64> {
    i64::try_from(n).map_err(|_| StoreError::Invalid(format!("byte count `{n}` is out of range")))
}

pub fn seq_i64(seq: u64) -> StoreResult<i64> {
    i64::try_from(seq)
        .map_err(|_| StoreError::Invalid(format!("log position `{seq}` is out of range")))
}

/// The Merkle leaf of a new log entry, as `log_leaves` keeps it.
pub struct NewLeaf {
    pub kind: &'static str,
    /// 32 random bytes: they hide the entry behind its public leaf hash.
    pub salt: [u8; 32],
    pub hash: renkei_log::Hash,
}

/// Salts and hashes a new log entry.
pub fn new_leaf(entry: &renkei_domain::LogEntry) -> NewLeaf {
    use rand::RngCore;
    let mut salt = [0u8; 32];
    rand::rng().fill_bytes(&mut salt);
    NewLeaf {
        kind: entry.kind(),
        salt,
        hash: renkei_log::merkle::leaf_hash(&entry.leaf_data(&salt)),
    }
}

pub fn hash32(bytes: &[u8], what: &str) -> StoreResult<renkei_log::Hash> {
    renkei_log::Hash::from_slice(bytes)
        .map_err(|_| StoreError::Corrupt(format!("{what} is not 32 bytes")))
}

pub fn checkpoint(
    (size, root, note, signed_at): (i64, Vec<u8>, String, i64),
) -> StoreResult<crate::StoredCheckpoint> {
    Ok(crate::StoredCheckpoint {
        size: seq_u64(size)?,
        root: hash32(&root, "checkpoint root")?,
        note,
        signed_at: time(signed_at)?,
    })
}

#[derive(sqlx::FromRow)]
pub struct RawConsentLogEntry {
    pub log_seq: Option<i64>,
    pub consent_id: String,
    pub resident_id: String,
    pub service_id: String,
    pub purpose_id: String,
    pub purpose_version: i64,
    pub kind: String,
    pub at: i64,
    pub actor: String,
}

impl RawConsentLogEntry {
    pub fn into_domain(self) -> StoreResult<renkei_domain::ConsentLogEntry> {
        let seq = self
            .log_seq
            .ok_or_else(|| StoreError::Corrupt("a consent event has no log position".into()))?;
        Ok(renkei_domain::ConsentLogEntry {
            seq: seq_u64(seq)?,
            consent: parse(&self.consent_id, "consent id")?,
            resident: parse(&self.resident_id, "resident id")?,
            service: parse(&self.service_id, "service id")?,
            purpose: parse(&self.purpose_id, "purpose id")?,
            purpose_version: u32_field(self.purpose_version, "purpose version")?,
            change: enum_field(
                ConsentEventKind::parse(&self.kind),
                &self.kind,
                "consent event",
            )?,
            at: time(self.at)?,
            actor: from_json(&self.actor, "consent event actor")?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct RawOperatorLogEntry {
    pub log_seq: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
}

impl RawOperatorLogEntry {
    pub fn into_domain(self) -> StoreResult<renkei_domain::OperatorLogEntry> {
        Ok(renkei_domain::OperatorLogEntry {
            seq: seq_u64(self.log_seq)?,
            at: time(self.at)?,
            actor: from_json(&self.actor, "operator action actor")?,
            action: from_json(&self.action, "operator action")?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct RawFulfilment {
    pub log_seq: i64,
    pub request_id: String,
    pub at: i64,
    pub service_id: String,
    pub resident_id: String,
    pub providers: String,
}

impl RawFulfilment {
    pub fn into_domain(self) -> StoreResult<renkei_domain::FulfilmentLogEntry> {
        Ok(renkei_domain::FulfilmentLogEntry {
            seq: seq_u64(self.log_seq)?,
            request: parse(&self.request_id, "request id")?,
            at: time(self.at)?,
            service: parse(&self.service_id, "service id")?,
            resident: parse(&self.resident_id, "resident id")?,
            providers: from_json(&self.providers, "fulfilment providers")?,
        })
    }
}

/// Joins leaves and rows of log positions `start..end` by position, keeping what is missing
/// or unreadable visible (verification must name it, not stop at it).
pub fn assemble_range(
    start: i64,
    end: i64,
    leaves: Vec<(i64, String, Vec<u8>, Vec<u8>)>,
    access: Vec<RawAccessRecord>,
    consents: Vec<RawConsentLogEntry>,
    operators: Vec<RawOperatorLogEntry>,
    fulfilments: Vec<RawFulfilment>,
) -> Vec<crate::StoredEntry> {
    use std::collections::BTreeMap;
    let mut leaf_at: BTreeMap<i64, crate::StoredLeaf> = BTreeMap::new();
    for (seq, kind, salt, leaf_hash) in leaves {
        if let Ok(s) = seq_u64(seq) {
            leaf_at.insert(
                seq,
                crate::StoredLeaf {
                    seq: s,
                    kind,
                    salt,
                    leaf_hash,
                },
            );
        }
    }
    let mut entry_at: BTreeMap<i64, Result<renkei_domain::LogEntry, String>> = BTreeMap::new();
    let mut place = |seq: i64, entry: StoreResult<renkei_domain::LogEntry>| {
        // A duplicated position is itself tampering: keep it as unreadable.
        let slot = if entry_at.contains_key(&seq) {
            Err("two rows claim this position".to_owned())
        } else {
            entry.map_err(|e| e.to_string())
        };
        entry_at.insert(seq, slot);
    };
    for raw in access {
        let seq = raw.seq;
        place(seq, raw.into_domain().map(renkei_domain::LogEntry::Access));
    }
    for raw in consents {
        let Some(seq) = raw.log_seq else { continue };
        place(seq, raw.into_domain().map(renkei_domain::LogEntry::Consent));
    }
    for raw in operators {
        let seq = raw.log_seq;
        place(
            seq,
            raw.into_domain().map(renkei_domain::LogEntry::Operator),
        );
    }
    for raw in fulfilments {
        let seq = raw.log_seq;
        place(
            seq,
            raw.into_domain().map(renkei_domain::LogEntry::Fulfilment),
        );
    }
    let last = leaf_at
        .keys()
        .chain(entry_at.keys())
        .copied()
        .max()
        .map_or(start, |m| m + 1)
        .min(end);
    (start..last)
        .filter_map(|seq| {
            Some(crate::StoredEntry {
                seq: seq_u64(seq).ok()?,
                leaf: leaf_at.remove(&seq),
                entry: entry_at.remove(&seq),
            })
        })
        .collect()
}

/// A parameter of a statement built at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlParam {
    Int(i64),
    Text(String),
}

/// How a backend writes the parameters of statements built at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholders {
    /// `$1, $2, …` (PostgreSQL).
    Numbered,
    /// `?, ?, …` (SQLite): its numbered parameters cost a name look-up per bind, which is
    /// quadratic in a multi-row insert.
    Anonymous,
}

impl Placeholders {
    /// Parameters `first..first + count` (numbers only, safe to splice into SQL). Anonymous
    /// ones take their position from the order of binding.
    pub fn list(self, first: usize, count: usize) -> String {
        let mut out = String::with_capacity(count * 4);
        self.push_list(&mut out, first, count);
        out
    }

    /// `(…), (…)` for a multi-row `VALUES` of `rows` rows of `width` parameters.
    pub fn rows(self, width: usize, rows: usize) -> String {
        let mut out = String::with_capacity(rows * (width * 4 + 4));
        for r in 0..rows {
            if r > 0 {
                out.push_str(", ");
            }
            out.push('(');
            self.push_list(&mut out, r * width + 1, width);
            out.push(')');
        }
        out
    }

    fn push_list(self, out: &mut String, first: usize, count: usize) {
        use std::fmt::Write;
        for i in first..first + count {
            if i > first {
                out.push_str(", ");
            }
            match self {
                // Writing to a String cannot fail.
                Self::Numbered => {
                    let _ = write!(out, "${i}");
                }
                Self::Anonymous => out.push('?'),
            }
        }
    }
}

/// The most entries appended by one multi-row `INSERT` (11 parameters each).
pub const APPEND_CHUNK: usize = 128;

/// The most tree hashes the log integrator writes in one transaction: enough that a
/// checkpoint takes a handful, few enough that a decision batch waiting for the one writer
/// waits well under a millisecond.
pub const INTEGRATE_CHUNK: usize = 256;

/// The most values in one `IN (…)` list of a batch's reads.
pub const IN_LIST_MAX: usize = 512;

/// How many parameters an `IN (…)` list of `n` values is written with: the next power of two,
/// so that a handful of statement texts serve every batch size and stay prepared in the
/// connection's statement cache instead of being parsed again for each batch.
pub fn in_list_len(n: usize) -> usize {
    n.max(1).next_power_of_two()
}

/// The values of an `IN (…)` list padded to [`in_list_len`] by repeating the last one (a
/// repeated value does not change what `IN` matches).
pub fn padded<T>(values: &[T]) -> impl Iterator<Item = &T> {
    let pad = in_list_len(values.len()) - values.len();
    values
        .iter()
        .chain(values.last().into_iter().cycle().take(pad))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_lists_are_padded_to_a_power_of_two_with_the_last_value() {
        let list: Vec<_> = padded(&[1, 2, 3, 4, 5]).copied().collect();
        assert_eq!(list, [1, 2, 3, 4, 5, 5, 5, 5]);
        assert_eq!(list.len(), in_list_len(5));
        assert_eq!(padded(&[7]).count(), 1);
        assert_eq!(padded::<u8>(&[]).count(), 0);
    }

    #[test]
    fn placeholders_number_rows_consecutively() {
        assert_eq!(Placeholders::Numbered.list(2, 3), "$2, $3, $4");
        assert_eq!(Placeholders::Numbered.rows(2, 2), "($1, $2), ($3, $4)");
        assert_eq!(Placeholders::Anonymous.rows(2, 2), "(?, ?), (?, ?)");
    }
}
