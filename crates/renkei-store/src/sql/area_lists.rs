//! [`crate::EmergencyStore::record_area_list`] for this backend: an area list decided on
//! what its own transaction reads, and one access record per resident released, written
//! with their leaves in that transaction. No rule is here: `renkei_domain::decide_area_list`
//! judges; this file reads, resolves the providers' subjects and writes.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use renkei_domain::locator_sync::provider_sector;
use renkei_domain::{
    AccessBasis, AccessOutcome, AccessRecord, AreaListFacts, CategoryId, DenialReason, LogEntry,
    ProviderId, ResidentId, decide_area_list,
};

use super::catalogue::{CURRENT_PURPOSE, SERVICE};
use super::decisions::{append_records, in_list};
use super::log::reserve_log_seqs;
use super::{Backend, Conn, PLACEHOLDERS, optional};
use crate::codec::{self, IN_LIST_MAX, padded};
use crate::emergency::{AreaListOutcome, AreaRelease};
use crate::rows::{RawDeclaration, RawPurpose, RawService};
use crate::{StoreError, StoreResult};

pub(super) async fn record_area_list(
    store: &Backend,
    release: &AreaRelease,
    now: DateTime<Utc>,
) -> StoreResult<AreaListOutcome> {
    // Records keep millisecond precision; return them exactly as stored.
    let now = codec::time(codec::millis(now))?;
    let mut tx = store.begin_batch().await?;
    let residents = resolve(&mut tx, release).await?;
    // One record per resident, in the order their first entry came.
    let mut order: Vec<ResidentId> = Vec::new();
    let mut released: HashMap<ResidentId, (BTreeSet<ProviderId>, BTreeSet<CategoryId>)> =
        HashMap::new();
    for (entry, resident) in release.entries.iter().zip(&residents) {
        let Some(resident) = resident else { continue };
        let (providers, categories) = released.entry(*resident).or_insert_with(|| {
            order.push(*resident);
            Default::default()
        });
        providers.insert(entry.provider.clone());
        categories.extend(entry.categories.iter().cloned());
    }
    let count = i64::try_from(order.len())
        .map_err(|_| StoreError::Invalid("area list too large".into()))?;
    // INVARIANT: the positions are taken (and with them the log head's lock) before the
    // facts are read, so the decision sees every step of the declaration that precedes its
    // records in the log (see `decisions.rs` on READ COMMITTED).
    let first_seq = if count > 0 {
        Some(reserve_log_seqs(&mut tx, count).await?)
    } else {
        None
    };
    let (verdict, purpose_version) = decide(&mut tx, release, now).await?;
    let request = &release.request;
    let record = |seq: i64, resident, categories, providers, basis, outcome| {
        Ok::<_, StoreError>(AccessRecord {
            seq: codec::seq_u64(seq)?,
            request: request.id,
            at: now,
            service: request.service.clone(),
            resident,
            purpose: request.purpose.clone(),
            purpose_version,
            categories,
            basis,
            outcome,
            providers,
        })
    };
    if let Err(reason) = verdict {
        // Whatever was reserved for the residents goes back: the denial is one entry.
        tx.rollback().await?;
        let mut tx = store.begin_batch().await?;
        let seq = reserve_log_seqs(&mut tx, 1).await?;
        let outcome = AccessOutcome::Denied {
            reason: reason.code().to_owned(),
        };
        let denied = record(
            seq,
            None,
            request.categories.clone(),
            BTreeSet::new(),
            AccessBasis::None,
            outcome,
        )?;
        let leaf = codec::new_leaf(&LogEntry::Access(denied.clone()));
        append_records(&mut tx, &[&denied], &[leaf]).await?;
        store.commit_batch(tx).await?.wait().await?;
        return Ok(AreaListOutcome::Denied {
            reason,
            record: Box::new(denied),
        });
    }
    let Some(first_seq) = first_seq else {
        // Granted, nothing released (yet): nothing to write.
        tx.rollback().await?;
        return Ok(AreaListOutcome::Released {
            records: Vec::new(),
            entries: residents.iter().map(|_| None).collect(),
        });
    };
    let basis = AccessBasis::Emergency {
        declaration: request.declaration,
    };
    let mut records = Vec::with_capacity(order.len());
    let mut positions = HashMap::with_capacity(order.len());
    for (offset, resident) in (0_i64..).zip(&order) {
        let (providers, categories) = released.remove(resident).unwrap_or_default();
        let r = record(
            first_seq + offset,
            Some(*resident),
            categories,
            providers,
            basis.clone(),
            AccessOutcome::Granted,
        )?;
        positions.insert(*resident, r.seq);
        records.push(r);
    }
    let leaves: Vec<_> = records
        .iter()
        .map(|r| codec::new_leaf(&LogEntry::Access(r.clone())))
        .collect();
    let refs: Vec<&AccessRecord> = records.iter().collect();
    append_records(&mut tx, &refs, &leaves).await?;
    store.commit_batch(tx).await?.wait().await?;
    let entries = residents
        .iter()
        .map(|r| r.and_then(|r| positions.get(&r).map(|seq| (r, *seq))))
        .collect();
    Ok(AreaListOutcome::Released { records, entries })
}

