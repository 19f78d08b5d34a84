//! Declared emergencies over real HTTP: two operators' steps, a responder's requests without
//! consent inside and outside the declaration's scope and window, the grant and the
//! resident's verified history naming the declaration, and dual-mode purposes.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use renkei_domain::{OperatorId, PurposeId, ResidentId};
use serde_json::{Value, json};

use crate::common::{self, HEALTH_CHECKUP, PAYMENT_HISTORY, Town, advice_draft, expect_problem};
use crate::transparency_log::{everything_signed, my_log, published_key, verify_entry};

/// Two operators: `tanaka` (Alice's identity) and `suzuki` (Carol's); their tokens.
pub(crate) async fn two_operators(town: &Town) -> (String, String) {
    let first = town.operator_token().await;
    let suzuki = OperatorId::new("suzuki").unwrap();
    town.hub
        .add_operator(suzuki.clone(), "鈴木".into(), town.carol)
        .await
        .unwrap();
    let second = town
        .hub
        .keys()
        .issue_operator_token(&suzuki, Utc::now())
        .unwrap();
    (first, second)
}

/// The subject `service`'s sector knows `resident` by, linked as a sign-in would link it: a
/// responder names residents it already knows.
pub(crate) async fn known_subject(town: &Town, sector: &str, resident: ResidentId) -> String {
    let subject = town.hub.keys().subject(sector, resident);
    town.store
        .link_subject(sector, &subject, resident)
        .await
        .unwrap();
    subject.to_string()
}

async fn post(town: &Town, token: &str, path: &str, body: Value) -> reqwest::Response {
    town.post(path)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Declares an emergency releasing `health.checkup` to health-advice for `minutes`.
pub(crate) async fn declare(
    town: &Town,
    token: &str,
    services: &[&str],
    ends_in: TimeDelta,
) -> String {
    let response = post(
        town,
        token,
        "/v1/operator/declarations",
        json!({
            "reason": "線状降水帯による大雨", "legal_basis": "disaster_act49_11",
            "categories": [HEALTH_CHECKUP], "services": services,
            "area": ["53394526", "5339452623", "district:hikari-1"],
            "ends_at": Utc::now() + ends_in,
        }),
    )
    .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["state"], "pending");
    body["id"].as_str().unwrap().to_owned()
}

pub(crate) async fn step(town: &Town, token: &str, id: &str, what: &str) -> reqwest::Response {
    post(
        town,
        token,
        &format!("/v1/operator/declarations/{id}/{what}"),
        json!({}),
    )
    .await
}

