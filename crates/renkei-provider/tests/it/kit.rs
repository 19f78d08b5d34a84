//! The kit end to end: configuration, sources, grant checks, sealing and the access log.

use std::path::Path;

use chrono::Utc;
use renkei_domain::{CategoryId, ConsentId, ProviderId, PurposeId, RequestId, ServiceId};
use renkei_protocol::envelope::{EnvelopeContext, SealedPayload, ServiceKeyPair};
use renkei_protocol::grant::{GrantClaims, sign_grant};
use renkei_protocol::keys::{Jwks, SigningKey};
use renkei_provider::kit::config::KitConfig;
use renkei_provider::kit::{RunningKit, start};
use serde_json::{Value, json};
use uuid::Uuid;

struct World {
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
    hub_key: SigningKey,
    /// The key the kit signs its answers with (its public half is what the hub publishes).
    provider_key: SigningKey,
    service_keys: ServiceKeyPair,
    kit: RunningKit,
    http: reqwest::Client,
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

/// Writes a provider signing key file, owner-only, into `dir`.
fn key_file(dir: &Path) -> SigningKey {
    use std::os::unix::fs::PermissionsExt;
    let key = SigningKey::generate().unwrap();
    let path = dir.join("signing.pem");
    std::fs::write(&path, key.to_pkcs8_pem().unwrap().as_bytes()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    key
}

async fn clinic_database(path: &Path) {
    use sqlx::ConnectOptions;
    let mut db = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .connect()
        .await
        .unwrap();
    for sql in [
        "CREATE TABLE checkups (patient_no TEXT, taken_on TEXT, bmi REAL, smoker INTEGER, scan BLOB)",
        "INSERT INTO checkups VALUES ('P-1', '2026-04-01', 22.5, 0, x'00'), ('P-1', '2026-10-01', 22.1, 0, x'00'), ('P-2', '2026-05-05', 30.2, 1, NULL)",
    ] {
        sqlx::query(sql).execute(&mut db).await.unwrap();
    }
}

async fn world_with(extra_category: &str) -> World {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();
    clinic_database(&dir.join("clinic.db")).await;
    std::fs::write(
        dir.join("payments.csv"),
        "member_id,date,shop,amount_jpy,card_no\nP-1,2026-11-02,ひかりマート,1280,4111\nP-1,2026-11-03,駅前書店,2400,4111\nP-3,2026-11-04,ひかりマート,300,4222\n",
    )
    .unwrap();
    let hub_key = SigningKey::generate().unwrap();
    let provider_key = key_file(&dir);
    let hub = stand_in_hub(Jwks::from_signing_keys([&hub_key])).await;
    let config = format!(
        r#"
provider = "hikari-clinic"
listen = "127.0.0.1:0"
hub = "{hub}"
access_log = "access.jsonl"
signing_key = "signing.pem"
[database]
url = "sqlite:{db}"
[[category]]
id = "health.checkup"
query = "SELECT taken_on, bmi, smoker FROM checkups WHERE patient_no = $1 ORDER BY taken_on"
[[category]]
id = "payment.history"
csv = "payments.csv"
key = "member_id"
columns = ["date", "shop", "amount_jpy"]
{extra_category}
"#,
        db = dir.join("clinic.db").display()
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
        http: reqwest::Client::new(),
    }
}

async fn world() -> World {
    world_with("").await
}

fn grant(w: &World, reference: &str, categories: &[&str]) -> GrantClaims {
    let now = Utc::now().timestamp();
    let consent = ConsentId::from_uuid(Uuid::now_v7());
    GrantClaims {
        iss: "http://hub.test".into(),
        aud: ProviderId::new("hikari-clinic").unwrap(),
        sub: reference.into(),
        jti: Uuid::new_v4(),
        iat: now,
        exp: now + 30,
        request_id: RequestId::from_uuid(Uuid::now_v7()),
        service: ServiceId::new("health-advice").unwrap(),
        purpose: PurposeId::new("health-advice").unwrap(),
        purpose_version: 1,
        categories: categories
            .iter()
            .map(|c| CategoryId::new(*c).unwrap())
            .collect(),
        service_hpke_key: w.service_keys.public_b64(),
        consent: Some(consent),
        emergency: None,
        basis: format!("consent:{consent}"),
        location: Default::default(),
    }
}

async fn fetch(w: &World, claims: &GrantClaims) -> reqwest::Response {
    let token = sign_grant(&w.hub_key, claims).unwrap();
    w.http
        .post(format!("http://{}/renkei/v1/fetch", w.kit.addr.unwrap()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// The records an answer released, accepted only as the kit's signed answer to this grant.
fn opened(w: &World, claims: &GrantClaims, sealed: &SealedPayload) -> Value {
    let context = EnvelopeContext {
        provider: claims.aud.clone(),
        request: claims.request_id,
    };
    renkei_protocol::payload::open_verified(
        &w.service_keys,
        &claims.service,
        &context,
        &Jwks::from_signing_keys([&w.provider_key]),
        sealed,
    )
    .unwrap()
    .data
}

fn access_log(w: &World) -> Vec<Value> {
    std::fs::read_to_string(w.dir.join("access.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn a_grant_is_answered_from_the_database_and_the_csv_sealed_to_the_service() {
    let w = world().await;
    let claims = grant(&w, "P-1", &["health.checkup", "payment.history"]);
    let response = fetch(&w, &claims).await;
    assert_eq!(response.status(), 200);
    let answer = opened(&w, &claims, &response.json().await.unwrap());
    assert_eq!(
        answer["data"]["health.checkup"],
        json!([
            {"taken_on": "2026-04-01", "bmi": 22.5, "smoker": 0},
            {"taken_on": "2026-10-01", "bmi": 22.1, "smoker": 0}
        ])
    );
    // Only the configured columns of the resident's own rows: no card number, no P-3.
    assert_eq!(
        answer["data"]["payment.history"],
        json!([
            {"date": "2026-11-02", "shop": "ひかりマート", "amount_jpy": "1280"},
            {"date": "2026-11-03", "shop": "駅前書店", "amount_jpy": "2400"}
        ])
    );
}

#[tokio::test]
async fn only_the_categories_the_grant_names_are_read() {
    let w = world().await;
    let claims = grant(&w, "P-1", &["payment.history"]);
    let response = fetch(&w, &claims).await;
    let answer = opened(&w, &claims, &response.json().await.unwrap());
    let data = answer["data"].as_object().unwrap();
    assert_eq!(data.keys().collect::<Vec<_>>(), ["payment.history"]);
}

#[tokio::test]
async fn a_grant_for_a_category_the_kit_does_not_serve_is_refused_and_logged() {
    let w = world().await;
    let claims = grant(&w, "P-1", &["health.checkup", "registry.basic4"]);
    let response = fetch(&w, &claims).await;
    assert_eq!(response.status(), 403);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["type"], "/problems/category-not-served");
    let log = access_log(&w);
    assert_eq!(log.last().unwrap()["outcome"], "category-not-served");
}

#[tokio::test]
async fn a_data_subjects_access_is_answered_with_every_category_served_sealed_to_them() {
    let w = world().await;
    // The resident's own key (here the test's), named by the grant in the service's place.
    let claims = GrantClaims {
        service: ServiceId::data_subject(),
        purpose: PurposeId::data_subject_access(),
        consent: None,
        basis: "data-subject-access".into(),
        ..grant(
            &w,
            "P-1",
            &["health.checkup", "payment.history", "registry.basic4"],
        )
    };
    let response = fetch(&w, &claims).await;
    assert_eq!(
        response.status(),
        200,
        "not refused for a category not served"
    );
    let answer = opened(&w, &claims, &response.json().await.unwrap());
    let data = answer["data"].as_object().unwrap();
    assert_eq!(
        data.keys().collect::<Vec<_>>(),
        ["health.checkup", "payment.history"]
    );
    let log = access_log(&w);
    assert_eq!(log.last().unwrap()["outcome"], "served");
    assert_eq!(log.last().unwrap()["grant"]["basis"], "data-subject-access");
}

#[tokio::test]
async fn a_grant_is_answered_once_and_every_answer_and_refusal_is_in_the_access_log() {
    let w = world().await;
    let claims = grant(&w, "P-2", &["health.checkup"]);
    assert_eq!(fetch(&w, &claims).await.status(), 200);
    assert_eq!(
        fetch(&w, &claims).await.status(),
        401,
        "a replay is refused"
    );
    let unknown = grant(&w, "P-404", &["health.checkup"]);
    assert_eq!(fetch(&w, &unknown).await.status(), 404);

    let log = access_log(&w);
    let outcomes: Vec<&str> = log.iter().map(|l| l["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["served", "grant-replayed", "record-not-found"]);
    let served = &log[0]["grant"];
    assert_eq!(served["reference"], "P-2");
    assert_eq!(served["jti"], claims.jti.to_string());
    assert_eq!(served["request_id"], claims.request_id.to_string());
    // The log accounts for the release; it never holds what was released.
    let text = std::fs::read_to_string(w.dir.join("access.jsonl")).unwrap();
    assert!(!text.contains("30.2"), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(w.dir.join("access.jsonl"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "the access log is its owner's alone");
    }
}

#[tokio::test]
async fn a_column_the_kit_cannot_read_is_a_503_not_a_guess() {
    let w = world_with(
        r#"[[category]]
id = "health.imaging"
query = "SELECT scan FROM checkups WHERE patient_no = $1""#,
    )
    .await;
    let claims = grant(&w, "P-1", &["health.imaging"]);
    let response = fetch(&w, &claims).await;
    assert_eq!(response.status(), 503);
    assert_eq!(
        access_log(&w).last().unwrap()["outcome"],
        "records-unavailable"
    );
}

#[tokio::test]
async fn a_csv_rewritten_while_the_kit_runs_is_read_again() {
    let w = world().await;
    let claims = grant(&w, "P-3", &["payment.history"]);
    assert_eq!(fetch(&w, &claims).await.status(), 200);
    // A nightly export replaces the file (a later modification time).
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(
        w.dir.join("payments.csv"),
        "member_id,date,shop,amount_jpy,card_no\nP-1,2026-11-02,ひかりマート,1280,4111\n",
    )
    .unwrap();
    let file = std::fs::File::options()
        .write(true)
        .open(w.dir.join("payments.csv"))
        .unwrap();
    file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    let again = grant(&w, "P-3", &["payment.history"]);
    assert_eq!(fetch(&w, &again).await.status(), 404);
}

#[tokio::test]
async fn a_postgresql_database_is_read_like_sqlite_with_its_own_types() {
    use sqlx::Connection;
    let Ok(url) = std::env::var("RENKEI_TEST_POSTGRES_URL") else {
        eprintln!("skipped: RENKEI_TEST_POSTGRES_URL is not set");
        return;
    };
    let name = format!("kit_{}", Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let db_url = match url.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => panic!("{url} names no database"),
    };
    let mut db = sqlx::PgConnection::connect(&db_url).await.unwrap();
    for sql in [
        "CREATE TABLE residents (ref TEXT, name TEXT, born DATE, household INT4, carer BOOLEAN, extra JSONB)",
        "INSERT INTO residents VALUES ('R-1', '山田 花子', '1950-02-03', 3, true, '{\"floor\": 2}')",
    ] {
        sqlx::query(sql).execute(&mut db).await.unwrap();
    }
    let tmp = tempfile::tempdir().unwrap();
    let hub_key = SigningKey::generate().unwrap();
    let provider_key = key_file(tmp.path());
    let hub = stand_in_hub(Jwks::from_signing_keys([&hub_key])).await;
    std::fs::write(
        tmp.path().join("provider.toml"),
        format!(
            r#"
provider = "hikari-clinic"
listen = "127.0.0.1:0"
hub = "{hub}"
access_log = "access.jsonl"
signing_key = "signing.pem"
[database]
url = "{db_url}"
[[category]]
id = "registry.basic4"
query = "SELECT name, born::text AS born, household, carer, extra FROM residents WHERE ref = $1"
"#
        ),
    )
    .unwrap();
    let kit = start(&KitConfig::load(&tmp.path().join("provider.toml")).unwrap())
        .await
        .unwrap();
    let w = World {
        _dir: tmp,
        dir: std::path::PathBuf::new(),
        hub_key,
        provider_key,
        service_keys: ServiceKeyPair::generate().unwrap(),
        kit,
        http: reqwest::Client::new(),
    };
    let claims = grant(&w, "R-1", &["registry.basic4"]);
    let response = fetch(&w, &claims).await;
    assert_eq!(response.status(), 200);
    let answer = opened(&w, &claims, &response.json().await.unwrap());
    assert_eq!(
        answer["data"]["registry.basic4"],
        json!([{"name": "山田 花子", "born": "1950-02-03", "household": 3, "carer": true, "extra": {"floor": 2}}])
    );
}

#[tokio::test]
async fn every_answer_is_signed_with_the_kits_key_and_no_other_verifies_it() {
    let w = world().await;
    let claims = grant(&w, "P-1", &["health.checkup"]);
    let sealed: SealedPayload = fetch(&w, &claims).await.json().await.unwrap();
    let context = EnvelopeContext {
        provider: claims.aud.clone(),
        request: claims.request_id,
    };
    let claimed = renkei_protocol::payload::open_verified(
        &w.service_keys,
        &claims.service,
        &context,
        &Jwks::from_signing_keys([&w.provider_key]),
        &sealed,
    )
    .unwrap();
    assert_eq!(claimed.iss, claims.aud);
    assert_eq!(claimed.categories, claims.categories);
    let someone_else = SigningKey::generate().unwrap();
    let refused = renkei_protocol::payload::open_verified(
        &w.service_keys,
        &claims.service,
        &context,
        &Jwks::from_signing_keys([&someone_else]),
        &sealed,
    );
    assert!(matches!(
        refused,
        Err(renkei_protocol::payload::PayloadError::UnknownKey(_))
    ));
}

#[tokio::test]
async fn a_kit_whose_signing_key_others_may_read_does_not_start() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    key_file(tmp.path());
    let key = tmp.path().join("signing.pem");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = renkei_provider::kit::read_signing_key(&key).unwrap_err();
    assert!(refused.to_string().contains("chmod 600"), "{refused}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(renkei_provider::kit::read_signing_key(&key).is_ok());
}
