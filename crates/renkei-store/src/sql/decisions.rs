//! The decision batch: in the one transaction that appends its access records, reads what
//! the decision cache lacks (one statement per batch, not per request), lets `crate::batch`
//! decide and assemble the records, and writes them. No rule of the consent check is here:
//! they are all `renkei_domain::decide`'s.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use renkei_domain::{AccessRecord, ResidentId};

use super::catalogue::{CURRENT_PURPOSE, SERVICE};
use super::emergency::live_declarations;
use super::log::reserve_log_seqs;
use super::{Backend, Conn, INSERT_ROWS, PLACEHOLDERS, all, optional};
use crate::batch::{self, Assembled, Decided};
use crate::codec::{self, APPEND_CHUNK, IN_LIST_MAX, NewLeaf, in_list_len, padded};
use crate::decision_cache::DecisionCache;
use crate::rows::{
    RawConsent, RawLocator, RawProvider, RawPurpose, RawService, consent_columns, provider_columns,
};
use crate::{DecisionInput, Durability, StagedDecisions, StoreError, StoreResult};

pub(super) async fn decide_and_stage(
    store: &Backend,
    batch: &[DecisionInput],
    now: DateTime<Utc>,
) -> StoreResult<StagedDecisions> {
    if batch.is_empty() {
        return Ok(StagedDecisions {
            decisions: Vec::new(),
            commit: Box::pin(async { Ok(Durability::already()) }),
        });
    }
    // Records keep millisecond precision; return them exactly as stored.
    let now = codec::time(codec::millis(now))?;
    let mut tx = store.begin_batch().await?;
    let count =
        i64::try_from(batch.len()).map_err(|_| StoreError::Invalid("batch too large".into()))?;
    // Reserving the sequence numbers first takes the log head's row lock, so batches from
    // several replicas append one after another, gap-free.
    let first_seq = reserve_log_seqs(&mut tx, count).await?;
    // What decisions read is kept between batches while the decision clock stands still
    // (`decision_cache`). INVARIANT: the clock, and then whatever is missing, is read only
    // after the lock is held, each by a statement of its own: under READ COMMITTED a
    // statement sees what was committed when it started, so a statement that waited for the
    // lock (as the reservation may) still sees the state from before its wait. Read after
    // it, a revocation whose log entry precedes this batch is seen by every decision in it:
    // the log's order is the order of decisions.
    let clock: i64 = sqlx::query_scalar("SELECT value FROM decision_clock WHERE id = 1")
        .fetch_one(&mut *tx)
        .await?;
    let mut cache = store.decision_cache.take();
    cache.at_clock(clock);
    // The batch shares the transaction, so all its decisions see the same state.
    read_facts(&mut tx, &mut cache, batch).await?;
    if cache.declarations.is_none() {
        // A day's margin, so a batch whose clock is a little behind the one that filled the
        // cache finds the declarations it would read itself; the decision judges each window.
        let since = now - chrono::TimeDelta::days(1);
        cache.declarations = Some(live_declarations(&mut tx, since).await?);
    }
    let decided = batch::decide(&cache, batch, now);
    read_where_data_lives(&mut tx, &mut cache, &decided).await?;
    let assembled = batch::assemble(&cache, batch, decided, first_seq, now)?;
    store.decision_cache.put_back(cache);
    append(&mut tx, &assembled).await?;
    let store = store.clone();
    Ok(StagedDecisions {
        decisions: assembled.decisions,
        commit: Box::pin(async move { store.commit_batch(tx).await }),
    })
}

/// Reads into the cache what the batch's decisions rest on and it lacks: services, current
/// purposes, the residents subjects name, revoked tokens, and those residents' consents.
async fn read_facts(
    conn: &mut Conn,
    cache: &mut DecisionCache,
    batch: &[DecisionInput],
) -> StoreResult<()> {
    for service in batch::services_to_read(cache, batch) {
        let query = sqlx::query_as::<_, RawService>(SERVICE).bind(service.as_str());
        let read = optional(query, &mut *conn).await?;
        cache.services.insert(service, read);
    }
    for key in batch::purposes_to_read(cache, batch) {
        let query = sqlx::query_as::<_, RawPurpose>(CURRENT_PURPOSE)
            .bind(key.0.as_str())
            .bind(key.1.as_str());
        let read = optional(query, &mut *conn).await?;
        cache.purposes.insert(key, read);
    }
    for (sector, subjects) in batch::subjects_to_read(cache, batch) {
        for chunk in subjects.chunks(IN_LIST_MAX) {
            let sql = format!(
                "SELECT subject, resident_id FROM subjects WHERE sector = {} AND subject IN ({})",
                PLACEHOLDERS.list(1, 1),
                in_list(2, chunk.len())
            );
            let mut query =
                sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql)).bind(&sector);
            for subject in padded(chunk) {
                query = query.bind(subject);
            }
            let mut found: HashMap<String, ResidentId> = HashMap::new();
            for (subject, resident) in query.fetch_all(&mut *conn).await? {
                found.insert(subject, codec::parse(&resident, "resident id")?);
            }
            for subject in chunk {
                let resident = found.get(subject).copied();
                cache
                    .residents
                    .insert((sector.clone(), subject.clone()), resident);
            }
        }
    }
    // Bearer tokens the services revoked (RFC 7009), read like the consents.
    for chunk in batch::tokens_to_read(cache, batch).chunks(IN_LIST_MAX) {
        let sql = format!(
            "SELECT jti FROM revoked_tokens WHERE jti IN ({})",
            in_list(1, chunk.len())
        );
        let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
        for jti in padded(chunk) {
            query = query.bind(jti);
        }
        let revoked: HashSet<String> = query.fetch_all(&mut *conn).await?.into_iter().collect();
        for jti in chunk {
            cache
                .revoked_tokens
                .insert(jti.clone(), revoked.contains(jti));
        }
    }
    // Every consent of the residents concerned; the latest per purpose decides.
    for chunk in batch::consents_to_read(cache, batch).chunks(IN_LIST_MAX) {
        let sql = format!(
            concat!(
                "SELECT ",
                consent_columns!(),
                " FROM consents WHERE resident_id IN ({})"
            ),
            in_list(1, chunk.len())
        );
        let mut query = sqlx::query_as::<_, RawConsent>(sqlx::AssertSqlSafe(sql));
        for r in padded(chunk) {
            query = query.bind(r.to_string());
        }
        for r in chunk {
            cache.consents.insert(*r, HashMap::new());
        }
        for consent in all(query, &mut *conn).await? {
            batch::keep_if_latest(cache, consent);
        }
    }
    Ok(())
}

