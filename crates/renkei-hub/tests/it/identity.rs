//! Enrolment against the trust anchor, passkeys with a software authenticator (the
//! `passkey` crate, which nobody here wrote), and proxies acting within the scope a
//! resident set — all over the hub's real HTTP API.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails loudly"
)]

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{TimeDelta, Utc};
use passkey::authenticator::{Authenticator, UiHint, UserCheck, UserValidationMethod};
use passkey::client::{Client, DefaultClientData};
use passkey::crypto::aws_lc_rs::AwsLcRsBackend;
use passkey::types::Passkey;
use passkey::types::ctap2::{Aaguid, Ctap2Error};
use renkei_hub::limits::{Rate, RateUnit};
use renkei_hub::{Hub, HubConfig};
use renkei_identity::{DevCa, IdentityAttributes, IssuedCertificate, KeyAlgorithm, Validity};
use serde_json::{Value, json};
use webauthn_rs::prelude::Url;

use crate::common;
use crate::common::{ISSUER, Town, TownOptions};

// --- enrolment ---

fn card(ca: &DevCa, name: &str, algorithm: KeyAlgorithm, validity: Validity) -> IssuedCertificate {
    ca.issue_resident(&IdentityAttributes::new(name), validity, algorithm)
        .unwrap()
}

fn a_year() -> Validity {
    Validity::days_from(Utc::now(), 365)
}

/// Asks for a challenge, signs it with `signer`'s key and enrols with `presented`'s chain.
async fn enrol_as(
    town: &Town,
    presented: &IssuedCertificate,
    signer: &IssuedCertificate,
) -> reqwest::Response {
    let challenge: Value = town
        .post("/v1/enrolment/challenges")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bytes = URL_SAFE_NO_PAD
        .decode(challenge["challenge"].as_str().unwrap())
        .unwrap();
    let signature = renkei_identity::sign_challenge(&signer.key_pem, &bytes).unwrap();
    town.post("/v1/enrolment")
        .json(&json!({
            "challenge_id": challenge["id"],
            "certificate_chain": presented.cert_pem,
            "signature": URL_SAFE_NO_PAD.encode(signature),
        }))
        .send()
        .await
        .unwrap()
}

