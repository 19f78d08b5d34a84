//! The demo town: seeds a fresh hub with ひかり台市, runs its three data providers as real
//! HTTP servers, and prints what to try next.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use renkei_domain::{Actor, ConsentChannel};
use renkei_hub::consents::GrantConsentBody;
use renkei_hub::{Hub, HubConfig};
use renkei_provider::kit::config::KitConfig;
use renkei_store::Store;

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

pub(crate) struct ProviderSpec {
    pub(crate) id: &'static str,
    pub(crate) name: (&'static str, &'static str),
    pub(crate) categories: &'static [&'static str],
    /// Whom the city contacts about the provider (fictional).
    pub(crate) contact: ContactSpec,
}

pub(crate) const PROVIDERS: [ProviderSpec; 3] = [
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
        contact: ContactSpec {
            contact: "ひかり台市 市民課 住民基本台帳担当",
            postal_code: "999-0100",
            locality: "ひかり台市",
            street_address: "役所通り1番1号 ひかり台市役所1階",
            email: "juki@city-hikaridai.example",
            phone: "+81-3-0000-0110",
        },
    },
    ProviderSpec {
        id: "hikari-clinic",
        name: ("ひかり台クリニック", "Hikaridai Clinic"),
        categories: &["health.checkup"],
        contact: ContactSpec {
            contact: "ひかり台クリニック 医療情報管理室",
            postal_code: "999-0101",
            locality: "ひかり台市",
            street_address: "中央一丁目5番8号",
            email: "records@hikari-clinic.example",
            phone: "+81-3-0000-0111",
        },
    },
    ProviderSpec {
        id: "hikari-pay",
        name: ("ひかりペイ", "Hikari Pay"),
        categories: &["payment.history"],
        contact: ContactSpec {
            contact: "ひかりペイ株式会社 データ連携窓口",
            postal_code: "999-0112",
            locality: "ひかり台市",
            street_address: "駅前二丁目1番1号",
            email: "renkei@hikari-pay.example",
            phone: "+81-3-0000-0112",
        },
    },
];

/// `(id, ja, en, special care)`.
pub(crate) const CATEGORIES: &[(&str, &str, &str, bool)] = &[
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

pub(crate) struct ServiceSpec {
    pub(crate) id: &'static str,
    pub(crate) name: (&'static str, &'static str),
    pub(crate) sector: &'static str,
    pub(crate) purpose: &'static str,
    pub(crate) title: (&'static str, &'static str),
    pub(crate) description: (&'static str, &'static str),
    pub(crate) categories: &'static [&'static str],
    pub(crate) retention_days: u32,
    /// Whom residents contact about their data (fictional): contact, postal code,
    /// locality, street address, email, phone.
    pub(crate) controller: ContactSpec,
}

pub(crate) struct ContactSpec {
    pub(crate) contact: &'static str,
    pub(crate) postal_code: &'static str,
    pub(crate) locality: &'static str,
    pub(crate) street_address: &'static str,
    pub(crate) email: &'static str,
    pub(crate) phone: &'static str,
}

