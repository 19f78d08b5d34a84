//! A small fictional town for the behaviour tests, run over real HTTP on 127.0.0.1.
//!
//! The hub (SQLite in a temporary directory), three data providers on their own ports
//! (`clinic`, `payments`, `registry`), a webhook receiver standing in for the health-advice
//! service's back end, three services in two sectors, and residents with locators.
//!
//! Every provider is "tapped": the grants it receives are recorded before it checks them,
//! so tests can replay or misdirect a real hub-issued grant.
#![allow(dead_code)]
#![allow(
    clippy::disallowed_methods,
    reason = "the providers' tap and the webhook receiver are other parties' servers, not the hub's"
)]

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::Utc;
use renkei_domain::{
    CategoryId, DataCategory, LegalBasis, LocalizedText, Locator, Provider as ProviderEntry,
    PurposeId, ResidentId, Service, ServiceId, ServiceStatus,
};
use renkei_hub::broker::DataResponse;
use renkei_hub::consents::{ConsentView, GrantedConsent};
use renkei_hub::{Hub, HubConfig};
use renkei_protocol::envelope::{EnvelopeContext, ServiceKeyPair};
use renkei_protocol::grant::GrantClaims;
use renkei_protocol::keys::Jwks;
use renkei_provider::{MemoryRecords, Provider};
use renkei_store::{PurposeDraft, SqliteStore, Store};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const HEALTH_CHECKUP: &str = "health.checkup";
pub const PAYMENT_HISTORY: &str = "payment.history";
pub const RESIDENT_ADDRESS: &str = "resident.address";

pub const ISSUER: &str = "https://hub.renkei-town.example.jp";

/// One HTTP server on an ephemeral port, stopped gracefully on request.
pub struct Server {
    pub url: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Server {
    pub async fn start(router: Router) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            // With each request's peer address, as the binary serves (the rate limits
            // count by it).
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Self {
            url: format!("http://{addr}"),
            shutdown: Some(tx),
            task,
        }
    }

    /// Stops accepting, lets open connections finish, and waits (bounded) for the end.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if tokio::time::timeout(Duration::from_secs(3), &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }
}

/// A URL where nothing listens: a port that was bound and then let go.
pub async fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

/// How a provider of the town behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderMode {
    Normal,
    /// Answers only after this long.
    Slow(Duration),
    /// Registered at an address where nothing listens.
    Down,
}

/// One data provider of the town, as the tests see it.
pub struct TownProvider {
    pub id: renkei_domain::ProviderId,
    /// `None` when the provider is down.
    pub provider: Option<Arc<Provider>>,
    /// The key it signs its answers with; its public half is registered at the hub.
    pub signing_key: renkei_protocol::keys::SigningKey,
    pub url: String,
    /// Every grant presented to it, in arrival order (recorded before it is checked).
    pub grants: Arc<Mutex<Vec<String>>>,
    server: Option<Server>,
}

impl TownProvider {
    /// Its public signing key, as registered at the hub.
    pub fn public_keys(&self) -> renkei_domain::ProviderKeys {
        renkei_domain::ProviderKeys::parse(&json!({
            "keys": [serde_json::to_value(self.signing_key.public_jwk()).unwrap()]
        }))
        .unwrap()
    }

    pub fn stats(&self) -> &renkei_provider::ProviderStats {
        &self.provider.as_ref().unwrap().stats
    }
    pub fn served(&self) -> u64 {
        self.stats().served()
    }
    pub fn refused(&self) -> u64 {
        self.stats().refused()
    }
    pub fn wrong_audience(&self) -> u64 {
        self.stats().refused_wrong_audience.load(Ordering::Relaxed)
    }
    pub fn replayed(&self) -> u64 {
        self.stats().refused_replayed.load(Ordering::Relaxed)
    }
    pub fn expired(&self) -> u64 {
        self.stats().refused_expired.load(Ordering::Relaxed)
    }
    pub fn captured_grants(&self) -> Vec<String> {
        self.grants.lock().unwrap().clone()
    }
}

/// A registered service and what only it holds: its client secret and HPKE private key.
pub struct TownService {
    pub id: ServiceId,
    pub sector: String,
    pub secret: String,
    pub keys: ServiceKeyPair,
}

/// One message the webhook receiver got.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub at: Instant,
    pub content_type: Option<String>,
    pub body: String,
    /// The status the receiver answered with.
    pub answered: u16,
}