/// Reads what the decision rests on and lets the domain judge; also answers the purpose's
/// current version, which the records state.
async fn decide(
    conn: &mut Conn,
    release: &AreaRelease,
    now: DateTime<Utc>,
) -> StoreResult<(Result<(), DenialReason>, Option<u32>)> {
    let request = &release.request;
    let service = optional(
        sqlx::query_as::<_, RawService>(SERVICE).bind(request.service.as_str()),
        &mut *conn,
    )
    .await?;
    let purpose = optional(
        sqlx::query_as::<_, RawPurpose>(CURRENT_PURPOSE)
            .bind(request.service.as_str())
            .bind(request.purpose.as_str()),
        &mut *conn,
    )
    .await?;
    let declaration = optional(
        sqlx::query_as::<_, RawDeclaration>("SELECT body FROM declarations WHERE id = $1")
            .bind(request.declaration.to_string()),
        &mut *conn,
    )
    .await?;
    let token_revoked = match &release.token_id {
        Some(jti) => {
            sqlx::query_scalar::<_, String>("SELECT jti FROM revoked_tokens WHERE jti = $1")
                .bind(jti)
                .fetch_optional(&mut *conn)
                .await?
                .is_some()
        }
        None => false,
    };
    let facts = AreaListFacts {
        token_revoked,
        service: service.as_ref(),
        purpose: purpose.as_ref(),
        declaration: declaration.as_ref(),
    };
    let version = purpose.as_ref().map(|p| p.version);
    Ok((decide_area_list(request, facts, now), version))
}

/// The resident each entry names, resolved within its provider's sector only: another
/// provider's subjects, or a service's, name no one here.
async fn resolve(conn: &mut Conn, release: &AreaRelease) -> StoreResult<Vec<Option<ResidentId>>> {
    let mut by_sector: HashMap<String, Vec<String>> = HashMap::new();
    for e in &release.entries {
        by_sector
            .entry(provider_sector(&e.provider))
            .or_default()
            .push(e.subject.as_str().to_owned());
    }
    let mut found: HashMap<(String, String), ResidentId> = HashMap::new();
    for (sector, mut subjects) in by_sector {
        subjects.sort();
        subjects.dedup();
        for chunk in subjects.chunks(IN_LIST_MAX) {
            let sql = format!(
                "SELECT subject, resident_id FROM subjects WHERE sector = {} AND subject IN ({})",
                PLACEHOLDERS.list(1, 1),
                in_list(2, chunk.len())
            );
            // INVARIANT: `sql` is made of fixed names and placeholders; values are bound.
            let mut query =
                sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql)).bind(&sector);
            for subject in padded(chunk) {
                query = query.bind(subject);
            }
            for (subject, resident) in query.fetch_all(&mut *conn).await? {
                let resident = codec::parse(&resident, "resident id")?;
                found.insert((sector.clone(), subject), resident);
            }
        }
    }
    Ok(release
        .entries
        .iter()
        .map(|e| {
            let key = (provider_sector(&e.provider), e.subject.as_str().to_owned());
            found.get(&key).copied()
        })
        .collect())
}
