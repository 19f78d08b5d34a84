//! Residents told afterwards: a notice of what was released under a declared emergency
//! appears once the declaration is over (ended early, or at its end time), not before, and
//! exactly once; the services a resident chose hear of it by webhook.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use renkei_protocol::event::notice::verify_notice_event;
use serde_json::{Value, json};

use crate::common::{HEALTH_CHECKUP, Town};
use crate::emergency::{declare, known_subject, step, two_operators};

async fn my_notices(town: &Town, token: &str) -> Vec<Value> {
    let response = town
        .get("/v1/me/notices")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Waits (bounded) until the resident has `n` notices; returns them.
async fn notices_within(town: &Town, token: &str, n: usize, within: Duration) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let notices = my_notices(town, token).await;
        if notices.len() >= n || tokio::time::Instant::now() >= deadline {
            return notices;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_notice_of_each_release_appears_once_a_declaration_is_ended_and_not_before() {
    let town = Town::new().await;
    let (tanaka, suzuki) = two_operators(&town).await;
    let bob = known_subject(&town, "health", town.bob).await;
    let health = town.service_token(&town.health).await;
    let id = declare(&town, &tanaka, &["health-advice"], TimeDelta::hours(1)).await;
    assert_eq!(step(&town, &suzuki, &id, "confirm").await.status(), 200);
    for _ in 0..2 {
        let granted = town
            .request_data(&health, &bob, "reminders", &[HEALTH_CHECKUP])
            .await;
        assert_eq!(granted.status(), 200);
    }
    let token = town.sign_in(town.bob).await;
    // Several rounds of the notifier pass while the declaration is in force: nothing.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(my_notices(&town, &token).await.is_empty());

    assert_eq!(step(&town, &tanaka, &id, "end").await.status(), 200);
    let notices = notices_within(&town, &token, 1, Duration::from_secs(3)).await;
    assert_eq!(notices.len(), 1, "{notices:?}");
    let notice = &notices[0];
    assert_eq!(notice["declaration"], id.as_str());
    assert_eq!(notice["reason"], "線状降水帯による大雨");
    assert_eq!(notice["legal_basis"], "disaster_act49_11");
    let releases = notice["releases"].as_array().unwrap();
    assert_eq!(releases.len(), 2, "both releases, in one notice");
    assert!(
        releases
            .iter()
            .all(|r| r["service"] == "health-advice" && r["categories"] == json!([HEALTH_CHECKUP]))
    );
    // Each release is an entry of Bob's history, with the declaration as its basis.
    let records: Value = town
        .get("/v1/me/access-records")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let seqs: Vec<u64> = releases
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    for seq in &seqs {
        let record = records["records"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["seq"] == *seq)
            .unwrap_or_else(|| panic!("no record #{seq} in {records}"));
        assert_eq!(record["basis"]["declaration"], id.as_str());
    }
    // Exactly once: more rounds, and another run by hand, add nothing.
    town.hub.write_due_notices(Utc::now()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(my_notices(&town, &token).await.len(), 1);
    // Alice had nothing released: no notice.
    let alice = town.sign_in(town.alice).await;
    assert!(my_notices(&town, &alice).await.is_empty());
}

#[tokio::test]
async fn a_notice_appears_after_a_declaration_ends_by_itself_at_its_end_time() {
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
    let granted = town
        .request_data(&health, &bob, "reminders", &[HEALTH_CHECKUP])
        .await;
    assert_eq!(granted.status(), 200);
    let token = town.sign_in(town.bob).await;
    assert!(
        my_notices(&town, &token).await.is_empty(),
        "not before the end"
    );
    let declaration = town.hub.declaration(id.parse().unwrap()).await.unwrap();
    let grace = town.hub.config().notice_grace;
    // Before the end and its grace have passed, a round writes nothing.
    let early = declaration.ends_at - TimeDelta::milliseconds(1);
    town.hub.write_due_notices(early).await.unwrap();
    assert!(my_notices(&town, &token).await.is_empty());

    // Nobody ends it: it ends at its end time, and the notifier writes the notice.
    let wait = (declaration.ends_at - Utc::now())
        .to_std()
        .unwrap_or_default()
        + grace;
    let notices = notices_within(&town, &token, 1, wait + Duration::from_secs(3)).await;
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0]["declaration"], id.as_str());
    assert_eq!(notices[0]["releases"].as_array().unwrap().len(), 1);
    let shown: Value = town
        .get(&format!("/v1/declarations/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["state"], "ended");
    assert_eq!(
        shown["ended_at"],
        Value::Null,
        "ended by time, not by a step"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(my_notices(&town, &token).await.len(), 1, "exactly once");
}

#[tokio::test]
async fn a_service_the_resident_chose_hears_of_the_notice_by_a_signed_event() {
    let town = Town::new().await;
    let (tanaka, suzuki) = two_operators(&town).await;
    let bob = known_subject(&town, "health", town.bob).await;
    let health = town.service_token(&town.health).await;
    let token = town.sign_in(town.bob).await;
    let chose = town
        .post("/v1/me/notice-channels")
        .bearer_auth(&token)
        .json(&json!({ "service": "health-advice", "on": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(chose.status(), 204);
    // Alice chose nothing: her release is told in the portal only.
    let alice = known_subject(&town, "health", town.alice).await;
    let id = declare(&town, &tanaka, &["health-advice"], TimeDelta::hours(1)).await;
    assert_eq!(step(&town, &suzuki, &id, "confirm").await.status(), 200);
    for subject in [&bob, &alice] {
        let granted = town
            .request_data(&health, subject, "reminders", &[HEALTH_CHECKUP])
            .await;
        assert_eq!(granted.status(), 200);
    }
    assert_eq!(step(&town, &tanaka, &id, "end").await.status(), 200);
    let jwks = town.hub.keys().jwks();
    let notices_heard = |deliveries: Vec<crate::common::Delivery>| {
        deliveries
            .into_iter()
            .filter_map(|d| {
                assert_eq!(d.content_type.as_deref(), Some("application/secevent+jwt"));
                verify_notice_event(&d.body, &jwks, &town.health.id).ok()
            })
            .collect::<Vec<_>>()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut heard = notices_heard(town.webhook.received());
    while heard.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        heard = notices_heard(town.webhook.received());
    }
    assert_eq!(heard.len(), 1, "{heard:?}");
    let notice = &heard[0].events.notice;
    assert_eq!(notice.subject.as_str(), bob);
    assert_eq!(notice.declaration.to_string(), id);
    assert_eq!(notice.releases.len(), 1);
    assert!(notice.notice_url.ends_with("/portal/notices"));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        notices_heard(town.webhook.received()).len(),
        1,
        "one event, once"
    );
}
