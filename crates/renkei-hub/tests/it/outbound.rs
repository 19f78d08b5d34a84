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

/// Alice's advice requests for her checkup alone (the clinic's part only), `n` of them at
/// once in the background.
async fn checkup_requests(town: &Town, n: usize) -> Vec<tokio::task::JoinHandle<Value>> {
    let alice = town.sign_in(town.alice).await;
    let consent = town.grant(&alice, "health-advice", "advice").await;
    let service = town.service_token(&town.health).await;
    (0..n)
        .map(|_| {
            let (town_url, http) = (town.hub_url.clone(), town.http.clone());
            let (service, subject) = (service.clone(), consent.subject.clone());
            tokio::spawn(async move {
                http.post(format!("{town_url}/v1/data-requests"))
                    .bearer_auth(service)
                    .json(&json!({ "subject": subject, "purpose": "advice",
                                   "categories": [HEALTH_CHECKUP] }))
                    .send()
                    .await
                    .unwrap()
                    .json::<Value>()
                    .await
                    .unwrap()
            })
        })
        .collect()
}

/// Polls until `n` grants have come, returning their tickets.
async fn tickets(town: &Town, token: &str, n: usize) -> Vec<String> {
    let mut tickets = Vec::new();
    while tickets.len() < n {
        let polled: Value = poll(town, token, 10_000).await.json().await.unwrap();
        for grant in polled["grants"].as_array().unwrap() {
            tickets.push(grant["ticket"].as_str().unwrap().to_owned());
        }
    }
    tickets
}

async fn post_answers(town: &Town, token: &str, answers: Value) -> reqwest::Response {
    town.post("/v1/provider/answers")
        .bearer_auth(token)
        .json(&json!({ "answers": answers }))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_posted_together_each_reach_their_request_and_only_the_bad_ones_fail() {
    let town = Town::new().await;
    clinic_goes_outbound(&town).await;
    // A small limit of its own, so one answer can be too large for it.
    let mut clinic = town.store.provider(&town.clinic.id).await.unwrap().unwrap();
    clinic.max_answer_bytes = Some(2048);
    town.store.put_provider(&clinic).await.unwrap();
    let token = clinic_token(&town).await;
    // Polled once so the hub counts the clinic as connected.
    let empty: Value = poll(&town, &token, 0).await.json().await.unwrap();
    assert_eq!(empty, json!({ "grants": [] }));
    let requests = checkup_requests(&town, 3).await;
    let tickets = tickets(&town, &token, 3).await;

    // Another provider cannot answer the clinic's tickets.
    let payments = ClientAssertion::new(
        town.http.clone(),
        &town.hub_url,
        town.payments.id.clone(),
        town.payments.signing_key.clone(),
    )
    .bearer()
    .await
    .unwrap();
    let foreign = post_answers(
        &town,
        &payments,
        json!([{ "ticket": tickets[0], "status": 200, "body": {} }]),
    )
    .await;
    assert_eq!(foreign.status(), 200);
    let foreign: Value = foreign.json().await.unwrap();
    assert_eq!(
        foreign,
        json!({ "relayed": 0, "unknown": [tickets[0]], "refused": [] })
    );

    let not_json = town
        .post("/v1/provider/answers")
        .bearer_auth(&token)
        .header(header::CONTENT_TYPE, "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 415);
    let not_a_batch = town
        .post("/v1/provider/answers")
        .bearer_auth(&token)
        .json(&json!({ "sealed": "not an answer" }))
        .send()
        .await
        .unwrap();
    expect_problem(not_a_batch, 400, "/problems/malformed-request").await;

    // One post: an answer that is not one, one larger than its request reads, and a
    // refusal, which is an answer like any other.
    let posted = post_answers(
        &town,
        &token,
        json!([
            { "ticket": tickets[0], "sealed": "not an answer" },
            { "ticket": tickets[1], "status": 200, "body": "x".repeat(3000) },
            { "ticket": tickets[2], "status": 404, "body": { "type": "/problems/not-found" } },
        ]),
    )
    .await;
    assert_eq!(posted.status(), 200);
    let posted: Value = posted.json().await.unwrap();
    assert_eq!(
        posted,
        json!({ "relayed": 1, "unknown": [], "refused": [tickets[0], tickets[1]] })
    );
    let mut outcomes = Vec::new();
    for request in requests {
        let answered = request.await.unwrap();
        outcomes.push(
            answered["providers"][0]["status"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    outcomes.sort();
    assert_eq!(
        outcomes,
        [
            "provider-answer-too-large",
            "provider-bad-answer",
            "provider-refused"
        ]
    );
    // The tickets are spent: a late, good answer finds nothing waiting.
    let late: Value = post_answers(
        &town,
        &token,
        json!([{ "ticket": tickets[2], "status": 200, "body": {} }]),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        late,
        json!({ "relayed": 0, "unknown": [tickets[2]], "refused": [] })
    );
}
