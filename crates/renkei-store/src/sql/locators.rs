//! [`crate::LocatorStore`] for this backend: a provider's batch of locator changes, applied in
//! one transaction with its log entry, and the provider's own locators read back by page.
//!
//! Each chunk of a batch is resolved in one statement (the provider's subjects to residents,
//! with the locator each resident has for the category now), classified here, and written in
//! one more: two statements per few hundred items, so a large sync costs little more than its
//! rows.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use renkei_domain::locator_sync::provider_sector;
use renkei_domain::{
    CategoryId, LocatorBatch, LocatorRemoval, LocatorSyncCounts, LocatorSyncLogEntry,
    LocatorUpsert, LogEntry, ProviderId, ProviderLocator, ProviderSubject, ResidentId,
};

use super::log::{insert_leaf, reserve_log_seqs};
use super::{Backend, Conn, PLACEHOLDERS, all, optional};
use crate::codec;
use crate::rows::locators::{RawLocatorSync, RawProviderLocator, locator_sync_select};
use crate::{LocatorCursor, LocatorStore, StoreError, StoreResult};

/// Items resolved and written per statement: two parameters each to resolve, four to write,
/// well inside both backends' limits on parameters.
const SYNC_CHUNK: usize = 500;

#[async_trait::async_trait]
impl LocatorStore for Backend {
    async fn link_provider_subject(
        &self,
        provider: &ProviderId,
        subject: &ProviderSubject,
        resident: ResidentId,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO subjects (sector, subject, resident_id) VALUES ($1, $2, $3)
             ON CONFLICT (sector, subject) DO NOTHING",
        )
        .bind(provider_sector(provider))
        .bind(subject.as_str())
        .bind(resident.to_string())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn provider_subject_resident(
        &self,
        provider: &ProviderId,
        subject: &ProviderSubject,
    ) -> StoreResult<Option<ResidentId>> {
        let resident: Option<String> = sqlx::query_scalar(
            "SELECT resident_id FROM subjects WHERE sector = $1 AND subject = $2",
        )
        .bind(provider_sector(provider))
        .bind(subject.as_str())
        .fetch_optional(&self.read)
        .await?;
        resident
            .map(|r| codec::parse(&r, "resident id"))
            .transpose()
    }

    async fn sync_locators(
        &self,
        batch: &LocatorBatch,
        at: DateTime<Utc>,
    ) -> StoreResult<LocatorSyncLogEntry> {
        sync_locators(self, batch, at).await
    }

    async fn spend_client_assertion(
        &self,
        issuer: &str,
        jti: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut tx = self.write.begin().await?;
        sqlx::query("DELETE FROM used_client_assertions WHERE expires_at < $1")
            .bind(codec::millis(now))
            .execute(&mut *tx)
            .await?;
        let spent = sqlx::query(
            "INSERT INTO used_client_assertions (issuer, jti, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (issuer, jti) DO NOTHING",
        )
        .bind(issuer)
        .bind(jti)
        .bind(codec::millis(expires_at))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(spent == 1)
    }

    async fn provider_locators(
        &self,
        provider: &ProviderId,
        after: Option<&LocatorCursor>,
        limit: u32,
    ) -> StoreResult<Vec<ProviderLocator>> {
        provider_locators(self, provider, after, limit).await
    }
}

