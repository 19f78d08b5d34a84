//! Onboarding through the API: operators add categories and register, approve and suspend
//! providers, each act an operator entry of the log; only approved providers are published
//! and sent grants; and a payload a compromised hub substitutes is caught by the service.

use renkei_domain::OperatorAction;
use renkei_protocol::envelope::{EnvelopeContext, SealedPayload, seal};
use renkei_protocol::keys::{Jwks, SigningKey};
use renkei_protocol::payload::{PayloadClaims, PayloadError, open_verified, sign_and_seal};
use serde_json::{Value, json};

use crate::common::{self, HEALTH_CHECKUP, PAYMENT_HISTORY, Town, expect_problem};

fn registration(id: &str, key: &SigningKey) -> Value {
    json!({
        "id": id,
        "name_ja": "ひかり台検査センター",
        "name_en": "Hikaridai Laboratory",
        "endpoint": "http://127.0.0.1:9",
        "categories": [HEALTH_CHECKUP],
        "signing_keys": { "keys": [key.public_jwk()] },
        "contact": common::controller_contact(id),
    })
}

async fn providers(town: &Town) -> Vec<Value> {
    town.get("/v1/providers")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The operator acts in the log, oldest first.
async fn operator_acts(town: &Town) -> Vec<OperatorAction> {
    let mut acts: Vec<OperatorAction> = town
        .hub
        .operator_log(None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    acts.reverse();
    acts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_registers_a_category_and_a_provider_that_is_published_once_approved() {
    let town = Town::new().await;
    let operator = town.operator_token().await;
    let added = town
        .post("/v1/operator/categories")
        .bearer_auth(&operator)
        .json(&json!({"id": "health.lab", "name_ja": "検査結果", "name_en": "Lab results", "special_care": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 201);
    let vocabulary: Vec<Value> = town
        .get("/v1/categories")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        vocabulary
            .iter()
            .any(|c| c["id"] == "health.lab" && c["special_care"] == true)
    );

    let key = SigningKey::generate().unwrap();
    let mut body = registration("hikari-lab", &key);
    body["categories"] = json!([HEALTH_CHECKUP, "health.lab"]);
    let registered = town
        .post("/v1/operator/providers")
        .bearer_auth(&operator)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let view: Value = registered.json().await.unwrap();
    assert_eq!(view["status"], "pending");
    assert_eq!(view["signing_keys"]["keys"][0]["kid"], key.kid());

    // Pending: not published, so no service would accept its answers.
    assert!(
        !providers(&town)
            .await
            .iter()
            .any(|p| p["id"] == "hikari-lab")
    );
    let approved = town
        .post("/v1/operator/providers/hikari-lab/approve")
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), 204);
    let published = providers(&town).await;
    let lab = published.iter().find(|p| p["id"] == "hikari-lab").unwrap();
    let jwk = serde_json::to_value(key.public_jwk()).unwrap();
    assert_eq!(lab["signing_keys"]["keys"][0]["x"], jwk["x"]);
    assert_eq!(lab["categories"], json!(["health.checkup", "health.lab"]));

    let acts = operator_acts(&town).await;
    let mine: Vec<&OperatorAction> = acts
        .iter()
        .filter(|a| !matches!(a, OperatorAction::AddOperator { .. }))
        .collect();
    assert!(
        matches!(
            mine.as_slice(),
            [
                OperatorAction::PutCategory { special_care: true, .. },
                OperatorAction::RegisterProvider { kids, connection, .. },
                OperatorAction::ApproveProvider { .. },
            ] if kids == &vec![key.kid().to_owned()] && connection == "inbound"
        ),
        "{mine:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_the_hub_cannot_use_is_refused_naming_the_field() {
    let town = Town::new().await;
    let operator = town.operator_token().await;
    let key = SigningKey::generate().unwrap();
    let spoil = |f: &dyn Fn(&mut Value)| {
        let mut body = registration("hikari-lab", &key);
        f(&mut body);
        body
    };
    let mut private = serde_json::to_value(key.public_jwk()).unwrap();
    private["d"] = json!("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A");
    let invalid = "/problems/invalid-field";
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            spoil(&|b| b["categories"] = json!(["no.such.category"])),
            404,
            "/problems/unknown-category",
        ),
        (
            spoil(&|b| b["signing_keys"] = json!({"keys": [private.clone()]})),
            400,
            invalid,
        ),
        (
            spoil(&|b| b["signing_keys"] = json!({"keys": []})),
            400,
            invalid,
        ),
        (spoil(&|b| b["outbound"] = json!(true)), 400, invalid),
        (spoil(&|b| b["endpoint"] = Value::Null), 400, invalid),
        (
            spoil(&|b| b["contact"]["email"] = json!("nobody")),
            400,
            invalid,
        ),
    ];
    for (body, status, kind) in cases {
        let refused = town
            .post("/v1/operator/providers")
            .bearer_auth(&operator)
            .json(&body)
            .send()
            .await
            .unwrap();
        let problem = expect_problem(refused, status, kind).await;
        assert!(
            !problem.to_string().contains("nWGxne"),
            "a private key is never echoed"
        );
    }
    // An outbound provider has no endpoint, and is registered so.
    let outbound = spoil(&|b| {
        b["endpoint"] = Value::Null;
        b["outbound"] = json!(true);
    });
    let registered = town
        .post("/v1/operator/providers")
        .bearer_auth(&operator)
        .json(&outbound)
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let view: Value = registered.json().await.unwrap();
    assert_eq!(
        (&view["connection"], &view["endpoint"]),
        (&json!("outbound"), &Value::Null)
    );
    // Registering the same id again is refused; the vocabulary's ids too.
    let again = town
        .post("/v1/operator/providers")
        .bearer_auth(&operator)
        .json(&outbound)
        .send()
        .await
        .unwrap();
    expect_problem(again, 400, "/problems/malformed-request").await;
    let existing = town
        .post("/v1/operator/categories")
        .bearer_auth(&operator)
        .json(&json!({"id": HEALTH_CHECKUP, "name_ja": "別", "name_en": "Other", "special_care": false}))
        .send()
        .await
        .unwrap();
    expect_problem(existing, 400, "/problems/malformed-request").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_provider_is_sent_no_grant_until_it_is_approved_again() {
    let town = Town::new().await;
    let operator = town.operator_token().await;
    let token = town.service_token(&town.health).await;
    let alice = town.sign_in(town.alice).await;
    let consent = town.grant(&alice, "health-advice", "advice").await;
    let ask = || {
        town.data(
            &token,
            &consent.subject,
            "advice",
            &[HEALTH_CHECKUP, PAYMENT_HISTORY],
        )
    };

    let suspended = town
        .post("/v1/operator/providers/clinic/suspend")
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap();
    assert_eq!(suspended.status(), 204);
    let answer = ask().await;
    assert_eq!(answer.not_held, [HEALTH_CHECKUP]);
    assert!(answer.results.iter().all(|r| r.provider != "clinic"));
    assert!(
        town.clinic.captured_grants().is_empty(),
        "no grant reached the clinic"
    );
    assert!(!providers(&town).await.iter().any(|p| p["id"] == "clinic"));

    town.post("/v1/operator/providers/clinic/approve")
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap();
    let answer = ask().await;
    assert!(answer.complete && answer.not_held.is_empty());
    assert_eq!(town.open_all(&town.health, &answer).await.len(), 2);
    let unknown = town
        .post("/v1/operator/providers/nobody/approve")
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap();
    expect_problem(unknown, 404, "/problems/not-found").await;
}

/// A compromised hub (this test, holding what a hub holds: the service's public key, the
/// request, the relayed answers) substitutes the clinic's answer. The service's check,
/// against the keys the hub published, catches every substitution, and accepts the real one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_a_compromised_hub_substitutes_is_caught_by_the_services_verification() {
    let town = Town::new().await;
    let token = town.service_token(&town.health).await;
    let alice = town.sign_in(town.alice).await;
    let consent = town.grant(&alice, "health-advice", "advice").await;
    let answer = town
        .data(
            &token,
            &consent.subject,
            "advice",
            &[HEALTH_CHECKUP, PAYMENT_HISTORY],
        )
        .await;
    let published = providers(&town).await;
    let keys_of = |id: &str| {
        let p = published.iter().find(|p| p["id"] == id).unwrap();
        Jwks::from_provider_keys(&renkei_domain::ProviderKeys::parse(&p["signing_keys"]).unwrap())
    };
    let request = answer.request_id.parse().unwrap();
    let context = |provider: &str| EnvelopeContext {
        provider: renkei_domain::ProviderId::new(provider).unwrap(),
        request,
    };
    let verify = |provider: &str, sealed: &SealedPayload| -> Result<PayloadClaims, PayloadError> {
        open_verified(
            &town.health.keys,
            &town.health.id,
            &context(provider),
            &keys_of(provider),
            sealed,
        )
    };
    let genuine = |provider: &str| {
        let p = answer
            .results
            .iter()
            .find(|r| r.provider == provider)
            .unwrap();
        let p = p.payload.clone().unwrap();
        SealedPayload {
            suite: p.suite,
            enc: p.enc,
            ciphertext: p.ciphertext,
        }
    };
    assert!(verify("clinic", &genuine("clinic")).is_ok());

    let public = town.health.keys.public_b64();
    let forged_record = json!({"reference": "C-0001", "data": {HEALTH_CHECKUP: {"bmi": 35.0}}});
    // 1. Sealed by the hub itself, as HPKE base mode allows anyone with the public key.
    let hub_sealed = seal(
        &public,
        &context("clinic"),
        forged_record.to_string().as_bytes(),
    )
    .unwrap();
    assert!(matches!(
        verify("clinic", &hub_sealed),
        Err(PayloadError::Malformed(_))
    ));
    // 2. Signed with a key of the hub's own making, naming the clinic.
    let hub_key = SigningKey::generate().unwrap();
    let signed_by_hub = sign_and_seal(
        &hub_key,
        &public,
        &context("clinic"),
        &town.health.id,
        &[common::cat(HEALTH_CHECKUP)],
        forged_record.clone(),
        chrono::Utc::now(),
    )
    .unwrap();
    assert!(matches!(
        verify("clinic", &signed_by_hub),
        Err(PayloadError::UnknownKey(_))
    ));
    // 3. The payment provider's genuine answer, relayed as the clinic's.
    let moved = genuine("payments");
    assert!(verify("clinic", &moved).is_err());
    // 4. An earlier genuine answer of the clinic, replayed for this request.
    let earlier = town
        .data(&token, &consent.subject, "advice", &[HEALTH_CHECKUP])
        .await;
    let p = earlier.results[0].payload.clone().unwrap();
    let replayed = SealedPayload {
        suite: p.suite,
        enc: p.enc,
        ciphertext: p.ciphertext,
    };
    assert!(verify("clinic", &replayed).is_err());
}
