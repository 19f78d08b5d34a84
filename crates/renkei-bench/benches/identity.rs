//! Identity benchmark: client-credentials token issuance/s and RFC 7662 introspection/s of a
//! consent-bound code-flow token, with p50/p99, over HTTP on loopback against a hub on
//! SQLite (64 concurrent clients). Compare: Keycloak sizes at about 120 client-credentials
//! grants/s per vCPU; Ory Hydra publishes about 21,000 introspections/s.
//!
//! `RENKEI_BENCH_SECS` sets each phase's length (default 10).
#![allow(
    clippy::indexing_slicing,
    reason = "a benchmark harness, not the product: a bad index fails the run loudly"
)]

use renkei_bench as _; // the binary's allocator
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use hdrhistogram::Histogram;
use renkei_domain::{
    CategoryId, DataCategory, LegalBasis, LocalizedText, PurposeId, ResidentId, Service,
    ServiceClient, ServiceId, ServiceStatus,
};
use renkei_hub::auth::ResidentSession;
use renkei_hub::oidc::{AuthorizationParams, ConsentAnswers, pkce_challenge};
use renkei_hub::{Hub, HubConfig};
use renkei_store::{PurposeDraft, SqliteStore, Store};

const CONCURRENCY: usize = 64;
const SECRET: &str = "bench-secret";
const REDIRECT: &str = "https://bench.example/callback";

fn main() -> anyhow::Result<()> {
    let secs: u64 = std::env::var("RENKEI_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(Duration::from_secs(secs)))
}

async fn run(duration: Duration) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("hub.db")).await?);
    let service = set_up(store.as_ref()).await?;
    let mut config = HubConfig::new(
        "https://hub.bench.example",
        renkei_hub::kek::Kek::generate(),
    );
    // One client from one address, as fast as it goes: the limits would be the figure.
    config.limits = renkei_hub::limits::RateLimits::GENEROUS;
    let hub = Hub::start(config, store.clone()).await?;
    let user_token = code_flow_token(&hub, &service).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let app = renkei_hub::router(hub);
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()?;

    let token_form =
        format!("grant_type=client_credentials&client_id={service}&client_secret={SECRET}");
    let token = phase(&http, &format!("{url}/oauth/token"), token_form, duration).await?;
    print_row("client-credentials token", &token);

    let introspect_form = format!("token={user_token}&client_id={service}&client_secret={SECRET}");
    let introspection = phase(
        &http,
        &format!("{url}/oauth/introspect"),
        introspect_form,
        duration,
    )
    .await?;
    print_row("introspection (active)", &introspection);
    println!(
        "references: Keycloak ~120 client-credentials grants/s per vCPU (~240 on 2); Ory Hydra ~21,000 introspections/s"
    );
    Ok(())
}

struct PhaseResult {
    done: u64,
    seconds: f64,
    latency: Histogram<u64>,
}

fn print_row(name: &str, r: &PhaseResult) {
    println!(
        "{name:<28} {:>9.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms   ({} requests)",
        r.done as f64 / r.seconds,
        r.latency.value_at_quantile(0.50) as f64 / 1000.0,
        r.latency.value_at_quantile(0.99) as f64 / 1000.0,
        r.done
    );
}

/// `CONCURRENCY` clients POST `form` to `url` until `duration` is up; every answer must be 200.
async fn phase(
    http: &reqwest::Client,
    url: &str,
    form: String,
    duration: Duration,
) -> anyhow::Result<PhaseResult> {
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (http, url, form) = (http.clone(), url.to_owned(), form.clone());
        tasks.push(tokio::spawn(async move {
            let mut latency = Histogram::<u64>::new(3)?;
            let mut done = 0u64;
            while Instant::now() < deadline {
                let sent = Instant::now();
                let response = http
                    .post(&url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form.clone())
                    .send()
                    .await?;
                anyhow::ensure!(
                    response.status() == 200,
                    "{url} answered {}",
                    response.status()
                );
                let body = response.bytes().await?;
                if url.ends_with("/introspect") {
                    anyhow::ensure!(
                        body.starts_with(b"{\"active\":true"),
                        "the token was inactive"
                    );
                }
                latency.record(sent.elapsed().as_micros() as u64)?;
                done += 1;
            }
            Ok::<_, anyhow::Error>((done, latency))
        }));
    }
    let mut total = Histogram::<u64>::new(3)?;
    let mut done = 0;
    for task in tasks {
        let (n, h) = task.await??;
        done += n;
        total.add(h)?;
    }
    Ok(PhaseResult {
        done,
        seconds: start.elapsed().as_secs_f64(),
        latency: total,
    })
}

async fn set_up(store: &dyn Store) -> anyhow::Result<ServiceId> {
    let now = Utc::now();
    let category = CategoryId::new("health.checkup")?;
    store
        .put_category(&DataCategory {
            id: category.clone(),
            name: LocalizedText::new("健診結果", "Check-up results"),
            special_care: true,
            location: false,
        })
        .await?;
    let id = ServiceId::new("bench-service")?;
    store
        .put_service(
            &Service {
                id: id.clone(),
                name: LocalizedText::new("ベンチ", "Bench"),
                sector: "health".into(),
                hpke_public_key: renkei_protocol::envelope::ServiceKeyPair::generate()?
                    .public_b64(),
                webhook_url: None,
                status: ServiceStatus::Approved,
            },
            &renkei_hub::auth::hash_client_secret(SECRET),
        )
        .await?;
    store
        .put_service_client(&ServiceClient {
            service: id.clone(),
            redirect_uris: vec![REDIRECT.into()],
            privacy_impact: Default::default(),
            registered_at: now,
            id_token_signed_response_alg: renkei_domain::SigningAlg::default(),
            controller: None,
        })
        .await?;
    store
        .publish_purpose(
            &PurposeDraft {
                service: id.clone(),
                id: PurposeId::new("advice")?,
                title: LocalizedText::new("助言", "Advice"),
                description: LocalizedText::new("健康助言", "Health advice"),
                categories: [category].into(),
                retention_days: 30,
                legal_basis: LegalBasis::Consent,
                emergency_only: false,
                location: None,
            },
            now,
        )
        .await?;
    Ok(id)
}

/// A code-flow access token bound to one consent, obtained the way a service gets one.
async fn code_flow_token(hub: &Hub, service: &ServiceId) -> anyhow::Result<String> {
    let resident = ResidentId::from_uuid(uuid::Uuid::new_v4());
    hub.store().add_resident(resident, Utc::now()).await?;
    let verifier = "b".repeat(64);
    let params = AuthorizationParams {
        response_type: Some("code".into()),
        client_id: Some(service.to_string()),
        redirect_uri: Some(REDIRECT.into()),
        scope: Some("openid advice".into()),
        state: Some("s".into()),
        nonce: Some("n".into()),
        code_challenge: Some(pkce_challenge(&verifier)),
        code_challenge_method: Some("S256".into()),
    };
    let request = hub
        .check_authorization_request(&params)
        .await
        .map_err(|_| anyhow::anyhow!("authorization request refused"))?;
    let answers = ConsentAnswers {
        yes: [PurposeId::new("advice")?].into(),
        share_profile: false,
    };
    let back = hub
        .complete_authorization(&ResidentSession::resident(resident), &request, &answers)
        .await?;
    let code = back
        .split(['?', '&'])
        .find_map(|kv| kv.strip_prefix("code="))
        .context("no code")?;
    let tokens = hub
        .redeem_code(service, Some(code), Some(REDIRECT), Some(&verifier))
        .await?;
    Ok(tokens.access_token)
}