async fn sync_locators(
    store: &Backend,
    batch: &LocatorBatch,
    at: DateTime<Utc>,
) -> StoreResult<LocatorSyncLogEntry> {
    let provider = batch.provider();
    let mut tx = store.write.begin().await?;
    if let Some(done) = recorded_batch(&mut tx, batch).await? {
        return Ok(done);
    }
    let registered: String = sqlx::query_scalar("SELECT categories FROM providers WHERE id = $1")
        .bind(provider.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("provider `{provider}`")))?;
    let registered: BTreeSet<CategoryId> = codec::from_json(&registered, "provider categories")?;
    batch.check_categories(&registered)?;
    let sector = provider_sector(provider);
    let mut counts = LocatorSyncCounts::default();
    for chunk in batch.upserts().chunks(SYNC_CHUNK) {
        counts.add(upsert_chunk(&mut tx, &sector, provider, chunk).await?);
    }
    for chunk in batch.removals().chunks(SYNC_CHUNK) {
        counts.add(remove_chunk(&mut tx, &sector, provider, chunk).await?);
    }
    // The log's head is taken last, so a large batch holds it (and keeps decisions waiting on
    // PostgreSQL) only for the two rows of its entry.
    let seq = reserve_log_seqs(&mut tx, 1).await?;
    let count = |n: u64| {
        i64::try_from(n).map_err(|_| StoreError::Invalid(format!("count `{n}` is out of range")))
    };
    let inserted = sqlx::query(
        "INSERT INTO locator_syncs (log_seq, at, provider_id, batch_id, upserted, removed,
         unchanged, not_applied, digest) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (provider_id, batch_id) DO NOTHING",
    )
    .bind(seq)
    .bind(codec::millis(at))
    .bind(provider.as_str())
    .bind(batch.id().to_string())
    .bind(count(counts.upserted)?)
    .bind(count(counts.removed)?)
    .bind(count(counts.unchanged)?)
    .bind(count(counts.not_applied)?)
    .bind(batch.digest())
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        // Another replica applied the same batch meanwhile (PostgreSQL waits for it on the
        // unique key): this one is rolled back, and its entry is the answer.
        tx.rollback().await?;
        let mut conn = store.write.acquire().await?;
        return recorded_batch(&mut conn, batch)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("locator batch `{}`", batch.id())));
    }
    let entry = LocatorSyncLogEntry {
        seq: codec::seq_u64(seq)?,
        at: codec::time(codec::millis(at))?,
        provider: provider.clone(),
        batch: batch.id(),
        counts,
    };
    insert_leaf(&mut tx, seq, &LogEntry::LocatorSync(entry.clone())).await?;
    tx.commit().await?;
    Ok(entry)
}

/// The entry of a batch the provider already sent under this batch's id, if it did: a
/// retry ([`LocatorBatch::check_retry`]), or refused as a reused id.
async fn recorded_batch(
    conn: &mut Conn,
    batch: &LocatorBatch,
) -> StoreResult<Option<LocatorSyncLogEntry>> {
    let (provider, id) = (batch.provider().as_str(), batch.id().to_string());
    let digest: Option<Option<String>> = sqlx::query_scalar(
        "SELECT digest FROM locator_syncs WHERE provider_id = $1 AND batch_id = $2",
    )
    .bind(provider)
    .bind(&id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(digest) = digest else {
        return Ok(None);
    };
    batch.check_retry(digest.as_deref())?;
    optional(
        sqlx::query_as::<_, RawLocatorSync>(concat!(
            locator_sync_select!(),
            " WHERE provider_id = $1 AND batch_id = $2"
        ))
        .bind(provider)
        .bind(id),
        &mut *conn,
    )
    .await
}

/// What storage holds for one item: the resident its subject names, and that resident's
/// locator for the category now (its provider and reference), if any.
struct Resolved {
    resident: String,
    current: Option<(String, String)>,
}

/// Resolves `(subject, category)` pairs within the provider's sector. A pair missing from the
/// answer names a subject the hub never issued to this provider.
async fn resolve(
    conn: &mut Conn,
    sector: &str,
    items: impl ExactSizeIterator<Item = (&ProviderSubject, &CategoryId)> + Clone,
) -> StoreResult<HashMap<(String, String), Resolved>> {
    let n = items.len();
    let sql = format!(
        "SELECT v.column1, v.column2, s.resident_id, l.provider_id, l.reference
         FROM (VALUES {}) AS v
         JOIN subjects s ON s.sector = {} AND s.subject = v.column1
         LEFT JOIN locators l ON l.resident_id = s.resident_id AND l.category_id = v.column2",
        PLACEHOLDERS.rows(2, n),
        PLACEHOLDERS.list(2 * n + 1, 1),
    );
    // INVARIANT: `sql` is made of fixed names and placeholders; values are bound.
    let mut query = sqlx::query_as::<_, (String, String, String, Option<String>, Option<String>)>(
        sqlx::AssertSqlSafe(sql),
    );
    for (subject, category) in items {
        query = query
            .bind(subject.as_str().to_owned())
            .bind(category.as_str().to_owned());
    }
    let rows = query.bind(sector.to_owned()).fetch_all(&mut *conn).await?;
    Ok(rows
        .into_iter()
        .map(|(subject, category, resident, provider, reference)| {
            let current = provider.zip(reference);
            ((subject, category), Resolved { resident, current })
        })
        .collect())
}

fn key(subject: &ProviderSubject, category: &CategoryId) -> (String, String) {
    (subject.as_str().to_owned(), category.as_str().to_owned())
}

async fn upsert_chunk(
    conn: &mut Conn,
    sector: &str,
    provider: &ProviderId,
    chunk: &[LocatorUpsert],
) -> StoreResult<LocatorSyncCounts> {
    let resolved = resolve(
        conn,
        sector,
        chunk.iter().map(|u| (&u.subject, &u.category)),
    )
    .await?;
    let mut counts = LocatorSyncCounts::default();
    let mut writes = Vec::with_capacity(chunk.len());
    for u in chunk {
        match resolved.get(&key(&u.subject, &u.category)) {
            None => counts.not_applied += 1,
            Some(Resolved {
                current: Some((holder, _)),
                ..
            }) if holder != provider.as_str() => counts.not_applied += 1,
            Some(Resolved {
                current: Some((_, reference)),
                ..
            }) if *reference == u.reference => counts.unchanged += 1,
            Some(Resolved { resident, .. }) => writes.push((resident, u)),
        }
    }
    if writes.is_empty() {
        return Ok(counts);
    }
    let sql = format!(
        "INSERT INTO locators (resident_id, category_id, provider_id, reference) VALUES {}
         ON CONFLICT (resident_id, category_id) DO UPDATE SET reference = excluded.reference
         WHERE locators.provider_id = excluded.provider_id",
        PLACEHOLDERS.rows(4, writes.len())
    );
    // INVARIANT: `sql` is made of fixed names and placeholders; values are bound.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (resident, u) in &writes {
        query = query
            .bind((*resident).clone())
            .bind(u.category.as_str().to_owned())
            .bind(provider.as_str().to_owned())
            .bind(u.reference.clone());
    }
    let written = query.execute(&mut *conn).await?.rows_affected();
    counts.upserted += written;
    // What another provider took between the read and the write (PostgreSQL) was not applied.
    counts.not_applied += (writes.len() as u64).saturating_sub(written);
    Ok(counts)
}