#[tokio::test]
async fn a_responder_without_consent_is_served_only_once_a_second_operator_confirms() {
    let town = Town::new().await;
    let (tanaka, suzuki) = two_operators(&town).await;
    let bob = known_subject(&town, "health", town.bob).await;
    let health = town.service_token(&town.health).await;
    let ask = |categories: &'static [&'static str], purpose: &'static str| {
        town.request_data(&health, &bob, purpose, categories)
    };
    let id = declare(&town, &tanaka, &["health-advice"], TimeDelta::hours(1)).await;

    let before = ask(&[HEALTH_CHECKUP], "reminders").await;
    expect_problem(before, 403, "/problems/emergency-not-in-force").await;
    // The declaring operator cannot confirm their own declaration.
    let own = expect_problem(
        step(&town, &tanaka, &id, "confirm").await,
        409,
        "/problems/declaration-refused",
    )
    .await;
    assert_eq!(own["reason"], "same-operator");
    let confirmed = step(&town, &suzuki, &id, "confirm").await;
    assert_eq!(confirmed.status(), 200);
    assert_eq!(
        confirmed.json::<Value>().await.unwrap()["state"],
        "in_force"
    );

    let response = ask(&[HEALTH_CHECKUP], "reminders").await;
    assert_eq!(response.status(), 200);
    let data: renkei_hub::broker::DataResponse = response.json().await.unwrap();
    assert_eq!(town.open_all(&town.health, &data).await.len(), 1);
    // The provider sees the basis in the grant, and no consent.
    let grant = common::grant_claims(town.clinic.captured_grants().last().unwrap());
    assert_eq!(grant.basis, format!("emergency:{id}"));
    assert_eq!(grant.emergency.map(|d| d.to_string()), Some(id.clone()));
    assert_eq!(grant.consent, None);

    // Out of scope: a category it does not release, a service it does not name.
    let outside = ask(&[HEALTH_CHECKUP, PAYMENT_HISTORY], "advice").await;
    let problem = expect_problem(outside, 403, "/problems/category-not-in-emergency").await;
    assert_eq!(problem["categories"], json!([PAYMENT_HISTORY]));
    let mobility = town.service_token(&town.mobility).await;
    let bob_there = known_subject(&town, "mobility", town.bob).await;
    let other = town
        .request_data(&mobility, &bob_there, "rides", &[PAYMENT_HISTORY])
        .await;
    expect_problem(other, 403, "/problems/consent-missing").await;

    // Bob's history shows the release with its declaration, verified against the log.
    let key = published_key(&town).await;
    let (_, checkpoint) = everything_signed(&town, &key).await;
    let token = town.sign_in(town.bob).await;
    let page = my_log(&town, &token, "").await;
    let emergency: Vec<Value> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| verify_entry(e, &checkpoint).1)
        .filter(|e| e["basis"]["kind"] == "emergency")
        .collect();
    assert_eq!(emergency.len(), 1, "{page}");
    assert_eq!(emergency[0]["basis"]["declaration"], id.as_str());
    assert_eq!(emergency[0]["outcome"]["outcome"], "granted");

    // Either operator ends it: the next request is refused.
    assert_eq!(step(&town, &tanaka, &id, "end").await.status(), 200);
    let after = ask(&[HEALTH_CHECKUP], "reminders").await;
    expect_problem(after, 403, "/problems/consent-missing").await;

    // Public, without who took the steps; every step is an operator entry of the log.
    let listed: Value = town
        .get("/v1/declarations")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["state"], "ended");
    assert_eq!(
        listed[0]["legal_basis_ja"],
        "災害対策基本法 第49条の11第3項"
    );
    let text = listed.to_string();
    assert!(
        !text.contains("tanaka") && !text.contains("suzuki"),
        "{text}"
    );
    let acts: Vec<String> = town
        .hub
        .operator_log(None, 10)
        .await
        .unwrap()
        .iter()
        .filter_map(|e| serde_json::to_value(&e.action).ok())
        .map(|a| a["action"].as_str().unwrap().to_owned())
        .filter(|a| a.contains("emergency"))
        .collect();
    assert_eq!(
        acts,
        ["end_emergency", "confirm_emergency", "declare_emergency"]
    );
}

