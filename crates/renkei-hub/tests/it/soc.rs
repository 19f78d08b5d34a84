//! Security events for the city's SOC: each trigger raises its event, every event is a
//! Security Event Token that verifies against the hub's JWKS with a JOSE library nobody here
//! wrote (`jsonwebtoken`) and whose claims validate against the JSON Schema kept in
//! `renkei-protocol/schemas/renkei-secevent/`, polls (RFC 8936) acknowledge, pushes (RFC 8935)
//! are retried after a refusal, and the incident report lists exactly what a service's
//! granted requests reached.

use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use chrono::{TimeDelta, Utc};
use renkei_hub::limits::{Rate, RateLimits, RateUnit};
use renkei_hub::soc::SocConfig;
use serde_json::{Value, json};

use crate::common::{
    HEALTH_CHECKUP, PAYMENT_HISTORY, RESIDENT_ADDRESS, SOC_TOKEN, Server, Town, TownOptions,
    Webhook,
};
use crate::emergency::{declare, step, two_operators};

const SCHEMA: &str =
    include_str!("../../../renkei-protocol/schemas/renkei-secevent/security-event-schema.json");

/// The town, its SOC configured as `configure` says (polling with the town's token).
async fn town_with(configure: impl FnOnce(&mut SocConfig)) -> Town {
    let mut options = TownOptions::default();
    configure(&mut options.soc);
    Town::with(options).await
}