/// The health-advice service's webhook endpoint: records every message, and answers 503
/// while `fail_next` is above zero (counting it down), 202 otherwise.
pub struct Webhook {
    pub url: String,
    pub deliveries: Arc<Mutex<Vec<Delivery>>>,
    pub fail_next: Arc<AtomicUsize>,
    server: Server,
}

#[derive(Clone)]
struct WebhookState {
    deliveries: Arc<Mutex<Vec<Delivery>>>,
    fail_next: Arc<AtomicUsize>,
}

async fn receive_webhook(
    State(state): State<WebhookState>,
    headers: HeaderMap,
    body: String,
) -> impl IntoResponse {
    let fail = state
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let status = if fail {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::ACCEPTED
    };
    state.deliveries.lock().unwrap().push(Delivery {
        at: Instant::now(),
        content_type: headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body,
        answered: status.as_u16(),
    });
    status
}

impl Webhook {
    pub async fn start() -> Self {
        let state = WebhookState {
            deliveries: Arc::default(),
            fail_next: Arc::default(),
        };
        let router = Router::new()
            .route("/renkei-events", post(receive_webhook))
            .with_state(state.clone());
        let server = Server::start(router).await;
        Self {
            url: format!("{}/renkei-events", server.url),
            deliveries: state.deliveries,
            fail_next: state.fail_next,
            server,
        }
    }

    pub fn received(&self) -> Vec<Delivery> {
        self.deliveries.lock().unwrap().clone()
    }

