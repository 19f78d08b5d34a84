//! The transparency log's tree: leaf hashes, stored node hashes, checkpoints, and log
//! positions read back whole for verification.

use std::collections::HashMap;

use super::{Backend, INSERT_ROWS, PLACEHOLDERS, all, optional};
use crate::codec;
use crate::rows::locators::{RawLocatorSync, RawRightsEntry, locator_sync_select, rights_select};
use crate::rows::{
    RawAccessRecord, RawCheckpoint, RawConsentLogEntry, RawFulfilment, RawOperatorLogEntry,
    access_columns, consent_log_select, fulfilment_select,
};
use crate::{StoreError, StoreResult, StoredCheckpoint, StoredEntry};

/// The most tree hashes the log integrator writes in one transaction: enough that a
/// checkpoint takes a handful, few enough that a decision batch waiting for the one writer
/// waits well under a millisecond.
const INTEGRATE_CHUNK: usize = 256;

pub(super) async fn log_leaf_hashes(
    store: &Backend,
    from: u64,
    limit: u32,
) -> StoreResult<Vec<renkei_log::Hash>> {
    let from = codec::seq_i64(from)?;
    let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
        "SELECT seq, leaf_hash FROM log_leaves WHERE seq >= $1 ORDER BY seq LIMIT $2",
    )
    .bind(from)
    .bind(i64::from(limit))
    .fetch_all(&store.read)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for (expected, (seq, hash)) in (from..).zip(rows) {
        if seq != expected {
            return Err(StoreError::Corrupt(format!(
                "log leaf {expected} is missing"
            )));
        }
        out.push(codec::hash32(&hash, "leaf hash")?);
    }
    Ok(out)
}

pub(super) async fn read_log_hashes(
    store: &Backend,
    indexes: &[u64],
) -> StoreResult<Vec<renkei_log::Hash>> {
    let mut found = HashMap::with_capacity(indexes.len());
    let cached = store.upper_hashes.get(indexes);
    let missing: Vec<u64> = indexes
        .iter()
        .zip(&cached)
        .filter_map(|(i, c)| match c {
            Some(h) => {
                found.insert(*i, *h);
                None
            }
            None => Some(*i),
        })
        .collect();
    let mut read = Vec::with_capacity(missing.len());
    // Chunks keep the statement's parameter count well under every backend's limit.
    for chunk in missing.chunks(500) {
        let list = chunk
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let sql = format!("SELECT idx, hash FROM log_hashes WHERE idx IN ({list})");
        // INVARIANT: `list` is made of u64 numbers only. Each list is new, so the
        // statement is not kept prepared (it would only push useful ones out).
        let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .persistent(false)
            .fetch_all(&store.read)
            .await?;
        for (idx, hash) in rows {
            let (idx, hash) = (codec::seq_u64(idx)?, codec::hash32(&hash, "node hash")?);
            found.insert(idx, hash);
            read.push((idx, hash));
        }
    }
    store.upper_hashes.keep(&read);
    indexes
        .iter()
        .map(|i| {
            found
                .get(i)
                .copied()
                .ok_or_else(|| StoreError::NotFound(format!("log hash {i}")))
        })
        .collect()
}

