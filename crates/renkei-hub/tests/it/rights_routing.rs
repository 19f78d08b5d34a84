//! Residents' rights reach the data: a deletion request reaches the service that received
//! the data (a signed event at its webhook) and the provider that keeps it (its pull API);
//! each answers through the API, the provider's deletion removes the locator, and the
//! resident sees each answer and the request completed. An overdue request is flagged for
//! operators and extended with a reason the resident reads; a suspension request stops the
//! next data request at once.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use renkei_domain::{
    Actor, ResidentRequest, ResidentRequestId, ResidentRequestKind, ResidentRequestStatus,
};
use renkei_protocol::event::rights::{RightsEventToken, verify_rights_event};
use serde_json::{Value, json};

use crate::common::{HEALTH_CHECKUP, Town, cat, expect_problem};
use crate::provider_sync::{alice_code, provider_token, register_key};

async fn my_requests(town: &Town, token: &str) -> Vec<Value> {
    let response = town
        .get("/v1/me/requests")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn file(town: &Town, token: &str, body: Value) -> Value {
    let response = town
        .post("/v1/me/requests")
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "filing {body}");
    response.json().await.unwrap()
}

async fn answer(town: &Town, token: &str, path: &str, body: Value) -> reqwest::Response {
    town.post(path)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Waits (bounded) for the rights-request events the health service's webhook received.
async fn rights_events(town: &Town) -> Vec<RightsEventToken> {
    let jwks = town.published_jwks().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let heard: Vec<RightsEventToken> = town
            .webhook
            .received()
            .into_iter()
            .filter_map(|d| verify_rights_event(&d.body, &jwks, &town.health.id).ok())
            .collect();
        if !heard.is_empty() || tokio::time::Instant::now() >= deadline {
            return heard;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_deletion_request_reaches_the_service_and_the_provider_and_completes_when_both_are_done()
{
    let town = Town::new().await;
    let alice = town.sign_in(town.alice).await;
    let granted = town.grant(&alice, "health-advice", "reminders").await;
    let health = town.service_token(&town.health).await;
    town.data(&health, &granted.subject, "reminders", &[HEALTH_CHECKUP])
        .await;
    let size = town.store.log_size().await.unwrap();

    let filed = file(
        &town,
        &alice,
        json!({ "kind": "deletion", "service": "health-advice", "details": "健診結果を消してください" }),
    )
    .await;
    let id = filed["id"].as_str().unwrap().to_owned();
    let recipients = filed["recipients"].as_array().unwrap();
    assert_eq!(
        recipients
            .iter()
            .map(|r| (r["kind"].as_str().unwrap(), r["id"].as_str().unwrap()))
            .collect::<Vec<_>>(),
        vec![("service", "health-advice"), ("provider", "clinic")],
        "the service that received it and the provider that keeps it"
    );
    let due: chrono::DateTime<Utc> = serde_json::from_value(filed["due_at"].clone()).unwrap();
    assert!((due - Utc::now() - TimeDelta::days(14)).num_minutes().abs() < 5);

    // The service hears of it at its webhook: a SET that verifies against the hub's JWKS,
    // naming Alice by its own pairwise subject.
    let events = rights_events(&town).await;
    assert_eq!(events.len(), 1, "one event");
    let event = &events[0].events.request;
    assert_eq!(event.request.to_string(), id);
    assert_eq!(event.subject.as_str(), granted.subject);
    assert_eq!(event.kind, "deletion");
    assert_eq!(event.categories, [cat(HEALTH_CHECKUP)].into());
    assert!(
        event
            .answer_url
            .ends_with(&format!("/v1/service/rights-requests/{id}/answer"))
    );

    // The service reads what is asked and says it is done.
    let listed: Value = town
        .get("/v1/service/rights-requests")
        .bearer_auth(&health)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["subject"], granted.subject.as_str());
    assert_eq!(listed[0]["details"], "健診結果を消してください");
    let path = format!("/v1/service/rights-requests/{id}/answer");
    let done = answer(&town, &health, &path, json!({ "answer": "done" })).await;
    assert_eq!(done.status(), 200);
    let done: Value = done.json().await.unwrap();
    assert_eq!(done["answer"], "done");
    // Another service was not sent it: "not found".
    let mobility = town.service_token(&town.mobility).await;
    let stranger = answer(&town, &mobility, &path, json!({ "answer": "done" })).await;
    expect_problem(stranger, 404, "/problems/not-found").await;
    let status = my_requests(&town, &alice).await[0]["status"].clone();
    assert_eq!(status, "in_progress", "the provider has not answered yet");

    // The provider pulls it, naming Alice by her code there, and deletes.
    let key = register_key(&town, &town.clinic).await;
    let clinic = provider_token(&town, &key, &town.clinic).await;
    let pulled: Value = town
        .get("/v1/provider/rights-requests")
        .bearer_auth(&clinic)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(pulled[0]["id"], id.as_str());
    assert_eq!(pulled[0]["subject"], alice_code(&town, &town.clinic).await);
    assert_eq!(pulled[0]["categories"], json!([HEALTH_CHECKUP]));
    let path = format!("/v1/provider/rights-requests/{id}/answer");
    let refused = answer(&town, &clinic, &path, json!({ "answer": "refused" })).await;
    expect_problem(refused, 400, "/problems/malformed-request").await;
    let done = answer(&town, &clinic, &path, json!({ "answer": "done" })).await;
    assert_eq!(done.status(), 200);
    // The locator is gone: the hub no longer points at what was deleted.
    let locators = town.store.locators_of(town.alice).await.unwrap();
    assert!(
        locators.iter().all(|l| l.category != cat(HEALTH_CHECKUP)),
        "{locators:?}"
    );
    assert_eq!(locators.len(), 2, "the other categories stay");
    // Done is final.
    let again = answer(
        &town,
        &clinic,
        &path,
        json!({ "answer": "partly", "note": "x" }),
    )
    .await;
    expect_problem(again, 403, "/problems/forbidden").await;

    // Alice sees each answer and the request completed.
    let mine = my_requests(&town, &alice).await;
    assert_eq!(mine[0]["status"], "completed");
    let answers: Vec<&str> = mine[0]["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["answer"].as_str().unwrap())
        .collect();
    assert_eq!(answers, ["done", "done"]);
    // The routing and each answer are entries of the log, holding no words of Alice's.
    let entries = town
        .store
        .log_range(size, 100)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| e.entry.and_then(Result::ok))
        .filter(|e| e.kind() == "rights")
        .collect::<Vec<_>>();
    assert_eq!(entries.len(), 3, "routed, and two answers");
    for e in &entries {
        assert!(
            !String::from_utf8(e.canonical())
                .unwrap()
                .contains("健診結果")
        );
    }
}

#[tokio::test]
async fn a_request_about_a_category_goes_to_every_service_that_received_it() {
    let town = Town::new().await;
    let alice = town.sign_in(town.alice).await;
    for service in [&town.health, &town.reminder] {
        let granted = town.grant(&alice, service.id.as_str(), "reminders").await;
        let token = town.service_token(service).await;
        town.data(&token, &granted.subject, "reminders", &[HEALTH_CHECKUP])
            .await;
    }
    let filed = file(
        &town,
        &alice,
        json!({ "kind": "correction", "category": HEALTH_CHECKUP, "details": "日付が違います" }),
    )
    .await;
    let recipients: Vec<&str> = filed["recipients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(recipients, ["checkup-reminder", "health-advice", "clinic"]);
    // A disclosure goes to no one: it is the hub's to answer.
    let disclosure = file(
        &town,
        &alice,
        json!({ "kind": "disclosure", "category": HEALTH_CHECKUP, "details": "" }),
    )
    .await;
    assert_eq!(disclosure["recipients"], json!([]));
}

#[tokio::test]
async fn an_overdue_request_is_flagged_for_operators_and_an_extension_tells_the_resident_why() {
    let town = Town::new().await;
    let operator = town.operator_token().await;
    let filed_at = Utc::now() - TimeDelta::days(20);
    let late = ResidentRequest {
        id: ResidentRequestId::from_uuid(uuid::Uuid::new_v4()),
        resident: town.bob,
        kind: ResidentRequestKind::Correction,
        service: None,
        details: "住所".into(),
        status: ResidentRequestStatus::Received,
        filed_by: Actor::Resident,
        filed_at,
        updated_at: filed_at,
        response: None,
        category: None,
        due_at: filed_at + TimeDelta::days(14),
        extension_reason: None,
    };
    town.store.file_request(&late).await.unwrap();
    let bob = town.sign_in(town.bob).await;
    file(&town, &bob, json!({ "kind": "disclosure", "details": "" })).await;

    let summary: Value = town
        .get("/v1/operator/request-summary")
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(summary["answer_days"], 14);
    assert_eq!(summary["open"], 2);
    let overdue = summary["overdue"].as_array().unwrap();
    assert_eq!(overdue.len(), 1, "{summary}");
    assert_eq!(overdue[0]["id"], late.id.to_string());
    assert_eq!(overdue[0]["days_overdue"], 6);
    let queue: Vec<Value> = town
        .get("/v1/operator/requests")
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let flagged: Vec<bool> = queue.iter().map(|r| r["overdue"] == true).collect();
    assert_eq!(flagged, [true, false]);

    // An extension needs a reason, and moves the date later.
    let path = format!("/v1/operator/requests/{}/extension", late.id);
    let until = Utc::now() + TimeDelta::days(10);
    let no_reason = answer(
        &town,
        &operator,
        &path,
        json!({ "due_at": until, "reason": " " }),
    )
    .await;
    expect_problem(no_reason, 400, "/problems/malformed-request").await;
    let extended = answer(
        &town,
        &operator,
        &path,
        json!({ "due_at": until, "reason": "記録が書庫にあり確認に時間がかかります" }),
    )
    .await;
    assert_eq!(extended.status(), 200);
    let mine = my_requests(&town, &bob).await;
    let shown = mine
        .iter()
        .find(|r| r["id"] == late.id.to_string())
        .unwrap();
    assert_eq!(shown["overdue"], false);
    assert_eq!(
        shown["extension_reason"],
        "記録が書庫にあり確認に時間がかかります"
    );
    let summary: Value = town
        .get("/v1/operator/request-summary")
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(summary["overdue"], json!([]));
    assert_eq!(summary["extended"], 1);
}

#[tokio::test]
async fn after_a_suspension_request_the_next_data_request_is_denied() {
    let town = Town::new().await;
    let alice = town.sign_in(town.alice).await;
    let granted = town.grant(&alice, "health-advice", "reminders").await;
    let health = town.service_token(&town.health).await;
    town.data(&health, &granted.subject, "reminders", &[HEALTH_CHECKUP])
        .await;
    file(
        &town,
        &alice,
        json!({ "kind": "suspension", "service": "health-advice", "details": "利用を停止してください" }),
    )
    .await;
    let denied = town
        .request_data(&health, &granted.subject, "reminders", &[HEALTH_CHECKUP])
        .await;
    expect_problem(denied, 403, "/problems/consent-revoked").await;
    let consents = town.consents(&alice).await;
    assert!(
        consents.iter().all(|c| c.state == "revoked"),
        "{consents:?}"
    );
}

#[tokio::test]
async fn a_request_naming_an_empty_or_padded_category_is_refused_not_read_as_none() {
    let town = Town::new().await;
    let alice = town.sign_in(town.alice).await;
    for category in ["", " health.checkup"] {
        let response = town
            .post("/v1/me/requests")
            .bearer_auth(&alice)
            .json(&json!({ "kind": "deletion", "category": category, "details": "" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{category:?}");
    }
    assert!(my_requests(&town, &alice).await.is_empty());
}
