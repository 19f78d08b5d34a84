//! The rows [`crate::Store`] reads, as plain structs of strings and integers (`Raw*`), and
//! their conversion to domain types ([`IntoDomain`]): written once for both backends, so every
//! malformed row becomes [`StoreError::Corrupt`], never a panic. The column lists each shape
//! reads are here too, beside the field order they must follow. Identity's rows are in
//! [`identity`].

pub mod identity;
pub mod locators;

use std::collections::BTreeSet;

use renkei_domain::{
    AccessBasis, AccessOutcome, AccessRecord, Actor, CategoryId, Consent, ConsentChannel,
    ConsentEvent, ConsentEventKind, DataCategory, LegalBasis, LocalizedText, LocationPrecision,
    LocationUse, Locator, Provider, ProviderConnection, ProviderStatus, Purpose, PurposeRef,
    Service, ServiceStatus,
};

use crate::codec::{
    IntoDomain, enum_field, from_json, hash32, opt_time, parse, seq_u64, time, u32_field,
};
use crate::{StoreError, StoreResult};

/// The columns of `purposes` that [`RawPurpose`] reads, in its field order.
macro_rules! purpose_columns {
    () => {
        "service_id, purpose_id, version, title_ja, title_en, description_ja, description_en, categories, retention_days, legal_basis, emergency_only, location_precision, location_retention_days"
    };
}

/// The columns of `consents` that [`RawConsent`] reads, in its field order.
macro_rules! consent_columns {
    () => {
        "id, resident_id, service_id, purpose_id, purpose_version, categories, legal_basis, granted_at, expires_at, given_via, given_by, revoked_at, form_reference"
    };
}

/// Reads [`RawConsentLogEntry`]s: consent events joined with their consents.
macro_rules! consent_log_select {
    () => {
        "SELECT e.log_seq, e.consent_id, c.resident_id, c.service_id, c.purpose_id, c.purpose_version, e.kind, e.at, e.actor
         FROM consent_events e JOIN consents c ON c.id = e.consent_id"
    };
}

/// Reads [`RawFulfilment`]s.
macro_rules! fulfilment_select {
    () => {
        "SELECT log_seq, request_id, at, service_id, resident_id, providers FROM fulfilments"
    };
}

/// The columns of `services` that [`RawService`] reads, in its field order.
macro_rules! service_columns {
    () => {
        "id, name_ja, name_en, sector, hpke_public_key, webhook_url, status"
    };
}

/// The columns of `providers` that [`RawProvider`] reads, in its field order.
macro_rules! provider_columns {
    () => {
        "id, name_ja, name_en, endpoint, categories, max_answer_bytes, status, connection, signing_keys, contact"
    };
}

/// The columns of `access_records` that [`RawAccessRecord`] reads, in its field order.
macro_rules! access_columns {
    () => {
        "seq, request_id, at, service_id, resident_id, purpose_id, purpose_version, categories, basis, outcome, providers"
    };
}

pub(crate) use {
    access_columns, consent_columns, consent_log_select, fulfilment_select, provider_columns,
    purpose_columns, service_columns,
};

#[derive(sqlx::FromRow)]
pub struct RawCategory {
    pub id: String,
    pub name_ja: String,
    pub name_en: String,
    pub special_care: bool,
    pub location: bool,
}

impl IntoDomain for RawCategory {
    type Domain = DataCategory;

