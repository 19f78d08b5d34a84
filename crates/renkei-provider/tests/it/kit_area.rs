//! The kit's area lists end to end: a register read by query from SQLite and one read from a
//! CSV file, each selected by its mesh-code column for an area grant, every entry sealed on
//! its own and named by the resident's code, which is never released.

use std::path::Path;

use chrono::Utc;
use renkei_domain::{Area, CategoryId, DeclarationId, ProviderId, PurposeId, RequestId, ServiceId};
use renkei_protocol::envelope::{EnvelopeContext, SealedPayload, ServiceKeyPair};
use renkei_protocol::grant::{AreaAnswer, AreaGrantClaims, sign_area_grant};
use renkei_protocol::keys::{Jwks, SigningKey};
use renkei_provider::kit::config::KitConfig;
use renkei_provider::kit::{RunningKit, start};
use serde_json::Value;
use uuid::Uuid;

struct World {
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
    hub_key: SigningKey,
    provider_key: SigningKey,
    service_keys: ServiceKeyPair,
    kit: RunningKit,
}

async fn stand_in_hub(jwks: Jwks) -> String {
    let app = axum::Router::new().route(
        "/.well-known/jwks.json",
        axum::routing::get(move || async move { axum::Json(jwks) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

async fn register_database(path: &Path) {
    use sqlx::ConnectOptions;
    let mut db = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .connect()
        .await
        .unwrap();
    for sql in [
        "CREATE TABLE register (no TEXT, renkei_code TEXT, mesh TEXT, name TEXT, needs TEXT)",
        "INSERT INTO register VALUES
            ('R-1', 'code-alice', '533945261', '山田 花子', '車椅子'),
            ('R-2', 'code-bob', '53394527', '佐藤 一郎', '視覚'),
            ('R-3', 'code-carol', '53394526', '鈴木 良子', '酸素'),
            ('R-4', NULL, '53394526', '未登録', '聴覚'),
            ('R-5', 'code-dan', 'unknown', '田中 健', '透析')",
    ] {
        sqlx::query(sql).execute(&mut db).await.unwrap();
    }
}

async fn world() -> World {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();
    register_database(&dir.join("register.db")).await;
    std::fs::write(
        dir.join("plans.csv"),
        "plan_no,renkei_code,mesh,shelter,helper\nX-1,code-alice,533945261,ひかり小学校,近所の佐藤さん\nX-2,code-erin,district:hikari-1,公民館,民生委員\nX-3,code-bob,53394527,中学校,家族\n",
    )
    .unwrap();
    let hub_key = SigningKey::generate().unwrap();
    let provider_key = SigningKey::generate().unwrap();
    let key_path = dir.join("signing.pem");
    std::fs::write(&key_path, provider_key.to_pkcs8_pem().unwrap().as_bytes()).unwrap();
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let hub = stand_in_hub(Jwks::from_signing_keys([&hub_key])).await;
    let config = format!(
        r#"
provider = "hikari-welfare"
listen = "127.0.0.1:0"
hub = "{hub}"
access_log = "access.jsonl"
signing_key = "signing.pem"
[database]
url = "sqlite:{db}"
[[category]]
id = "disaster.support"
query = "SELECT name, needs FROM register WHERE no = $1"
[category.area]
query = "SELECT renkei_code, mesh, name, needs FROM register"
subject = "renkei_code"
place = "mesh"
[[category]]
id = "disaster.plan"
csv = "plans.csv"
key = "plan_no"
[category.area]
subject = "renkei_code"
place = "mesh"
[[category]]
id = "health.checkup"
query = "SELECT 1 AS one WHERE $1 = $1"
"#,
        db = dir.join("register.db").display()
    );
    std::fs::write(dir.join("provider.toml"), config).unwrap();
    let config = KitConfig::load(&dir.join("provider.toml")).unwrap();
    let kit = start(&config).await.unwrap();
    World {
        _dir: tmp,
        dir,
        hub_key,
        provider_key,
        service_keys: ServiceKeyPair::generate().unwrap(),
        kit,
    }
}

fn claims(w: &World, area: &[&str], categories: &[&str]) -> AreaGrantClaims {
    let now = Utc::now().timestamp();
    let emergency = DeclarationId::from_uuid(Uuid::now_v7());
    AreaGrantClaims {
        iss: "http://hub.test".into(),
        aud: ProviderId::new("hikari-welfare").unwrap(),
        jti: Uuid::new_v4(),
        iat: now,
        exp: now + 30,
        request_id: RequestId::from_uuid(Uuid::now_v7()),
        service: ServiceId::new("fire-dept").unwrap(),
        purpose: PurposeId::new("evacuation").unwrap(),
        purpose_version: 1,
        categories: categories
            .iter()
            .map(|c| CategoryId::new(*c).unwrap())
            .collect(),
        area: Area::parse(area.iter().copied()).unwrap(),
        service_hpke_key: w.service_keys.public_b64(),
        emergency,
        basis: format!("emergency:{emergency}"),
    }
}

async fn area_fetch(w: &World, claims: &AreaGrantClaims) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!(
            "http://{}/renkei/v1/area-fetch",
            w.kit.addr.unwrap()
        ))
        .bearer_auth(sign_area_grant(&w.hub_key, claims).unwrap())
        .send()
        .await
        .unwrap()
}

/// Each entry opened with the service's key, verified as the provider's: subject → data.
fn opened(w: &World, claims: &AreaGrantClaims, answer: &AreaAnswer) -> Vec<(String, Value)> {
    let context = EnvelopeContext {
        provider: claims.aud.clone(),
        request: claims.request_id,
    };
    answer
        .entries
        .iter()
        .map(|e| {
            let sealed: &SealedPayload = &e.payload;
            let got = renkei_protocol::payload::open_verified(
                &w.service_keys,
                &claims.service,
                &context,
                &Jwks::from_signing_keys([&w.provider_key]),
                sealed,
            )
            .unwrap();
            (e.subject.clone(), got.data["data"].clone())
        })
        .collect()
}

#[tokio::test]
async fn the_kit_selects_by_mesh_code_from_sqlite_and_releases_no_code() {
    let w = world().await;
    let c = claims(&w, &["53394526"], &["disaster.support"]);
    let response = area_fetch(&w, &c).await;
    assert_eq!(response.status(), 200);
    let answer: AreaAnswer = response.json().await.unwrap();
    let entries = opened(&w, &c, &answer);
    // Inside 53394526: Alice (a finer mesh inside it) and Carol. Not Bob (next mesh), not a
    // row without a code, not one whose place is no code.
    let subjects: Vec<&str> = entries.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(subjects, ["code-alice", "code-carol"]);
    let alice = &entries[0].1["disaster.support"][0];
    assert_eq!(alice["needs"], "車椅子");
    assert_eq!(alice["mesh"], "533945261");
    assert!(alice.get("renkei_code").is_none(), "{alice}");
    // The kit's own log: a line per resident released, naming them by their code.
    let log = std::fs::read_to_string(w.dir.join("access.jsonl")).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["grant"]["reference"], "code-alice");
    assert_eq!(lines[0]["grant"]["basis"], c.basis.as_str());
}

#[tokio::test]
async fn the_kit_selects_by_mesh_code_and_district_from_csv_and_merges_categories() {
    let w = world().await;
    let c = claims(
        &w,
        &["533945", "district:hikari-1"],
        &["disaster.support", "disaster.plan"],
    );
    let answer: AreaAnswer = area_fetch(&w, &c).await.json().await.unwrap();
    let entries = opened(&w, &c, &answer);
    let subjects: Vec<&str> = entries.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        subjects,
        ["code-alice", "code-bob", "code-carol", "code-erin"]
    );
    // Alice is on both lists: one entry holds both.
    let alice = &entries[0].1;
    assert_eq!(alice["disaster.support"][0]["needs"], "車椅子");
    let plan = &alice["disaster.plan"][0];
    assert_eq!(plan["shelter"], "ひかり小学校");
    // Neither the key nor the resident's code leaves the provider.
    assert!(plan.get("plan_no").is_none() && plan.get("renkei_code").is_none());
    assert_eq!(
        answer.entries[0]
            .categories
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["disaster.support", "disaster.plan"]
    );
    let erin = &entries[3].1;
    assert!(erin.get("disaster.support").is_none());
    assert_eq!(erin["disaster.plan"][0]["helper"], "民生委員");
}

#[tokio::test]
async fn an_area_grant_for_a_category_not_listed_by_area_or_replayed_is_refused() {
    let w = world().await;
    let c = claims(&w, &["5339"], &["health.checkup"]);
    let response = area_fetch(&w, &c).await;
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "/problems/category-not-served");
    let c = claims(&w, &["5339"], &["disaster.support"]);
    let token = sign_area_grant(&w.hub_key, &c).unwrap();
    let send = || {
        reqwest::Client::new()
            .post(format!(
                "http://{}/renkei/v1/area-fetch",
                w.kit.addr.unwrap()
            ))
            .bearer_auth(token.clone())
            .send()
    };
    assert_eq!(send().await.unwrap().status(), 200);
    let again = send().await.unwrap();
    assert_eq!(again.status(), 401);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["type"], "/problems/grant-replayed");
}