/// Reads into the cache where the granted residents' data lives and the providers holding
/// it, when it lacks them.
async fn read_where_data_lives(
    conn: &mut Conn,
    cache: &mut DecisionCache,
    decided: &[Decided],
) -> StoreResult<()> {
    for chunk in batch::locators_to_read(cache, decided).chunks(IN_LIST_MAX) {
        let sql = format!(
            "SELECT resident_id, category_id, provider_id, reference FROM locators
             WHERE resident_id IN ({}) ORDER BY resident_id, category_id",
            in_list(1, chunk.len())
        );
        let mut query = sqlx::query_as::<_, RawLocator>(sqlx::AssertSqlSafe(sql));
        for r in padded(chunk) {
            query = query.bind(r.to_string());
        }
        for r in chunk {
            cache.locators.insert(*r, Vec::new());
        }
        for l in all(query, &mut *conn).await? {
            cache.locators.entry(l.resident).or_default().push(l);
        }
    }
    if batch::providers_to_read(cache, decided) {
        let query = sqlx::query_as::<_, RawProvider>(concat!(
            "SELECT ",
            provider_columns!(),
            " FROM providers"
        ));
        let providers = all(query, &mut *conn).await?;
        cache.providers = Some(providers.into_iter().map(|p| (p.id.clone(), p)).collect());
    }
    Ok(())
}

/// Appends the batch's access records and their leaves, a few multi-row statements per batch.
async fn append(conn: &mut Conn, assembled: &Assembled) -> StoreResult<()> {
    // INVARIANT: one leaf per record, in the same order (`batch.rs` builds them together);
    // checked, so that a mismatch fails the batch rather than dropping rows from the zip.
    if assembled.leaves.len() != assembled.decisions.len() {
        return Err(StoreError::Invalid(format!(
            "a batch of {} records came with {} leaves",
            assembled.decisions.len(),
            assembled.leaves.len()
        )));
    }
    let records: Vec<&AccessRecord> = assembled.decisions.iter().map(|d| &d.record).collect();
    append_records(conn, &records, &assembled.leaves).await
}

/// Appends access records and their leaves (one each, in the same order), a few multi-row
/// statements per [`APPEND_CHUNK`].
pub(super) async fn append_records(
    conn: &mut Conn,
    records: &[&AccessRecord],
    leaves: &[NewLeaf],
) -> StoreResult<()> {
    let chunks = records
        .chunks(APPEND_CHUNK)
        .zip(leaves.chunks(APPEND_CHUNK));
    for (chunk, leaves) in chunks {
        let sql = format!(
            "{INSERT_ROWS} access_records (seq, request_id, at, service_id, resident_id, purpose_id,
             purpose_version, categories, basis, outcome, providers) VALUES {}",
            PLACEHOLDERS.rows(11, chunk.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for r in chunk {
            query = query
                .bind(codec::seq_i64(r.seq)?)
                .bind(r.request.to_string())
                .bind(codec::millis(r.at))
                .bind(r.service.as_str().to_owned())
                .bind(r.resident.map(|x| x.to_string()))
                .bind(r.purpose.as_str().to_owned())
                .bind(r.purpose_version.map(i64::from))
                .bind(codec::to_json(&r.categories)?)
                .bind(codec::to_json(&r.basis)?)
                .bind(codec::outcome_column(&r.outcome).to_owned())
                .bind(codec::to_json(&r.providers)?);
        }
        query.execute(&mut *conn).await?;
        let sql = format!(
            "{INSERT_ROWS} log_leaves (seq, kind, salt, leaf_hash) VALUES {}",
            PLACEHOLDERS.rows(4, chunk.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (r, leaf) in chunk.iter().zip(leaves) {
            query = query
                .bind(codec::seq_i64(r.seq)?)
                .bind(leaf.kind)
                .bind(leaf.salt.to_vec())
                .bind(leaf.hash.as_bytes().to_vec());
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Placeholders `first..` of an `IN (…)` list of `n` values, padded to a power of two (see
/// [`codec::padded`]) so a handful of statement texts serve every batch and stay prepared.
pub(super) fn in_list(first: usize, n: usize) -> String {
    PLACEHOLDERS.list(first, in_list_len(n))
}
