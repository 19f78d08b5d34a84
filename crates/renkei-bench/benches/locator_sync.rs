//! Providers keeping their locators current: how fast a provider's batches of locator
//! upserts go into SQLite through `Store::sync_locators`, the call the hub's sync API makes
//! (issue 23; target ≥ 100,000 locators/s, one million locators).
//!
//! The store holds N residents (default 1,000,000; `RENKEI_BENCH_LOCATORS=N`), each with
//! the provider's pairwise subject already issued (bulk-loaded here with multi-row INSERTs:
//! loading is not what is measured). Then the provider syncs, in batches of
//! `MAX_BATCH_ITEMS` (each one transaction, fsynced, with its log entry):
//!
//! 1. **first sync**: one new locator per resident (the figure the target is for);
//! 2. **same again**: every locator unchanged, under fresh batch ids (a full re-sync);
//! 3. **10 % changed**: a re-sync where one resident in ten has a new reference;
//! 4. **replayed batches**: the first phase's batch ids again, each answered from its entry.
//!
//! And a control, the ceiling for these rows on this machine: the same million
//! (resident, category, provider, reference) rows written straight into a bare table with
//! the locators' primary key, by multi-row INSERTs, one fsynced transaction per 10,000, with
//! no resolving of subjects, no log entry, no trigger and no foreign key.
//!
//! Batches are sent one after another, as one provider's kit sends them. The database goes in
//! a temporary directory under `RENKEI_BENCH_DIR` (default: the target dir). Run with
//! `cargo bench -p renkei-bench --bench locator_sync`.

use renkei_bench as _; // the binary's allocator
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use chrono::Utc;
use renkei_domain::locator_sync::{MAX_BATCH_ITEMS, provider_sector};
use renkei_domain::{
    CategoryId, DataCategory, LocalizedText, LocatorBatch, LocatorBatchId, LocatorSyncCounts,
    LocatorUpsert, Provider, ProviderId, ProviderSubject,
};
use renkei_store::{LocatorStore, SqliteStore, Store};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection, QueryBuilder, Sqlite, SqliteConnection};

const PROVIDER: &str = "city-registry";
const CATEGORY: &str = "resident.address";
const TARGET_PER_SEC: f64 = 100_000.0;
/// Residents inserted per multi-row statement while bulk-loading (three parameters each).
const LOAD_ROWS: usize = 5_000;