pub(super) async fn integrate(
    store: &Backend,
    hashes: &[(u64, renkei_log::Hash)],
    checkpoint: &StoredCheckpoint,
) -> StoreResult<()> {
    // The integrator shares the one writer with the decision batches: its hashes
    // go in a few hundred per transaction, each committed like a batch (on SQLite
    // without an fsync of its own), so a decision batch never waits behind a whole
    // checkpoint's worth of rows. The checkpoint comes last, and is returned only
    // once it is durable, and with it every transaction before it.
    // INVARIANT: the tree's hashes are committed before the checkpoint that
    // covers them; hashes past the latest checkpoint are never served.
    for chunk in hashes.chunks(INTEGRATE_CHUNK) {
        let mut tx = store.begin_batch().await?;
        let sql = format!(
            "{INSERT_ROWS} log_hashes (idx, hash) VALUES {} ON CONFLICT (idx) DO NOTHING",
            PLACEHOLDERS.rows(2, chunk.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (idx, hash) in chunk {
            query = query
                .bind(codec::seq_i64(*idx)?)
                .bind(hash.as_bytes().to_vec());
        }
        query.execute(&mut *tx).await?;
        // No wait of its own (nor, on SQLite, an fsync asked for): the
        // checkpoint's wait below covers every transaction before it.
        tx.commit().await?;
    }
    let mut tx = store.begin_batch().await?;
    sqlx::query(
        "INSERT INTO log_checkpoints (size, root, note, signed_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (size) DO NOTHING",
    )
    .bind(codec::seq_i64(checkpoint.size)?)
    .bind(&checkpoint.root.as_bytes()[..])
    .bind(&checkpoint.note)
    .bind(codec::millis(checkpoint.signed_at))
    .execute(&mut *tx)
    .await?;
    store.commit_batch(tx).await?.wait().await?;
    Ok(())
}

pub(super) async fn latest_checkpoint(store: &Backend) -> StoreResult<Option<StoredCheckpoint>> {
    let query = sqlx::query_as::<_, RawCheckpoint>(
        "SELECT size, root, note, signed_at FROM log_checkpoints ORDER BY size DESC LIMIT 1",
    );
    optional(query, &store.read).await
}

pub(super) async fn checkpoint(
    store: &Backend,
    size: u64,
) -> StoreResult<Option<StoredCheckpoint>> {
    let query = sqlx::query_as::<_, RawCheckpoint>(
        "SELECT size, root, note, signed_at FROM log_checkpoints WHERE size = $1",
    )
    .bind(codec::seq_i64(size)?);
    optional(query, &store.read).await
}

pub(super) async fn checkpoints(store: &Backend) -> StoreResult<Vec<StoredCheckpoint>> {
    let query = sqlx::query_as::<_, RawCheckpoint>(
        "SELECT size, root, note, signed_at FROM log_checkpoints ORDER BY size",
    );
    all(query, &store.read).await
}

pub(super) async fn log_range(
    store: &Backend,
    from: u64,
    limit: u32,
) -> StoreResult<Vec<StoredEntry>> {
    let start = codec::seq_i64(from)?;
    let end = start.saturating_add(i64::from(limit));
    let leaves: Vec<(i64, String, Vec<u8>, Vec<u8>)> = sqlx::query_as(
        "SELECT seq, kind, salt, leaf_hash FROM log_leaves WHERE seq >= $1 AND seq < $2",
    )
    .bind(start)
    .bind(end)
    .fetch_all(&store.read)
    .await?;
    let access = sqlx::query_as::<_, RawAccessRecord>(concat!(
        "SELECT ",
        access_columns!(),
        " FROM access_records WHERE seq >= $1 AND seq < $2"
    ))
    .bind(start)
    .bind(end)
    .fetch_all(&store.read)
    .await?;
    let consents = sqlx::query_as::<_, RawConsentLogEntry>(concat!(
        consent_log_select!(),
        " WHERE e.log_seq >= $1 AND e.log_seq < $2"
    ))
    .bind(start)
    .bind(end)
    .fetch_all(&store.read)
    .await?;
    let operators = sqlx::query_as::<_, RawOperatorLogEntry>(
        "SELECT log_seq, at, actor, action FROM operator_actions WHERE log_seq >= $1 AND log_seq < $2",
    )
    .bind(start)
    .bind(end)
    .fetch_all(&store.read)
    .await?;
    let fulfilments = sqlx::query_as::<_, RawFulfilment>(concat!(
        fulfilment_select!(),
        " WHERE log_seq >= $1 AND log_seq < $2"
    ))
    .bind(start)
    .bind(end)
    .fetch_all(&store.read)
    .await?;
    let locator_syncs = sqlx::query_as::<_, RawLocatorSync>(concat!(
        locator_sync_select!(),
        " WHERE log_seq >= $1 AND log_seq < $2"
    ))
    .bind(start)
    .bind(end)
    .fetch_all(&store.read)
    .await?;
    let rights = sqlx::query_as::<_, RawRightsEntry>(concat!(
        rights_select!(),
        " WHERE log_seq >= $1 AND log_seq < $2"
    ))
    .bind(start)
    .bind(end)
    .fetch_all(&store.read)
    .await?;
    Ok(crate::rows::assemble_range(
        start,
        end,
        crate::rows::RangeRows {
            leaves,
            access,
            consents,
            operators,
            fulfilments,
            locator_syncs,
            rights,
        },
    ))
}
