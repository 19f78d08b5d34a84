//! The demo town: seeds a fresh hub with ひかり台市, runs its three data providers as real
//! HTTP servers, and prints what to try next.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use renkei_domain::{
    Actor, CategoryId, ConsentChannel, DataCategory, LegalBasis, LocalizedText, Locator, Provider,
    ProviderId, Service, ServiceId, ServiceStatus,
};
use renkei_hub::consents::GrantConsentBody;
use renkei_hub::{Hub, HubConfig};
use renkei_protocol::envelope::ServiceKeyPair;
use renkei_provider::kit::config::KitConfig;
use renkei_store::{PurposeDraft, Store};

use crate::demo_kit::{Storage, write_provider};
use crate::town::{self, Person};

/// Same seed, same town.
pub const SEED: u64 = 20_261_123;

/// Where the demo runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub data_dir: PathBuf,
    pub hub: SocketAddr,
    /// The registry, clinic and payment provider listen on the next three ports.
    pub first_provider_port: u16,
    pub residents: usize,
}

struct ProviderSpec {
    id: &'static str,
    name: (&'static str, &'static str),
    categories: &'static [&'static str],
}

const PROVIDERS: [ProviderSpec; 3] = [
    ProviderSpec {
        id: "city-registry",
        name: (
            "ひかり台市 住民基本台帳・避難行動要支援者名簿",
            "Hikaridai City registry and evacuation-support register",
        ),
        categories: &[
            "resident.name",
            "resident.address",
            "resident.birth_date",
            "resident.sex",
            "evacuation.support",
        ],
    },
    ProviderSpec {
        id: "hikari-clinic",
        name: ("ひかり台クリニック", "Hikaridai Clinic"),
        categories: &["health.checkup"],
    },
    ProviderSpec {
        id: "hikari-pay",
        name: ("ひかりペイ", "Hikari Pay"),
        categories: &["payment.history"],
    },
];

/// `(id, ja, en, special care)`.
const CATEGORIES: &[(&str, &str, &str, bool)] = &[
    ("resident.name", "氏名", "Name", false),
    ("resident.address", "住所", "Address", false),
    ("resident.birth_date", "生年月日", "Date of birth", false),
    ("resident.sex", "性別", "Sex", false),
    (
        "evacuation.support",
        "避難行動要支援者名簿の記載事項",
        "Evacuation-support register entry",
        true,
    ),
    (
        "health.checkup",
        "健康診断結果",
        "Health check results",
        true,
    ),
    ("payment.history", "決済履歴", "Payment history", false),
];

struct ServiceSpec {
    id: &'static str,
    name: (&'static str, &'static str),
    sector: &'static str,
    purpose: &'static str,
    title: (&'static str, &'static str),
    description: (&'static str, &'static str),
    categories: &'static [&'static str],
    retention_days: u32,
    /// Whom residents contact about their data (fictional): contact, postal code,
    /// locality, street address, email, phone.
    controller: ContactSpec,
}

struct ContactSpec {
    contact: &'static str,
    postal_code: &'static str,
    locality: &'static str,
    street_address: &'static str,
    email: &'static str,
    phone: &'static str,
}

impl ContactSpec {
    /// The contact details, checked as a registration checks them.
    fn contact(&self) -> anyhow::Result<renkei_domain::ControllerContact> {
        Ok(renkei_domain::ControllerContact {
            contact: self.contact.to_owned(),
            address: renkei_domain::PostalAddress {
                country: "JP".to_owned(),
                postal_code: self.postal_code.to_owned(),
                region: "ひかり県".to_owned(),
                locality: self.locality.to_owned(),
                street_address: self.street_address.to_owned(),
            },
            email: self.email.to_owned(),
            phone: self.phone.to_owned(),
        }
        .checked()?)
    }
}

