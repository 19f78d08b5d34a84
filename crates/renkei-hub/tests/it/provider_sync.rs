//! Providers authenticate with client assertions (RFC 7523) signed by a key they registered,
//! and keep their own locators current through the sync API, naming residents by the codes
//! residents get from the hub.

use axum::http::header;
use chrono::Utc;
use renkei_domain::{ProviderKey, ProviderKeys};
use renkei_protocol::keys::{AnySigningKey, SigningKey};
use serde_json::{Value, json};

use crate::common::{Town, TownProvider};

/// Registers a fresh Ed25519 key for `provider` (as an operator would) and returns it.
pub(crate) async fn register_key(town: &Town, provider: &TownProvider) -> SigningKey {
    let key = SigningKey::generate().unwrap();
    let mut registered = town.store.provider(&provider.id).await.unwrap().unwrap();
    registered.signing_keys = ProviderKeys::new(vec![
        ProviderKey::new(key.kid(), *key.public_key()).unwrap(),
    ])
    .unwrap();
    town.store.put_provider(&registered).await.unwrap();
    key
}

/// A client assertion for `provider`, to `aud`, expiring in `seconds`, with `jti`.
fn assertion(key: &SigningKey, provider: &str, aud: &str, seconds: i64, jti: &str) -> String {
    let now = Utc::now().timestamp();
    renkei_protocol::sign_jwt(
        AnySigningKey::EdDsa(key),
        &json!({ "iss": provider, "sub": provider, "aud": aud, "iat": now,
                 "exp": now + seconds, "jti": jti }),
    )
    .unwrap()
}

async fn token_response(town: &Town, assertion: &str) -> reqwest::Response {
    town.post("/oauth/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={assertion}"
        ))
        .send()
        .await
        .unwrap()
}

fn token_endpoint(town: &Town) -> String {
    format!("{}/oauth/token", town.config.issuer)
}