    /// Waits (bounded) until at least `n` messages arrived; returns all of them.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Delivery> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.received();
            if got.len() >= n || Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// How to build the town.
#[derive(Debug, Clone)]
pub struct TownOptions {
    pub demo_mode: bool,
    /// The hub may call http URLs and local addresses (its providers are on 127.0.0.1).
    pub allow_local_network: bool,
    pub provider_timeout: Duration,
    pub clinic: ProviderMode,
    pub payments: ProviderMode,
    /// Where the hub keeps its data: a SQLite file in the town's temporary directory unless
    /// this names another file, or a `postgres://` URL.
    pub database: Option<String>,
    /// Generous unless a test is about the limits.
    pub limits: renkei_hub::limits::RateLimits,
    pub purge_interval: Duration,
    /// The PKCS#11 token that keeps the hub's signing keys, if any.
    pub pkcs11: Option<renkei_hub::pkcs11::Pkcs11Config>,
    /// How long emergency notices wait past a declaration's end time, and how often the
    /// hub looks: short, so tests see them soon.
    pub notice_grace: Duration,
    pub notice_interval: Duration,
    /// The token `GET /metrics` takes; `None` turns metrics off.
    pub metrics_token: Option<&'static str>,
    /// Where the SOC hears of security events: by default polling with [`SOC_TOKEN`].
    pub soc: renkei_hub::soc::SocConfig,
}

/// The town SOC's token.
pub const SOC_TOKEN: &str = "the-town-security-operations-token";

/// The town's metrics token.
pub const METRICS_TOKEN: &str = "the-town-prometheus-token";

impl Default for TownOptions {
    fn default() -> Self {
        Self {
            demo_mode: true,
            allow_local_network: true,
            provider_timeout: Duration::from_secs(3),
            clinic: ProviderMode::Normal,
            payments: ProviderMode::Normal,
            database: None,
            limits: renkei_hub::limits::RateLimits::GENEROUS,
            purge_interval: Duration::from_secs(60),
            pkcs11: None,
            notice_grace: Duration::from_millis(200),
            notice_interval: Duration::from_millis(100),
            metrics_token: Some(METRICS_TOKEN),
            soc: renkei_hub::soc::SocConfig {
                token: Some(renkei_hub::soc::SocToken::new(SOC_TOKEN).unwrap()),
                ..renkei_hub::soc::SocConfig::default()
            },
        }
    }
}

/// The SoftHSM2 token `.ci/softhsm-setup` made (its `RENKEI_TEST_PKCS11_*` variables), or
/// `None`, saying so, when they are not set.
pub fn test_token(test: &str) -> Option<renkei_hub::pkcs11::Pkcs11Config> {
    let Ok(module) = std::env::var("RENKEI_TEST_PKCS11_MODULE") else {
        eprintln!(
            "skipped {test}: RENKEI_TEST_PKCS11_MODULE is not set (eval \"$(.ci/softhsm-setup)\")"
        );
        return None;
    };
    let pin_file = std::env::var("RENKEI_TEST_PKCS11_PIN_FILE").unwrap();
    Some(renkei_hub::pkcs11::Pkcs11Config {
        module: module.into(),
        token: std::env::var("RENKEI_TEST_PKCS11_TOKEN").unwrap(),
        pin: zeroize::Zeroizing::new(std::fs::read_to_string(pin_file).unwrap()),
    })
}

/// The whole town.
pub struct Town {
    pub dir: TempDir,
    pub db_path: PathBuf,
    pub config: HubConfig,
    pub store: Arc<dyn Store>,
    pub hub: Hub,
    pub hub_url: String,
    hub_server: Option<Server>,
    pub http: reqwest::Client,
    pub clinic: TownProvider,
    pub payments: TownProvider,
    pub registry: TownProvider,
    /// Sector `health`; purposes `advice` (health + payments) and `reminders` (health);
    /// has the webhook.
    pub health: TownService,
    /// Sector `health` too; purpose `reminders`.
    pub reminder: TownService,
    /// Sector `mobility`; purpose `rides` (address + payments).
    pub mobility: TownService,
    pub webhook: Webhook,
    pub alice: ResidentId,
    pub bob: ResidentId,
    /// Has data only at the clinic.
    pub carol: ResidentId,
    /// The town's stand-in for JPKI: the hub's enrolment trust anchor.
    pub dev_ca: renkei_identity::DevCa,
}

/// Where the town's services get residents back after sign-in.
pub fn redirect_uri(service: &ServiceId) -> String {
    format!("https://{service}.example/callback")
}

/// Fictional contact details of a town service's data protection office.
pub fn controller_contact(service: &str) -> renkei_domain::ControllerContact {
    renkei_domain::ControllerContact {
        contact: format!("{service} 個人情報保護窓口"),
        address: renkei_domain::PostalAddress {
            country: "JP".into(),
            postal_code: "999-0001".into(),
            region: "ひかり県".into(),
            locality: "ひかり台市".into(),
            street_address: "中央1-1".into(),
        },
        email: format!("privacy@{service}.example"),
        phone: "+81-3-0000-0000".into(),
    }
}

pub fn cat(s: &str) -> CategoryId {
    CategoryId::new(s).unwrap()
}

fn text(ja: &str, en: &str) -> LocalizedText {
    LocalizedText::new(ja, en)
}

/// The `advice` purpose of health-advice, as first published.
pub fn advice_draft() -> PurposeDraft {
    PurposeDraft {
        service: ServiceId::new("health-advice").unwrap(),
        id: PurposeId::new("advice").unwrap(),
        title: text("健康アドバイス", "Health advice"),
        description: text(
            "健診結果と支払い履歴から、生活習慣のアドバイスをお届けします。",
            "Lifestyle advice from your check-up results and payment history.",
        ),
        categories: [cat(HEALTH_CHECKUP), cat(PAYMENT_HISTORY)].into(),
        retention_days: 90,
        legal_basis: LegalBasis::Consent,
        emergency_only: false,
        location: None,
    }
}

fn reminders_draft(service: &str) -> PurposeDraft {
    PurposeDraft {
        service: ServiceId::new(service).unwrap(),
        id: PurposeId::new("reminders").unwrap(),
        title: text("健診リマインダー", "Check-up reminders"),
        description: text(
            "次回の健診時期をお知らせします。",
            "Tells you when your next check-up is due.",
        ),
        categories: [cat(HEALTH_CHECKUP)].into(),
        retention_days: 30,
        legal_basis: LegalBasis::Consent,
        emergency_only: false,
        location: None,
    }
}

fn rides_draft() -> PurposeDraft {
    PurposeDraft {
        service: ServiceId::new("town-mobility").unwrap(),
        id: PurposeId::new("rides").unwrap(),
        title: text("オンデマンド交通", "On-demand rides"),
        description: text(
            "ご自宅への送迎と運賃の精算に使います。",
            "Pick-ups at home and fare settlement.",
        ),
        categories: [cat(RESIDENT_ADDRESS), cat(PAYMENT_HISTORY)].into(),
        retention_days: 30,
        legal_basis: LegalBasis::Consent,
        emergency_only: false,
        location: None,
    }
}

fn record(pairs: &[(&str, Value)]) -> serde_json::Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// What the clinic holds on Alice (with a marker a test can look for where it must not be).
pub fn alice_checkup() -> Value {
    json!({ "date": "2025-04-01", "blood_pressure": "118/76", "hba1c": 5.4, "note": "MARKER-clinic-alice-7f3a" })
}

/// What the payment provider holds on Alice.
pub fn alice_payments() -> Value {
    json!([{ "month": "2025-03", "merchant": "町立プール", "amount_yen": 5400 }])
}

async fn start_provider(
    id: &str,
    jwks: &Jwks,
    records: HashMap<String, serde_json::Map<String, Value>>,
    mode: ProviderMode,
) -> TownProvider {
    let pid = renkei_domain::ProviderId::new(id).unwrap();
    let grants: Arc<Mutex<Vec<String>>> = Arc::default();
    let records = Arc::new(MemoryRecords(records));
    let signing_key = renkei_protocol::keys::SigningKey::generate().unwrap();
    let provider = match mode {
        ProviderMode::Normal => Some(Provider::new(
            pid.clone(),
            jwks.clone(),
            signing_key.clone(),
            records,
        )),
        ProviderMode::Slow(delay) => Some(Provider::with_delay(
            pid.clone(),
            jwks.clone(),
            signing_key.clone(),
            records,
            delay,
        )),
        ProviderMode::Down => None,
    };
    let (url, server) = match &provider {
        Some(p) => {
            let tap = grants.clone();
            let router = renkei_provider::router(p.clone()).layer(axum::middleware::from_fn(
                move |req: Request, next: Next| {
                    let tap = tap.clone();
                    async move {
                        if let Some(grant) = req
                            .headers()
                            .get(header::AUTHORIZATION)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.strip_prefix("Bearer "))
                        {
                            tap.lock().unwrap().push(grant.trim().to_owned());
                        }
                        next.run(req).await
                    }
                },
            ));
            let server = Server::start(router).await;
            (server.url.clone(), Some(server))
        }
        None => (dead_url().await, None),
    };
    TownProvider {
        id: pid,
        provider,
        signing_key,
        url,
        grants,
        server,
    }
}