    fn into_domain(self) -> StoreResult<DataCategory> {
        Ok(DataCategory {
            id: parse(&self.id, "category id")?,
            name: LocalizedText::new(self.name_ja, self.name_en),
            special_care: self.special_care,
            location: self.location,
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

impl IntoDomain for RawService {
    type Domain = Service;

    fn into_domain(self) -> StoreResult<Service> {
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
    pub emergency_only: bool,
    pub location_precision: Option<String>,
    pub location_retention_days: Option<i64>,
}

impl IntoDomain for RawPurpose {
    type Domain = Purpose;

    fn into_domain(self) -> StoreResult<Purpose> {
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
            emergency_only: self.emergency_only,
            location: match (self.location_precision, self.location_retention_days) {
                (Some(precision), Some(days)) => Some(LocationUse {
                    precision: enum_field(
                        LocationPrecision::parse(&precision),
                        &precision,
                        "location precision",
                    )?,
                    retention_days: u32_field(days, "location retention days")?,
                }),
                _ => None,
            },
        })
    }
}

/// A declaration's row: its JSON body (the other columns are for queries).
#[derive(sqlx::FromRow)]
pub struct RawDeclaration {
    pub body: String,
}

impl IntoDomain for RawDeclaration {
    type Domain = renkei_domain::Declaration;

    fn into_domain(self) -> StoreResult<renkei_domain::Declaration> {
        from_json(&self.body, "declaration")
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
    pub status: String,
    pub connection: String,
    pub signing_keys: String,
    pub contact: Option<String>,
}

impl IntoDomain for RawProvider {
    type Domain = Provider;

    fn into_domain(self) -> StoreResult<Provider> {
        let connection = match self.connection.as_str() {
            "inbound" => ProviderConnection::Inbound {
                endpoint: self.endpoint,
            },
            "outbound" => ProviderConnection::Outbound,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "unknown provider connection `{other}`"
                )));
            }
        };
        Ok(Provider {
            id: parse(&self.id, "provider id")?,
            name: LocalizedText::new(self.name_ja, self.name_en),
            connection,
            categories: from_json(&self.categories, "provider categories")?,
            max_answer_bytes: self
                .max_answer_bytes
                .map(|n| {
                    u64::try_from(n).map_err(|_| {
                        StoreError::Corrupt(format!("negative answer limit {n} of a provider"))
                    })
                })
                .transpose()?,
            signing_keys: from_json(&self.signing_keys, "provider signing keys")?,
            contact: self
                .contact
                .map(|c| from_json(&c, "provider contact"))
                .transpose()?,
            status: enum_field(
                ProviderStatus::parse(&self.status),
                &self.status,
                "provider status",
            )?,
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

impl IntoDomain for RawLocator {
    type Domain = Locator;

    fn into_domain(self) -> StoreResult<Locator> {
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
    pub form_reference: Option<String>,
}

impl IntoDomain for RawConsent {
    type Domain = Consent;

    fn into_domain(self) -> StoreResult<Consent> {
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
            form_reference: self
                .form_reference
                .map(|f| parse(&f, "form reference"))
                .transpose()?,
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

impl IntoDomain for RawConsentEvent {
    type Domain = ConsentEvent;

    fn into_domain(self) -> StoreResult<ConsentEvent> {
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

impl IntoDomain for RawAccessRecord {
    type Domain = AccessRecord;

    fn into_domain(self) -> StoreResult<AccessRecord> {
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

fn outcome_from_column(s: &str) -> AccessOutcome {
    if s == "granted" {
        AccessOutcome::Granted
    } else {
        AccessOutcome::Denied {
            reason: s.to_owned(),
        }
    }
}

#[derive(sqlx::FromRow)]
pub struct RawCheckpoint {
    pub size: i64,
    pub root: Vec<u8>,
    pub note: String,
    pub signed_at: i64,
}

impl IntoDomain for RawCheckpoint {
    type Domain = crate::StoredCheckpoint;

    fn into_domain(self) -> StoreResult<crate::StoredCheckpoint> {
        Ok(crate::StoredCheckpoint {
            size: seq_u64(self.size)?,
            root: hash32(&self.root, "checkpoint root")?,
            note: self.note,
            signed_at: time(self.signed_at)?,
        })
    }
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

impl IntoDomain for RawConsentLogEntry {
    type Domain = renkei_domain::ConsentLogEntry;

    fn into_domain(self) -> StoreResult<renkei_domain::ConsentLogEntry> {
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

impl IntoDomain for RawOperatorLogEntry {
    type Domain = renkei_domain::OperatorLogEntry;

    fn into_domain(self) -> StoreResult<renkei_domain::OperatorLogEntry> {
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

impl IntoDomain for RawFulfilment {
    type Domain = renkei_domain::FulfilmentLogEntry;

    fn into_domain(self) -> StoreResult<renkei_domain::FulfilmentLogEntry> {
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

/// What a range of log positions holds: its leaves and the rows of each kind of entry.
pub struct RangeRows {
    pub leaves: Vec<(i64, String, Vec<u8>, Vec<u8>)>,
    pub access: Vec<RawAccessRecord>,
    pub consents: Vec<RawConsentLogEntry>,
    pub operators: Vec<RawOperatorLogEntry>,
    pub fulfilments: Vec<RawFulfilment>,
    pub locator_syncs: Vec<locators::RawLocatorSync>,
    pub rights: Vec<locators::RawRightsEntry>,
}

/// Joins leaves and rows of log positions `start..end` by position, keeping what is missing
/// or unreadable visible (verification must name it, not stop at it).
pub fn assemble_range(start: i64, end: i64, rows: RangeRows) -> Vec<crate::StoredEntry> {
    use std::collections::BTreeMap;
    let RangeRows {
        leaves,
        access,
        consents,
        operators,
        fulfilments,
        locator_syncs,
        rights,
    } = rows;
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
    for raw in locator_syncs {
        let seq = raw.log_seq;
        place(
            seq,
            raw.into_domain().map(renkei_domain::LogEntry::LocatorSync),
        );
    }
    for raw in rights {
        let seq = raw.log_seq;
        place(seq, raw.into_domain().map(renkei_domain::LogEntry::Rights));
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
