//! The rows of providers' locator syncs (see `rows.rs`): the log's `locator_syncs` entries
//! and a provider's own locators as it names them; and the log's `rights_log` entries (a routed
//! request's steps).

use renkei_domain::{LocatorSyncCounts, LocatorSyncLogEntry, ProviderLocator};

use crate::codec::{IntoDomain, parse, seq_u64, time};
use crate::{StoreError, StoreResult};

/// Reads [`RawLocatorSync`]s.
macro_rules! locator_sync_select {
    () => {
        "SELECT log_seq, at, provider_id, batch_id, upserted, removed, unchanged, not_applied
         FROM locator_syncs"
    };
}

pub(crate) use locator_sync_select;

#[derive(sqlx::FromRow)]
pub struct RawLocatorSync {
    pub log_seq: i64,
    pub at: i64,
    pub provider_id: String,
    pub batch_id: String,
    pub upserted: i64,
    pub removed: i64,
    pub unchanged: i64,
    pub not_applied: i64,
}

impl IntoDomain for RawLocatorSync {
    type Domain = LocatorSyncLogEntry;

    fn into_domain(self) -> StoreResult<LocatorSyncLogEntry> {
        let count = |n: i64| {
            u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("negative count {n}")))
        };
        Ok(LocatorSyncLogEntry {
            seq: seq_u64(self.log_seq)?,
            at: time(self.at)?,
            provider: parse(&self.provider_id, "provider id")?,
            batch: parse(&self.batch_id, "locator batch id")?,
            counts: LocatorSyncCounts {
                upserted: count(self.upserted)?,
                removed: count(self.removed)?,
                unchanged: count(self.unchanged)?,
                not_applied: count(self.not_applied)?,
            },
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct RawProviderLocator {
    pub subject: String,
    pub category_id: String,
    pub reference: String,
}

impl IntoDomain for RawProviderLocator {
    type Domain = ProviderLocator;

    fn into_domain(self) -> StoreResult<ProviderLocator> {
        Ok(ProviderLocator {
            subject: parse(&self.subject, "provider subject")?,
            category: parse(&self.category_id, "data category")?,
            reference: self.reference,
        })
    }
}

/// Reads [`RawRightsEntry`]s.
macro_rules! rights_select {
    () => {
        "SELECT log_seq, at, request_id, resident_id, request_kind, event FROM rights_log"
    };
}

pub(crate) use rights_select;

/// A `rights_log` row: a routed request's step (`renkei_domain::RightsLogEntry`).
#[derive(sqlx::FromRow)]
pub struct RawRightsEntry {
    pub log_seq: i64,
    pub at: i64,
    pub request_id: String,
    pub resident_id: String,
    pub request_kind: String,
    pub event: String,
}

impl IntoDomain for RawRightsEntry {
    type Domain = renkei_domain::RightsLogEntry;

    fn into_domain(self) -> StoreResult<renkei_domain::RightsLogEntry> {
        Ok(renkei_domain::RightsLogEntry {
            seq: seq_u64(self.log_seq)?,
            at: time(self.at)?,
            request: parse(&self.request_id, "resident request id")?,
            resident: parse(&self.resident_id, "resident id")?,
            request_kind: renkei_domain::ResidentRequestKind::parse(&self.request_kind)
                .ok_or_else(|| {
                    StoreError::Corrupt(format!("unknown request kind `{}`", self.request_kind))
                })?,
            event: crate::codec::from_json(&self.event, "rights event")?,
        })
    }
}