/// A provider token, through a fresh assertion.
pub(crate) async fn provider_token(
    town: &Town,
    key: &SigningKey,
    provider: &TownProvider,
) -> String {
    let a = assertion(
        key,
        provider.id.as_str(),
        &token_endpoint(town),
        60,
        &uuid::Uuid::new_v4().to_string(),
    );
    let response = token_response(town, &a).await;
    assert_eq!(response.status(), 200, "provider token");
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// Alice's code at `provider`, as her portal shows it.
pub(crate) async fn alice_code(town: &Town, provider: &TownProvider) -> String {
    let session = town.sign_in(town.alice).await;
    let codes: Value = town
        .get("/v1/me/provider-codes")
        .bearer_auth(session)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    codes
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["provider"] == provider.id.as_str())
        .unwrap()["code"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn sync(town: &Town, token: &str, body: &Value) -> reqwest::Response {
    town.post("/v1/provider/locators/sync")
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_provider_syncs_its_locators_by_residents_codes_and_the_same_batch_twice_changes_nothing()
{
    let town = Town::new().await;
    let key = register_key(&town, &town.clinic).await;
    let token = provider_token(&town, &key, &town.clinic).await;
    let code = alice_code(&town, &town.clinic).await;
    assert_ne!(
        code,
        alice_code(&town, &town.payments).await,
        "each provider knows her by another code"
    );
    let batch = json!({
        "batch_id": uuid::Uuid::new_v4(),
        "upserts": [{ "subject": code, "category": "health.checkup", "reference": "K-NEW" }],
    });
    let first = sync(&town, &token, &batch).await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["upserted"], 1);
    let size = town.store.log_size().await.unwrap();
    let again: Value = sync(&town, &token, &batch).await.json().await.unwrap();
    assert_eq!(again, first, "answered as the first time");
    assert_eq!(
        town.store.log_size().await.unwrap(),
        size,
        "and nothing logged"
    );

    let locators = town.store.locators_of(town.alice).await.unwrap();
    let checkup = locators
        .iter()
        .find(|l| l.category.as_str() == "health.checkup")
        .unwrap();
    assert_eq!(checkup.reference, "K-NEW");

    let page: Value = town
        .get("/v1/provider/locators")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        page["locators"],
        json!([{ "subject": code, "category": "health.checkup", "reference": "K-NEW" }])
    );
}

#[tokio::test]
async fn a_provider_cannot_write_categories_it_is_not_registered_for_nor_read_anyone_elses() {
    let town = Town::new().await;
    let clinic_key = register_key(&town, &town.clinic).await;
    let clinic = provider_token(&town, &clinic_key, &town.clinic).await;
    let code = alice_code(&town, &town.clinic).await;
    let before = town.store.locators_of(town.alice).await.unwrap();
    let refused = sync(
        &town,
        &clinic,
        &json!({
            "batch_id": uuid::Uuid::new_v4(),
            "upserts": [
                { "subject": code, "category": "health.checkup", "reference": "K-1" },
                { "subject": code, "category": "payment.history", "reference": "K-1" },
            ],
        }),
    )
    .await;
    assert_eq!(refused.status(), 403);
    assert_eq!(town.store.locators_of(town.alice).await.unwrap(), before);

    // The payments provider reads none of the clinic's locators.
    sync(
        &town,
        &clinic,
        &json!({
            "batch_id": uuid::Uuid::new_v4(),
            "upserts": [{ "subject": code, "category": "health.checkup", "reference": "K-1" }],
        }),
    )
    .await;
    let pay_key = register_key(&town, &town.payments).await;
    let pay = provider_token(&town, &pay_key, &town.payments).await;
    let theirs: Value = town
        .get("/v1/provider/locators")
        .bearer_auth(&pay)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Its own (town wrote Alice's payments there; her portal issued its code), never the
    // clinic's: not by the clinic's code, not the clinic's category.
    let listed = theirs["locators"].as_array().unwrap();
    assert!(!listed.is_empty());
    assert!(
        listed
            .iter()
            .all(|l| l["category"] == "payment.history" && l["subject"] != code.as_str()),
        "{theirs}"
    );
    // Nor does the clinic's code name anyone for the payments provider.
    let misused: Value = sync(
        &town,
        &pay,
        &json!({
            "batch_id": uuid::Uuid::new_v4(),
            "upserts": [{ "subject": code, "category": "payment.history", "reference": "M-1" }],
        }),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(misused["not_applied"], 1);

    // A service's token is no provider's.
    let service = town.service_token(&town.health).await;
    let status = town
        .get("/v1/provider/locators")
        .bearer_auth(service)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);
}

#[tokio::test]
async fn bad_client_assertions_are_refused() {
    let town = Town::new().await;
    let key = register_key(&town, &town.clinic).await;
    let clinic = town.clinic.id.as_str();
    let aud = token_endpoint(&town);
    let jti = || uuid::Uuid::new_v4().to_string();
    let unknown = SigningKey::generate().unwrap();
    let replayed = assertion(&key, clinic, &aud, 60, "once");
    assert_eq!(token_response(&town, &replayed).await.status(), 200);
    for (why, bad) in [
        ("expired", assertion(&key, clinic, &aud, -60, &jti())),
        (
            "wrong audience",
            assertion(
                &key,
                clinic,
                "https://elsewhere.example/oauth/token",
                60,
                &jti(),
            ),
        ),
        ("replayed jti", replayed),
        ("unknown key", assertion(&unknown, clinic, &aud, 60, &jti())),
        (
            "valid too long",
            assertion(&key, clinic, &aud, 3_600, &jti()),
        ),
        (
            "another provider's name",
            assertion(&key, town.payments.id.as_str(), &aud, 60, &jti()),
        ),
    ] {
        let response = token_response(&town, &bad).await;
        assert_eq!(response.status(), 400, "{why}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client", "{why}: {body}");
    }
    // The issuer itself is an audience RFC 7523 allows.
    let to_issuer = assertion(&key, clinic, &town.config.issuer, 60, &jti());
    assert_eq!(token_response(&town, &to_issuer).await.status(), 200);
}

#[tokio::test]
async fn a_batch_id_reused_for_other_items_is_refused_and_changes_nothing() {
    let town = Town::new().await;
    let key = register_key(&town, &town.clinic).await;
    let token = provider_token(&town, &key, &town.clinic).await;
    let code = alice_code(&town, &town.clinic).await;
    let batch_id = uuid::Uuid::new_v4();
    let first = sync(
        &town,
        &token,
        &json!({
            "batch_id": batch_id,
            "upserts": [{ "subject": code, "category": "health.checkup", "reference": "K-NEW" }],
        }),
    )
    .await;
    assert_eq!(first.status(), 200);
    let size = town.store.log_size().await.unwrap();
    let reused = sync(
        &town,
        &token,
        &json!({
            "batch_id": batch_id,
            "upserts": [{ "subject": code, "category": "health.checkup", "reference": "K-OTHER" }],
        }),
    )
    .await;
    let body = crate::common::expect_problem(reused, 400, "/problems/invalid-field").await;
    assert_eq!(body["field"], "batch_id", "{body}");
    assert_eq!(town.store.log_size().await.unwrap(), size, "nothing logged");
    let locators = town.store.locators_of(town.alice).await.unwrap();
    let checkup = locators
        .iter()
        .find(|l| l.category.as_str() == "health.checkup")
        .unwrap();
    assert_eq!(checkup.reference, "K-NEW", "nothing applied");
}
