//! Flows 1, 3 and 4 as a resident and a service see them over HTTP: opting in per purpose,
//! the brokered request whose answer only the service can read, receipts, pairwise
//! subjects, purpose versions, and the resident's own access records.

// Tests may unwrap and panic (clippy.toml allows it in #[test] functions; this covers helpers).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use renkei_domain::LocalizedText;
use renkei_protocol::envelope::{EnvelopeContext, SealedPayload, open};
use renkei_protocol::keys::{Jwks, SigningKey};
use renkei_protocol::receipt::{ReceiptError, verify_receipt};
use serde_json::{Value, json};

use crate::common;
use crate::common::{
    HEALTH_CHECKUP, PAYMENT_HISTORY, RESIDENT_ADDRESS, Town, advice_draft, alice_checkup,
    alice_payments, expect_problem,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_token_then_granted_request_returns_data_only_the_service_can_open() {
    let town = Town::new().await;

    // Client credentials both ways: form fields, and HTTP Basic.
    let token = town.service_token(&town.health).await;
    let basic = town.service_token_basic(&town.health).await;
    assert_eq!(basic.status(), 200);
    assert_eq!(
        basic
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let basic: Value = basic.json().await.unwrap();
    assert_eq!(basic["token_type"], "Bearer");
    let basic_token = basic["access_token"].as_str().unwrap().to_owned();

    // Alice says yes to health advice.
    let alice = town.sign_in(town.alice).await;
    let granted = town.grant(&alice, "health-advice", "advice").await;
    assert_eq!(granted.consent.state, "active");
    assert_eq!(granted.consent.purpose_version, 1);
    assert_eq!(
        granted.consent.categories,
        vec![HEALTH_CHECKUP.to_owned(), PAYMENT_HISTORY.to_owned()]
    );
    assert_eq!(granted.consent.given_via, "demo");

    for token in [&token, &basic_token] {
        let response = town
            .request_data(
                token,
                &granted.subject,
                "advice",
                &[HEALTH_CHECKUP, PAYMENT_HISTORY],
            )
            .await;
        assert_eq!(response.status(), 200);
        let raw = response.text().await.unwrap();
        // The hub relays ciphertext: nothing the providers hold appears in its answer,
        // nor the residents' references at the providers.
        for secret in ["118/76", "5400", "町立プール", "K-0001", "P-7781", "hba1c"] {
            assert!(!raw.contains(secret), "`{secret}` leaked in {raw}");
        }
        let answer: renkei_hub::broker::DataResponse = serde_json::from_str(&raw).unwrap();
        assert!(answer.complete);
        assert!(answer.not_held.is_empty());
        let providers: Vec<_> = answer.results.iter().map(|r| r.provider.as_str()).collect();
        assert_eq!(providers, ["clinic", "payments"]);
        assert!(answer.results.iter().all(|r| r.status == "ok"));

        let opened = town.open_all(&town.health, &answer).await;
        assert_eq!(opened["clinic"]["reference"], "K-0001");
        assert_eq!(
            opened["clinic"]["data"],
            json!({ HEALTH_CHECKUP: alice_checkup() })
        );
        assert_eq!(
            opened["payments"]["data"],
            json!({ PAYMENT_HISTORY: alice_payments() })
        );

        // Another service's key cannot open it, nor can it be passed off as another
        // provider's or another request's.
        let clinic = answer
            .results
            .iter()
            .find(|r| r.provider == "clinic")
            .unwrap();
        let view = clinic.payload.clone().unwrap();
        let sealed = SealedPayload {
            suite: view.suite,
            enc: view.enc,
            ciphertext: view.ciphertext,
        };
        let request = answer.request_id.parse().unwrap();
        let right = EnvelopeContext {
            provider: "clinic".parse().unwrap(),
            request,
        };
        assert!(open(&town.mobility.keys, &right, &sealed).is_err());
        let as_payments = EnvelopeContext {
            provider: "payments".parse().unwrap(),
            request,
        };
        assert!(open(&town.health.keys, &as_payments, &sealed).is_err());
        let other_request = EnvelopeContext {
            provider: "clinic".parse().unwrap(),
            request: uuid::Uuid::now_v7().to_string().parse().unwrap(),
        };
        assert!(open(&town.health.keys, &other_request, &sealed).is_err());
    }
    assert_eq!(town.clinic.served(), 2);
    assert_eq!(town.payments.served(), 2);
    assert_eq!(town.registry.served(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_only_some_categories_sends_grants_only_where_they_are_held() {
    let town = Town::new().await;
    let token = town.service_token(&town.health).await;

    // Only the clinic is asked when only check-up results are wanted.
    let alice = town.sign_in(town.alice).await;
    let granted = town.grant(&alice, "health-advice", "advice").await;
    let answer = town
        .data(&token, &granted.subject, "advice", &[HEALTH_CHECKUP])
        .await;
    assert_eq!(answer.results.len(), 1);
    assert_eq!(answer.results[0].provider, "clinic");
    assert_eq!(town.payments.captured_grants().len(), 0);

    // Carol has no payment data anywhere: the answer says so rather than failing.
    let carol = town.sign_in(town.carol).await;
    let granted = town.grant(&carol, "health-advice", "advice").await;
    let answer = town
        .data(
            &token,
            &granted.subject,
            "advice",
            &[HEALTH_CHECKUP, PAYMENT_HISTORY],
        )
        .await;
    assert!(answer.complete);
    assert_eq!(answer.not_held, [PAYMENT_HISTORY]);
    let opened = town.open_all(&town.health, &answer).await;
    assert_eq!(opened["clinic"]["reference"], "K-0003");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_category_outside_the_consent_is_denied_and_recorded() {
    let town = Town::new().await;
    let token = town.service_token(&town.health).await;
    let alice = town.sign_in(town.alice).await;
    let granted = town.grant(&alice, "health-advice", "advice").await;

    // The address is in the vocabulary but not in the purpose Alice said yes to.
    let response = town
        .request_data(
            &token,
            &granted.subject,
            "advice",
            &[HEALTH_CHECKUP, RESIDENT_ADDRESS],
        )
        .await;
    let problem = expect_problem(response, 403, "/problems/category-not-in-purpose").await;
    assert_eq!(problem["categories"], json!([RESIDENT_ADDRESS]));
    let request_id = problem["request_id"].as_str().unwrap().to_owned();

    // Nothing was fetched: no provider saw a grant.
    for p in [&town.clinic, &town.payments, &town.registry] {
        assert!(p.captured_grants().is_empty(), "{} got a grant", p.id);
    }

    // Alice sees the attempt, denied, with why.
    let records = town.access_records(&alice).await;
    assert_eq!(records.len(), 1, "{records:?}");
    let r = &records[0];
    assert_eq!(r["request_id"], request_id.as_str());
    assert_eq!(r["outcome"], "denied");
    assert_eq!(r["reason"], "category-not-in-purpose");
    assert_eq!(r["service"], "health-advice");
    assert_eq!(r["purpose"], "advice");
    assert_eq!(r["categories"], json!([HEALTH_CHECKUP, RESIDENT_ADDRESS]));
    assert_eq!(r["providers"], json!([]));
    assert_eq!(r["basis"], json!({ "kind": "none" }));

    // A granted request is recorded too, with its consent as the basis.
    let answer = town
        .data(&token, &granted.subject, "advice", &[HEALTH_CHECKUP])
        .await;
    let records = town.access_records(&alice).await;
    assert_eq!(records.len(), 2);
    let granted_record = records
        .iter()
        .find(|r| r["request_id"] == answer.request_id.as_str())
        .unwrap();
    assert_eq!(granted_record["outcome"], "granted");
    assert_eq!(
        granted_record["basis"],
        json!({ "kind": "consent", "consent": granted.consent.id })
    );
    assert_eq!(granted_record["providers"], json!(["clinic"]));
}

fn tamper_payload(token: &str, edit: impl FnOnce(&mut Value)) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    edit(&mut claims);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    format!("{}.{payload}.{}", parts[0], parts[2])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consent_receipt_verifies_with_the_published_keys_and_tampering_is_detected() {
    let town = Town::new().await;
    let alice = town.sign_in(town.alice).await;
    let granted = town.grant(&alice, "health-advice", "advice").await;
    let jwks = town.published_jwks().await;

    let receipt = verify_receipt(&granted.receipt, &jwks).unwrap();
    assert_eq!(receipt.consent_id.to_string(), granted.consent.id);
    assert_eq!(receipt.service_id.as_str(), "health-advice");
    assert_eq!(receipt.purpose_id.as_str(), "advice");
    assert_eq!(receipt.purpose_version, 1);
    assert_eq!(
        receipt
            .categories
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>(),
        [HEALTH_CHECKUP, PAYMENT_HISTORY]
    );
    assert_eq!(receipt.iss, common::ISSUER);
    assert_eq!(receipt.jurisdiction, "JP");
    // Check-up results are special-care data (要配慮個人情報), and the receipt says so.
    assert!(receipt.sensitive);
    assert_eq!(receipt.spi_cat, ["健康診断結果"]);
    assert_eq!(
        receipt.expires,
        granted.consent.expires_at.map(|e| e.timestamp())
    );

    // The receipt can be fetched again later, and it still verifies and says the same.
    let response = town
        .get(&format!("/v1/me/consents/{}/receipt", granted.consent.id))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let again: Value = response.json().await.unwrap();
    let again = verify_receipt(again["receipt"].as_str().unwrap(), &jwks).unwrap();
    assert_eq!(again.consent_id, receipt.consent_id);
    assert_eq!(again.consent_timestamp, receipt.consent_timestamp);
    assert_eq!(again.categories, receipt.categories);

    // Changing any claim breaks the signature.
    let widened = tamper_payload(&granted.receipt, |c| {
        c["categories"] = json!([HEALTH_CHECKUP, PAYMENT_HISTORY, RESIDENT_ADDRESS]);
    });
    assert_eq!(
        verify_receipt(&widened, &jwks).unwrap_err(),
        ReceiptError::BadSignature
    );
    let longer = tamper_payload(&granted.receipt, |c| {
        c["expires"] = json!(Utc::now().timestamp() + 10 * 365 * 86_400);
    });
    assert_eq!(
        verify_receipt(&longer, &jwks).unwrap_err(),
        ReceiptError::BadSignature
    );
    // So does a flipped signature byte.
    let (head, signature) = granted.receipt.rsplit_once('.').unwrap();
    let mut sig = URL_SAFE_NO_PAD.decode(signature).unwrap();
    sig[0] ^= 1;
    let flipped = format!("{head}.{}", URL_SAFE_NO_PAD.encode(sig));
    assert_eq!(
        verify_receipt(&flipped, &jwks).unwrap_err(),
        ReceiptError::BadSignature
    );
    // And keys that are not the hub's do not vouch for it.
    let stranger = SigningKey::generate().unwrap();
    assert!(verify_receipt(&granted.receipt, &Jwks::from_signing_keys([&stranger])).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairwise_subjects_differ_between_sectors_and_are_stable_within_one() {
    let town = Town::new().await;
    let alice = town.sign_in(town.alice).await;
    let bob = town.sign_in(town.bob).await;

    let advice = town.grant(&alice, "health-advice", "advice").await;
    let reminder = town.grant(&alice, "checkup-reminder", "reminders").await;
    let rides = town.grant(&alice, "town-mobility", "rides").await;
    let bob_advice = town.grant(&bob, "health-advice", "advice").await;

    // Same sector (health): the same subject; another sector: another one.
    assert_eq!(advice.subject, reminder.subject);
    assert_ne!(advice.subject, rides.subject);
    assert_ne!(advice.subject, bob_advice.subject);
    // The subject is not the resident's id in disguise.
    for s in [&advice.subject, &rides.subject] {
        assert!(!s.contains(&town.alice.to_string()));
        assert!(!s.contains(&town.alice.as_uuid().simple().to_string()));
    }
    assert_eq!(
        advice.subject,
        town.hub.keys().subject("health", town.alice).to_string()
    );
    assert_eq!(
        rides.subject,
        town.hub.keys().subject("mobility", town.alice).to_string()
    );

    // Stable: revoking and granting again gives the same subject.
    let response = town.revoke(&alice, &advice.consent.id).await;
    assert_eq!(response.status(), 200);
    let again = town.grant(&alice, "health-advice", "advice").await;
    assert_ne!(again.consent.id, advice.consent.id);
    assert_eq!(again.subject, advice.subject);

    // A subject from another sector names nobody here: the mobility service's id for
    // Alice cannot be used by the health service, and the attempt is recorded for nobody.
    let token = town.service_token(&town.health).await;
    let response = town
        .request_data(&token, &rides.subject, "advice", &[HEALTH_CHECKUP])
        .await;
    expect_problem(response, 404, "/problems/unknown-subject").await;
    // And each service gets Alice's data under its own subject.
    let mobility = town.service_token(&town.mobility).await;
    let answer = town
        .data(&mobility, &rides.subject, "rides", &[RESIDENT_ADDRESS])
        .await;
    assert_eq!(
        town.open_all(&town.mobility, &answer).await["registry"]["data"],
        json!({ RESIDENT_ADDRESS: "架空町1-2-3" })
    );
    let answer = town
        .data(&token, &advice.subject, "advice", &[HEALTH_CHECKUP])
        .await;
    assert_eq!(
        town.open_all(&town.health, &answer).await["clinic"]["reference"],
        "K-0001"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_purpose_version_needs_a_new_consent() {
    let town = Town::new().await;
    let token = town.service_token(&town.health).await;
    let alice = town.sign_in(town.alice).await;
    let first = town.grant(&alice, "health-advice", "advice").await;
    town.data(&token, &first.subject, "advice", &[HEALTH_CHECKUP])
        .await;

    // Publishing the same text again changes nothing.
    let same = town
        .store
        .publish_purpose(&advice_draft(), Utc::now())
        .await
        .unwrap();
    assert_eq!(same.version, 1);
    town.data(&token, &first.subject, "advice", &[HEALTH_CHECKUP])
        .await;

    // The service now says it will keep the data longer, with new wording: version 2.
    let mut draft = advice_draft();
    draft.retention_days = 365;
    draft.description = LocalizedText::new(
        "健診結果と支払い履歴を1年間保存し、アドバイスに使います。",
        "We keep your check-up results and payment history for a year to advise you.",
    );
    let v2 = town
        .store
        .publish_purpose(&draft, Utc::now())
        .await
        .unwrap();
    assert_eq!(v2.version, 2);

    // Alice's yes was to version 1: it does not speak for version 2.
    let response = town
        .request_data(&token, &first.subject, "advice", &[HEALTH_CHECKUP])
        .await;
    let problem = expect_problem(response, 403, "/problems/consent-wrong-purpose-version").await;
    assert!(problem["detail"].as_str().unwrap().contains("version 1"));
    assert!(town.access_records(&alice).await.iter().any(|r| {
        r["outcome"] == "denied"
            && r["reason"] == "consent-wrong-purpose-version"
            && r["purpose_version"] == 2
    }));
    // The service's catalogue shows the new version.
    let services: Value = town
        .get("/v1/services")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let advice = services
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "health-advice")
        .unwrap()["purposes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "advice")
        .unwrap()
        .clone();
    assert_eq!(advice["version"], 2);
    assert_eq!(advice["retention_days"], 365);

    // Saying yes to version 2 replaces the old consent, and data flows again.
    let second = town.grant(&alice, "health-advice", "advice").await;
    assert_eq!(second.consent.purpose_version, 2);
    assert_eq!(second.subject, first.subject);
    let answer = town
        .data(&token, &second.subject, "advice", &[HEALTH_CHECKUP])
        .await;
    assert!(answer.complete);
    let consents = town.consents(&alice).await;
    let old = consents.iter().find(|c| c.id == first.consent.id).unwrap();
    assert_eq!(old.state, "revoked");
    let detail: Value = town
        .get(&format!("/v1/me/consents/{}", first.consent.id))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kinds: Vec<&str> = detail["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["granted", "superseded"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resident_sees_only_their_own_access_records_and_cannot_touch_others_consents() {
    let town = Town::new().await;
    let token = town.service_token(&town.health).await;
    let alice = town.sign_in(town.alice).await;
    let bob = town.sign_in(town.bob).await;

    let alices = town.grant(&alice, "health-advice", "advice").await;
    let bobs = town.grant(&bob, "health-advice", "reminders").await;
    let mut alice_requests = Vec::new();
    for _ in 0..3 {
        let answer = town
            .data(&token, &alices.subject, "advice", &[HEALTH_CHECKUP])
            .await;
        alice_requests.push(answer.request_id);
    }
    let bob_answer = town
        .data(&token, &bobs.subject, "reminders", &[HEALTH_CHECKUP])
        .await;
    // A request naming nobody the hub knows is recorded, but shown to no resident.
    let nobody = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let response = town
        .request_data(&token, nobody, "advice", &[HEALTH_CHECKUP])
        .await;
    expect_problem(response, 404, "/problems/unknown-subject").await;

    let seen_by_alice: Vec<String> = town
        .access_records(&alice)
        .await
        .iter()
        .map(|r| r["request_id"].as_str().unwrap().to_owned())
        .collect();
    let mut expected = alice_requests.clone();
    expected.sort();
    let mut got = seen_by_alice.clone();
    got.sort();
    assert_eq!(got, expected);
    let seen_by_bob: Vec<String> = town
        .access_records(&bob)
        .await
        .iter()
        .map(|r| r["request_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen_by_bob, [bob_answer.request_id.as_str()]);
    // Filters narrow one's own records; they never widen them.
    let filtered: Value = town
        .get("/v1/me/access-records?service=health-advice&limit=500")
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(filtered["records"].as_array().unwrap().len(), 1);
    // Five requests in all, the one naming nobody among them.
    assert_eq!(town.access_record_count().await, 5);

    // Bob cannot see, fetch a receipt for, or revoke Alice's consent: to him it does not exist.
    let id = &alices.consent.id;
    let response = town
        .get(&format!("/v1/me/consents/{id}"))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    expect_problem(response, 404, "/problems/not-found").await;
    let response = town
        .get(&format!("/v1/me/consents/{id}/receipt"))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    expect_problem(response, 404, "/problems/not-found").await;
    let response = town.revoke(&bob, id).await;
    expect_problem(response, 404, "/problems/not-found").await;
    let bob_consents: Vec<String> = town
        .consents(&bob)
        .await
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(bob_consents, [bobs.consent.id.as_str()]);

    // Alice's consent is untouched and still works.
    let mine = town.consents(&alice).await;
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].state, "active");
    assert!(mine[0].revoked_at.is_none());
    town.data(&token, &alices.subject, "advice", &[HEALTH_CHECKUP])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_the_hub_cannot_carry_out_is_recorded_as_denied_not_granted() {
    let town = Town::new().await;
    let token = town.service_token(&town.health).await;
    let alice = town.sign_in(town.alice).await;
    let granted = town.grant(&alice, "health-advice", "advice").await;
    // A service row from before registration checked keys: its key is not one.
    let mut service = town.store.service(&town.health.id).await.unwrap().unwrap();
    service.hpke_public_key = "not-a-key".into();
    town.store
        .put_service(
            &service,
            &renkei_hub::auth::hash_client_secret(&town.health.secret),
        )
        .await
        .unwrap();

    let response = town
        .request_data(&token, &granted.subject, "advice", &[HEALTH_CHECKUP])
        .await;
    let problem = expect_problem(response, 409, "/problems/service-key-invalid").await;
    let request_id = problem["request_id"].as_str().unwrap().to_owned();

    // What Alice sees says what happened: denied, with the reason, and no provider asked.
    let records = town.access_records(&alice).await;
    let record = records
        .iter()
        .find(|r| r["request_id"] == request_id.as_str())
        .expect("the request has an access record");
    assert_eq!(record["outcome"], "denied", "{record}");
    assert_eq!(record["reason"], "service-key-invalid", "{record}");
    assert_eq!(record["providers"], json!([]), "{record}");
    assert_eq!(town.clinic.served() + town.clinic.refused(), 0);
}

// ------------------------------------------------- receipts against Kantara's own schema

/// The claims of a compact JWS, as signed.
fn jws_claims(jws: &str) -> Value {
    let payload = jws.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// Kantara's Consent Receipt v1.1 JSON schema (Draft 4), as kept in renkei-protocol.
fn kantara_schema() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(include_str!(
        "../../../renkei-protocol/schemas/kantara-cr-v1.1/kantara-consent-receipt-v1_1-schema.json"
    ))
    .unwrap();
    jsonschema::draft4::new(&schema).unwrap()
}

fn assert_kantara_valid(receipt: &Value) {
    let errors: Vec<String> = kantara_schema()
        .iter_errors(receipt)
        .map(|e| format!("{} at `{}`", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}\n{receipt:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_validate_against_kantaras_v1_1_schema_and_carry_the_controllers_contact() {
    // The schema's own example validates: the validator reads the schema as it was meant.
    let example: Value = serde_json::from_str(include_str!(
        "../../../renkei-protocol/schemas/kantara-cr-v1.1/kantara-consent-receipt-v1_1-example.json"
    ))
    .unwrap();
    assert_kantara_valid(&example);
    // And it is no rubber stamp: the same example without a controller's email does not.
    let mut spoiled = example.clone();
    spoiled["piiControllers"][0]
        .as_object_mut()
        .unwrap()
        .remove("email");
    assert!(!kantara_schema().is_valid(&spoiled));

    let town = Town::new().await;
    let operator = town.operator_token().await;
    let controller = json!({
        "contact": "まち歩き 個人情報保護窓口",
        "address": {
            "country": "JP", "postal_code": "999-0002", "region": "ひかり県",
            "locality": "ひかり台市", "street_address": "駅前2-3-4 まち歩きビル5階"
        },
        "email": "privacy@walk.example.jp",
        "phone": "+81-3-5555-0102"
    });
    let registered = town
        .post("/v1/operator/services")
        .bearer_auth(&operator)
        .json(&json!({
            "id": "town-walk", "name_ja": "まち歩き", "name_en": "Town walk",
            "hpke_public_key": renkei_protocol::envelope::ServiceKeyPair::generate().unwrap().public_b64(),
            "webhook_url": null, "redirect_uris": [],
            "purposes": [{"id": "steps", "title_ja": "歩数", "title_en": "Steps",
              "description_ja": "歩いた距離から健康ポイントを出します", "description_en": "Points for walking",
              "categories": [PAYMENT_HISTORY], "retention_days": 30, "legal_basis": "consent"}],
            "controller": controller,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        registered.status(),
        201,
        "{}",
        registered.text().await.unwrap()
    );
    let review: Value = town
        .get("/v1/operator/services/town-walk/review")
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys: Vec<Value> = review
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].clone())
        .collect();
    let approved = town
        .post("/v1/operator/services/town-walk/approve")
        .bearer_auth(&operator)
        .json(&json!({ "acknowledged": keys }))
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), 204);

    let alice = town.sign_in(town.alice).await;
    let granted = town.grant(&alice, "town-walk", "steps").await;
    let receipt = jws_claims(&granted.receipt);
    assert_kantara_valid(&receipt);
    let pii_controller = &receipt["piiControllers"][0];
    assert_eq!(pii_controller["piiController"], "まち歩き");
    assert_eq!(pii_controller["contact"], "まち歩き 個人情報保護窓口");
    assert_eq!(pii_controller["email"], "privacy@walk.example.jp");
    assert_eq!(pii_controller["phone"], "+81-3-5555-0102");
    assert_eq!(pii_controller["address"]["addressCountry"], "JP");
    assert_eq!(pii_controller["address"]["addressLocality"], "ひかり台市");
    assert_eq!(
        pii_controller["address"]["streetAddress"],
        "駅前2-3-4 まち歩きビル5階"
    );

    // The same receipt fetched again later, and one for special-care data, validate too.
    let again: Value = town
        .get(&format!("/v1/me/consents/{}/receipt", granted.consent.id))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_kantara_valid(&jws_claims(again["receipt"].as_str().unwrap()));
    let advice = town.grant(&alice, "health-advice", "advice").await;
    let advice = jws_claims(&advice.receipt);
    assert_kantara_valid(&advice);
    assert_eq!(advice["sensitive"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_with_a_token_signs_in_it_stores_no_private_key_and_cannot_start_without_it() {
    use renkei_store::{KeyCustody, SecretSlot};
    let Some(pkcs11) = common::test_token("a_hub_with_a_token_signs_in_it") else {
        return;
    };
    let town = Town::with(common::TownOptions {
        pkcs11: Some(pkcs11.clone()),
        ..Default::default()
    })
    .await;

    // Receipts and grants (EdDSA) and ID tokens (RS256) are signed in the token and verify
    // against the published set.
    let alice = town.sign_in(town.alice).await;
    let granted = town.grant(&alice, "health-advice", "advice").await;
    let jwks = town.published_jwks().await;
    verify_receipt(&granted.receipt, &jwks).unwrap();
    let token = town.service_token(&town.health).await;
    let answer = town
        .data(&token, &granted.subject, "advice", &[HEALTH_CHECKUP])
        .await;
    assert!(
        answer.complete,
        "the clinic accepted a grant signed in the token"
    );
    let now = Utc::now().timestamp();
    let claims = json!({ "iss": common::ISSUER, "sub": "s", "aud": "health-advice", "iat": now, "exp": now + 60 });
    let id_token = town
        .hub
        .keys()
        .sign_id_token(renkei_domain::SigningAlg::Rs256, &claims, Utc::now())
        .await
        .unwrap();
    let kid = jsonwebtoken::decode_header(&id_token).unwrap().kid.unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(jwks.find(&kid).unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&["health-advice"]);
    jsonwebtoken::decode::<Value>(&id_token, &key, &validation).unwrap();

    // Storage names where the keys are and holds no private key, wrapped or not.
    let keys = town.store.signing_keys().await.unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    for k in &keys {
        let KeyCustody::Token(reference) = &k.custody else {
            panic!("signing key `{}` is kept in the database", k.kid)
        };
        assert_eq!(reference.token, pkcs11.token);
        assert!(jwks.find(&k.kid).is_some());
    }
    for s in town.store.stored_secrets().await.unwrap() {
        assert!(matches!(s.slot, SecretSlot::Hub(_)), "{} is stored", s.slot);
        let opened = town.config.kek.unwrap(&s.slot, &s.value).unwrap();
        assert!(
            SigningKey::from_pkcs8_der(&opened).is_err()
                && renkei_protocol::keys::RsaSigningKey::from_pkcs8_der(&opened).is_err(),
            "{} opens to a private key",
            s.slot
        );
    }

    // The same database and KEK without the token: no key to sign with, and the hub says so.
    let mut without = town.config.clone();
    without.pkcs11 = None;
    let refused = renkei_hub::Hub::start(without, town.store.clone())
        .await
        .err()
        .expect("a hub started without the token its keys are in");
    let message = refused.to_string();
    assert!(
        message.contains(&format!("PKCS#11 token `{}`", pkcs11.token))
            && keys.iter().any(|k| message.contains(&k.kid)),
        "{message}"
    );
    assert_eq!(
        town.store.signing_keys().await.unwrap(),
        keys,
        "a refused start creates no key"
    );
    let again = renkei_hub::Hub::start(town.config.clone(), town.store.clone())
        .await
        .unwrap();
    assert_eq!(again.keys().jwks(), jwks, "with the token, the same keys");
}