const SERVICES: [ServiceSpec; 3] = [
    ServiceSpec {
        id: "health-advice",
        name: ("ひかり台けんこうナビ", "Hikaridai Health Navi"),
        sector: "health",
        purpose: "health-advice",
        title: ("健康アドバイス", "Health advice"),
        description: (
            "健康診断結果と決済履歴（食品の購入傾向）から、生活習慣の改善アドバイスをお届けします。",
            "We send lifestyle advice based on your health check results and payment history (what food you buy).",
        ),
        categories: &["payment.history", "health.checkup"],
        retention_days: 365,
        controller: ContactSpec {
            contact: "ひかり台けんこうナビ 個人情報保護窓口",
            postal_code: "999-0101",
            locality: "ひかり台市",
            street_address: "中央一丁目2番3号 ひかり台メディカルビル4階",
            email: "privacy@kenko-navi.example",
            phone: "+81-3-0000-0101",
        },
    },
    ServiceSpec {
        id: "bousai-app",
        name: ("ひかり台防災アプリ", "Hikaridai Disaster Preparedness"),
        sector: "disaster",
        purpose: "evacuation-support",
        title: ("避難支援", "Evacuation support"),
        description: (
            "災害時に支援が必要な方の避難を地域の支援者が手伝えるよう、基本4情報と避難行動要支援者名簿の記載事項を使います。",
            "So that local supporters can help you evacuate in a disaster, we use your basic four details and your evacuation-support register entry.",
        ),
        categories: &[
            "resident.name",
            "resident.address",
            "resident.birth_date",
            "resident.sex",
            "evacuation.support",
        ],
        retention_days: 90,
        controller: ContactSpec {
            contact: "ひかり台市 危機管理課 防災アプリ担当",
            postal_code: "999-0100",
            locality: "ひかり台市",
            street_address: "役所通り1番1号 ひかり台市役所3階",
            email: "bousai-privacy@city-hikaridai.example",
            phone: "+81-3-0000-0102",
        },
    },
    ServiceSpec {
        id: "community-bus",
        name: ("ひかり台オンデマンドバス", "Hikaridai On-demand Bus"),
        sector: "mobility",
        purpose: "bus-pickup",
        title: ("自宅前での乗車", "Pick-up at your door"),
        description: (
            "予約したバスが自宅前まで迎えに行くために、住所だけを使います。",
            "We use your address only, so the bus you booked can pick you up at your door.",
        ),
        categories: &["resident.address"],
        retention_days: 30,
        controller: ContactSpec {
            contact: "ひかり台交通株式会社 お客様相談室",
            postal_code: "999-0112",
            locality: "ひかり台市",
            street_address: "駅前三丁目4番5号",
            email: "privacy@hikari-bus.example",
            phone: "+81-3-0000-0103",
        },
    },
];

fn cat(id: &str) -> anyhow::Result<CategoryId> {
    CategoryId::new(id).with_context(|| format!("category {id}"))
}

/// What the demo prints so a newcomer can try it.
pub struct DemoTown {
    pub hub: Hub,
    pub people: Vec<Person>,
    /// `(service id, client secret)`.
    pub clients: Vec<(String, String)>,
}

/// The demo's client secret for a service: fixed, so the README's commands work as written.
/// Demo only: real services get random secrets from `renkei_hub::auth::new_client_secret`.
pub fn demo_client_secret(service: &str) -> String {
    format!("demo-secret-{service}")
}

/// The demo's issuer: `localhost` for a loopback address, since passkeys (WebAuthn) need a
/// domain name as their relying-party id.
pub fn demo_issuer(listen: SocketAddr) -> String {
    if listen.ip().is_loopback() {
        format!("http://localhost:{}", listen.port())
    } else {
        format!("http://{listen}")
    }
}

/// Where the demo keeps its development CA (the stand-in for JPKI).
pub fn dev_ca_dir(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("dev-ca")
}

/// The demo's trust anchor: a development CA made on first run and kept in the data dir, so
/// `renkei dev-ca issue --dir <data dir>/dev-ca` makes cards the demo hub accepts.
fn demo_trust_anchors(data_dir: &std::path::Path) -> anyhow::Result<renkei_identity::TrustAnchors> {
    let dir = dev_ca_dir(data_dir);
    let ca = if dir.join("root.pem").exists() {
        renkei_identity::DevCa::load(&dir)?
    } else {
        let ca = renkei_identity::DevCa::generate(renkei_identity::KeyAlgorithm::EcdsaP256)?;
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        ca.save(&dir)?;
        ca
    };
    Ok(renkei_identity::TrustAnchors::new(&[ca.root_der()])?.with_crls(&[ca.crl_der()?])?)
}

