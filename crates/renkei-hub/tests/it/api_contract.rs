//! The API contract: problem+json with stable types (and nothing changed by a rejected
//! request), the OpenAPI document, demo mode, and durability across a restart.

// Tests may unwrap and panic (clippy.toml allows it in #[test] functions; this covers helpers).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};

use axum::http::header;
use renkei_hub::limits::{Rate, RateUnit};
use renkei_hub::problem::{Lang, ProblemKind};
use renkei_hub::routes::{Access, Proxies};
use renkei_protocol::receipt::verify_receipt;
use serde_json::{Value, json};

use crate::common;
use crate::common::{HEALTH_CHECKUP, PAYMENT_HISTORY, Town, TownOptions, expect_problem, problem};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_problem_json_with_stable_types() {
    let town = Town::new().await;
    let token = town.service_token(&town.health).await;
    let alice = town.sign_in(town.alice).await;
    let bob = town.sign_in(town.bob).await;
    let granted = town.grant(&alice, "health-advice", "advice").await;
    // Bob is known to the health sector (he said yes to reminders), but not to advice.
    let bobs = town.grant(&bob, "health-advice", "reminders").await;
    let mut kinds = BTreeSet::new();

    // --- Things a resident can get wrong; none of them changes Alice's consents. ---
    let consents_before = serde_json::to_value(town.consents(&alice).await).unwrap();
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (
            town.post("/v1/me/consents")
                .bearer_auth(&alice)
                .header(header::CONTENT_TYPE, "application/json")
                .body("{\"service\": \"health-advice\", \"purpose\": "),
            400,
            "/problems/malformed-request",
        ),
        (
            town.post("/v1/me/consents")
                .bearer_auth(&alice)
                .header(header::CONTENT_TYPE, "text/plain")
                .body(r#"{"service":"health-advice","purpose":"advice"}"#),
            415,
            "/problems/malformed-request",
        ),
        (
            town.post("/v1/me/consents").bearer_auth(&alice).json(
                &json!({ "service": "health-advice", "purpose": "advice", "everything": true }),
            ),
            400,
            "/problems/malformed-request",
        ),
        (
            town.post("/v1/me/consents")
                .bearer_auth(&alice)
                .json(&json!({ "service": "health-advice", "purpose": "advice", "valid_days": 0 })),
            400,
            "/problems/malformed-request",
        ),
        (
            town.post("/v1/me/consents")
                .bearer_auth(&alice)
                .json(&json!({ "service": "no-such-service", "purpose": "advice" })),
            404,
            "/problems/unknown-service",
        ),
        (
            town.post("/v1/me/consents")
                .bearer_auth(&alice)
                .json(&json!({ "service": "health-advice", "purpose": "no-such-purpose" })),
            404,
            "/problems/unknown-purpose",
        ),
        (
            town.post("/v1/me/consents")
                .bearer_auth(&alice)
                .json(&json!({ "service": "health-advice", "purpose": "advice" })),
            409,
            "/problems/consent-already-active",
        ),
        (
            town.post("/v1/me/consents")
                .json(&json!({ "service": "health-advice", "purpose": "rides" })),
            401,
            "/problems/unauthorized",
        ),
        (
            // A service's token is not a resident's.
            town.post("/v1/me/consents")
                .bearer_auth(&token)
                .json(&json!({ "service": "health-advice", "purpose": "reminders" })),
            401,
            "/problems/unauthorized",
        ),
        (
            town.post(&format!("/v1/me/consents/{}/revoke", granted.consent.id))
                .bearer_auth("not.a.token"),
            401,
            "/problems/unauthorized",
        ),
        (
            town.post("/v1/me/consents/not-a-uuid/revoke")
                .bearer_auth(&alice),
            400,
            "/problems/malformed-request",
        ),
        (
            town.post(&format!("/v1/me/consents/{}/revoke", uuid::Uuid::new_v4()))
                .bearer_auth(&alice),
            404,
            "/problems/not-found",
        ),
        (
            town.get("/v1/me/access-records?limit=0")
                .bearer_auth(&alice),
            400,
            "/problems/malformed-request",
        ),
    ];
    for (request, status, kind) in cases {
        let body = expect_problem(request.send().await.unwrap(), status, kind).await;
        if kind == "/problems/consent-already-active" {
            assert_eq!(body["consent_id"], granted.consent.id.as_str());
        }
        kinds.insert(kind.to_owned());
    }
    assert_eq!(
        serde_json::to_value(town.consents(&alice).await).unwrap(),
        consents_before,
        "a rejected request changed Alice's consents"
    );

    // --- Things a service can get wrong before any decision: not logged, nothing fetched. ---
    let log_before = town.access_record_count().await;
    let records_before = town.access_records(&alice).await;
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (
            town.post("/v1/data-requests")
                .bearer_auth(&token)
                .header(header::CONTENT_TYPE, "application/json")
                .body("{\"subject\": "),
            400,
            "/problems/malformed-request",
        ),
        (
            town.post("/v1/data-requests")
                .bearer_auth(&token)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body("subject=x"),
            415,
            "/problems/malformed-request",
        ),
        (
            town.post("/v1/data-requests")
                .bearer_auth(&token)
                .json(&json!({ "subject": granted.subject, "purpose": "advice", "categories": ["health.genome"] })),
            404,
            "/problems/unknown-category",
        ),
        (
            town.post("/v1/data-requests")
                .bearer_auth(&token)
                .json(&json!({ "subject": granted.subject, "purpose": "advice", "categories": [] })),
            400,
            "/problems/malformed-request",
        ),
        (
            town.post("/v1/data-requests")
                .bearer_auth(&token)
                .json(&json!({ "subject": granted.subject, "purpose": "advice", "categories": ["Health Checkup"] })),
            400,
            "/problems/malformed-request",
        ),
        (
            town.post("/v1/data-requests")
                .json(&json!({ "subject": granted.subject, "purpose": "advice", "categories": [HEALTH_CHECKUP] })),
            401,
            "/problems/unauthorized",
        ),
        (
            town.post("/v1/data-requests")
                .bearer_auth(format!("{token}x"))
                .json(&json!({ "subject": granted.subject, "purpose": "advice", "categories": [HEALTH_CHECKUP] })),
            401,
            "/problems/unauthorized",
        ),
        (
            // A resident's token is not a service's.
            town.post("/v1/data-requests")
                .bearer_auth(&alice)
                .json(&json!({ "subject": granted.subject, "purpose": "advice", "categories": [HEALTH_CHECKUP] })),
            401,
            "/problems/unauthorized",
        ),
    ];
    for (request, status, kind) in cases {
        expect_problem(request.send().await.unwrap(), status, kind).await;
        kinds.insert(kind.to_owned());
    }
    assert_eq!(town.access_record_count().await, log_before);
    assert_eq!(town.access_records(&alice).await, records_before);
    for p in [&town.clinic, &town.payments, &town.registry] {
        assert!(p.captured_grants().is_empty(), "{} got a grant", p.id);
    }

    // --- Decisions that deny: each is answered and recorded, nothing is fetched. ---
    let response = town
        .request_data(&token, &bobs.subject, "advice", &[HEALTH_CHECKUP])
        .await;
    expect_problem(response, 403, "/problems/consent-missing").await;
    let response = town
        .request_data(
            &token,
            &granted.subject,
            "no-such-purpose",
            &[HEALTH_CHECKUP],
        )
        .await;
    expect_problem(response, 404, "/problems/unknown-purpose").await;
    assert_eq!(town.revoke(&alice, &granted.consent.id).await.status(), 200);
    let response = town
        .request_data(&token, &granted.subject, "advice", &[HEALTH_CHECKUP])
        .await;
    expect_problem(response, 403, "/problems/consent-revoked").await;
    // Revoking twice is a conflict, and changes nothing.
    let revoked = serde_json::to_value(town.consents(&alice).await).unwrap();
    let response = town.revoke(&alice, &granted.consent.id).await;
    expect_problem(response, 409, "/problems/consent-not-active").await;
    assert_eq!(
        serde_json::to_value(town.consents(&alice).await).unwrap(),
        revoked
    );
    for kind in [
        "/problems/consent-missing",
        "/problems/unknown-purpose",
        "/problems/consent-revoked",
        "/problems/consent-not-active",
    ] {
        kinds.insert(kind.to_owned());
    }
    assert_eq!(town.access_record_count().await, log_before + 3);
    let reasons: Vec<Value> = town
        .access_records(&alice)
        .await
        .iter()
        .map(|r| r["reason"].clone())
        .collect();
    assert_eq!(
        reasons,
        [json!("unknown-purpose"), json!("consent-revoked")]
    );
    for p in [&town.clinic, &town.payments, &town.registry] {
        assert!(p.captured_grants().is_empty(), "{} got a grant", p.id);
    }

    // --- The token endpoint: RFC 6749 §5.2 errors, not problems (see
    // the_oauth_endpoints_answer_errors_as_rfc_6749_json_...), and never the secret. ---
    let form = |body: String| {
        town.post("/oauth/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
    };
    let wrong_secret = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    for body in [
        format!(
            "grant_type=client_credentials&client_id=health-advice&client_secret={wrong_secret}"
        ),
        format!("grant_type=client_credentials&client_id=nobody&client_secret={wrong_secret}"),
        // One service's secret does not open another.
        format!(
            "grant_type=client_credentials&client_id=health-advice&client_secret={}",
            town.mobility.secret
        ),
        "grant_type=client_credentials".to_owned(),
    ] {
        let response = form(body).send().await.unwrap();
        let raw = response.text().await.unwrap();
        assert!(!raw.contains(wrong_secret) && !raw.contains(&town.mobility.secret));
        let body: Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(body["error"], "invalid_client", "{body}");
    }
    let response = town
        .post("/oauth/token")
        .basic_auth("health-advice", Some(wrong_secret))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(oauth_error(response).await.2, "invalid_client");
    let response = form(format!(
        "grant_type=password&client_id=health-advice&client_secret={}",
        town.health.secret
    ))
    .send()
    .await
    .unwrap();
    assert_eq!(oauth_error(response).await.2, "unsupported_grant_type");
    let response = town
        .post("/oauth/token")
        .json(&json!({ "grant_type": "client_credentials" }))
        .send()
        .await
        .unwrap();
    let (status, _, error) = oauth_error(response).await;
    assert_eq!((status, error.as_str()), (400, "invalid_request"));

    // --- Routes that do not exist, or do not take this method. ---
    let response = town.get("/v1/nothing-here").send().await.unwrap();
    expect_problem(response, 404, "/problems/not-found").await;
    let response = town.get("/v1/data-requests").send().await.unwrap();
    let (status, _) = problem(response).await;
    assert_eq!(status, 405);
    let response = town.get("/problems/no-such-problem").send().await.unwrap();
    expect_problem(response, 404, "/problems/not-found").await;
    let response = town
        .post("/demo/sign-in")
        .json(&json!({ "resident": uuid::Uuid::new_v4() }))
        .send()
        .await
        .unwrap();
    expect_problem(response, 404, "/problems/not-found").await;
    kinds.insert("/problems/not-found".to_owned());

    // --- Every type answered is described at its own URI. ---
    for kind in &kinds {
        let code = kind.strip_prefix("/problems/").unwrap_or_default();
        assert!(
            ProblemKind::from_code(code).is_some(),
            "{kind} is no ProblemKind"
        );
        let response = town.get(kind).send().await.unwrap();
        assert_eq!(response.status(), 200, "{kind} is not described");
        let described: Value = response.json().await.unwrap();
        assert_eq!(described["type"], kind.as_str());
        assert!(
            described["description"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_problem_kind_is_described_at_its_own_uri_in_japanese_and_english() {
    let town = Town::new().await;
    for kind in ProblemKind::ALL {
        let uri = format!("/problems/{}", kind.code());
        let response = town.get(&uri).send().await.unwrap();
        assert_eq!(response.status(), 200, "{uri} is not described");
        let described: Value = response.json().await.unwrap();
        assert_eq!(described["type"], uri.as_str());
        assert_eq!(described["title"], kind.title());
        assert_eq!(described["status"], kind.status().as_u16());
        assert_eq!(described["description"], kind.description(Lang::En));
        assert_eq!(described["description_ja"], kind.description(Lang::Ja));
    }
    // The document offers exactly these codes for the page's parameter.
    let doc: Value = town
        .get("/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let offered: BTreeSet<&str> = doc["components"]["schemas"]["ProblemKind"]["enum"]
        .as_array()
        .expect("the document lists the problem kinds")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let kinds: BTreeSet<&str> = ProblemKind::ALL.iter().map(|k| k.code()).collect();
    assert_eq!(offered, kinds);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_service_is_shut_out_even_with_a_token_it_already_holds() {
    let town = Town::new().await;
    let token = town.service_token(&town.health).await;
    let alice = town.sign_in(town.alice).await;
    let granted = town.grant(&alice, "health-advice", "advice").await;
    town.data(&token, &granted.subject, "advice", &[HEALTH_CHECKUP])
        .await;

    // An operator suspends the service.
    town.store
        .set_service_status(&town.health.id, renkei_domain::ServiceStatus::Suspended)
        .await
        .unwrap();

    // Its token, still unexpired, gets nothing, and the refusal is recorded.
    let response = town
        .request_data(&token, &granted.subject, "advice", &[HEALTH_CHECKUP])
        .await;
    expect_problem(response, 403, "/problems/service-not-approved").await;
    assert_eq!(town.clinic.captured_grants().len(), 1);
    let records = town.access_records(&alice).await;
    assert_eq!(records.last().unwrap()["reason"], "service-not-approved");
    // It cannot get a new token, and residents cannot say yes to it.
    let response = town.service_token_basic(&town.health).await;
    assert_eq!(oauth_error(response).await.2, "invalid_client");
    let response = town.try_grant(&alice, "health-advice", "reminders").await;
    expect_problem(response, 403, "/problems/service-not-approved").await;
    // Alice can still withdraw her consent from it.
    assert_eq!(town.revoke(&alice, &granted.consent.id).await.status(), 200);

    // Other services are not affected.
    let bob = town.sign_in(town.bob).await;
    let rides = town.grant(&bob, "town-mobility", "rides").await;
    let mobility = town.service_token(&town.mobility).await;
    let answer = town
        .data(&mobility, &rides.subject, "rides", &[PAYMENT_HISTORY])
        .await;
    assert!(answer.complete);
}

/// Routes the hub has always served (its published API): the route table must still hold them.
const KNOWN_ROUTES: &[(&str, &[&str])] = &[
    ("/healthz", &["get"]),
    ("/metrics", &["get"]),
    ("/v1/soc/events", &["post"]),
    ("/v1/operator/incidents/report", &["get"]),
    ("/openapi.json", &["get"]),
    ("/.well-known/jwks.json", &["get"]),
    ("/problems/{code}", &["get"]),
    ("/oauth/token", &["post"]),
    ("/v1/categories", &["get"]),
    ("/v1/services", &["get"]),
    ("/v1/data-requests", &["post"]),
    ("/v1/me/provider-codes", &["get"]),
    ("/v1/provider/locators/sync", &["post"]),
    ("/v1/provider/locators", &["get"]),
    ("/v1/me/consents", &["get", "post"]),
    ("/v1/me/consents/{id}", &["get"]),
    ("/v1/me/consents/{id}/receipt", &["get"]),
    ("/v1/me/consents/{id}/revoke", &["post"]),
    ("/v1/me/access-records", &["get"]),
    ("/demo/sign-in", &["post"]),
];

/// Every route of the hub's router, as its route table lists them, with its methods, and
/// axum's `{*rest}` written the OpenAPI way, `{rest}`.
fn router_routes(hub: &renkei_hub::Hub) -> BTreeMap<String, BTreeSet<String>> {
    let mut routes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for row in renkei_hub::routed(hub.clone()).1 {
        routes
            .entry(row.path.replace("{*", "{"))
            .or_default()
            .insert(row.method.as_str().to_lowercase());
    }
    routes
}

/// The OpenAPI security scheme an operation declares for callers of `access`: the bearer
/// token it takes, or none (public, or OAuth client credentials in the form).
fn security_scheme(access: Access) -> Option<&'static str> {
    match access {
        Access::Public | Access::DemoOnly | Access::Client => None,
        Access::ServiceToken => Some("service"),
        Access::UserToken => Some("user"),
        Access::Resident(_) | Access::ResidentOrSignIn(_) | Access::OperatorIdentity => {
            Some("resident")
        }
        Access::Operator | Access::Counter => Some("operator"),
        Access::Provider => Some("provider"),
        Access::Scraper => Some("scraper"),
        Access::Soc => Some("soc"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_describes_every_route() {
    let town = Town::new().await;
    let routes = router_routes(&town.hub);
    for (path, methods) in KNOWN_ROUTES {
        let expected: BTreeSet<String> = methods.iter().map(|m| (*m).to_owned()).collect();
        assert_eq!(
            routes.get(*path),
            Some(&expected),
            "reading the router: {path}"
        );
    }

    let response = town.get("/openapi.json").send().await.unwrap();
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.unwrap();
    let version = doc["openapi"].as_str().unwrap();
    assert!(version.starts_with("3.1."), "OpenAPI {version}");
    assert!(doc["info"]["title"].is_string());
    let paths = doc["paths"].as_object().unwrap();

    // Every route is described, with each of its methods and their responses (one
    // declaration gives the route and its operation, so this holds by construction)...
    for (path, methods) in &routes {
        let item = paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} is not in the OpenAPI document"));
        for method in methods {
            let op = &item[method.as_str()];
            assert!(op.is_object(), "{method} {path} is not described");
            assert!(
                op["responses"].is_object(),
                "{method} {path} has no responses"
            );
        }
    }
    // ...each saying the same as the route table about who may call it...
    for row in renkei_hub::routed(town.hub.clone()).1 {
        let path = row.path.replace("{*", "{");
        let op = &paths[&path][row.method.as_str().to_lowercase()];
        let declared: Vec<&str> = op["security"]
            .as_array()
            .map(|schemes| {
                schemes
                    .iter()
                    .filter_map(|s| s.as_object())
                    .flat_map(|s| s.keys().map(String::as_str))
                    .collect()
            })
            .unwrap_or_default();
        let expected: Vec<&str> = security_scheme(row.access).into_iter().collect();
        assert_eq!(
            declared, expected,
            "{} {path}: {:?}",
            row.method, row.access
        );
        // ...and describing the refusals its access can answer.
        let refusals: &[&str] = match row.access {
            Access::Public | Access::DemoOnly => &[],
            Access::Client
            | Access::ServiceToken
            | Access::UserToken
            | Access::Operator
            | Access::Counter
            | Access::Provider => &["401"],
            Access::Resident(Proxies::Any) | Access::ResidentOrSignIn(Proxies::Any) => &["401"],
            Access::Resident(_) | Access::ResidentOrSignIn(_) | Access::OperatorIdentity => {
                &["401", "403"]
            }
            Access::Scraper | Access::Soc => &["401", "404"],
        };
        for status in refusals {
            assert!(
                op["responses"][status].is_object(),
                "{} {path} ({:?}) does not describe {status}",
                row.method,
                row.access
            );
        }
    }
    // ...and nothing is described that the hub does not serve.
    for (path, item) in paths {
        let served = routes
            .get(path)
            .unwrap_or_else(|| panic!("{path} is documented but not served"));
        for method in item.as_object().unwrap().keys() {
            if ["parameters", "summary", "description"].contains(&method.as_str()) {
                continue;
            }
            assert!(
                served.contains(method),
                "{method} {path} is documented but not served"
            );
            // And the hub really takes it: never "method not allowed", never a crash.
            let concrete = path
                .replace("{id}", &uuid::Uuid::new_v4().to_string())
                .replace("{code}", "consent-missing")
                .split('/')
                .map(|part| if part.starts_with('{') { "0" } else { part })
                .collect::<Vec<_>>()
                .join("/");
            let request = match method.as_str() {
                "get" => town.get(&concrete),
                "post" => town.post(&concrete),
                other => panic!("unexpected method {other}"),
            };
            let status = request.send().await.unwrap().status().as_u16();
            assert_ne!(status, 405, "{method} {concrete}");
            assert!(status < 500, "{method} {concrete} answered {status}");
        }
    }
    // Both paging directions of a resident's history are described, cursors and all.
    for path in ["/v1/me/log", "/v1/me/access-records"] {
        let params: BTreeSet<&str> = paths[path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        for name in ["after", "before", "order", "limit"] {
            assert!(params.contains(name), "{path} does not describe `{name}`");
        }
    }
    let components = &doc["components"];
    for page in ["LogPage", "AccessPage"] {
        let fields = &components["schemas"][page]["properties"];
        assert!(
            fields["next_after"].is_object() && fields["next_before"].is_object(),
            "{page}"
        );
    }
    // The OAuth endpoints' errors are RFC 6749 §5.2's JSON, and said to be.
    for path in ["/oauth/token", "/oauth/introspect", "/oauth/revoke"] {
        let responses = paths[path]["post"]["responses"].as_object().unwrap();
        for (status, response) in responses.iter().filter(|(s, _)| s.as_str() >= "400") {
            let content = response["content"].as_object().unwrap();
            assert_eq!(
                content.keys().collect::<Vec<_>>(),
                ["application/json"],
                "{path} {status}"
            );
            assert_eq!(
                content["application/json"]["schema"]["$ref"],
                "#/components/schemas/OAuthErrorBody",
                "{path} {status}"
            );
        }
        assert!(
            responses["401"]["headers"]["WWW-Authenticate"].is_object(),
            "{path}"
        );
    }
    // The problem schema and both bearer schemes are there for clients.
    assert!(components["schemas"]["Problem"].is_object());
    assert!(components["securitySchemes"]["service"].is_object());
    assert!(components["securitySchemes"]["resident"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_sign_in_is_off_outside_demo_mode() {
    let town = Town::with(TownOptions {
        demo_mode: false,
        ..TownOptions::default()
    })
    .await;
    let response = town
        .post("/demo/sign-in")
        .json(&json!({ "resident": town.alice.to_string() }))
        .send()
        .await
        .unwrap();
    let body = expect_problem(response, 404, "/problems/demo-only").await;
    assert!(body.get("access_token").is_none());

    // Outside demo mode a consent is recorded as given at the portal, not in the demo.
    let alice = town.sign_in(town.alice).await;
    let granted = town.grant(&alice, "health-advice", "advice").await;
    assert_eq!(granted.consent.given_via, "portal");

    // In demo mode the same request signs Alice in, and the token is hers.
    let demo = Town::new().await;
    let response = demo
        .post("/demo/sign-in")
        .json(&json!({ "resident": demo.alice.to_string() }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap();
    let response = demo
        .get("/v1/me/consents")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // But not as somebody who does not live in the town.
    let response = demo
        .post("/demo/sign-in")
        .json(&json!({ "resident": uuid::Uuid::new_v4().to_string() }))
        .send()
        .await
        .unwrap();
    expect_problem(response, 404, "/problems/not-found").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_consents_survive_a_restart() {
    let mut town = Town::new().await;
    let token = town.service_token(&town.health).await;
    let alice = town.sign_in(town.alice).await;
    let granted = town.grant(&alice, "health-advice", "advice").await;
    let reminders = town.grant(&alice, "health-advice", "reminders").await;
    assert_eq!(
        town.revoke(&alice, &reminders.consent.id).await.status(),
        200
    );
    town.data(&token, &granted.subject, "advice", &[HEALTH_CHECKUP])
        .await;
    let response = town
        .request_data(&token, &granted.subject, "reminders", &[HEALTH_CHECKUP])
        .await;
    expect_problem(response, 403, "/problems/consent-revoked").await;

    let jwks_before = town.published_jwks().await;
    let consents_before = serde_json::to_value(town.consents(&alice).await).unwrap();
    let records_before = town.access_records(&alice).await;
    assert_eq!(records_before.len(), 2);

    town.restart_hub().await;

    // The same keys: receipts, grants and events keep verifying, and tokens stay valid.
    assert_eq!(town.published_jwks().await, jwks_before);
    verify_receipt(&granted.receipt, &town.published_jwks().await).unwrap();
    // Everything acknowledged is still there, exactly as it was.
    assert_eq!(
        serde_json::to_value(town.consents(&alice).await).unwrap(),
        consents_before
    );
    assert_eq!(town.access_records(&alice).await, records_before);
    assert_eq!(
        town.hub.keys().subject("health", town.alice).to_string(),
        granted.subject
    );
    // The consent still lets data through (providers trust the same keys), and the
    // revoked one still does not.
    let answer = town
        .data(
            &token,
            &granted.subject,
            "advice",
            &[HEALTH_CHECKUP, PAYMENT_HISTORY],
        )
        .await;
    assert!(answer.complete);
    assert_eq!(town.open_all(&town.health, &answer).await.len(), 2);
    let response = town
        .request_data(&token, &granted.subject, "reminders", &[HEALTH_CHECKUP])
        .await;
    expect_problem(response, 403, "/problems/consent-revoked").await;
    let records = town.access_records(&alice).await;
    assert_eq!(records.len(), 4);
    // The log goes on from where it was: the old entries keep their places, new ones follow.
    assert_eq!(records[..2], records_before[..]);
    let seqs: Vec<u64> = records.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");

    // Granting the same purpose again is still a conflict: the hub remembers.
    let response = town.try_grant(&alice, "health-advice", "advice").await;
    expect_problem(response, 409, "/problems/consent-already-active").await;
}

// ---------------------------------------------------------------- service registration

/// A registration of `id` with a fresh key, no webhook and no redirect URI.
fn registration(id: &str) -> Value {
    json!({
        "id": id, "name_ja": "まち歩き", "name_en": "Town walk",
        "hpke_public_key": renkei_protocol::envelope::ServiceKeyPair::generate().unwrap().public_b64(),
        "webhook_url": null, "redirect_uris": [],
        "purposes": [{"id": "steps", "title_ja": "歩数", "title_en": "Steps",
          "description_ja": "説明", "description_en": "Description",
          "categories": [PAYMENT_HISTORY], "retention_days": 30, "legal_basis": "consent"}],
        "controller": serde_json::to_value(common::controller_contact(id)).unwrap()
    })
}

async fn register(town: &Town, operator: &str, body: &Value) -> reqwest::Response {
    town.post("/v1/operator/services")
        .bearer_auth(operator)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// A hub as `renkei serve` runs it: https only, no local addresses.
async fn strict_town() -> Town {
    Town::with(TownOptions {
        allow_local_network: false,
        ..TownOptions::default()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_registration_refuses_urls_the_hub_must_not_call_naming_the_field() {
    let town = strict_town().await;
    let operator = town.operator_token().await;
    let refused = [
        "http://127.0.0.1:9999/internal/hook",
        "https://127.0.0.1:9999/internal",
        "https://localhost:9999/hook",
        "https://169.254.169.254/latest/meta-data/",
        "http://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/latest/meta-data/",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://10.0.0.5/hook",
        "https://192.168.1.10/hook",
        "https://172.16.0.1/hook",
        "https://[fd12:3456::1]/hook",
        "https://100.64.0.1/hook",
        "https://169.254.10.10/hook",
        "https://0.0.0.0/hook",
        "https://224.0.0.1/hook",
        "file:///etc/passwd",
        "gopher://127.0.0.1:70/_internal",
        "ftp://93.184.216.34/x",
        "http://93.184.216.34/hook",
        "https://user:secret@93.184.216.34/hook",
        "https://93.184.216.34/hook#fragment",
        "not a url",
    ];
    for (i, url) in refused.iter().enumerate() {
        for field in ["webhook_url", "redirect_uris[0]"] {
            let id = format!("walk-{i}-{}", field.len());
            let mut body = registration(&id);
            if field == "webhook_url" {
                body["webhook_url"] = json!(url);
            } else {
                body["redirect_uris"] = json!([url]);
            }
            let problem = expect_problem(
                register(&town, &operator, &body).await,
                400,
                "/problems/invalid-field",
            )
            .await;
            assert_eq!(problem["field"], field, "{url}: {problem}");
            assert!(
                problem["detail"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("`{field}`")),
                "{url}: {problem}"
            );
            let service = renkei_domain::ServiceId::new(id).unwrap();
            assert!(
                town.store.service(&service).await.unwrap().is_none(),
                "{url} in {field}: nothing registered"
            );
        }
    }
    // https on a public address is what a registration looks like.
    let mut body = registration("walk-public");
    body["webhook_url"] = json!("https://93.184.216.34/renkei/events");
    body["redirect_uris"] = json!(["https://93.184.216.34/callback"]);
    let response = register(&town, &operator, &body).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_configured_for_the_demo_accepts_local_urls_but_never_metadata_addresses() {
    let town = Town::new().await;
    let operator = town.operator_token().await;
    let mut body = registration("walk-local");
    body["webhook_url"] = json!("http://127.0.0.1:9999/renkei/events");
    body["redirect_uris"] = json!(["http://localhost:3000/callback"]);
    let response = register(&town, &operator, &body).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let mut body = registration("walk-metadata");
    body["webhook_url"] = json!("http://169.254.169.254/latest/meta-data/");
    let problem = expect_problem(
        register(&town, &operator, &body).await,
        400,
        "/problems/invalid-field",
    )
    .await;
    assert_eq!(problem["field"], "webhook_url", "{problem}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_registration_refuses_unusable_controller_contact_details_naming_the_field() {
    let town = Town::new().await;
    let operator = town.operator_token().await;
    for (field, value, named) in [
        ("email", json!("privacy.example.jp"), "controller.email"),
        ("phone", json!("call the office"), "controller.phone"),
        ("contact", json!("   "), "controller.contact"),
    ] {
        let mut body = registration("town-walk");
        body["controller"][field] = value;
        let refused = expect_problem(
            register(&town, &operator, &body).await,
            400,
            "/problems/invalid-field",
        )
        .await;
        assert_eq!(refused["field"], named);
    }
    let mut body = registration("town-walk");
    body["controller"]["address"]["country"] = json!("Japan");
    let refused = expect_problem(
        register(&town, &operator, &body).await,
        400,
        "/problems/invalid-field",
    )
    .await;
    assert_eq!(refused["field"], "controller.address.country");
    // Without contact details there is no registration at all.
    let mut body = registration("town-walk");
    body.as_object_mut().unwrap().remove("controller");
    expect_problem(
        register(&town, &operator, &body).await,
        400,
        "/problems/malformed-request",
    )
    .await;
    assert!(
        town.store
            .service(&renkei_domain::ServiceId::new("town-walk").unwrap())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_registration_refuses_a_key_that_is_not_an_x25519_key() {
    let town = Town::new().await;
    let operator = town.operator_token().await;
    for key in ["not-a-key", "", "AAAA", &"A".repeat(43), &"A".repeat(44)] {
        let mut body = registration("walk-key");
        body["hpke_public_key"] = json!(key);
        let problem = expect_problem(
            register(&town, &operator, &body).await,
            400,
            "/problems/invalid-field",
        )
        .await;
        assert_eq!(problem["field"], "hpke_public_key", "{key:?}: {problem}");
        let service = renkei_domain::ServiceId::new("walk-key").unwrap();
        assert!(town.store.service(&service).await.unwrap().is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sector_is_the_services_own_unless_the_operator_assigns_one_and_sharing_it_must_be_confirmed()
 {
    let town = Town::new().await;
    let operator = town.operator_token().await;
    let review = |id: &'static str| {
        let request = town
            .get(&format!("/v1/operator/services/{id}/review"))
            .bearer_auth(&operator);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Vec<Value>>().await.unwrap()
        }
    };
    // No sector given: one of its own, nothing shared.
    let response = register(&town, &operator, &registration("walk-alone")).await;
    assert_eq!(response.status(), 201);
    let alone = renkei_domain::ServiceId::new("walk-alone").unwrap();
    assert_eq!(
        town.store.service(&alone).await.unwrap().unwrap().sector,
        "walk-alone"
    );
    assert!(review("walk-alone").await.is_empty());

    // The sector of health-advice and checkup-reminder: flagged, naming both.
    let mut body = registration("health-copy");
    body["sector"] = json!("health");
    assert_eq!(register(&town, &operator, &body).await.status(), 201);
    let flags = review("health-copy").await;
    let shared: Vec<&Value> = flags
        .iter()
        .filter(|f| f["kind"] == "shared-sector")
        .collect();
    assert_eq!(shared.len(), 1, "{flags:?}");
    assert_eq!(shared[0]["key"], "shared-sector:health");
    assert_eq!(
        shared[0]["detail"]["services"],
        json!(["checkup-reminder", "health-advice"])
    );
    let approve = |acknowledged: Vec<&str>| {
        town.post("/v1/operator/services/health-copy/approve")
            .bearer_auth(&operator)
            .json(&json!({ "acknowledged": acknowledged }))
            .send()
    };
    expect_problem(approve(vec![]).await.unwrap(), 403, "/problems/forbidden").await;
    assert_eq!(
        approve(vec!["shared-sector:health"])
            .await
            .unwrap()
            .status(),
        204
    );
}

/// Tries client credentials `secret` for `client` at the token endpoint.
async fn token_attempt(town: &Town, client: &str, secret: &str) -> reqwest::Response {
    town.post("/oauth/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&client_id={client}&client_secret={secret}"
        ))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_one_clients_secret_is_slowed_to_its_limit_and_other_clients_go_on() {
    let town = Town::with(TownOptions {
        limits: common::limits(|l| l.oauth_per_client = Rate::new(5, RateUnit::Minute, 5)),
        ..TownOptions::default()
    })
    .await;
    let client = town.health.id.to_string();
    for _ in 0..5 {
        let response = token_attempt(&town, &client, "a-wrong-guess").await;
        assert_eq!(oauth_error(response).await.2, "invalid_client");
    }
    // Even the right secret waits now: the limit counts attempts, not failures.
    let response = token_attempt(&town, &client, &town.health.secret).await;
    expect_oauth_rate_limited(response, 12).await;
    // Introspection and revocation authenticate the client too, and are counted alike.
    let response = town
        .post("/oauth/introspect")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!(
            "token=x&client_id={client}&client_secret=a-wrong-guess"
        ))
        .send()
        .await
        .unwrap();
    expect_oauth_rate_limited(response, 12).await;
    // Another client from the same address is not held up.
    town.service_token(&town.mobility).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_guessing_secrets_of_many_clients_is_slowed_to_its_limit() {
    let town = Town::with(TownOptions {
        limits: common::limits(|l| l.oauth_per_address = Rate::new(5, RateUnit::Minute, 5)),
        ..TownOptions::default()
    })
    .await;
    for i in 0..5 {
        let response = token_attempt(&town, &format!("client-{i}"), "guess").await;
        assert_eq!(oauth_error(response).await.2, "invalid_client");
    }
    let response = token_attempt(&town, "client-5", "guess").await;
    expect_oauth_rate_limited(response, 12).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_can_append_only_so_many_unknown_subject_records() {
    let town = Town::with(TownOptions {
        limits: common::limits(|l| {
            l.data_requests_per_client = Rate::new(5, RateUnit::Minute, 5);
        }),
        ..TownOptions::default()
    })
    .await;
    let token = town.service_token(&town.health).await;
    let before = town.store.log_size().await.unwrap();
    for i in 0..20 {
        let subject = format!("a-subject-nobody-has-{i:02}");
        let response = town
            .request_data(&token, &subject, "advice", &[HEALTH_CHECKUP])
            .await;
        if i < 5 {
            expect_problem(response, 404, "/problems/unknown-subject").await;
        } else {
            common::expect_rate_limited(response, 12).await;
        }
    }
    // Five access records, not twenty: what was refused for the limit was never recorded.
    assert_eq!(town.store.log_size().await.unwrap(), before + 5);
    // Another service is not held up.
    let other = town.service_token(&town.mobility).await;
    let response = town
        .request_data(&other, "a-subject-nobody-has", "rides", &[PAYMENT_HISTORY])
        .await;
    expect_problem(response, 404, "/problems/unknown-subject").await;
}

// ---------------------------------------------------------------- OAuth error format

/// An OAuth error (RFC 6749 §5.2): `application/json` with `error` and a printable
/// `error_description`, nothing of a problem; returns the status, the challenge and `error`.
async fn oauth_error(response: reqwest::Response) -> (u16, Option<String>, String) {
    let status = response.status().as_u16();
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v: &header::HeaderValue| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = header(header::CONTENT_TYPE);
    let challenge = header(header::WWW_AUTHENTICATE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(content_type.as_deref(), Some("application/json"), "{body}");
    let members: BTreeSet<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        members,
        BTreeSet::from(["error", "error_description"]),
        "{body}"
    );
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description
            .bytes()
            .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e)),
        "{description}"
    );
    (
        status,
        challenge,
        body["error"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oauth_endpoints_answer_errors_as_rfc_6749_json_and_challenge_for_client_credentials() {
    let town = Town::new().await;
    let form = |path: &str, body: String| {
        town.post(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
    };
    let secret = &town.health.secret;
    for (path, body) in [
        ("/oauth/token", "grant_type=client_credentials"),
        ("/oauth/introspect", "token=x"),
        ("/oauth/revoke", "token=x"),
    ] {
        // Wrong credentials over Basic: 401 with a Basic challenge (RFC 6749 §5.2).
        let response = form(path, body.to_owned())
            .basic_auth("health-advice", Some("wrong"))
            .send()
            .await
            .unwrap();
        let (status, challenge, error) = oauth_error(response).await;
        assert_eq!((status, error.as_str()), (401, "invalid_client"), "{path}");
        assert!(
            challenge
                .as_deref()
                .is_some_and(|c| c.starts_with("Basic realm=")),
            "{path}: {challenge:?}"
        );
        // No credentials at all: the same, the challenge saying how to send them.
        let response = form(path, body.to_owned()).send().await.unwrap();
        let (status, challenge, error) = oauth_error(response).await;
        assert_eq!((status, error.as_str()), (401, "invalid_client"), "{path}");
        assert!(
            challenge.is_some_and(|c| c.starts_with("Basic realm=")),
            "{path}"
        );
        // Wrong credentials in the form: 400 `invalid_client`, no HTTP scheme was tried.
        let response = form(
            path,
            format!("{body}&client_id=health-advice&client_secret=wrong"),
        )
        .send()
        .await
        .unwrap();
        let (status, challenge, error) = oauth_error(response).await;
        assert_eq!((status, error.as_str()), (400, "invalid_client"), "{path}");
        assert_eq!(challenge, None, "{path}");
    }
    let client = format!("client_id=health-advice&client_secret={secret}");
    for (path, body, error) in [
        (
            "/oauth/token",
            format!("grant_type=password&{client}"),
            "unsupported_grant_type",
        ),
        (
            "/oauth/token",
            format!("grant_type=authorization_code&code=nope&redirect_uri=x&{client}"),
            "invalid_grant",
        ),
        ("/oauth/token", client.clone(), "invalid_request"),
        ("/oauth/introspect", client.clone(), "invalid_request"),
        ("/oauth/revoke", client.clone(), "invalid_request"),
        // Input quoted back stays printable ASCII without quotes.
        (
            "/oauth/token",
            format!("grant_type=%22%E3%81%82%5C&{client}"),
            "unsupported_grant_type",
        ),
    ] {
        let response = form(path, body.clone()).send().await.unwrap();
        let (status, _, got) = oauth_error(response).await;
        assert_eq!((status, got.as_str()), (400, error), "{path} {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_for_a_bearer_token_challenges_with_invalid_token_and_one_for_none_without() {
    let town = Town::new().await;
    let challenge = |response: &reqwest::Response| {
        response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let invalid = Some("Bearer realm=\"renkei\", error=\"invalid_token\"".to_owned());
    for path in [
        "/oauth/userinfo",
        "/v1/me/consents",
        "/v1/operator/requests",
    ] {
        let response = town
            .get(path)
            .bearer_auth("not-a-token")
            .send()
            .await
            .unwrap();
        assert_eq!(challenge(&response), invalid, "{path}");
        expect_problem(response, 401, "/problems/unauthorized").await;
        // No token at all: challenged, without an error code (RFC 6750 §3.1).
        let response = town.get(path).send().await.unwrap();
        assert_eq!(
            challenge(&response).as_deref(),
            Some("Bearer realm=\"renkei\""),
            "{path}"
        );
        expect_problem(response, 401, "/problems/unauthorized").await;
    }
    // A revoked token at the data endpoint: refused by the decision, challenged the same.
    let token = town.service_token(&town.health).await;
    let revoked = town
        .post("/oauth/revoke")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!(
            "token={token}&client_id=health-advice&client_secret={}",
            town.health.secret
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let alice = town.sign_in(town.alice).await;
    let granted = town.grant(&alice, "health-advice", "advice").await;
    let response = town
        .request_data(&token, &granted.subject, "advice", &[HEALTH_CHECKUP])
        .await;
    assert_eq!(challenge(&response), invalid);
    expect_problem(response, 401, "/problems/token-inactive").await;
}

/// A 429 of an OAuth endpoint: `temporarily_unavailable` with `Retry-After` within bounds.
async fn expect_oauth_rate_limited(response: reqwest::Response, within: u64) {
    let retry_after: u64 = response
        .headers()
        .get(header::RETRY_AFTER)
        .expect("a 429 says when to try again")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=within).contains(&retry_after),
        "Retry-After: {retry_after}"
    );
    let (status, _, error) = oauth_error(response).await;
    assert_eq!((status, error.as_str()), (429, "temporarily_unavailable"));
}
