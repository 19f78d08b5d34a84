//! An area list through the hub (issue 24): a responder asks, under a confirmed declaration,
//! for every entry of the evacuation-support register inside an area, and the register
//! releases N entries (default 10,000; `RENKEI_BENCH_ENTRIES=N`).
//!
//! Measured: the time from the responder's `POST /v1/area-lists` to the whole list parsed at
//! the responder, which covers the decision (written when denied, read in a transaction
//! otherwise), the area grant, the provider selecting its entries and signing and sealing
//! each one on its own (Ed25519 + HPKE, on as many threads as there are cores), the hub
//! mapping each entry's code back to a resident and appending one access record per
//! resident with its leaf in one transaction, fsynced before anything is relayed, and the
//! relay. Target: under 2 s for 10,000 entries. The hub (SQLite in a temporary directory
//! under `RENKEI_BENCH_DIR`, default the target dir), the provider and the responder share
//! one process and its cores, over loopback. Residents and their codes at the provider are
//! bulk-loaded first (not measured). One run warms up; five are timed, each releasing the
//! whole list again (and so appending N more records). Run with
//! `cargo bench -p renkei-bench --bench area_list`.
#![allow(
    clippy::disallowed_methods,
    reason = "the provider's own router, beside the hub's routes"
)]

use renkei_bench as _; // the binary's allocator
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use chrono::{TimeDelta, Utc};
use renkei_domain::locator_sync::provider_sector;
use renkei_domain::{
    CategoryId, DataCategory, LegalBasis, LocalizedText, OperatorId, Provider, ProviderId,
    ProviderSubject, PurposeId, Service, ServiceId, ServiceStatus,
};
use renkei_hub::area_lists::AreaListResponse;
use renkei_hub::emergency::DeclarationBody;
use renkei_hub::{Hub, HubConfig};
use renkei_protocol::envelope::{EnvelopeContext, SealedPayload, ServiceKeyPair};
use renkei_protocol::keys::{Jwks, SigningKey};
use renkei_provider::area::MemoryRegister;
use renkei_store::{PurposeDraft, SqliteStore, Store};
use serde_json::{Map, json};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection, QueryBuilder, Sqlite, SqliteConnection};

const PROVIDER: &str = "city-welfare";
const CATEGORY: &str = "evacuation.support";
const SERVICE: &str = "fire-dept";
const TARGET: Duration = Duration::from_secs(2);
const RUNS: usize = 5;
/// Residents inserted per multi-row statement while bulk-loading.
const LOAD_ROWS: usize = 5_000;

