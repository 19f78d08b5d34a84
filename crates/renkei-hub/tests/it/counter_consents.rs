//! Counter consents: a provider records a consent a resident gave at its counter, naming
//! them by their code at that provider; the resident sees it (channel `counter`, the staff
//! member, the form) and revokes it like any other, and the service's next request is denied.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Town, expect_problem};
use crate::provider_sync::{alice_code, provider_token, register_key};

async fn record(town: &Town, token: &str, body: &Value) -> reqwest::Response {
    town.post("/v1/provider/consents")
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

fn form(code: &str, service: &str, purpose: &str, form: &str) -> Value {
    json!({
        "subject": code, "service": service, "purpose": purpose,
        "staff_id": "N-0042", "form_reference": form,
    })
}

#[tokio::test]
async fn a_counter_consent_is_seen_revoked_and_then_no_data_is_released() {
    let town = Town::new().await;
    let key = register_key(&town, &town.clinic).await;
    let clinic = provider_token(&town, &key, &town.clinic).await;
    let code = alice_code(&town, &town.clinic).await;
    let body = form(&code, "health-advice", "advice", "F-2026-0001");

    let recorded = record(&town, &clinic, &body).await;
    assert_eq!(recorded.status(), 201);
    let recorded: Value = recorded.json().await.unwrap();
    assert_eq!(recorded["form_reference"], "F-2026-0001");
    assert!(
        recorded.get("receipt").is_none() && recorded.get("subject").is_none(),
        "the provider learns neither the hub's id nor the service's subject: {recorded}"
    );
    // A retry of the same form is answered with the same consent, not a second one.
    let again = record(&town, &clinic, &body).await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["consent_id"], recorded["consent_id"]);

    // The service hears of it as of any consent.
    let announced = town.webhook.wait_for(1, Duration::from_secs(3)).await;
    assert_eq!(announced.len(), 1, "the counter consent was not announced");

    let alice = town.sign_in(town.alice).await;
    let consents = town.consents(&alice).await;
    let counter = consents
        .iter()
        .find(|c| c.id == recorded["consent_id"].as_str().unwrap())
        .expect("Alice sees the counter consent");
    assert_eq!(counter.given_via, "counter");
    assert_eq!(
        counter.given_by,
        json!({ "kind": "provider_staff", "provider": "clinic", "staff_id": "N-0042" })
    );
    assert_eq!(counter.form_reference.as_deref(), Some("F-2026-0001"));
    assert_eq!(counter.state, "active");
    // Its signed receipt is hers, as for any consent.
    let receipt = town
        .get(&format!("/v1/me/consents/{}/receipt", counter.id))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(receipt.status(), 200);

    let service = town.service_token(&town.health).await;
    let subject = town.hub.keys().subject(&town.health.sector, town.alice);
    let granted = town
        .request_data(&service, subject.as_str(), "advice", &["health.checkup"])
        .await;
    assert_eq!(
        granted.status(),
        200,
        "the counter consent covers the request"
    );

    assert_eq!(town.revoke(&alice, &counter.id).await.status(), 200);
    let denied = town
        .request_data(&service, subject.as_str(), "advice", &["health.checkup"])
        .await;
    expect_problem(denied, 403, "/problems/consent-revoked").await;
}

#[tokio::test]
async fn a_provider_records_no_consent_outside_its_categories_nor_for_an_unknown_code() {
    let town = Town::new().await;
    let alice = town.sign_in(town.alice).await;
    let before = town.consents(&alice).await.len();

    // The registry serves neither category of health-advice's `advice`.
    let registry_key = register_key(&town, &town.registry).await;
    let registry = provider_token(&town, &registry_key, &town.registry).await;
    let code = alice_code(&town, &town.registry).await;
    let refused = record(
        &town,
        &registry,
        &form(&code, "health-advice", "advice", "R-1"),
    )
    .await;
    expect_problem(refused, 403, "/problems/forbidden").await;

    // The payment provider serves payment history, but the check-up results `advice` also
    // draws on are special-care data it does not hold: consent to them is the clinic's.
    let pay_key = register_key(&town, &town.payments).await;
    let payments = provider_token(&town, &pay_key, &town.payments).await;
    let code = alice_code(&town, &town.payments).await;
    let refused = record(
        &town,
        &payments,
        &form(&code, "health-advice", "advice", "P-1"),
    )
    .await;
    let body = expect_problem(refused, 403, "/problems/forbidden").await;
    assert!(
        body["detail"].as_str().unwrap().contains("special-care"),
        "{body}"
    );
    // It does take consent to a purpose of its own data with no special-care category.
    let rides = record(
        &town,
        &payments,
        &form(&code, "town-mobility", "rides", "P-2"),
    )
    .await;
    assert_eq!(rides.status(), 201);

    // A code the hub never gave this provider names no one: not another provider's code
    // for Alice, not a code of the right shape made up.
    let clinic_key = register_key(&town, &town.clinic).await;
    let clinic = provider_token(&town, &clinic_key, &town.clinic).await;
    let registry_code = alice_code(&town, &town.registry).await;
    for unknown in [
        registry_code.as_str(),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let refused = record(
            &town,
            &clinic,
            &form(unknown, "health-advice", "advice", "K-1"),
        )
        .await;
        expect_problem(refused, 404, "/problems/not-found").await;
    }
    // Nor does a service's token record anything.
    let service = town.service_token(&town.health).await;
    let code = alice_code(&town, &town.clinic).await;
    let refused = record(
        &town,
        &service,
        &form(&code, "health-advice", "advice", "K-2"),
    )
    .await;
    assert_eq!(refused.status(), 401);

    assert_eq!(
        town.consents(&alice).await.len(),
        before + 1,
        "only the rides"
    );
}