/// One poll; the events it answered, verified and validated, by `jti`.
async fn poll(town: &Town, body: Value) -> (Vec<(String, Value)>, bool) {
    let response = town
        .post("/v1/soc/events")
        .bearer_auth(SOC_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    let mut events = Vec::new();
    for (jti, token) in answer["sets"].as_object().unwrap() {
        let claims = verified(town, token.as_str().unwrap()).await;
        assert_eq!(claims["jti"], jti.as_str(), "keyed by its jti");
        events.push((jti.clone(), claims));
    }
    (events, answer["moreAvailable"].as_bool().unwrap())
}

/// The claims of `token`, once its signature verifies against the published JWKS (with
/// `jsonwebtoken`) and its claims against the schema.
async fn verified(town: &Town, token: &str) -> Value {
    let jwks: jsonwebtoken::jwk::JwkSet = town
        .get("/.well-known/jwks.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("secevent+jwt"));
    let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    // A SET has no `exp` (RFC 8417 §2.2): it is checked by its signature alone.
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap()
        .claims;
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&claims)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{claims}: {errors:?}");
    assert_eq!(
        claims["aud"],
        format!("{}/v1/soc/events", town.config.issuer)
    );
    claims
}

/// Polls (waiting) until an event of type `uri` arrives, acknowledging every event seen.
async fn wait_for_event(town: &Town, uri: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    let mut ack: Vec<String> = Vec::new();
    while Instant::now() < deadline {
        let (events, _) = poll(town, json!({ "ack": ack, "maxEvents": 50 })).await;
        ack = events.iter().map(|(jti, _)| jti.clone()).collect();
        if let Some((_, claims)) = events.iter().find(|(_, c)| c["events"].get(uri).is_some()) {
            return claims["events"][uri].clone();
        }
    }
    panic!("no {uri} event within {within:?}");
}

/// Every event waiting now (without acknowledging any).
async fn waiting(town: &Town) -> Vec<Value> {
    let (events, _) = poll(
        town,
        json!({ "returnImmediately": true, "maxEvents": 1000 }),
    )
    .await;
    events.into_iter().map(|(_, c)| c).collect()
}

fn of_type<'a>(events: &'a [Value], uri: &str) -> Vec<&'a Value> {
    events.iter().filter_map(|e| e["events"].get(uri)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_asking_ten_times_its_baseline_raises_an_event_a_poll_gets_within_a_minute() {
    // A baseline of 3 residents an hour: the floor, for a service not yet learned.
    let town = town_with(|soc| soc.surge.floor = 3).await;
    let alice = town.sign_in(town.alice).await;
    let consent = town.grant(&alice, "health-advice", "advice").await;
    let service = town.service_token(&town.health).await;
    let started = Instant::now();
    for n in 1..=29 {
        let r = town
            .request_data(&service, &consent.subject, "advice", &[HEALTH_CHECKUP])
            .await;
        assert_eq!(r.status(), 200, "request {n}");
    }
    assert!(of_type(&waiting(&town).await, "urn:renkei:secevent:request-surge").is_empty());
    town.request_data(&service, &consent.subject, "advice", &[HEALTH_CHECKUP])
        .await;
    let surge = wait_for_event(
        &town,
        "urn:renkei:secevent:request-surge",
        Duration::from_secs(60),
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(
        surge,
        json!({ "service": "health-advice", "residents_last_hour": 30, "baseline_per_hour": 3 })
    );
    assert!(
        !surge.to_string().contains(&consent.subject),
        "no subject in an event"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_client_authentication_failures_raise_one_event_per_address_and_client() {
    let town = town_with(|soc| soc.failures = 3).await;
    for _ in 0..4 {
        let refused = town
            .post("/oauth/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials&client_id=health-advice&client_secret=guess")
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 400);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = waiting(&town).await;
    let failures = of_type(&events, "urn:renkei:secevent:authentication-failures");
    assert_eq!(failures.len(), 2, "{events:?}");
    assert!(
        failures
            .contains(&&json!({ "client": "health-advice", "failures": 3, "window_seconds": 300 }))
    );
    assert!(
        failures
            .contains(&&json!({ "address": "127.0.0.1", "failures": 3, "window_seconds": 300 }))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_refused_provider_assertions_raise_an_event_naming_the_provider_claimed() {
    let town = town_with(|soc| soc.failures = 2).await;
    let clinic = town.clinic.id.as_str();
    let stranger = renkei_protocol::keys::SigningKey::generate().unwrap();
    let now = Utc::now().timestamp();
    for n in 0..2 {
        // Signed with a key the clinic never registered.
        let forged = renkei_protocol::sign_jwt(
            renkei_protocol::keys::AnySigningKey::EdDsa(&stranger),
            &json!({ "iss": clinic, "sub": clinic, "aud": format!("{}/oauth/token", town.config.issuer),
                     "iat": now, "exp": now + 60, "jti": format!("forged-{n}") }),
        )
        .unwrap();
        let refused = town
            .post("/oauth/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={forged}"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 400);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = waiting(&town).await;
    let failures = of_type(&events, "urn:renkei:secevent:authentication-failures");
    assert!(
        failures.contains(&&json!({ "client": clinic, "failures": 2, "window_seconds": 300 })),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_trip_raises_one_event_per_caller_and_window() {
    let town = Town::with(TownOptions {
        limits: RateLimits {
            data_requests_per_client: Rate::new(1, RateUnit::Hour, 2),
            ..RateLimits::GENEROUS
        },
        ..TownOptions::default()
    })
    .await;
    let alice = town.sign_in(town.alice).await;
    let consent = town.grant(&alice, "health-advice", "advice").await;
    let service = town.service_token(&town.health).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let r = town
            .request_data(&service, &consent.subject, "advice", &[HEALTH_CHECKUP])
            .await;
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 429, 429, 429]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = waiting(&town).await;
    assert_eq!(
        of_type(&events, "urn:renkei:secevent:rate-limited"),
        [&json!({ "limit": "data-requests", "client": "health-advice", "window_seconds": 300 })]
    );
}

/// A provider that refuses every grant with `problem` (as the provider kit answers).
#[expect(
    clippy::disallowed_methods,
    reason = "a refusing provider is another party's server, not the hub's"
)]
async fn refusing_provider(problem: &'static str) -> Server {
    let router = Router::new().route(
        "/renkei/v1/fetch",
        post(move || async move {
            (
                StatusCode::UNAUTHORIZED,
                [("content-type", "application/problem+json")],
                json!({ "type": format!("/problems/{problem}"), "title": problem }).to_string(),
            )
        }),
    );
    Server::start(router).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_refusing_a_grant_as_replayed_or_badly_signed_raises_its_event() {
    let town = Town::new().await;
    let alice = town.sign_in(town.alice).await;
    let consent = town.grant(&alice, "health-advice", "advice").await;
    let service = town.service_token(&town.health).await;
    for (problem, uri) in [
        ("grant-replayed", "urn:renkei:secevent:grant-replayed"),
        (
            "grant-bad-signature",
            "urn:renkei:secevent:grant-bad-signature",
        ),
    ] {
        let server = refusing_provider(problem).await;
        let mut clinic = town.store.provider(&town.clinic.id).await.unwrap().unwrap();
        clinic.connection = renkei_domain::ProviderConnection::Inbound {
            endpoint: server.url.clone(),
        };
        town.store.put_provider(&clinic).await.unwrap();
        town.request_data(&service, &consent.subject, "advice", &[HEALTH_CHECKUP])
            .await;
        let event = wait_for_event(&town, uri, Duration::from_secs(10)).await;
        assert_eq!(
            event,
            json!({ "provider": town.clinic.id.as_str(), "service": "health-advice" })
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotation_raises_an_event_naming_the_new_key() {
    let town = Town::new().await;
    renkei_hub::signing_keys::rotate(
        town.store.as_ref(),
        &town.config.kek,
        Utc::now(),
        TimeDelta::zero(),
    )
    .await
    .unwrap();
    town.hub.reload_signing_keys().await;
    let jwks = town.hub.keys().jwks();
    let event = wait_for_event(
        &town,
        "urn:renkei:secevent:key-rotated",
        Duration::from_secs(5),
    )
    .await;
    let kid = event["kid"].as_str().unwrap();
    assert!(
        jwks.keys
            .iter()
            .any(|k| k.common.key_id.as_deref() == Some(kid))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declaring_confirming_and_ending_an_emergency_each_raise_an_event() {
    let town = Town::new().await;
    let (tanaka, suzuki) = two_operators(&town).await;
    let id = declare(&town, &tanaka, &["health-advice"], TimeDelta::hours(1)).await;
    assert_eq!(step(&town, &suzuki, &id, "confirm").await.status(), 200);
    assert_eq!(step(&town, &tanaka, &id, "end").await.status(), 200);
    let events = waiting(&town).await;
    assert_eq!(
        of_type(&events, "urn:renkei:secevent:emergency-declared"),
        [&json!({ "declaration": id, "legal_basis": "disaster_act49_11" })]
    );
    assert_eq!(
        of_type(&events, "urn:renkei:secevent:emergency-confirmed"),
        [&json!({ "declaration": id })]
    );
    assert_eq!(
        of_type(&events, "urn:renkei:secevent:emergency-ended"),
        [&json!({ "declaration": id })]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_the_log_no_longer_extends_raises_a_consistency_event() {
    let town = Town::new().await;
    let alice = town.sign_in(town.alice).await;
    town.grant(&alice, "health-advice", "advice").await;
    // Wait for a checkpoint, then rewrite its root beneath the hub, as whoever holds the
    // database could.
    let signed = loop {
        if let Some(c) = town.store.latest_checkpoint().await.unwrap()
            && c.size > 0
        {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", town.db_path.display()))
        .await
        .unwrap();
    sqlx::raw_sql("DROP TRIGGER log_checkpoints_no_update")
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("UPDATE log_checkpoints SET root = zeroblob(32) WHERE size = $1")
        .bind(i64::try_from(signed.size).unwrap())
        .execute(&db)
        .await
        .unwrap();
    // Something new to integrate.
    town.grant(&alice, "town-mobility", "rides").await;
    let event = wait_for_event(
        &town,
        "urn:renkei:secevent:log-inconsistent",
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(event["checkpoint_size"], signed.size);
    assert!(event["tree_size"].as_u64().unwrap() > signed.size);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_with_ack_removes_the_acknowledged_events_and_says_when_more_wait() {
    let town = Town::new().await;
    let (tanaka, _) = two_operators(&town).await;
    for _ in 0..3 {
        declare(&town, &tanaka, &["health-advice"], TimeDelta::hours(1)).await;
    }
    let (first, more) = poll(&town, json!({ "maxEvents": 2, "returnImmediately": true })).await;
    assert_eq!(first.len(), 2);
    assert!(more);
    let acked: Vec<&String> = first.iter().map(|(jti, _)| jti).collect();
    let (rest, more) = poll(
        &town,
        json!({ "maxEvents": 10, "returnImmediately": true, "ack": [acked[0]],
                "setErrs": { acked[1].as_str(): { "err": "invalid_request", "description": "no" } } }),
    )
    .await;
    assert!(!more);
    assert_eq!(rest.len(), 1);
    assert!(!acked.contains(&&rest[0].0), "acknowledged events are gone");
    let (none, _) = poll(&town, json!({ "maxEvents": 0, "ack": [rest[0].0] })).await;
    assert!(none.is_empty());
    assert!(waiting(&town).await.is_empty());
    // A poll without the SOC's token is refused.
    let anonymous = town
        .post("/v1/soc/events")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_pushed_to_the_socs_receiver_and_retried_after_a_refusal() {
    let receiver = Webhook::start().await;
    receiver
        .fail_next
        .store(1, std::sync::atomic::Ordering::SeqCst);
    let url = receiver.url.clone();
    let town = town_with(|soc| soc.push_url = Some(url.parse().unwrap())).await;
    let (tanaka, _) = two_operators(&town).await;
    declare(&town, &tanaka, &["health-advice"], TimeDelta::hours(1)).await;
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 2, "a 503, then a 202");
    assert_eq!((got[0].answered, got[1].answered), (503, 202));
    assert_eq!(got[0].body, got[1].body, "the same event again");
    assert_eq!(
        got[1].content_type.as_deref(),
        Some("application/secevent+jwt")
    );
    let claims = verified(&town, &got[1].body).await;
    assert!(
        claims["events"]
            .get("urn:renkei:secevent:emergency-declared")
            .is_some()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        waiting(&town).await.is_empty(),
        "a pushed event is acknowledged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_incident_report_lists_exactly_the_residents_and_categories_granted_in_the_window() {
    let town = Town::new().await;
    let operator = town.operator_token().await;
    let alice = town.sign_in(town.alice).await;
    let bob = town.sign_in(town.bob).await;
    let a = town.grant(&alice, "health-advice", "advice").await;
    let b = town.grant(&bob, "health-advice", "advice").await;
    let health = town.service_token(&town.health).await;
    // Before the window: Bob's checkup.
    town.request_data(&health, &b.subject, "advice", &[HEALTH_CHECKUP])
        .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let from = Utc::now();
    let granted = town
        .request_data(
            &health,
            &a.subject,
            "advice",
            &[HEALTH_CHECKUP, PAYMENT_HISTORY],
        )
        .await;
    assert_eq!(granted.status(), 200);
    // Denied (outside her consent): released nothing.
    let denied = town
        .request_data(&health, &a.subject, "advice", &[RESIDENT_ADDRESS])
        .await;
    assert_eq!(denied.status(), 403);
    // Another service's request is not this service's incident.
    let m = town.grant(&bob, "town-mobility", "rides").await;
    let mobility = town.service_token(&town.mobility).await;
    town.request_data(&mobility, &m.subject, "rides", &[PAYMENT_HISTORY])
        .await;
    let to = Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    // After the window: Bob's again.
    town.request_data(&health, &b.subject, "advice", &[PAYMENT_HISTORY])
        .await;

    let url = reqwest::Url::parse_with_params(
        &town.url("/v1/operator/incidents/report"),
        [
            ("service", "health-advice".to_owned()),
            ("from", from.to_rfc3339()),
            ("to", to.to_rfc3339()),
        ],
    )
    .unwrap();
    let report: Value = town
        .http
        .get(url)
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        report["residents"],
        json!([{
            "resident": town.alice.as_uuid(),
            "categories": [HEALTH_CHECKUP, PAYMENT_HISTORY],
            "requests": 1,
        }])
    );
    assert_eq!(
        report["categories"],
        json!([HEALTH_CHECKUP, PAYMENT_HISTORY])
    );
}