async fn enrol(town: &Town, card: &IssuedCertificate) -> Value {
    let response = enrol_as(town, card, card).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn my_resident(town: &Town, token: &str) -> renkei_domain::ResidentId {
    town.hub.resident_session(token).await.unwrap().resident
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resident_enrols_with_an_ecdsa_or_rsa_card_and_again_finds_the_same_resident() {
    let town = Town::new().await;
    let hanako = card(&town.dev_ca, "山田 花子", KeyAlgorithm::EcdsaP256, a_year());
    let first = enrol(&town, &hanako).await;
    assert_eq!(first["new_resident"], true);
    let again = enrol(&town, &hanako).await;
    assert_eq!(again["new_resident"], false);
    let resident = my_resident(&town, first["access_token"].as_str().unwrap()).await;
    assert_eq!(
        my_resident(&town, again["access_token"].as_str().unwrap()).await,
        resident
    );
    // The hub keeps the key hash and the verified name, not the certificate.
    let kept = town.store.enrolment_of(resident).await.unwrap().unwrap();
    assert_eq!(kept.attributes["name"], "山田 花子");
    assert_eq!(kept.key_hash.len(), 64);
    assert!(!kept.attributes.to_string().contains("BEGIN CERTIFICATE"));

    // An RSA-2048 root and card (JPKI's algorithm) work the same.
    let rsa_ca = DevCa::generate(KeyAlgorithm::Rsa2048).unwrap();
    let anchors = renkei_identity::TrustAnchors::new(&[rsa_ca.root_der()]).unwrap();
    let mut config = town.config.clone();
    config.trust_anchors = Some(Arc::new(anchors));
    let rsa_hub = replica(&town, config).await;
    let ichiro = card(&rsa_ca, "佐藤 一郎", KeyAlgorithm::Rsa2048, a_year());
    let challenge = rsa_hub
        .enrolment_challenge(common::local_peer())
        .await
        .unwrap();
    let bytes = URL_SAFE_NO_PAD.decode(&challenge.challenge).unwrap();
    let signature = renkei_identity::sign_challenge(&ichiro.key_pem, &bytes).unwrap();
    let outcome = rsa_hub
        .enrol(&renkei_hub::enrolment::EnrolmentBody {
            challenge_id: challenge.id,
            certificate_chain: ichiro.cert_pem.clone(),
            signature: URL_SAFE_NO_PAD.encode(signature),
        })
        .await
        .unwrap();
    assert!(outcome.new_resident);
}

async fn replica(town: &Town, config: HubConfig) -> Hub {
    Hub::start(config, town.store.clone()).await.unwrap()
}

async fn refused(response: reqwest::Response, reason: &str) {
    let body = common::expect_problem(response, 403, "/problems/enrolment-refused").await;
    assert_eq!(body["reason"], reason, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_from_another_root_is_refused() {
    let town = Town::new().await;
    let elsewhere = DevCa::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let forged = card(&elsewhere, "山田 花子", KeyAlgorithm::EcdsaP256, a_year());
    refused(enrol_as(&town, &forged, &forged).await, "unknown-issuer").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_card_is_refused() {
    let town = Town::new().await;
    let start = Utc::now() - TimeDelta::days(400);
    let expired = card(
        &town.dev_ca,
        "山田 花子",
        KeyAlgorithm::EcdsaP256,
        Validity {
            not_before: start,
            not_after: start + TimeDelta::days(365),
        },
    );
    refused(enrol_as(&town, &expired, &expired).await, "expired").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_card_is_refused() {
    let mut town = Town::new().await;
    let lost = card(&town.dev_ca, "山田 花子", KeyAlgorithm::EcdsaP256, a_year());
    town.dev_ca.revoke(&lost.serial);
    // The operator loads the new CRL (a replica started with it).
    let anchors = renkei_identity::TrustAnchors::new(&[town.dev_ca.root_der()])
        .unwrap()
        .with_crls(&[town.dev_ca.crl_der().unwrap()])
        .unwrap();
    let mut config = town.config.clone();
    config.trust_anchors = Some(Arc::new(anchors));
    let hub = replica(&town, config).await;
    let challenge = hub.enrolment_challenge(common::local_peer()).await.unwrap();
    let bytes = URL_SAFE_NO_PAD.decode(&challenge.challenge).unwrap();
    let signature = renkei_identity::sign_challenge(&lost.key_pem, &bytes).unwrap();
    let error = hub
        .enrol(&renkei_hub::enrolment::EnrolmentBody {
            challenge_id: challenge.id,
            certificate_chain: lost.cert_pem.clone(),
            signature: URL_SAFE_NO_PAD.encode(signature),
        })
        .await
        .unwrap_err();
    assert_eq!(error.to_problem().extra.unwrap()["reason"], "revoked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_by_another_key_or_over_another_challenge_is_refused_and_the_challenge_is_spent()
 {
    let town = Town::new().await;
    let hanako = card(&town.dev_ca, "山田 花子", KeyAlgorithm::EcdsaP256, a_year());
    let thief = card(&town.dev_ca, "泥棒", KeyAlgorithm::EcdsaP256, a_year());
    refused(enrol_as(&town, &hanako, &thief).await, "bad-signature").await;

    let challenge: Value = town
        .post("/v1/enrolment/challenges")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let signature = renkei_identity::sign_challenge(&hanako.key_pem, b"another challenge").unwrap();
    let body = json!({
        "challenge_id": challenge["id"],
        "certificate_chain": hanako.cert_pem,
        "signature": URL_SAFE_NO_PAD.encode(&signature),
    });
    refused(
        town.post("/v1/enrolment").json(&body).send().await.unwrap(),
        "bad-signature",
    )
    .await;
    // The challenge was used up by the failed attempt: even a right signature is too late.
    let bytes = URL_SAFE_NO_PAD
        .decode(challenge["challenge"].as_str().unwrap())
        .unwrap();
    let right = renkei_identity::sign_challenge(&hanako.key_pem, &bytes).unwrap();
    let body = json!({
        "challenge_id": challenge["id"],
        "certificate_chain": hanako.cert_pem,
        "signature": URL_SAFE_NO_PAD.encode(&right),
    });
    refused(
        town.post("/v1/enrolment").json(&body).send().await.unwrap(),
        "malformed",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_certificates_get_a_clear_error() {
    let town = Town::new().await;
    let challenge: Value = town
        .post("/v1/enrolment/challenges")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let response = town
        .post("/v1/enrolment")
        .json(&json!({
            "challenge_id": challenge["id"],
            "certificate_chain": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "signature": "AAAA",
        }))
        .send()
        .await
        .unwrap();
    refused(response, "malformed").await;
}

// --- passkeys ---

/// A software authenticator that always finds its user present and verified.
struct AlwaysThere;

#[async_trait::async_trait]
impl UserValidationMethod for AlwaysThere {
    type PasskeyItem = Passkey;

    async fn check_user<'a>(
        &self,
        _hint: UiHint<'a, Passkey>,
        _presence: bool,
        _verification: bool,
    ) -> Result<UserCheck, Ctap2Error> {
        Ok(UserCheck {
            presence: true,
            verification: true,
        })
    }

    fn is_verification_enabled(&self) -> Option<bool> {
        Some(true)
    }

    fn is_presence_enabled(&self) -> bool {
        true
    }
}

type Device =
    Client<Option<Passkey>, AlwaysThere, AwsLcRsBackend, public_suffix::PublicSuffixList, ()>;

fn device() -> Device {
    let mut authenticator =
        Authenticator::new(Aaguid::new_empty(), None, AlwaysThere, AwsLcRsBackend);
    authenticator.set_make_credentials_with_signature_counter(true);
    Client::new(authenticator)
}

fn origin() -> Url {
    Url::parse(ISSUER).unwrap()
}

async fn register_passkey(town: &Town, token: &str, device: &mut Device) -> Value {
    let start: Value = town
        .post("/v1/me/passkeys/registrations")
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let options = serde_json::from_value(start["options"].clone()).unwrap();
    let created = device
        .register(&origin(), options, DefaultClientData)
        .await
        .unwrap();
    let response = town
        .post(&format!(
            "/v1/me/passkeys/registrations/{}",
            start["ceremony"].as_str().unwrap()
        ))
        .bearer_auth(token)
        .json(&json!({ "name": "スマートフォン", "credential": created }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    response.json().await.unwrap()
}

/// The assertion for a fresh sign-in ceremony, and the ceremony's id.
async fn assertion(town: &Town, device: &mut Device) -> (String, Value) {
    let start: Value = town
        .post("/v1/passkeys/sign-in")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let options = serde_json::from_value(start["options"].clone()).unwrap();
    let signed = device
        .authenticate(&origin(), options, DefaultClientData)
        .await
        .unwrap();
    (
        start["ceremony"].as_str().unwrap().to_owned(),
        serde_json::to_value(signed).unwrap(),
    )
}

async fn finish_sign_in(town: &Town, ceremony: &str, assertion: &Value) -> reqwest::Response {
    town.post(&format!("/v1/passkeys/sign-in/{ceremony}"))
        .json(assertion)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrolled_resident_registers_a_passkey_and_signs_in_with_it_without_a_user_name() {
    let town = Town::new().await;
    let hanako = card(&town.dev_ca, "山田 花子", KeyAlgorithm::EcdsaP256, a_year());
    let enrolled = enrol(&town, &hanako).await;
    let token = enrolled["access_token"].as_str().unwrap();
    let resident = my_resident(&town, token).await;
    let mut phone = device();
    let registered = register_passkey(&town, token, &mut phone).await;
    assert_eq!(registered["name"], "スマートフォン");

    let (ceremony, signed) = assertion(&town, &mut phone).await;
    let response = finish_sign_in(&town, &ceremony, &signed).await;
    assert_eq!(response.status(), 200);
    let session: Value = response.json().await.unwrap();
    assert_eq!(
        my_resident(&town, session["access_token"].as_str().unwrap()).await,
        resident
    );
    let listed: Value = town
        .get("/v1/me/passkeys")
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(listed[0]["last_used_at"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_passkey_assertion_is_refused() {
    let town = Town::new().await;
    let token = town.sign_in(town.alice).await;
    let mut phone = device();
    register_passkey(&town, &token, &mut phone).await;
    let (ceremony, signed) = assertion(&town, &mut phone).await;
    assert_eq!(
        finish_sign_in(&town, &ceremony, &signed).await.status(),
        200
    );
    // The same assertion again, to the same ceremony...
    common::expect_problem(
        finish_sign_in(&town, &ceremony, &signed).await,
        403,
        "/problems/passkey-refused",
    )
    .await;
    // ...or to a fresh one: its challenge is not the one that was signed.
    let start: Value = town
        .post("/v1/passkeys/sign-in")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fresh = start["ceremony"].as_str().unwrap();
    common::expect_problem(
        finish_sign_in(&town, fresh, &signed).await,
        403,
        "/problems/passkey-refused",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ceremony_begun_on_one_replica_finishes_on_another() {
    let town = Town::new().await;
    let other = replica(&town, town.config.clone()).await;
    let other_server = common::Server::start(renkei_hub::router(other)).await;
    let token = town.sign_in(town.alice).await;
    let mut phone = device();
    register_passkey(&town, &token, &mut phone).await;
    let (ceremony, signed) = assertion(&town, &mut phone).await;
    let response = reqwest::Client::new()
        .post(format!(
            "{}/v1/passkeys/sign-in/{ceremony}",
            other_server.url
        ))
        .json(&signed)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_every_passkey_is_recovered_by_enrolling_again_with_the_card() {
    let town = Town::new().await;
    let hanako = card(&town.dev_ca, "山田 花子", KeyAlgorithm::EcdsaP256, a_year());
    let token = enrol(&town, &hanako).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let resident = my_resident(&town, &token).await;
    let mut lost_phone = device();
    let registered = register_passkey(&town, &token, &mut lost_phone).await;

    // The phone is gone: enrol again with the card, remove the old passkey, add a new one.
    let recovered = enrol(&town, &hanako).await;
    assert_eq!(recovered["new_resident"], false);
    let token = recovered["access_token"].as_str().unwrap();
    assert_eq!(my_resident(&town, token).await, resident);
    let response = town
        .post(&format!(
            "/v1/me/passkeys/{}/remove",
            registered["id"].as_str().unwrap()
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let (ceremony, signed) = assertion(&town, &mut lost_phone).await;
    common::expect_problem(
        finish_sign_in(&town, &ceremony, &signed).await,
        403,
        "/problems/passkey-refused",
    )
    .await;
    let mut new_phone = device();
    register_passkey(&town, token, &mut new_phone).await;
    let (ceremony, signed) = assertion(&town, &mut new_phone).await;
    assert_eq!(
        finish_sign_in(&town, &ceremony, &signed).await.status(),
        200
    );
}

// --- proxies ---

async fn invite(town: &Town, token: &str, scope: Value) -> String {
    town.invite_proxy(token, scope).await
}

async fn act_for(town: &Town, proxy_token: &str, code: &str) -> (String, String) {
    town.act_for(proxy_token, code).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_acts_within_the_scope_set_and_their_acts_are_marked_as_a_proxys() {
    let town = Town::new().await;
    let alice = town.sign_in(town.alice).await;
    let bob = town.sign_in(town.bob).await;
    let code = invite(
        &town,
        &alice,
        json!({ "services": ["health-advice"], "manage_consents": true, "view_history": false, "file_requests": true }),
    )
    .await;
    let (_, proxy) = act_for(&town, &bob, &code).await;

    // Within scope: a consent to health-advice, recorded as given by the proxy.
    let granted = town.grant(&proxy, "health-advice", "advice").await;
    assert_eq!(granted.consent.given_via, "proxy");
    assert_eq!(granted.consent.given_by["proxy"], town.bob.to_string());
    let history: Value = town
        .get(&format!("/v1/me/consents/{}", granted.consent.id))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        history["history"][0]["actor"]["proxy"],
        town.bob.to_string()
    );

    // Outside scope: another service, the access history, the account itself.
    let other = town.try_grant(&proxy, "town-mobility", "rides").await;
    common::expect_problem(other, 403, "/problems/forbidden").await;
    let history = town
        .get("/v1/me/access-records")
        .bearer_auth(&proxy)
        .send()
        .await
        .unwrap();
    common::expect_problem(history, 403, "/problems/forbidden").await;
    let passkeys = town
        .get("/v1/me/passkeys")
        .bearer_auth(&proxy)
        .send()
        .await
        .unwrap();
    common::expect_problem(passkeys, 403, "/problems/forbidden").await;

    // A request filed by the proxy is marked so.
    let filed: Value = town
        .post("/v1/me/requests")
        .bearer_auth(&proxy)
        .json(&json!({ "kind": "disclosure", "service": "health-advice", "details": "保有データの開示" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(filed["filed_by"], "proxy");
    let mine: Value = town
        .get("/v1/me/requests")
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(mine[0]["status"], "received");

    // The resident can list what the proxy did under this appointment, newest first.
    let session = renkei_hub::auth::ResidentSession::resident(town.alice);
    let appointment = town.hub.proxies(&session).await.unwrap()[0].id;
    let actions = town.hub.proxy_actions(&session, appointment).await.unwrap();
    assert!(
        matches!(
            actions.as_slice(),
            [
                renkei_hub::accounts::ProxyAction::Request { .. },
                renkei_hub::accounts::ProxyAction::Consent {
                    change: renkei_domain::ConsentEventKind::Granted,
                    ..
                }
            ]
        ),
        "{actions:?}"
    );
    // Nobody else may read it, not even the proxy acting for her.
    let as_proxy = town.hub.resident_session(&proxy).await.unwrap();
    assert!(
        town.hub
            .proxy_actions(&as_proxy, appointment)
            .await
            .is_err()
    );
    let bob_session = renkei_hub::auth::ResidentSession::resident(town.bob);
    assert!(
        town.hub
            .proxy_actions(&bob_session, appointment)
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_the_appointment_stops_the_proxys_session_at_once() {
    let town = Town::new().await;
    let alice = town.sign_in(town.alice).await;
    let bob = town.sign_in(town.bob).await;
    let code = invite(
        &town,
        &alice,
        json!({ "manage_consents": true, "view_history": true, "file_requests": false }),
    )
    .await;
    let (id, proxy) = act_for(&town, &bob, &code).await;
    let before = town
        .get("/v1/me/consents")
        .bearer_auth(&proxy)
        .send()
        .await
        .unwrap();
    assert_eq!(before.status(), 200);
    let ended = town
        .post(&format!("/v1/me/proxies/{id}/end"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 200);
    let after = town
        .get("/v1/me/consents")
        .bearer_auth(&proxy)
        .send()
        .await
        .unwrap();
    common::expect_problem(after, 401, "/problems/token-inactive").await;
    // The invitation was single use.
    let again = town
        .post(&format!("/v1/proxy-invitations/{code}/accept"))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    common::expect_problem(again, 404, "/problems/not-found").await;
}

// --- operators ---

#[tokio::test]
async fn an_operator_token_for_an_operator_id_that_does_not_exist_is_refused() {
    let town = Town::new().await;
    let tanaka = renkei_domain::OperatorId::new("tanaka").unwrap();
    town.hub
        .add_operator(tanaka.clone(), "田中".into(), town.bob)
        .await
        .unwrap();
    // Both tokens are signed with the hub's own key, as one forged with a key read from a
    // copy of the database would be: only the operators table tells them apart.
    let real = town
        .hub
        .keys()
        .issue_operator_token(&tanaka, Utc::now())
        .unwrap();
    let ghost = renkei_domain::OperatorId::new("ghost").unwrap();
    let forged = town
        .hub
        .keys()
        .issue_operator_token(&ghost, Utc::now())
        .unwrap();
    let queue = |token: String| town.get("/v1/operator/requests").bearer_auth(token).send();
    assert_eq!(queue(real).await.unwrap().status(), 200);
    common::expect_problem(
        queue(forged.clone()).await.unwrap(),
        401,
        "/problems/unauthorized",
    )
    .await;
    assert!(town.hub.operator_session(&forged).await.is_err());
}

/// Alice's consents to health-advice and town-mobility, each used once by its service, and
/// her requests about both and about the hub itself: what a proxy's scope must divide.
async fn alice_with_two_services(town: &Town) -> (String, String, String) {
    let alice = town.sign_in(town.alice).await;
    let advice = town.grant(&alice, "health-advice", "advice").await;
    let rides = town.grant(&alice, "town-mobility", "rides").await;
    for (service, consent, purpose) in [
        (&town.health, &advice, "advice"),
        (&town.mobility, &rides, "rides"),
    ] {
        let token = town.service_token(service).await;
        let response = town
            .request_data(
                &token,
                &consent.subject,
                purpose,
                &[common::PAYMENT_HISTORY],
            )
            .await;
        assert_eq!(response.status(), 200, "{service:?}", service = service.id);
    }
    for service in [json!("health-advice"), json!("town-mobility"), Value::Null] {
        let response = town
            .post("/v1/me/requests")
            .bearer_auth(&alice)
            .json(&json!({ "kind": "correction", "service": service, "details": "住所の訂正" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    (alice, advice.consent.id, rides.consent.id)
}

async fn get_as(town: &Town, token: &str, path: &str) -> reqwest::Response {
    town.get(path).bearer_auth(token).send().await.unwrap()
}

/// The `service` of every entry of a `/v1/me/log` page.
fn log_services(page: &Value) -> Vec<String> {
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let entry: Value = serde_json::from_str(e["entry"].as_str().unwrap()).unwrap();
            entry["service"].as_str().unwrap_or_default().to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_scoped_to_one_service_reads_only_that_services_consents_and_receipts() {
    let town = Town::new().await;
    let (alice, advice, rides) = alice_with_two_services(&town).await;
    let bob = town.sign_in(town.bob).await;
    let code = invite(
        &town,
        &alice,
        json!({ "services": ["health-advice"], "manage_consents": true, "view_history": false, "file_requests": false }),
    )
    .await;
    let (_, proxy) = act_for(&town, &bob, &code).await;

    let listed: Vec<String> = town
        .consents(&proxy)
        .await
        .into_iter()
        .map(|c| c.service)
        .collect();
    assert_eq!(listed, ["health-advice"]);
    for path in [
        format!("/v1/me/consents/{advice}"),
        format!("/v1/me/consents/{advice}/receipt"),
    ] {
        assert_eq!(get_as(&town, &proxy, &path).await.status(), 200, "{path}");
    }
    // Outside the scope a consent is not there at all, as another resident's is not.
    for path in [
        format!("/v1/me/consents/{rides}"),
        format!("/v1/me/consents/{rides}/receipt"),
    ] {
        common::expect_problem(
            get_as(&town, &proxy, &path).await,
            404,
            "/problems/not-found",
        )
        .await;
    }
    // The resident herself still sees both.
    assert_eq!(town.consents(&alice).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_entrusted_only_with_requests_reads_no_consents() {
    let town = Town::new().await;
    let (alice, advice, _) = alice_with_two_services(&town).await;
    let bob = town.sign_in(town.bob).await;
    let code = invite(
        &town,
        &alice,
        json!({ "manage_consents": false, "view_history": false, "file_requests": true }),
    )
    .await;
    let (_, proxy) = act_for(&town, &bob, &code).await;
    for path in [
        "/v1/me/consents".to_owned(),
        format!("/v1/me/consents/{advice}"),
        format!("/v1/me/consents/{advice}/receipt"),
    ] {
        common::expect_problem(
            get_as(&town, &proxy, &path).await,
            403,
            "/problems/forbidden",
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_scoped_to_one_service_reads_only_requests_about_it() {
    let town = Town::new().await;
    let (alice, _, _) = alice_with_two_services(&town).await;
    let bob = town.sign_in(town.bob).await;
    let code = invite(
        &town,
        &alice,
        json!({ "services": ["health-advice"], "manage_consents": false, "view_history": false, "file_requests": true }),
    )
    .await;
    let (_, proxy) = act_for(&town, &bob, &code).await;
    let response = get_as(&town, &proxy, "/v1/me/requests").await;
    assert_eq!(response.status(), 200);
    let requests: Vec<Value> = response.json().await.unwrap();
    let services: Vec<&Value> = requests.iter().map(|r| &r["service"]).collect();
    assert_eq!(services, [&json!("health-advice")]);
    // A request about the hub itself concerns every service: beyond a one-service scope.
    let about_the_hub = town
        .post("/v1/me/requests")
        .bearer_auth(&proxy)
        .json(&json!({ "kind": "deletion", "details": "全部消してください" }))
        .send()
        .await
        .unwrap();
    common::expect_problem(about_the_hub, 403, "/problems/forbidden").await;
    let mine: Vec<Value> = get_as(&town, &alice, "/v1/me/requests")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_scoped_to_one_service_reads_only_that_services_history() {
    let town = Town::new().await;
    let (alice, _, _) = alice_with_two_services(&town).await;
    let bob = town.sign_in(town.bob).await;
    let code = invite(
        &town,
        &alice,
        json!({ "services": ["health-advice"], "manage_consents": false, "view_history": true, "file_requests": false }),
    )
    .await;
    let (_, proxy) = act_for(&town, &bob, &code).await;

    let records = town.access_records(&proxy).await;
    let services: Vec<&str> = records
        .iter()
        .map(|r| r["service"].as_str().unwrap())
        .collect();
    assert_eq!(services, ["health-advice"]);
    assert_eq!(town.access_records(&alice).await.len(), 2);
    for path in [
        "/v1/me/access-records?service=town-mobility",
        "/v1/me/log?service=town-mobility",
    ] {
        common::expect_problem(
            get_as(&town, &proxy, path).await,
            403,
            "/problems/forbidden",
        )
        .await;
    }
    // The signed history, in both orders: access entries and consent changes of the scope only.
    for path in ["/v1/me/log", "/v1/me/log?order=newest"] {
        let response = get_as(&town, &proxy, path).await;
        assert_eq!(response.status(), 200, "{path}");
        let page: Value = response.json().await.unwrap();
        let services = log_services(&page);
        assert_eq!(services, ["health-advice", "health-advice"], "{path}");
        let all: Value = get_as(&town, &alice, path).await.json().await.unwrap();
        assert_eq!(log_services(&all).len(), 4, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_may_start_only_so_many_enrolments_and_passkey_sign_ins() {
    let town = Town::with(TownOptions {
        limits: common::limits(|l| {
            l.ceremonies_per_address = Rate::new(3, RateUnit::Minute, 3);
        }),
        ..TownOptions::default()
    })
    .await;
    for _ in 0..2 {
        let response = town.post("/v1/enrolment/challenges").send().await.unwrap();
        assert_eq!(response.status(), 201);
    }
    let response = town.post("/v1/passkeys/sign-in").send().await.unwrap();
    assert_eq!(response.status(), 200);
    // The fourth from this address, whichever ceremony, waits (one comes back every 20 s).
    common::expect_rate_limited(
        town.post("/v1/enrolment/challenges").send().await.unwrap(),
        20,
    )
    .await;
    common::expect_rate_limited(town.post("/v1/passkeys/sign-in").send().await.unwrap(), 20).await;
}

/// How many enrolment challenges and WebAuthn ceremonies the town's SQLite file holds.
async fn stored_ceremonies(town: &Town) -> (i64, i64) {
    use sqlx::Connection;
    let url = format!("sqlite://{}?mode=ro", town.db_path.display());
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM enrolment_challenges), (SELECT COUNT(*) FROM webauthn_ceremonies)",
    )
    .fetch_one(&mut db)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_challenges_and_ceremonies_are_purged_and_live_ones_kept() {
    let town = Town::with(TownOptions {
        purge_interval: std::time::Duration::from_millis(100),
        ..TownOptions::default()
    })
    .await;
    let long_ago = Utc::now() - TimeDelta::hours(1);
    let ceremony = renkei_store::Ceremony {
        resident: None,
        state: json!({}),
    };
    for _ in 0..50 {
        let id = uuid::Uuid::new_v4();
        town.store
            .put_enrolment_challenge(id, b"old", long_ago)
            .await
            .unwrap();
        town.store
            .put_ceremony(id, "sign-in", &ceremony, long_ago)
            .await
            .unwrap();
    }
    // Live ones, as anyone can make them.
    assert_eq!(
        town.post("/v1/enrolment/challenges")
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    assert_eq!(
        town.post("/v1/passkeys/sign-in")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while stored_ceremonies(&town).await != (1, 1) {
        assert!(
            std::time::Instant::now() < deadline,
            "expired rows are still there: {:?}",
            stored_ceremonies(&town).await
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