fn main() -> anyhow::Result<()> {
    let n = match std::env::var("RENKEI_BENCH_ENTRIES") {
        Ok(v) => v
            .trim()
            .replace('_', "")
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .with_context(|| format!("RENKEI_BENCH_ENTRIES={v} is not a positive number"))?,
        Err(_) => 10_000,
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

fn text(ja: &str, en: &str) -> LocalizedText {
    LocalizedText::new(ja, en)
}

async fn serve(router: axum::Router) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(format!("http://{addr}"))
}

async fn run(n: usize) -> anyhow::Result<()> {
    renkei_protocol::keys::install_crypto_provider();
    let base = std::env::var_os("RENKEI_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    std::fs::create_dir_all(&base)?;
    let dir = tempfile::tempdir_in(&base)?;
    let path = dir.path().join("renkei.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await?);
    let provider_id = ProviderId::new(PROVIDER)?;
    let category = CategoryId::new(CATEGORY)?;
    let service_id = ServiceId::new(SERVICE)?;
    store
        .put_category(&DataCategory {
            id: category.clone(),
            name: text("避難行動要支援者名簿", "Evacuation support register"),
            special_care: true,
        })
        .await?;
    let service_keys = ServiceKeyPair::generate()?;
    let (_, hash) = renkei_hub::auth::new_client_secret();
    store
        .put_service(
            &Service {
                id: service_id.clone(),
                name: text("消防本部", "Fire department"),
                sector: "fire".into(),
                hpke_public_key: service_keys.public_b64(),
                webhook_url: None,
                status: ServiceStatus::Approved,
            },
            &hash,
        )
        .await?;
    store
        .publish_purpose(
            &PurposeDraft {
                service: service_id.clone(),
                id: PurposeId::new("evacuation")?,
                title: text("避難支援", "Evacuation support"),
                description: text("災害時の避難支援", "Evacuation support in a disaster"),
                categories: [category.clone()].into(),
                retention_days: 30,
                legal_basis: LegalBasis::VitalInterest,
                emergency_only: false,
            },
            Utc::now(),
        )
        .await?;
    progress(&format!(
        "loading {n} residents with their codes at {PROVIDER}"
    ));
    let codes = load_residents(&path, &provider_id, n).await?;

    let mut config = HubConfig::new("http://127.0.0.1", renkei_hub::kek::Kek::generate());
    config.allow_local_network = true;
    let hub = Hub::start(config, store.clone()).await?;
    let register = MemoryRegister {
        categories: vec![category.clone()],
        entries: codes
            .iter()
            .enumerate()
            .map(|(i, code)| {
                let mut data = Map::new();
                data.insert(
                    CATEGORY.into(),
                    json!({
                        "name": format!("住民 {i}"),
                        "address": format!("ひかり台市本町{}丁目{}番", i % 5 + 1, i % 30 + 1),
                        "assistance": "避難時に車いす介助が必要",
                        "contact": "家族",
                    }),
                );
                // Half meshes inside 53394526.
                (
                    code.as_str().to_owned(),
                    format!("53394526{}", i % 4 + 1),
                    data,
                )
            })
            .collect(),
    };
    let provider_key = SigningKey::generate()?;
    let provider = renkei_provider::Provider::new(
        provider_id.clone(),
        hub.keys().jwks(),
        provider_key.clone(),
        Arc::new(register),
    );
    let provider_url = serve(renkei_provider::router(provider)).await?;
    store
        .put_provider(&Provider {
            id: provider_id.clone(),
            name: text("福祉課", "Welfare office"),
            connection: renkei_domain::ProviderConnection::Inbound {
                endpoint: provider_url,
            },
            categories: [category.clone()].into(),
            max_answer_bytes: None,
            signing_keys: renkei_domain::ProviderKeys::parse(&json!({
                "keys": [serde_json::to_value(provider_key.public_jwk())?]
            }))?,
            contact: None,
            status: renkei_domain::ProviderStatus::Approved,
        })
        .await?;
    let hub_url = serve(renkei_hub::router(hub.clone())).await?;
    let declared = hub
        .declare_emergency(
            &OperatorId::new("sato")?,
            DeclarationBody {
                reason: "河川氾濫".into(),
                legal_basis: "disaster_act49_11".into(),
                categories: vec![CATEGORY.into()],
                services: vec![SERVICE.into()],
                area: vec!["533945".into()],
                starts_at: None,
                ends_at: Utc::now() + TimeDelta::hours(3),
            },
        )
        .await?;
    hub.confirm_emergency(&OperatorId::new("suzuki")?, declared.id)
        .await?;
    let token = hub.keys().issue_service_token(&service_id, Utc::now())?;
    let http = reqwest::Client::new();
    let body = json!({
        "declaration": declared.id, "purpose": "evacuation",
        "categories": [CATEGORY], "area": ["53394526"],
    });

    println!("\nArea list through the hub: {n} register entries, SQLite, one provider");
    println!("| run | request → whole list at the responder | entries | records appended |");
    println!("|---|---|---|---|");
    let mut times = Vec::new();
    for run in 0..=RUNS {
        let size = store.log_size().await?;
        let began = Instant::now();
        let response = http
            .post(format!("{hub_url}/v1/area-lists"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await?;
        ensure!(response.status() == 200, "answered {}", response.status());
        let list: AreaListResponse = response.json().await?;
        let took = began.elapsed();
        let appended = store.log_size().await? - size;
        ensure!(
            list.entries.len() == n,
            "{} entries of {n}",
            list.entries.len()
        );
        // INVARIANT checked: each entry relayed has its record, committed before the answer.
        ensure!(appended == n as u64, "{appended} records for {n} entries");
        let name = if run == 0 {
            "warm-up".to_owned()
        } else {
            run.to_string()
        };
        println!(
            "| {name} | {:.0} ms | {} | {appended} |",
            took.as_secs_f64() * 1e3,
            list.entries.len()
        );
        if run > 0 {
            times.push(took);
        }
        if run == RUNS {
            // The responder can open what it got: the first entry, as the provider's.
            let entry = list.entries.first().context("no entry")?;
            let sealed = SealedPayload {
                suite: entry.payload.suite.clone(),
                enc: entry.payload.enc.clone(),
                ciphertext: entry.payload.ciphertext.clone(),
            };
            let context = EnvelopeContext {
                provider: provider_id.clone(),
                request: list.request_id.parse()?,
            };
            renkei_protocol::payload::open_verified(
                &service_keys,
                &service_id,
                &context,
                &Jwks::from_signing_keys([&provider_key]),
                &sealed,
            )?;
        }
    }
    times.sort();
    let median = times.get(times.len() / 2).copied().unwrap_or_default();
    let worst = times.last().copied().unwrap_or_default();
    println!(
        "\nmedian {:.0} ms, slowest {:.0} ms for {n} entries against a target of < {} ms: {}",
        median.as_secs_f64() * 1e3,
        worst.as_secs_f64() * 1e3,
        TARGET.as_millis(),
        if worst < TARGET { "met" } else { "MISSED" }
    );
    Ok(())
}

/// `n` residents, each with a random code at `provider`, written straight into the tables
/// without fsync (loading is not what is measured).
async fn load_residents(
    path: &std::path::Path,
    provider: &ProviderId,
    n: usize,
) -> anyhow::Result<Vec<ProviderSubject>> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Off)
        .busy_timeout(Duration::from_secs(30));
    let mut conn = SqliteConnection::connect_with(&options).await?;
    let sector = provider_sector(provider);
    let now = Utc::now().timestamp_millis();
    let mut codes = Vec::with_capacity(n);
    let mut tx = conn.begin().await?;
    for start in (0..n).step_by(LOAD_ROWS) {
        let rows: Vec<(String, ProviderSubject)> = (start..n.min(start + LOAD_ROWS))
            .map(|_| {
                let resident = uuid::Uuid::new_v4().to_string();
                let code = ProviderSubject::new(format!(
                    "{}{}",
                    uuid::Uuid::new_v4().simple(),
                    uuid::Uuid::new_v4().simple()
                ))?;
                Ok((resident, code))
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
        codes.extend(rows.into_iter().map(|(_, s)| s));
    }
    tx.commit().await?;
    conn.close().await?;
    Ok(codes)
}