#[tokio::test]
async fn a_declaration_ends_by_itself_at_its_end_time() {
    let town = Town::new().await;
    let (tanaka, suzuki) = two_operators(&town).await;
    let bob = known_subject(&town, "health", town.bob).await;
    let health = town.service_token(&town.health).await;
    let id = declare(
        &town,
        &tanaka,
        &["health-advice"],
        TimeDelta::milliseconds(1500),
    )
    .await;
    assert_eq!(step(&town, &suzuki, &id, "confirm").await.status(), 200);
    let inside = town
        .request_data(&health, &bob, "reminders", &[HEALTH_CHECKUP])
        .await;
    assert_eq!(inside.status(), 200);
    let declaration = town.hub.declaration(id.parse().unwrap()).await.unwrap();
    let wait = (declaration.ends_at - Utc::now())
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(5)).await;
    let after = town
        .request_data(&health, &bob, "reminders", &[HEALTH_CHECKUP])
        .await;
    expect_problem(after, 403, "/problems/consent-missing").await;
    let shown: Value = town
        .get(&format!("/v1/declarations/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["state"], "ended");
}

#[tokio::test]
async fn a_renewal_takes_two_operators_too() {
    let town = Town::new().await;
    let (tanaka, suzuki) = two_operators(&town).await;
    let id = declare(&town, &tanaka, &["health-advice"], TimeDelta::hours(1)).await;
    assert_eq!(step(&town, &suzuki, &id, "confirm").await.status(), 200);
    let too_far = post(
        &town,
        &tanaka,
        &format!("/v1/operator/declarations/{id}/renewal"),
        json!({ "ends_at": Utc::now() + TimeDelta::hours(73) }),
    )
    .await;
    let p = expect_problem(too_far, 409, "/problems/declaration-refused").await;
    assert_eq!(p["reason"], "renewal-too-long");
    let new_end = Utc::now() + TimeDelta::hours(48);
    let proposed = post(
        &town,
        &tanaka,
        &format!("/v1/operator/declarations/{id}/renewal"),
        json!({ "ends_at": new_end }),
    )
    .await;
    let proposed: Value = proposed.json().await.unwrap();
    assert!(proposed["renewal"]["ends_at"].is_string(), "{proposed}");
    let own = step(&town, &tanaka, &id, "renewal/confirm").await;
    expect_problem(own, 409, "/problems/declaration-refused").await;
    let renewed = step(&town, &suzuki, &id, "renewal/confirm").await;
    let renewed: Value = renewed.json().await.unwrap();
    let ends_at: chrono::DateTime<Utc> =
        serde_json::from_value(renewed["ends_at"].clone()).unwrap();
    assert_eq!(ends_at.timestamp_millis(), new_end.timestamp_millis());
    assert!(renewed["renewal"].is_null());
}

#[tokio::test]
async fn a_declaration_with_an_unknown_service_a_bad_area_or_over_72_hours_is_refused() {
    let town = Town::new().await;
    let (tanaka, _) = two_operators(&town).await;
    let body = |services: &[&str], area: &[&str], hours: i64| {
        json!({
            "reason": "地震", "legal_basis": "appi27_1_2", "categories": [HEALTH_CHECKUP],
            "services": services, "area": area, "ends_at": Utc::now() + TimeDelta::hours(hours),
        })
    };
    let path = "/v1/operator/declarations";
    let bad_area = post(
        &town,
        &tanaka,
        path,
        body(&["health-advice"], &["5339-45"], 1),
    )
    .await;
    let p = expect_problem(bad_area, 400, "/problems/invalid-field").await;
    assert_eq!(p["field"], "area");
    let unknown = post(
        &town,
        &tanaka,
        path,
        body(&["no-such-service"], &["5339"], 1),
    )
    .await;
    expect_problem(unknown, 404, "/problems/unknown-service").await;
    let long = post(
        &town,
        &tanaka,
        path,
        body(&["health-advice"], &["5339"], 73),
    )
    .await;
    let p = expect_problem(long, 409, "/problems/declaration-refused").await;
    assert_eq!(p["reason"], "too-long");
    let mut unlisted = body(&["health-advice"], &["5339"], 1);
    unlisted["legal_basis"] = json!("consent");
    let p = expect_problem(
        post(&town, &tanaka, path, unlisted).await,
        400,
        "/problems/invalid-field",
    )
    .await;
    assert_eq!(p["field"], "legal_basis");
    assert!(town.hub.declarations(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_dual_mode_purpose_is_denied_in_normal_times_and_granted_during_a_declaration() {
    let town = Town::new().await;
    let (tanaka, suzuki) = two_operators(&town).await;
    let shelter = renkei_store::PurposeDraft {
        id: PurposeId::new("shelter").unwrap(),
        categories: [common::cat(HEALTH_CHECKUP)].into(),
        emergency_only: true,
        ..advice_draft()
    };
    town.store
        .publish_purpose(&shelter, Utc::now())
        .await
        .unwrap();
    let token = town.sign_in(town.bob).await;
    let consent = town.grant(&token, "health-advice", "shelter").await;
    let health = town.service_token(&town.health).await;
    let normal = town
        .request_data(&health, &consent.subject, "shelter", &[HEALTH_CHECKUP])
        .await;
    expect_problem(normal, 403, "/problems/not-in-emergency").await;
    // Any declaration in force will do, whichever responders it names.
    let id = declare(&town, &tanaka, &["town-mobility"], TimeDelta::hours(1)).await;
    assert_eq!(step(&town, &suzuki, &id, "confirm").await.status(), 200);
    let during = town
        .request_data(&health, &consent.subject, "shelter", &[HEALTH_CHECKUP])
        .await;
    assert_eq!(during.status(), 200);
    let grant = common::grant_claims(town.clinic.captured_grants().last().unwrap());
    assert_eq!(grant.basis, format!("consent:{}", consent.consent.id));
    assert_eq!(grant.emergency.map(|d| d.to_string()), Some(id));
}