/// The demo's key-encryption key: `kek` in the data directory, made (owner-only) on first run
/// so the demo needs no set-up. Beside the database it protects nothing from whoever copies
/// the directory; a real hub keeps its KEK elsewhere (`renkei serve --kek-file`).
pub fn demo_kek(data_dir: &Path) -> anyhow::Result<renkei_hub::kek::Kek> {
    let path = data_dir.join("kek");
    if path.exists() {
        crate::run::read_kek_file(&path)
    } else {
        crate::run::write_new_kek(&path)
    }
}

/// Where a demo service gets residents back after OpenID Connect sign-in (nothing listens
/// there: a developer trying the flow reads the code off the browser's address bar).
pub fn demo_redirect_uri(service: &str) -> String {
    format!("http://localhost:8090/{service}/callback")
}

/// The demo operator's identity: fixed, so the console's demo sign-in finds it.
pub const DEMO_OPERATOR_IDENTITY: &str = "00000000-0000-4000-8000-00000000c0de";

/// Seeds storage with the town (once; later runs find it there) and starts the hub.
pub async fn build(options: &DemoOptions, store: Arc<dyn Store>) -> anyhow::Result<DemoTown> {
    let people = town::people(options.residents, SEED);
    let kek = demo_kek(&options.data_dir)?;
    crate::run::open_secrets(store.as_ref(), &kek).await?;
    let mut config = HubConfig::new(demo_issuer(options.hub), kek);
    config.demo_mode = true;
    // The demo town's providers listen on 127.0.0.1.
    config.allow_local_network = true;
    config.trust_anchors = Some(Arc::new(demo_trust_anchors(&options.data_dir)?));
    // The demo is for trying every flow from one machine (and its tests script them fast).
    config.limits = renkei_hub::limits::RateLimits::GENEROUS;
    let hub = Hub::start(config, store.clone()).await?;
    let clients: Vec<(String, String)> = SERVICES
        .iter()
        .map(|s| (s.id.to_owned(), demo_client_secret(s.id)))
        .collect();
    if store.services().await?.is_empty() {
        seed(options, store.as_ref(), &hub, &people).await?;
        let identity: renkei_domain::ResidentId = DEMO_OPERATOR_IDENTITY.parse()?;
        store.add_resident(identity, Utc::now()).await?;
        hub.add_operator(
            renkei_domain::OperatorId::new("demo-operator")?,
            "デモ職員 / Demo operator".into(),
            identity,
        )
        .await?;
    }
    Ok(DemoTown {
        hub,
        people,
        clients,
    })
}

