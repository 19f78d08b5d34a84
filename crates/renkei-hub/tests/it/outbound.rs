//! Outbound-only providers: the clinic accepts no connection, polls the hub for its grants
//! with the kit's poller and posts its answers back; the service gets the same verified,
//! sealed answer as from an inbound provider, and a clinic that stopped polling fails fast.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::header;
use renkei_domain::ProviderConnection;
use renkei_hub::broker::DataResponse;
use renkei_provider::kit::credentials::ClientAssertion;
use renkei_provider::kit::outbound::HubCredentials;
use serde_json::{Value, json};

use crate::common::{HEALTH_CHECKUP, PAYMENT_HISTORY, Town, expect_problem};

/// Registers the clinic as outbound-only, as an operator would.
async fn clinic_goes_outbound(town: &Town) {
    let mut clinic = town.store.provider(&town.clinic.id).await.unwrap().unwrap();
    clinic.connection = ProviderConnection::Outbound;
    town.store.put_provider(&clinic).await.unwrap();
}

/// The clinic's own credentials at the hub (a client assertion with its registered key).
fn clinic_credentials(town: &Town) -> Arc<ClientAssertion> {
    Arc::new(ClientAssertion::new(
        town.http.clone(),
        &town.hub_url,
        town.clinic.id.clone(),
        town.clinic.signing_key.clone(),
    ))
}

/// Waits until the hub has a poll of the clinic parked.
async fn until_connected(town: &Town) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !town.hub.outbound_connected(&town.clinic.id) {
        assert!(Instant::now() < deadline, "the clinic never polled");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn advice_request(town: &Town) -> DataResponse {
    let alice = town.sign_in(town.alice).await;
    let consent = town.grant(&alice, "health-advice", "advice").await;
    let token = town.service_token(&town.health).await;
    town.data(
        &token,
        &consent.subject,
        "advice",
        &[HEALTH_CHECKUP, PAYMENT_HISTORY],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbound_provider_answers_through_its_poll_with_the_same_verified_payload() {
    let town = Town::new().await;
    clinic_goes_outbound(&town).await;
    let polls = renkei_provider::kit::outbound::start(
        town.http.clone(),
        town.hub_url.clone(),
        town.clinic.provider.as_ref().unwrap(),
        clinic_credentials(&town),
        2,
    );
    until_connected(&town).await;
    let answer = advice_request(&town).await;
    assert!(answer.complete, "{answer:?}");
    let opened = town.open_all(&town.health, &answer).await;
    assert_eq!(opened["clinic"]["reference"], "K-0001");
    assert!(town.clinic.served() >= 1);
    assert!(
        town.clinic.captured_grants().is_empty(),
        "nothing reached the clinic's port"
    );
    for p in polls {
        p.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_to_an_outbound_provider_that_is_not_polling_fails_fast_as_unreachable() {
    let town = Town::new().await;
    clinic_goes_outbound(&town).await;
    let start = Instant::now();
    let answer = advice_request(&town).await;
    let clinic = answer
        .results
        .iter()
        .find(|r| r.provider == "clinic")
        .unwrap();
    assert_eq!(clinic.status, "provider-unreachable");
    assert!(!answer.complete);
    assert!(
        answer
            .results
            .iter()
            .any(|r| r.provider == "payments" && r.status == "ok"),
        "the other provider still answers: {answer:?}"
    );
    assert!(
        start.elapsed() < town.config.provider_timeout,
        "failed fast, not after the provider timeout"
    );
}

/// The clinic's provider token, as its kit gets it.
async fn clinic_token(town: &Town) -> String {
    clinic_credentials(town).bearer().await.unwrap()
}

async fn poll(town: &Town, token: &str, wait_ms: u64) -> reqwest::Response {
    town.post("/v1/provider/poll")
        .bearer_auth(token)
        .json(&json!({ "max": 8, "wait_ms": wait_ms }))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_registered_with_an_endpoint_cannot_poll() {
    let town = Town::new().await;
    let token = clinic_token(&town).await;
    expect_problem(poll(&town, &token, 0).await, 403, "/problems/forbidden").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_that_is_not_an_answer_is_refused_and_fails_that_providers_part() {
    let town = Town::new().await;
    clinic_goes_outbound(&town).await;
    let token = clinic_token(&town).await;
    // Polled once so the hub counts the clinic as connected.
    let empty: Value = poll(&town, &token, 0).await.json().await.unwrap();
    assert_eq!(empty, json!({ "grants": [] }));
    let request = {
        let town_url = town.hub_url.clone();
        let http = town.http.clone();
        let alice = town.sign_in(town.alice).await;
        let consent = town.grant(&alice, "health-advice", "advice").await;
        let service = town.service_token(&town.health).await;
        tokio::spawn(async move {
            http.post(format!("{town_url}/v1/data-requests"))
                .bearer_auth(service)
                .json(&json!({ "subject": consent.subject, "purpose": "advice",
                               "categories": [HEALTH_CHECKUP] }))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        })
    };
    let polled: Value = poll(&town, &token, 10_000).await.json().await.unwrap();
    let ticket = polled["grants"][0]["ticket"].as_str().unwrap().to_owned();
    let answer_path = format!("/v1/provider/answers/{ticket}");

    // Another provider cannot answer the clinic's ticket.
    let payments = ClientAssertion::new(
        town.http.clone(),
        &town.hub_url,
        town.payments.id.clone(),
        town.payments.signing_key.clone(),
    )
    .bearer()
    .await
    .unwrap();
    let foreign = town
        .post(&answer_path)
        .bearer_auth(payments)
        .json(&json!({ "status": 200, "body": {} }))
        .send()
        .await
        .unwrap();
    expect_problem(foreign, 404, "/problems/not-found").await;

    let not_json = town
        .post(&answer_path)
        .bearer_auth(&token)
        .header(header::CONTENT_TYPE, "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 415);
    let bad = town
        .post(&answer_path)
        .bearer_auth(&token)
        .json(&json!({ "sealed": "not an answer" }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let answered = request.await.unwrap();
    assert_eq!(
        answered["providers"][0]["status"], "provider-bad-answer",
        "{answered}"
    );
    // The ticket is spent: a late, good answer finds nothing waiting.
    let late = town
        .post(&answer_path)
        .bearer_auth(&token)
        .json(&json!({ "status": 200, "body": {} }))
        .send()
        .await
        .unwrap();
    assert_eq!(late.status(), 404);
}