impl ContactSpec {
    /// The contact details, checked as a registration checks them.
    pub(crate) fn contact(&self) -> anyhow::Result<renkei_domain::ControllerContact> {
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

pub(crate) const SERVICES: [ServiceSpec; 3] = [
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

/// What the demo prints so a newcomer can try it.
pub struct DemoTown {
    pub hub: Hub,
    pub people: Vec<Person>,
    /// `(service id, client secret)`.
    pub clients: Vec<(String, String)>,
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
/// A second demo operator's identity: a declared emergency takes effect only when a second,
/// different operator confirms it, so the demo has two.
pub const DEMO_SECOND_OPERATOR_IDENTITY: &str = "00000000-0000-4000-8000-00000000c0df";

/// The demo counter staff member's identity (窓口職員): they sign in to the console, which
/// opens on the counter, and do counter work and nothing else.
pub const DEMO_COUNTER_IDENTITY: &str = "00000000-0000-4000-8000-00000000c0e0";

/// Starts the hub, with the demo operator's account (made once; later runs find it).
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
    // The demo operator's identity and account exist before anything else: they are who
    // registers the town, through the API, as a city's operator would.
    for (identity, id, name) in [
        (
            DEMO_OPERATOR_IDENTITY,
            "demo-operator",
            "デモ職員 / Demo operator",
        ),
        (
            DEMO_SECOND_OPERATOR_IDENTITY,
            "demo-operator-2",
            "デモ職員2 / Second demo operator",
        ),
    ] {
        let identity: renkei_domain::ResidentId = identity.parse()?;
        if hub.operator_of(identity).await?.is_none() {
            store.add_resident(identity, Utc::now()).await?;
            hub.add_operator(renkei_domain::OperatorId::new(id)?, name.into(), identity)
                .await?;
        }
    }
    let counter: renkei_domain::ResidentId = DEMO_COUNTER_IDENTITY.parse()?;
    if hub.operator_of(counter).await?.is_none() {
        store.add_resident(counter, Utc::now()).await?;
        hub.add_operator_as(
            renkei_domain::OperatorId::new("demo-counter")?,
            "窓口職員 / Counter staff".into(),
            counter,
            renkei_domain::OperatorRole::CounterStaff,
        )
        .await?;
    }
    Ok(DemoTown {
        hub,
        people,
        clients: Vec::new(),
    })
}

/// Registers the town through the serving hub's API, as its operator (once; later runs find
/// it there), seeds its residents, and reads the services' client secrets back.
pub async fn register(
    options: &DemoOptions,
    store: &dyn Store,
    town: &mut DemoTown,
    hub_url: &str,
) -> anyhow::Result<()> {
    if store.providers().await?.is_empty() {
        crate::demo_onboard::register_town(options, hub_url).await?;
        seed(store, &town.hub, &town.people).await?;
    }
    town.clients = crate::demo_onboard::client_secrets(&options.data_dir)?;
    Ok(())
}

/// The town's residents and the consents some already gave (where their data lives is told
/// to the hub by the providers' kits, in [`start_providers`]).
async fn seed(store: &dyn Store, hub: &Hub, people: &[Person]) -> anyhow::Result<()> {
    let now = Utc::now();
    for p in people {
        store.add_resident(p.resident, now).await?;
    }
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
    // One correction the city let run past its due date, so that the console's queue shows
    // what an overdue request looks like (flagged, in the summary).
    if let Some(p) = people.iter().find(|p| Some(p.resident) != guide) {
        let days = renkei_domain::rights::DEFAULT_ANSWER_DAYS;
        let filed = now - chrono::TimeDelta::days(i64::from(days) + 3);
        store
            .file_request(&renkei_domain::ResidentRequest {
                id: renkei_domain::ResidentRequestId::from_uuid(uuid::Uuid::new_v4()),
                resident: p.resident,
                kind: renkei_domain::ResidentRequestKind::Correction,
                service: None,
                details: "転居したので住所を訂正してください".into(),
                status: renkei_domain::ResidentRequestStatus::Received,
                filed_by: Actor::Resident,
                filed_at: filed,
                updated_at: filed,
                response: None,
                category: None,
                due_at: renkei_domain::rights::due_at(filed, days),
                extension_reason: None,
            })
            .await?;
    }
    Ok(())
}

/// Starts the three providers of the town on their ports, each on the provider kit from the
/// files [`crate::demo_kit`] writes into `<data dir>/providers/`, and has each tell the hub
/// where its records are (`renkei provider sync`), with the codes the town's residents gave
/// at its counter (as their portal shows them). The hub must already be serving at
/// `hub_url`: each kit fetches its key set from there.
pub async fn start_providers(
    options: &DemoOptions,
    hub: &Hub,
    hub_url: &str,
    people: &[Person],
) -> anyhow::Result<Vec<renkei_provider::kit::RunningKit>> {
    let records = [
        town::registry_records(people),
        town::clinic_records(people, SEED),
        town::payment_records(people, SEED),
    ];
    // Each provider's record references, by the code of the resident they belong to.
    let (mut registry, mut clinic, mut pay) = (HashMap::new(), HashMap::new(), HashMap::new());
    for (i, p) in people.iter().enumerate() {
        for code in hub.provider_codes(p.resident).await? {
            let (codes, reference) = match code.provider.as_str() {
                "city-registry" => (&mut registry, p.registry_ref(i)),
                "hikari-clinic" => (&mut clinic, p.clinic_ref(i)),
                "hikari-pay" => (&mut pay, p.payment_ref(i)),
                _ => continue,
            };
            codes.insert(reference, code.code);
        }
    }
    // The register also lists each entry by its resident's code at the registry: area lists
    // name entries by it (issue 24).
    const REGISTER: &str = "evacuation.support";
    let holder = PROVIDERS
        .iter()
        .find(|spec| spec.categories.contains(&REGISTER))
        .map_or("city-registry", |spec| spec.id);
    let codes = [registry, clinic, pay].map(|codes| crate::demo_kit::ResidentCodes {
        codes,
        area_list: None,
    });
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()?;
    let storage = [Storage::Sqlite, Storage::Sqlite, Storage::Csv];
    let mut kits = Vec::new();
    for (((i, spec), (records, storage)), codes) in PROVIDERS
        .iter()
        .enumerate()
        .zip(records.iter().zip(storage))
        .zip(codes)
    {
        let addr = SocketAddr::from((
            [127, 0, 0, 1],
            options.first_provider_port + u16::try_from(i)?,
        ));
        let dir = crate::demo_onboard::provider_dir(&options.data_dir, spec.id);
        let codes = crate::demo_kit::ResidentCodes {
            area_list: (spec.id == holder).then(|| REGISTER.to_owned()),
            ..codes
        };
        let config = write_provider(&dir, spec.id, addr, hub_url, storage, records, &codes).await?;
        let config = KitConfig::load(&config)?;
        let credentials = renkei_provider::kit::credentials::ClientAssertion::new(
            http.clone(),
            hub_url,
            config.provider.clone(),
            renkei_provider::kit::read_signing_key(&config.signing_key)?,
        );
        renkei_provider::kit::sync::sync(&config, &http, &credentials)
            .await
            .with_context(|| format!("syncing provider {}'s locators", spec.id))?;
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
    let secret = town
        .clients
        .iter()
        .find(|(id, _)| id == "health-advice")
        .map(|(_, secret)| secret.clone())
        .unwrap_or_default();
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
  cargo run --release -- decrypt --service health-advice --key {keys}/health-advice.key --hub {hub} < data.json\n\
  curl -s -X POST {hub}/v1/me/consents/$(jq -r .consent.id consent.json)/revoke -H \"authorization: Bearer $R\" | jq .state\n\
  (repeat the data request: now 403 /problems/consent-revoked)\n\
  curl -s {hub}/v1/me/access-records -H \"authorization: Bearer $R\" | jq .\n\
\nA deletion request reaches the service that received the data and the provider that keeps it:\n\
  curl -s -X POST {hub}/v1/me/requests -H \"authorization: Bearer $R\" -H 'content-type: application/json' \\\n\
       -d '{{\"kind\":\"deletion\",\"service\":\"health-advice\",\"details\":\"please delete\"}}' | tee request.json | jq .recipients\n\
  curl -s {hub}/v1/service/rights-requests -H \"authorization: Bearer $S\" | jq .\n\
  curl -s -X POST {hub}/v1/service/rights-requests/$(jq -r .id request.json)/answer -H \"authorization: Bearer $S\" \\\n\
       -H 'content-type: application/json' -d '{{\"answer\":\"done\"}}' | jq .\n\
  (the portal's requests page shows each answer; the console's queue flags overdue requests)\n",
        keys = keys.display()
    ));
    out.push_str(&format!(
        "\nThe city's counter (窓口): sign in to {hub}/console/sign-in as counter staff \
(identity {DEMO_COUNTER_IDENTITY}); a resident enrolled with a card is found by name and \
birth date, and each receipt's QR code opens {hub}/portal/receipts/check.\n"
    ));
    out
}