async fn seed(
    options: &DemoOptions,
    store: &dyn Store,
    hub: &Hub,
    people: &[Person],
) -> anyhow::Result<()> {
    let now = Utc::now();
    for (id, ja, en, special_care) in CATEGORIES {
        store
            .put_category(&DataCategory {
                id: cat(id)?,
                name: LocalizedText::new(*ja, *en),
                special_care: *special_care,
            })
            .await?;
    }
    for (i, p) in PROVIDERS.iter().enumerate() {
        let port = options.first_provider_port + u16::try_from(i)?;
        store
            .put_provider(&Provider {
                id: ProviderId::new(p.id)?,
                name: LocalizedText::new(p.name.0, p.name.1),
                connection: renkei_domain::ProviderConnection::Inbound {
                    endpoint: format!("http://127.0.0.1:{port}"),
                },
                categories: p
                    .categories
                    .iter()
                    .map(|c| cat(c))
                    .collect::<anyhow::Result<_>>()?,
                max_answer_bytes: None,
                signing_keys: Default::default(),
                contact: None,
                status: renkei_domain::ProviderStatus::Approved,
            })
            .await?;
    }
    let keys_dir = options.data_dir.join("service-keys");
    crate::run::create_private_dir(&keys_dir)?;
    for s in &SERVICES {
        let keys = ServiceKeyPair::generate()?;
        write_private_key(&keys_dir.join(format!("{}.key", s.id)), &keys.private_b64())?;
        let service = Service {
            id: ServiceId::new(s.id)?,
            name: LocalizedText::new(s.name.0, s.name.1),
            sector: s.sector.to_owned(),
            hpke_public_key: keys.public_b64(),
            webhook_url: None,
            status: ServiceStatus::Approved,
        };
        store
            .put_service(
                &service,
                &renkei_hub::auth::hash_client_secret(&demo_client_secret(s.id)),
            )
            .await?;
        store
            .put_service_client(&renkei_domain::ServiceClient {
                service: service.id.clone(),
                redirect_uris: vec![demo_redirect_uri(s.id)],
                privacy_impact: Default::default(),
                registered_at: now,
                id_token_signed_response_alg: renkei_domain::SigningAlg::default(),
                controller: Some(s.controller.contact()?),
            })
            .await?;
        store
            .publish_purpose(
                &PurposeDraft {
                    service: service.id.clone(),
                    id: renkei_domain::PurposeId::new(s.purpose)?,
                    title: LocalizedText::new(s.title.0, s.title.1),
                    description: LocalizedText::new(s.description.0, s.description.1),
                    categories: s
                        .categories
                        .iter()
                        .map(|c| cat(c))
                        .collect::<anyhow::Result<BTreeSet<_>>>()?,
                    retention_days: s.retention_days,
                    legal_basis: LegalBasis::Consent,
                },
                now,
            )
            .await?;
    }
    let mut locators = Vec::new();
    for (i, p) in people.iter().enumerate() {
        store.add_resident(p.resident, now).await?;
        let mut put = |category: &str, provider: &str, reference: String| -> anyhow::Result<()> {
            locators.push(Locator {
                resident: p.resident,
                category: cat(category)?,
                provider: ProviderId::new(provider)?,
                reference,
            });
            Ok(())
        };
        for c in [
            "resident.name",
            "resident.address",
            "resident.birth_date",
            "resident.sex",
        ] {
            put(c, "city-registry", p.registry_ref(i))?;
        }
        if p.evacuation_support.is_some() {
            put("evacuation.support", "city-registry", p.registry_ref(i))?;
        }
        if p.has_clinic_record {
            put("health.checkup", "hikari-clinic", p.clinic_ref(i))?;
        }
        if p.has_payment_record {
            put("payment.history", "hikari-pay", p.payment_ref(i))?;
        }
    }
    store.put_locators(&locators).await?;
    // Some residents already said yes; the guide's resident is left for the walk-through.
    let guide = guide_resident(people).map(|p| p.resident);
    let mut rng = StdRng::seed_from_u64(SEED ^ 0xC0DE);
    for p in people.iter().filter(|p| Some(p.resident) != guide) {
        for (service, purpose, chance) in [
            ("community-bus", "bus-pickup", 0.3),
            ("health-advice", "health-advice", 0.1),
            (
                "bousai-app",
                "evacuation-support",
                if p.evacuation_support.is_some() {
                    0.6
                } else {
                    0.02
                },
            ),
        ] {
            if rng.random_bool(chance) {
                let body = GrantConsentBody {
                    service: service.into(),
                    purpose: purpose.into(),
                    valid_days: None,
                };
                hub.grant_consent(p.resident, body, ConsentChannel::Demo, Actor::Resident)
                    .await?;
            }
        }
    }
    Ok(())
}

fn write_private_key(path: &Path, key: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    // `mode` applies only to a file it creates: one left from an earlier run is made
    // owner-only too.
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    writeln!(file, "{key}")?;
    file.sync_all()?;
    Ok(())
}