fn main() -> anyhow::Result<()> {
    let n = match std::env::var("RENKEI_BENCH_LOCATORS") {
        Ok(v) => v
            .trim()
            .replace('_', "")
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .with_context(|| format!("RENKEI_BENCH_LOCATORS={v} is not a positive number"))?,
        Err(_) => 1_000_000,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the Tokio runtime")?;
    runtime.block_on(run(n))
}

fn progress(what: &str) {
    eprintln!("[{}] {what}", Utc::now().format("%H:%M:%S%.3f"));
}

async fn run(n: usize) -> anyhow::Result<()> {
    let base = std::env::var_os("RENKEI_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    std::fs::create_dir_all(&base)?;
    let dir = tempfile::tempdir_in(&base)?;
    let path = dir.path().join("renkei.db");
    let store = SqliteStore::open(&path).await?;
    let provider = ProviderId::new(PROVIDER)?;
    let category = CategoryId::new(CATEGORY)?;
    store
        .put_category(&DataCategory {
            id: category.clone(),
            name: LocalizedText::new("住所", "Address"),
            special_care: false,
        })
        .await?;
    store
        .put_provider(&Provider {
            id: provider.clone(),
            name: LocalizedText::new("住民基本台帳", "Resident registry"),
            connection: renkei_domain::ProviderConnection::Inbound {
                endpoint: "http://127.0.0.1:9".into(),
            },
            categories: [category.clone()].into(),
            max_answer_bytes: None,
            signing_keys: Default::default(),
            contact: None,
            status: renkei_domain::ProviderStatus::Approved,
        })
        .await?;
    progress(&format!(
        "loading {n} residents with their subjects at {PROVIDER}"
    ));
    let (residents, subjects) = load_residents(&path, &provider, n).await?;

    let reference = |i: usize, generation: usize| format!("REG-{i:08}-{generation}");
    let first: Vec<LocatorUpsert> = subjects
        .iter()
        .enumerate()
        .map(|(i, s)| LocatorUpsert {
            subject: s.clone(),
            category: category.clone(),
            reference: reference(i, 0),
        })
        .collect();
    let changed: Vec<LocatorUpsert> = first
        .iter()
        .enumerate()
        .map(|(i, u)| LocatorUpsert {
            reference: if i % 10 == 0 {
                reference(i, 1)
            } else {
                u.reference.clone()
            },
            ..u.clone()
        })
        .collect();

    println!(
        "\nLocator sync into SQLite: {n} locators, batches of {MAX_BATCH_ITEMS}, one provider"
    );
    println!("| phase | locators/s | batches | p50 / max per batch | counts |");
    println!("|---|---|---|---|---|");
    let (rate, ids, counts) = phase(&store, &provider, &first, None, "first sync").await?;
    ensure!(
        counts.upserted == n as u64,
        "the first sync wrote {} of {n}",
        counts.upserted
    );
    let (_, _, again) = phase(&store, &provider, &first, None, "same again").await?;
    ensure!(again.unchanged == n as u64, "a re-sync changed something");
    let (_, _, tenth) = phase(&store, &provider, &changed, None, "10 % changed").await?;
    ensure!(
        tenth.upserted == n.div_ceil(10) as u64,
        "10 % changed wrote {}",
        tenth.upserted
    );
    let (_, _, replay) = phase(&store, &provider, &first, Some(&ids), "replayed batches").await?;
    ensure!(replay == counts, "replayed batches answered other counts");
    let back = store.provider_locators(&provider, None, 3).await?;
    ensure!(
        back.len() == 3.min(n),
        "the provider reads its locators back"
    );

    let ceiling = bare_inserts(&path, &residents).await?;
    let met = rate >= TARGET_PER_SEC;
    println!(
        "\nfirst sync: {rate:.0} locators/s against a target of ≥ {TARGET_PER_SEC:.0}/s: {}",
        if met { "met" } else { "MISSED" }
    );
    println!(
        "control: bare multi-row INSERTs of the same rows, fsynced per 10,000: {ceiling:.0} rows/s \
         (the first sync reaches {:.0} % of it)",
        rate / ceiling * 100.0
    );
    Ok(())
}

/// The control: `residents`' rows written into a bare table with the locators' key, as
/// fast as SQLite takes them here; answers rows per second.
async fn bare_inserts(path: &std::path::Path, residents: &[String]) -> anyhow::Result<f64> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(30));
    let mut conn = SqliteConnection::connect_with(&options).await?;
    sqlx::query(
        "CREATE TABLE bench_bare_locators (resident_id TEXT NOT NULL, category_id TEXT NOT NULL,
         provider_id TEXT NOT NULL, reference TEXT NOT NULL, PRIMARY KEY (resident_id, category_id))",
    )
    .execute(&mut conn)
    .await?;
    let began = Instant::now();
    for batch in residents.chunks(MAX_BATCH_ITEMS) {
        let mut tx = conn.begin().await?;
        for rows in batch.chunks(500) {
            let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO bench_bare_locators (resident_id, category_id, provider_id, reference) ",
            );
            insert.push_values(rows, |mut b, r| {
                b.push_bind(r.clone())
                    .push_bind(CATEGORY)
                    .push_bind(PROVIDER)
                    .push_bind(format!("REG-{r}"));
            });
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
    }
    let rate = residents.len() as f64 / began.elapsed().as_secs_f64();
    println!(
        "| control: bare INSERTs | {rate:.0} | {} | | |",
        residents.len().div_ceil(MAX_BATCH_ITEMS)
    );
    conn.close().await?;
    Ok(rate)
}