async fn remove_chunk(
    conn: &mut Conn,
    sector: &str,
    provider: &ProviderId,
    chunk: &[LocatorRemoval],
) -> StoreResult<LocatorSyncCounts> {
    let resolved = resolve(
        conn,
        sector,
        chunk.iter().map(|r| (&r.subject, &r.category)),
    )
    .await?;
    let mut counts = LocatorSyncCounts::default();
    let mut deletes = Vec::with_capacity(chunk.len());
    for r in chunk {
        match resolved.get(&key(&r.subject, &r.category)) {
            None => counts.not_applied += 1,
            Some(Resolved {
                resident,
                current: Some((holder, _)),
            }) if holder == provider.as_str() => deletes.push((resident, &r.category)),
            Some(_) => counts.unchanged += 1,
        }
    }
    if deletes.is_empty() {
        return Ok(counts);
    }
    let sql = format!(
        "DELETE FROM locators WHERE (resident_id, category_id) IN (VALUES {})
         AND provider_id = {}",
        PLACEHOLDERS.rows(2, deletes.len()),
        PLACEHOLDERS.list(2 * deletes.len() + 1, 1),
    );
    // INVARIANT: `sql` is made of fixed names and placeholders; values are bound.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (resident, category) in &deletes {
        query = query
            .bind((*resident).clone())
            .bind(category.as_str().to_owned());
    }
    let removed = query
        .bind(provider.as_str().to_owned())
        .execute(&mut *conn)
        .await?
        .rows_affected();
    counts.removed += removed;
    // Gone between the read and the delete: already as asked.
    counts.unchanged += (deletes.len() as u64).saturating_sub(removed);
    Ok(counts)
}

async fn provider_locators(
    store: &Backend,
    provider: &ProviderId,
    after: Option<&LocatorCursor>,
    limit: u32,
) -> StoreResult<Vec<ProviderLocator>> {
    // Without a cursor the page starts before every subject: "" sorts first.
    let (subject, category) = after.map_or((String::new(), String::new()), |c| {
        (
            c.subject.as_str().to_owned(),
            c.category.as_str().to_owned(),
        )
    });
    all(
        sqlx::query_as::<_, RawProviderLocator>(
            "SELECT s.subject, l.category_id, l.reference
             FROM subjects s JOIN locators l ON l.resident_id = s.resident_id
             WHERE s.sector = $1 AND l.provider_id = $2
               AND (s.subject > $3 OR (s.subject = $3 AND l.category_id > $4))
             ORDER BY s.subject, l.category_id LIMIT $5",
        )
        .bind(provider_sector(provider))
        .bind(provider.as_str())
        .bind(subject)
        .bind(category)
        .bind(i64::from(limit)),
        &store.read,
    )
    .await
}