/// Starts the three providers of the town on their ports, each on the provider kit from the
/// files [`crate::demo_kit`] writes into `<data dir>/providers/`. The hub must already be
/// serving at `hub_url`: each kit fetches its key set from there.
pub async fn start_providers(
    options: &DemoOptions,
    hub_url: &str,
    people: &[Person],
) -> anyhow::Result<Vec<renkei_provider::kit::RunningKit>> {
    let records = [
        town::registry_records(people),
        town::clinic_records(people, SEED),
        town::payment_records(people, SEED),
    ];
    let storage = [Storage::Sqlite, Storage::Sqlite, Storage::Csv];
    let mut kits = Vec::new();
    for ((i, spec), (records, storage)) in PROVIDERS
        .iter()
        .enumerate()
        .zip(records.iter().zip(storage))
    {
        let addr = SocketAddr::from((
            [127, 0, 0, 1],
            options.first_provider_port + u16::try_from(i)?,
        ));
        let dir = options.data_dir.join("providers").join(spec.id);
        let config = write_provider(&dir, spec.id, addr, hub_url, storage, records).await?;
        let config = KitConfig::load(&config)?;
        let kit = renkei_provider::kit::start(&config)
            .await
            .with_context(|| format!("starting provider {} on {addr}", spec.id))?;
        kits.push(kit);
    }
    Ok(kits)
}

/// The resident the printed walk-through signs in as: the first with records at every provider.
pub fn guide_resident(people: &[Person]) -> Option<&Person> {
    people
        .iter()
        .find(|p| p.has_clinic_record && p.has_payment_record)
}

/// What to try next, printed when the demo starts.
pub fn guide(options: &DemoOptions, town: &DemoTown) -> String {
    let hub = format!("http://{}", options.hub);
    let first = guide_resident(&town.people);
    let resident = first.map(|p| p.resident.to_string()).unwrap_or_default();
    let name = first.map(|p| p.name.clone()).unwrap_or_default();
    let secret = demo_client_secret("health-advice");
    let keys = options.data_dir.join("service-keys");
    let mut out = String::new();
    out.push_str(&format!("\nRenkei demo town ひかり台市 is running.\n  hub:        {hub}  (OpenAPI: {hub}/openapi.json)\n"));
    for (i, p) in PROVIDERS.iter().enumerate() {
        out.push_str(&format!(
            "  provider:   http://127.0.0.1:{}  {}\n",
            options.first_provider_port as usize + i,
            p.id
        ));
    }
    out.push_str(&format!(
        "  residents:  {}\n  data:       {}\n\nServices (client id / secret):\n",
        town.people.len(),
        options.data_dir.display()
    ));
    for (id, secret) in &town.clients {
        out.push_str(&format!("  {id:<15} {secret}\n"));
    }
    // The root of trust for everything a resident or auditor checks: an auditor takes it
    // from the city out of band (printed here, as an operator would publish it), not only
    // from the hub it is meant to check.
    out.push_str(&format!(
        "\nAccess log verifier key (also at {hub}/log/key; keep it to verify the log):\n  {}\n",
        town.hub.keys().log.verifier_key()
    ));
    out.push_str(&format!(
        "\nTry it (resident {name}, id {resident}):\n\
  R=$(curl -s -X POST {hub}/demo/sign-in -H 'content-type: application/json' -d '{{\"resident\":\"{resident}\"}}' | jq -r .access_token)\n\
  curl -s -X POST {hub}/v1/me/consents -H \"authorization: Bearer $R\" -H 'content-type: application/json' \\\n\
       -d '{{\"service\":\"health-advice\",\"purpose\":\"health-advice\"}}' | tee consent.json | jq .consent\n\
  S=$(curl -s -u health-advice:{secret} -d grant_type=client_credentials {hub}/oauth/token | jq -r .access_token)\n\
  curl -s -X POST {hub}/v1/data-requests -H \"authorization: Bearer $S\" -H 'content-type: application/json' \\\n\
       -d \"{{\\\"subject\\\":\\\"$(jq -r .subject consent.json)\\\",\\\"purpose\\\":\\\"health-advice\\\",\\\"categories\\\":[\\\"health.checkup\\\",\\\"payment.history\\\"]}}\" | tee data.json | jq .\n\
  cargo run --release -- decrypt --key {keys}/health-advice.key < data.json\n\
  curl -s -X POST {hub}/v1/me/consents/$(jq -r .consent.id consent.json)/revoke -H \"authorization: Bearer $R\" | jq .state\n\
  (repeat the data request: now 403 /problems/consent-revoked)\n\
  curl -s {hub}/v1/me/access-records -H \"authorization: Bearer $R\" | jq .\n",
        keys = keys.display()
    ));
    out
}