/// Sends `items` in batches (fresh ids, or `replay`'s), one after another, and prints the
/// phase's row; answers its rate, the batch ids and the summed counts.
async fn phase(
    store: &SqliteStore,
    provider: &ProviderId,
    items: &[LocatorUpsert],
    replay: Option<&[LocatorBatchId]>,
    name: &str,
) -> anyhow::Result<(f64, Vec<LocatorBatchId>, LocatorSyncCounts)> {
    let batches: Vec<LocatorBatch> = items
        .chunks(MAX_BATCH_ITEMS)
        .enumerate()
        .map(|(i, chunk)| {
            let id = match replay.and_then(|ids| ids.get(i)) {
                Some(id) => *id,
                None => LocatorBatchId::from_uuid(uuid::Uuid::new_v4()),
            };
            LocatorBatch::new(provider.clone(), id, chunk.to_vec(), Vec::new())
        })
        .collect::<Result<_, _>>()?;
    let mut counts = LocatorSyncCounts::default();
    let mut each = Vec::with_capacity(batches.len());
    let began = Instant::now();
    for batch in &batches {
        let t = Instant::now();
        counts.add(store.sync_locators(batch, Utc::now()).await?.counts);
        each.push(t.elapsed());
    }
    let elapsed = began.elapsed();
    let rate = items.len() as f64 / elapsed.as_secs_f64();
    each.sort();
    let at = |q: f64| {
        let i = ((each.len() as f64 - 1.0) * q).round() as usize;
        each.get(i).copied().unwrap_or(Duration::ZERO)
    };
    println!(
        "| {name} | {rate:.0} | {} | {:.1} / {:.1} ms | {} written, {} unchanged, {} not applied |",
        batches.len(),
        at(0.5).as_secs_f64() * 1e3,
        at(1.0).as_secs_f64() * 1e3,
        counts.upserted,
        counts.unchanged,
        counts.not_applied,
    );
    progress(&format!("{name}: {rate:.0} locators/s"));
    Ok((rate, batches.iter().map(LocatorBatch::id).collect(), counts))
}

/// `n` residents, each with a random subject at `provider` (64 characters; the hub's are 43),
/// written straight into the tables without fsync: their ids and their subjects.
async fn load_residents(
    path: &std::path::Path,
    provider: &ProviderId,
    n: usize,
) -> anyhow::Result<(Vec<String>, Vec<ProviderSubject>)> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Off)
        .busy_timeout(Duration::from_secs(30));
    let mut conn = SqliteConnection::connect_with(&options).await?;
    let sector = provider_sector(provider);
    let now = Utc::now().timestamp_millis();
    let mut subjects = Vec::with_capacity(n);
    let mut ids = Vec::with_capacity(n);
    let mut tx = conn.begin().await?;
    for start in (0..n).step_by(LOAD_ROWS) {
        let rows: Vec<(String, ProviderSubject)> = (start..n.min(start + LOAD_ROWS))
            .map(|_| {
                let resident = uuid::Uuid::new_v4().to_string();
                let subject = ProviderSubject::new(format!(
                    "{}{}",
                    uuid::Uuid::new_v4().simple(),
                    uuid::Uuid::new_v4().simple()
                ))?;
                Ok((resident, subject))
            })
            .collect::<anyhow::Result<_>>()?;
        let mut residents: QueryBuilder<Sqlite> =
            QueryBuilder::new("INSERT INTO residents (id, created_at) ");
        residents.push_values(&rows, |mut b, (r, _)| {
            b.push_bind(r.clone()).push_bind(now);
        });
        residents.build().execute(&mut *tx).await?;
        let mut linked: QueryBuilder<Sqlite> =
            QueryBuilder::new("INSERT INTO subjects (sector, subject, resident_id) ");
        linked.push_values(&rows, |mut b, (r, s)| {
            b.push_bind(sector.clone())
                .push_bind(s.as_str().to_owned())
                .push_bind(r.clone());
        });
        linked.build().execute(&mut *tx).await?;
        for (r, s) in rows {
            ids.push(r);
            subjects.push(s);
        }
    }
    tx.commit().await?;
    conn.close().await?;
    Ok((ids, subjects))
}