impl Town {
    pub async fn new() -> Self {
        Self::with(TownOptions::default()).await
    }

    pub async fn with(options: TownOptions) -> Self {
        renkei_protocol::keys::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let (db_path, store): (PathBuf, Arc<dyn Store>) = match options.database.as_deref() {
            Some(url) if url.starts_with("postgres://") => (
                PathBuf::new(),
                Arc::new(renkei_store::PostgresStore::connect(url).await.unwrap()),
            ),
            other => {
                let path = other.map_or_else(|| dir.path().join("hub.sqlite"), PathBuf::from);
                let store = Arc::new(SqliteStore::open(&path).await.unwrap());
                (path, store)
            }
        };
        let now = Utc::now();

        for (id, ja, en, special_care) in [
            (
                HEALTH_CHECKUP,
                "健康診断結果",
                "Health check-up results",
                true,
            ),
            (PAYMENT_HISTORY, "支払い履歴", "Payment history", false),
            (RESIDENT_ADDRESS, "住所", "Address", false),
        ] {
            store
                .put_category(&DataCategory {
                    id: cat(id),
                    name: text(ja, en),
                    special_care,
                    location: false,
                })
                .await
                .unwrap();
        }

        let webhook = Webhook::start().await;
        let mut services = Vec::new();
        for (id, sector, ja, en, hook) in [
            (
                "health-advice",
                "health",
                "けんこうアドバイス",
                "Health Advice",
                Some(webhook.url.clone()),
            ),
            (
                "checkup-reminder",
                "health",
                "健診リマインダー",
                "Check-up Reminder",
                None,
            ),
            (
                "town-mobility",
                "mobility",
                "まちの足",
                "Town Mobility",
                None,
            ),
        ] {
            let keys = ServiceKeyPair::generate().unwrap();
            let (secret, hash) = renkei_hub::auth::new_client_secret();
            let service = Service {
                id: ServiceId::new(id).unwrap(),
                name: text(ja, en),
                sector: sector.to_owned(),
                hpke_public_key: keys.public_b64(),
                webhook_url: hook,
                status: ServiceStatus::Approved,
            };
            store.put_service(&service, &hash).await.unwrap();
            store
                .put_service_client(&renkei_domain::ServiceClient {
                    service: service.id.clone(),
                    redirect_uris: vec![redirect_uri(&service.id)],
                    privacy_impact: Default::default(),
                    registered_at: now,
                    id_token_signed_response_alg: renkei_domain::SigningAlg::default(),
                    controller: Some(controller_contact(id)),
                })
                .await
                .unwrap();
            services.push(TownService {
                id: service.id,
                sector: sector.to_owned(),
                secret,
                keys,
            });
        }
        for draft in [
            advice_draft(),
            reminders_draft("health-advice"),
            reminders_draft("checkup-reminder"),
            rides_draft(),
        ] {
            store.publish_purpose(&draft, now).await.unwrap();
        }
        let mobility = services.pop().unwrap();
        let reminder = services.pop().unwrap();
        let health = services.pop().unwrap();

        let alice = ResidentId::from_uuid(uuid::Uuid::new_v4());
        let bob = ResidentId::from_uuid(uuid::Uuid::new_v4());
        let carol = ResidentId::from_uuid(uuid::Uuid::new_v4());
        let mut locators = Vec::new();
        for (resident, refs) in [
            (
                alice,
                vec![
                    (HEALTH_CHECKUP, "clinic", "K-0001"),
                    (PAYMENT_HISTORY, "payments", "P-7781"),
                    (RESIDENT_ADDRESS, "registry", "R-0001"),
                ],
            ),
            (
                bob,
                vec![
                    (HEALTH_CHECKUP, "clinic", "K-0002"),
                    (PAYMENT_HISTORY, "payments", "P-7782"),
                    (RESIDENT_ADDRESS, "registry", "R-0002"),
                ],
            ),
            (carol, vec![(HEALTH_CHECKUP, "clinic", "K-0003")]),
        ] {
            store.add_resident(resident, now).await.unwrap();
            for (category, provider, reference) in refs {
                locators.push(Locator {
                    resident,
                    category: cat(category),
                    provider: renkei_domain::ProviderId::new(provider).unwrap(),
                    reference: reference.to_owned(),
                });
            }
        }

        let dev_ca =
            renkei_identity::DevCa::generate(renkei_identity::KeyAlgorithm::EcdsaP256).unwrap();
        let anchors = renkei_identity::TrustAnchors::new(&[dev_ca.root_der()])
            .unwrap()
            .with_crls(&[dev_ca.crl_der().unwrap()])
            .unwrap();
        let mut config = HubConfig::new(ISSUER, renkei_hub::kek::Kek::generate());
        config.trust_anchors = Some(Arc::new(anchors));
        config.demo_mode = options.demo_mode;
        config.allow_local_network = options.allow_local_network;
        config.provider_timeout = options.provider_timeout;
        config.limits = options.limits;
        config.purge_interval = options.purge_interval;
        config.pkcs11 = options.pkcs11.clone();
        config.notice_grace = options.notice_grace;
        config.notice_interval = options.notice_interval;
        config.soc = options.soc.clone();
        config.metrics_token = options
            .metrics_token
            .map(|t| renkei_hub::metrics::MetricsToken::new(t).unwrap());
        let hub = Hub::start(config.clone(), store.clone()).await.unwrap();
        let jwks = hub.keys().jwks();

        let clinic = start_provider(
            "clinic",
            &jwks,
            HashMap::from([
                (
                    "K-0001".to_owned(),
                    record(&[(HEALTH_CHECKUP, alice_checkup())]),
                ),
                (
                    "K-0002".to_owned(),
                    record(&[(
                        HEALTH_CHECKUP,
                        json!({ "date": "2025-05-12", "blood_pressure": "131/84", "hba1c": 6.1 }),
                    )]),
                ),
                (
                    "K-0003".to_owned(),
                    record(&[(
                        HEALTH_CHECKUP,
                        json!({ "date": "2025-02-20", "blood_pressure": "109/70", "hba1c": 5.0 }),
                    )]),
                ),
            ]),
            options.clinic,
        )
        .await;
        let payments = start_provider(
            "payments",
            &jwks,
            HashMap::from([
                (
                    "P-7781".to_owned(),
                    record(&[(PAYMENT_HISTORY, alice_payments())]),
                ),
                (
                    "P-7782".to_owned(),
                    record(&[(
                        PAYMENT_HISTORY,
                        json!([{ "month": "2025-03", "merchant": "駅前書店", "amount_yen": 1980 }]),
                    )]),
                ),
            ]),
            options.payments,
        )
        .await;
        let registry = start_provider(
            "registry",
            &jwks,
            HashMap::from([
                (
                    "R-0001".to_owned(),
                    record(&[(RESIDENT_ADDRESS, json!("架空町1-2-3"))]),
                ),
                (
                    "R-0002".to_owned(),
                    record(&[(RESIDENT_ADDRESS, json!("架空町4-5-6"))]),
                ),
            ]),
            ProviderMode::Normal,
        )
        .await;
        for (p, ja, en, categories) in [
            (&clinic, "町立診療所", "Town clinic", vec![HEALTH_CHECKUP]),
            (
                &payments,
                "まちペイ",
                "Town payments",
                vec![PAYMENT_HISTORY],
            ),
            (
                &registry,
                "住民基本台帳",
                "Resident registry",
                vec![RESIDENT_ADDRESS],
            ),
        ] {
            store
                .put_provider(&ProviderEntry {
                    id: p.id.clone(),
                    name: text(ja, en),
                    connection: renkei_domain::ProviderConnection::Inbound {
                        endpoint: p.url.clone(),
                    },
                    categories: categories.into_iter().map(cat).collect(),
                    max_answer_bytes: None,
                    signing_keys: p.public_keys(),
                    contact: None,
                    status: renkei_domain::ProviderStatus::Approved,
                })
                .await
                .unwrap();
        }

        // Locators name providers, so they come once the providers are registered.
        store.put_locators(&locators).await.unwrap();

        let hub_server = Server::start(renkei_hub::router(hub.clone())).await;
        let hub_url = hub_server.url.clone();
        Self {
            dir,
            db_path,
            config,
            store,
            hub,
            hub_url,
            hub_server: Some(hub_server),
            http: reqwest::Client::new(),
            clinic,
            payments,
            registry,
            health,
            reminder,
            mobility,
            webhook,
            alice,
            bob,
            carol,
            dev_ca,
        }
    }

    /// Stops the hub (its HTTP server and every handle to it), reopens the SQLite file and
    /// starts a new hub on a new port. Providers and the webhook receiver keep running.
    pub async fn restart_hub(&mut self) {
        // A fresh client, so no pooled connection keeps the old server's handlers alive.
        self.http = reqwest::Client::new();
        if let Some(server) = self.hub_server.take() {
            server.stop().await;
        }
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&self.db_path).await.unwrap());
        let hub = Hub::start(self.config.clone(), store.clone())
            .await
            .unwrap();
        // The old hub and store are dropped here.
        self.store = store;
        self.hub = hub;
        let server = Server::start(renkei_hub::router(self.hub.clone())).await;
        self.hub_url = server.url.clone();
        self.hub_server = Some(server);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.hub_url)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(self.url(path))
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(self.url(path))
    }

    /// A resident's session token: through `/demo/sign-in` in demo mode, otherwise minted
    /// with the hub's key (as the real sign-in would).
    pub async fn sign_in(&self, resident: ResidentId) -> String {
        if !self.config.demo_mode {
            return self
                .hub
                .keys()
                .issue_resident_token(resident, Utc::now())
                .unwrap();
        }
        let response = self
            .post("/demo/sign-in")
            .json(&json!({ "resident": resident.to_string() }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "demo sign-in");
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// An operator's bearer token: Alice's identity made operator `tanaka` (once per town).
    pub async fn operator_token(&self) -> String {
        let id = renkei_domain::OperatorId::new("tanaka").unwrap();
        self.hub
            .add_operator(id.clone(), "田中".into(), self.alice)
            .await
            .unwrap();
        self.hub
            .keys()
            .issue_operator_token(&id, Utc::now())
            .unwrap()
    }

    /// Client credentials in the form body.
    pub async fn service_token(&self, service: &TownService) -> String {
        let response = self
            .post("/oauth/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=client_credentials&client_id={}&client_secret={}",
                service.id, service.secret
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "service token");
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// Client credentials as HTTP Basic.
    pub async fn service_token_basic(&self, service: &TownService) -> reqwest::Response {
        let basic = STANDARD.encode(format!("{}:{}", service.id, service.secret));
        self.post("/oauth/token")
            .header(header::AUTHORIZATION, format!("Basic {basic}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .unwrap()
    }

    pub async fn try_grant(
        &self,
        resident_token: &str,
        service: &str,
        purpose: &str,
    ) -> reqwest::Response {
        self.post("/v1/me/consents")
            .bearer_auth(resident_token)
            .json(&json!({ "service": service, "purpose": purpose }))
            .send()
            .await
            .unwrap()
    }

    /// Grants a consent and expects it to be created.
    pub async fn grant(
        &self,
        resident_token: &str,
        service: &str,
        purpose: &str,
    ) -> GrantedConsent {
        let response = self.try_grant(resident_token, service, purpose).await;
        assert_eq!(response.status(), 201, "granting {service}/{purpose}");
        response.json().await.unwrap()
    }

    pub async fn revoke(&self, resident_token: &str, consent: &str) -> reqwest::Response {
        self.post(&format!("/v1/me/consents/{consent}/revoke"))
            .bearer_auth(resident_token)
            .send()
            .await
            .unwrap()
    }

    pub async fn request_data(
        &self,
        service_token: &str,
        subject: &str,
        purpose: &str,
        categories: &[&str],
    ) -> reqwest::Response {
        self.post("/v1/data-requests")
            .bearer_auth(service_token)
            .json(&json!({ "subject": subject, "purpose": purpose, "categories": categories }))
            .send()
            .await
            .unwrap()
    }

    /// A granted data request's answer (expects 200).
    pub async fn data(
        &self,
        service_token: &str,
        subject: &str,
        purpose: &str,
        categories: &[&str],
    ) -> DataResponse {
        let response = self
            .request_data(service_token, subject, purpose, categories)
            .await;
        assert_eq!(response.status(), 200, "data request");
        response.json().await.unwrap()
    }

    pub async fn consents(&self, resident_token: &str) -> Vec<ConsentView> {
        let response = self
            .get("/v1/me/consents")
            .bearer_auth(resident_token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// The resident's access records as they see them (one page of up to 500).
    pub async fn access_records(&self, resident_token: &str) -> Vec<Value> {
        let response = self
            .get("/v1/me/access-records?limit=500")
            .bearer_auth(resident_token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let page: Value = response.json().await.unwrap();
        page["records"].as_array().unwrap().clone()
    }

    /// Every access record of the resident, following `next_after` from page to page.
    pub async fn all_access_records(&self, resident_token: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after: Option<u64> = None;
        loop {
            let path = match after {
                Some(a) => format!("/v1/me/access-records?limit=500&after={a}"),
                None => "/v1/me/access-records?limit=500".to_owned(),
            };
            let response = self
                .get(&path)
                .bearer_auth(resident_token)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            let page: Value = response.json().await.unwrap();
            out.extend(page["records"].as_array().unwrap().iter().cloned());
            match page["next_after"].as_u64() {
                Some(next) => after = Some(next),
                None => return out,
            }
        }
    }

    /// How many access records the hub keeps in all (whoever they name, or nobody).
    pub async fn access_record_count(&self) -> usize {
        self.all_stored_access_records().await.len()
    }

    /// Every access record the hub keeps, read from storage in log order.
    pub async fn all_stored_access_records(&self) -> Vec<renkei_domain::AccessRecord> {
        let mut all = Vec::new();
        loop {
            let page = self
                .store
                .access_records(&renkei_store::AccessQuery {
                    after_seq: all.last().map(|r: &renkei_domain::AccessRecord| r.seq),
                    limit: 500,
                    ..renkei_store::AccessQuery::default()
                })
                .await
                .unwrap();
            let full = page.len() == 500;
            all.extend(page);
            if !full {
                return all;
            }
        }
    }

    /// The resident of `resident_token` invites a proxy with `scope` (the API's JSON);
    /// returns the one-time code.
    pub async fn invite_proxy(&self, resident_token: &str, scope: Value) -> String {
        let response = self
            .post("/v1/me/proxies")
            .bearer_auth(resident_token)
            .json(&json!({ "label": "娘", "scope": scope }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        body["code"].as_str().unwrap().to_owned()
    }

    /// The person of `proxy_token` accepts `code` and starts acting: the appointment's id
    /// and the session token in which they act for the resident.
    pub async fn act_for(&self, proxy_token: &str, code: &str) -> (String, String) {
        let appointment: Value = self
            .post(&format!("/v1/proxy-invitations/{code}/accept"))
            .bearer_auth(proxy_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = appointment["id"].as_str().unwrap().to_owned();
        let session: Value = self
            .post(&format!("/v1/me/acting-for/{id}/session"))
            .bearer_auth(proxy_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (id, session["access_token"].as_str().unwrap().to_owned())
    }

    /// The hub's published key set, fetched over HTTP.
    pub async fn published_jwks(&self) -> Jwks {
        let response = self.get("/.well-known/jwks.json").send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }
}

/// Reads a problem+json answer: checks the content type and that `status` agrees with
/// the HTTP status, and returns the body.
pub async fn problem(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        content_type, "application/problem+json",
        "a {status} answer must be problem+json: {body}"
    );
    assert_eq!(body["status"], status, "problem status: {body}");
    assert!(body["title"].is_string(), "problem title: {body}");
    (status, body)
}

/// Asserts a problem answer with this status and `type`.
pub async fn expect_problem(response: reqwest::Response, status: u16, kind: &str) -> Value {
    let (got, body) = problem(response).await;
    assert_eq!(
        (got, body["type"].as_str().unwrap_or_default()),
        (status, kind),
        "{body}"
    );
    body
}

impl Town {
    /// Opens each provider's answer with the service's private key, accepting it only as
    /// that provider's signed answer (verified with the keys the hub publishes, as a service
    /// does); the records it released.
    pub async fn open_all(
        &self,
        service: &TownService,
        response: &DataResponse,
    ) -> BTreeMap<String, Value> {
        let published: Vec<Value> = self
            .http
            .get(format!("{}/v1/providers", self.hub_url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let keys = |provider: &str| {
            let entry = published
                .iter()
                .find(|p| p["id"] == provider)
                .unwrap_or_else(|| panic!("{provider} is not published"));
            let keys = renkei_domain::ProviderKeys::parse(&entry["signing_keys"]).unwrap();
            Jwks::from_provider_keys(&keys)
        };
        let request = response.request_id.parse().unwrap();
        response
            .results
            .iter()
            .filter(|r| r.status == "ok")
            .map(|r| {
                let payload = r.payload.clone().unwrap();
                let sealed = renkei_protocol::envelope::SealedPayload {
                    suite: payload.suite,
                    enc: payload.enc,
                    ciphertext: payload.ciphertext,
                };
                let context = EnvelopeContext {
                    provider: renkei_domain::ProviderId::new(r.provider.as_str()).unwrap(),
                    request,
                };
                let claims = renkei_protocol::payload::open_verified(
                    &service.keys,
                    &service.id,
                    &context,
                    &keys(&r.provider),
                    &sealed,
                )
                .unwrap();
                (r.provider.clone(), claims.data)
            })
            .collect()
    }
}

/// The claims of a grant, read without checking it (what a wiretapper sees).
pub fn grant_claims(grant: &str) -> GrantClaims {
    let payload = grant.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// POSTs a grant straight to a provider, as the hub would.
pub async fn present_grant(
    http: &reqwest::Client,
    provider_url: &str,
    grant: &str,
) -> reqwest::Response {
    http.post(format!("{provider_url}/renkei/v1/fetch"))
        .bearer_auth(grant)
        .send()
        .await
        .unwrap()
}

/// The address a test calling the hub's operations directly acts from.
pub fn local_peer() -> renkei_hub::limits::PeerAddr {
    renkei_hub::limits::PeerAddr(std::net::Ipv4Addr::LOCALHOST.into())
}

/// Expects a 429 `rate-limited` problem whose `Retry-After` says how many seconds to wait
/// (at least one, at most `within`).
pub async fn expect_rate_limited(response: reqwest::Response, within: u64) {
    let retry_after: u64 = response
        .headers()
        .get(header::RETRY_AFTER)
        .expect("a 429 says when to try again")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=within).contains(&retry_after),
        "Retry-After: {retry_after}"
    );
    let body = expect_problem(response, 429, "/problems/rate-limited").await;
    assert_eq!(body["retry_after"], retry_after);
}

/// Limits that let everything through but what a test is about.
pub fn limits(
    change: impl FnOnce(&mut renkei_hub::limits::RateLimits),
) -> renkei_hub::limits::RateLimits {
    let mut limits = renkei_hub::limits::RateLimits::GENEROUS;
    change(&mut limits);
    limits
}
