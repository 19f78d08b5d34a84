//! The hub ↔ provider contract seen from outside: audience-bound, single-use, short-lived
//! grants, and clear partial failures when a provider is slow or down.

// Tests may unwrap and panic (clippy.toml allows it in #[test] functions; this covers helpers).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(
    clippy::disallowed_methods,
    reason = "a redirecting provider is another party's server, not the hub's"
)]

use std::time::{Duration, Instant};

use chrono::Utc;
use renkei_hub::broker::DataResponse;
use renkei_protocol::grant::sign_grant;
use serde_json::Value;

use crate::common;
use crate::common::{
    HEALTH_CHECKUP, PAYMENT_HISTORY, ProviderMode, Town, TownOptions, expect_problem, grant_claims,
    open_all, present_grant,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_never_sees_a_grant_meant_for_another_provider() {
    let town = Town::new().await;
    let token = town.service_token(&town.health).await;
    let alice = town.sign_in(town.alice).await;
    let bob = town.sign_in(town.bob).await;
    let alices = town.grant(&alice, "health-advice", "advice").await;
    let bobs = town.grant(&bob, "health-advice", "advice").await;

    let mut request_ids = Vec::new();
    for subject in [&alices.subject, &bobs.subject, &alices.subject] {
        let answer = town
            .data(
                &token,
                subject,
                "advice",
                &[HEALTH_CHECKUP, PAYMENT_HISTORY],
            )
            .await;
        assert!(answer.complete);
        assert_eq!(open_all(&town.health, &answer).len(), 2);
        request_ids.push(answer.request_id);
    }

    // Each provider served every request it was part of, and refused nothing.
    for p in [&town.clinic, &town.payments] {
        assert_eq!(p.served(), 3, "{}", p.id);
        assert_eq!(p.refused(), 0, "{}", p.id);
        assert_eq!(p.wrong_audience(), 0, "{}", p.id);
    }
    assert!(town.registry.captured_grants().is_empty());

    // Every grant a provider received names it, only its own categories, and one of the
    // requests the service made.
    for (p, category) in [
        (&town.clinic, HEALTH_CHECKUP),
        (&town.payments, PAYMENT_HISTORY),
    ] {
        let grants = p.captured_grants();
        assert_eq!(grants.len(), 3);
        for grant in &grants {
            let claims = grant_claims(grant);
            assert_eq!(claims.aud, p.id);
            assert_eq!(
                claims
                    .categories
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>(),
                [category]
            );
            assert_eq!(claims.service.as_str(), "health-advice");
            assert!(request_ids.contains(&claims.request_id.to_string()));
            assert!(claims.exp - claims.iat <= 60);
        }
        let mut jtis: Vec<_> = grants.iter().map(|g| grant_claims(g).jti).collect();
        jtis.sort();
        jtis.dedup();
        assert_eq!(jtis.len(), 3, "grant ids are never reused");
    }

    // A clinic grant, still fresh and never shown to the payment provider, taken there
    // directly: refused, and nothing is served.
    let clinic_grant = town.clinic.captured_grants()[0].clone();
    let response = present_grant(&town.http, &town.payments.url, &clinic_grant).await;
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "/problems/grant-wrong-audience");
    assert_eq!(town.payments.wrong_audience(), 1);
    assert_eq!(town.payments.served(), 3);

    // A grant the hub signs for the payment provider is refused by the clinic as well.
    let mut claims = grant_claims(&town.payments.captured_grants()[0]);
    claims.jti = uuid::Uuid::new_v4();
    let now = Utc::now().timestamp();
    claims.iat = now;
    claims.exp = now + 30;
    let forged_for_payments = sign_grant(&town.hub.keys().signing_key(), &claims).unwrap();
    let response = present_grant(&town.http, &town.clinic.url, &forged_for_payments).await;
    assert_eq!(response.status(), 401);
    assert_eq!(town.clinic.wrong_audience(), 1);
    assert_eq!(town.clinic.served(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_grant_is_refused_by_the_provider() {
    let town = Town::new().await;
    let token = town.service_token(&town.health).await;
    let alice = town.sign_in(town.alice).await;
    let granted = town.grant(&alice, "health-advice", "advice").await;
    town.data(&token, &granted.subject, "advice", &[HEALTH_CHECKUP])
        .await;

    // Someone who saw the grant on its way to the clinic sends it again, well within its
    // lifetime: the clinic refuses it and hands out nothing.
    let grants = town.clinic.captured_grants();
    assert_eq!(grants.len(), 1);
    let claims = grant_claims(&grants[0]);
    assert!(
        Utc::now().timestamp() < claims.exp,
        "the grant is still fresh"
    );
    let response = present_grant(&town.http, &town.clinic.url, &grants[0]).await;
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "/problems/grant-replayed");
    assert_eq!(town.clinic.replayed(), 1);
    assert_eq!(town.clinic.served(), 1);

    // Even a grant that was never used works only once.
    let mut fresh = claims.clone();
    fresh.jti = uuid::Uuid::new_v4();
    let once = sign_grant(&town.hub.keys().signing_key(), &fresh).unwrap();
    assert_eq!(
        present_grant(&town.http, &town.clinic.url, &once)
            .await
            .status(),
        200
    );
    let response = present_grant(&town.http, &town.clinic.url, &once).await;
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "/problems/grant-replayed");
    assert_eq!(town.clinic.replayed(), 2);
    assert_eq!(town.clinic.served(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_grant_is_refused() {
    let town = Town::new().await;
    let token = town.service_token(&town.health).await;
    let alice = town.sign_in(town.alice).await;
    let granted = town.grant(&alice, "health-advice", "advice").await;
    town.data(&token, &granted.subject, "advice", &[HEALTH_CHECKUP])
        .await;

    // The same grant, re-signed by the hub's own key, but issued a minute ago and expired
    // ten seconds ago (beyond the providers' 5 s clock-skew allowance).
    let mut claims = grant_claims(&town.clinic.captured_grants()[0]);
    let now = Utc::now().timestamp();
    claims.jti = uuid::Uuid::new_v4();
    claims.iat = now - 60;
    claims.exp = now - 10;
    let stale = sign_grant(&town.hub.keys().signing_key(), &claims).unwrap();
    let response = present_grant(&town.http, &town.clinic.url, &stale).await;
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "/problems/grant-expired");
    assert_eq!(town.clinic.expired(), 1);
    assert_eq!(town.clinic.served(), 1);

    // A grant signed by anyone but the hub is no grant at all.
    let stranger = renkei_protocol::keys::SigningKey::generate().unwrap();
    claims.iat = now;
    claims.exp = now + 30;
    let forged = sign_grant(&stranger, &claims).unwrap();
    let response = present_grant(&town.http, &town.clinic.url, &forged).await;
    assert_eq!(response.status(), 401);
    assert_eq!(town.clinic.served(), 1);
    // And no grant at all gets nothing.
    let response = town
        .http
        .post(format!("{}/renkei/v1/fetch", town.clinic.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(town.clinic.served(), 1);
}

fn result<'a>(
    answer: &'a renkei_hub::broker::DataResponse,
    provider: &str,
) -> &'a renkei_hub::broker::ProviderResult {
    answer
        .results
        .iter()
        .find(|r| r.provider == provider)
        .unwrap()
}

/// Alice says yes to health advice and the health service asks for her check-up results and
/// payments: the answer, and how long the data request itself took.
async fn alices_advice(town: &Town) -> (DataResponse, Duration) {
    let token = town.service_token(&town.health).await;
    let alice = town.sign_in(town.alice).await;
    let granted = town.grant(&alice, "health-advice", "advice").await;
    let started = Instant::now();
    let answer = town
        .data(
            &token,
            &granted.subject,
            "advice",
            &[HEALTH_CHECKUP, PAYMENT_HISTORY],
        )
        .await;
    (answer, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_providers_of_one_request_are_asked_at_the_same_time_not_one_after_another() {
    // Both providers take 600 ms: asked together the answer takes a little over that, asked
    // in turn it would take 1.2 s.
    let slow = Duration::from_millis(600);
    let town = Town::with(TownOptions {
        provider_timeout: Duration::from_secs(5),
        clinic: ProviderMode::Slow(slow),
        payments: ProviderMode::Slow(slow),
        ..TownOptions::default()
    })
    .await;
    let (answer, took) = alices_advice(&town).await;
    assert!(answer.complete);
    assert_eq!(open_all(&town.health, &answer).len(), 2);
    assert!(
        took >= slow && took < slow * 2,
        "took {took:?}: the providers were not asked at the same time"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_or_down_provider_gives_a_clear_partial_failure_not_a_hung_request() {
    let timeout = Duration::from_millis(300);
    let slow = Duration::from_millis(2_000);
    // The answer must come soon after the hub's provider timeout, long before the slow
    // provider would have answered.
    let bound = Duration::from_millis(1_500);

    // The clinic is slow: its part times out, the payments part arrives.
    let town = Town::with(TownOptions {
        provider_timeout: timeout,
        clinic: ProviderMode::Slow(slow),
        ..TownOptions::default()
    })
    .await;
    let (answer, took) = alices_advice(&town).await;
    assert!(took >= timeout && took < bound, "took {took:?}");
    assert!(!answer.complete);
    let clinic = result(&answer, "clinic");
    assert_eq!(clinic.status, "provider-timeout");
    assert!(clinic.payload.is_none());
    assert!(clinic.detail.as_deref().unwrap().contains("300 ms"));
    assert_eq!(clinic.categories, [HEALTH_CHECKUP]);
    let payments = result(&answer, "payments");
    assert_eq!(payments.status, "ok");
    let opened = open_all(&town.health, &answer);
    assert_eq!(opened.len(), 1);
    assert_eq!(
        opened["payments"]["data"][PAYMENT_HISTORY],
        common::alice_payments()
    );

    // The payment provider is down: its part is unreachable, the clinic's arrives.
    let town = Town::with(TownOptions {
        provider_timeout: timeout,
        payments: ProviderMode::Down,
        ..TownOptions::default()
    })
    .await;
    let (answer, took) = alices_advice(&town).await;
    assert!(took < bound, "took {took:?}");
    assert!(!answer.complete);
    assert_eq!(result(&answer, "payments").status, "provider-unreachable");
    assert_eq!(result(&answer, "clinic").status, "ok");
    assert_eq!(
        open_all(&town.health, &answer)["clinic"]["data"][HEALTH_CHECKUP],
        common::alice_checkup()
    );

    // Both fail: a 502 problem naming each failure, and no data.
    let town = Town::with(TownOptions {
        provider_timeout: timeout,
        clinic: ProviderMode::Slow(slow),
        payments: ProviderMode::Down,
        ..TownOptions::default()
    })
    .await;
    let token = town.service_token(&town.health).await;
    let alice = town.sign_in(town.alice).await;
    let granted = town.grant(&alice, "health-advice", "advice").await;
    let started = Instant::now();
    let response = town
        .request_data(
            &token,
            &granted.subject,
            "advice",
            &[HEALTH_CHECKUP, PAYMENT_HISTORY],
        )
        .await;
    let problem = expect_problem(response, 502, "/problems/provider-failure").await;
    assert!(started.elapsed() < bound, "took {:?}", started.elapsed());
    assert!(problem["request_id"].is_string());
    let statuses: Vec<(String, String)> = problem["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert!(p.get("payload").is_none(), "{p}");
            (
                p["provider"].as_str().unwrap().to_owned(),
                p["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("clinic".to_owned(), "provider-timeout".to_owned()),
            ("payments".to_owned(), "provider-unreachable".to_owned())
        ]
    );
    // The hub still answers other requests at once: one slow provider does not hold it up.
    let started = Instant::now();
    let response = town.get("/healthz").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() < Duration::from_millis(500));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_redirects_is_not_followed_so_its_grant_goes_nowhere_else() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::http::{StatusCode, header};
    use axum::routing::post;

    let town = Town::new().await;
    // The clinic's registered endpoint now answers every fetch with a redirect to another
    // path of the same origin, which counts every request that reaches it.
    let reached = Arc::new(AtomicUsize::new(0));
    let seen = reached.clone();
    let redirector = common::Server::start(
        axum::Router::new()
            .route(
                "/renkei/v1/fetch",
                post(|| async {
                    (
                        StatusCode::TEMPORARY_REDIRECT,
                        [(header::LOCATION, "/elsewhere")],
                    )
                }),
            )
            .route(
                "/elsewhere",
                post(move || {
                    seen.fetch_add(1, Ordering::SeqCst);
                    async { StatusCode::OK }
                }),
            ),
    )
    .await;
    town.store
        .put_provider(&renkei_domain::Provider {
            id: town.clinic.id.clone(),
            name: renkei_domain::LocalizedText::new("町立診療所", "Town clinic"),
            connection: renkei_domain::ProviderConnection::Inbound {
                endpoint: redirector.url.clone(),
            },
            categories: [common::cat(HEALTH_CHECKUP)].into(),
            max_answer_bytes: None,
            signing_keys: Default::default(),
            contact: None,
            status: renkei_domain::ProviderStatus::Approved,
        })
        .await
        .unwrap();

    let (answer, _) = alices_advice(&town).await;

    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "the redirect was followed"
    );
    assert!(!answer.complete);
    let clinic = result(&answer, "clinic");
    assert_eq!(clinic.status, "provider-refused");
    assert!(clinic.payload.is_none());
    assert_eq!(
        clinic.detail.as_deref(),
        Some("the provider answered HTTP 307")
    );
    assert_eq!(result(&answer, "payments").status, "ok");
}

/// A bare TCP listener on 127.0.0.1 that counts the connections it accepts: whatever the
/// hub would send, a connection is the first thing it would do.
struct Listener {
    port: u16,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Listener {
    async fn start() -> Self {
        let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = socket.local_addr().unwrap().port();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = socket.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                drop(stream);
            }
        });
        Self { port, accepted }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
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
async fn a_webhook_whose_name_resolves_to_loopback_is_never_connected_to_outside_local_mode() {
    let town = strict_town().await;
    let listener = Listener::start().await;
    // The webhook names a host that resolves to 127.0.0.1 now (as a name rebound after its
    // registration would); the row is written as registration left it.
    let mut service = town.store.service(&town.health.id).await.unwrap().unwrap();
    service.webhook_url = Some(format!("https://localhost:{}/renkei-events", listener.port));
    town.store
        .put_service(
            &service,
            &renkei_hub::auth::hash_client_secret(&town.health.secret),
        )
        .await
        .unwrap();

    // A consent change puts a message in the outbox; the sender tries it at once.
    let alice = town.sign_in(town.alice).await;
    town.grant(&alice, "health-advice", "advice").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let attempts = loop {
        // Reading the outbox leases nothing for long: the lease ends now.
        let due = town
            .store
            .take_due_messages(Utc::now() + chrono::TimeDelta::hours(2), Utc::now(), 10)
            .await
            .unwrap();
        let attempts = due.iter().map(|d| d.attempts).max().unwrap_or(0);
        if attempts >= 1 || Instant::now() >= deadline {
            break attempts;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(attempts >= 1, "the hub tried to deliver the event");
    assert_eq!(
        listener.accepted(),
        0,
        "the hub connected to a loopback address"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_endpoint_on_an_internal_address_is_never_connected_to_outside_local_mode() {
    let town = strict_town().await;
    let by_name = Listener::start().await;
    let by_address = Listener::start().await;
    for (provider, endpoint, category) in [
        (
            &town.clinic,
            format!("https://localhost:{}", by_name.port),
            HEALTH_CHECKUP,
        ),
        (
            &town.payments,
            format!("https://127.0.0.1:{}", by_address.port),
            PAYMENT_HISTORY,
        ),
    ] {
        town.store
            .put_provider(&renkei_domain::Provider {
                id: provider.id.clone(),
                name: renkei_domain::LocalizedText::new("保有者", "Provider"),
                connection: renkei_domain::ProviderConnection::Inbound { endpoint },
                categories: [common::cat(category)].into(),
                max_answer_bytes: None,
                signing_keys: Default::default(),
                contact: None,
                status: renkei_domain::ProviderStatus::Approved,
            })
            .await
            .unwrap();
    }
    let token = town.service_token(&town.health).await;
    let alice = town.sign_in(town.alice).await;
    let granted = town.grant(&alice, "health-advice", "advice").await;
    let response = town
        .request_data(
            &token,
            &granted.subject,
            "advice",
            &[HEALTH_CHECKUP, PAYMENT_HISTORY],
        )
        .await;
    let problem = expect_problem(response, 502, "/problems/provider-failure").await;
    let statuses: Vec<&str> = problem["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["provider-unreachable", "provider-unreachable"],
        "{problem}"
    );
    assert_eq!(
        by_name.accepted(),
        0,
        "connected to a name resolving to loopback"
    );
    assert_eq!(by_address.accepted(), 0, "connected to a loopback address");
}

/// A provider whose every answer is `declared` bytes long by its header, or, without one, an
/// endless body: it writes until the hub hangs up and counts what it got out.
struct Flood {
    url: String,
    written: std::sync::Arc<std::sync::atomic::AtomicU64>,
    done: tokio::sync::watch::Receiver<bool>,
}

impl Flood {
    async fn start(declared: Option<u64>) -> Self {
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", socket.local_addr().unwrap());
        let written = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (finished, done) = tokio::sync::watch::channel(false);
        let count = written.clone();
        tokio::spawn(async move {
            let Ok((mut stream, _)) = socket.accept().await else {
                return;
            };
            let mut request = [0u8; 8192];
            let _ = stream.read(&mut request).await;
            let head = match declared {
                Some(n) => format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {n}\r\n\r\n"
                ),
                None => {
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n"
                        .to_owned()
                }
            };
            if stream.write_all(head.as_bytes()).await.is_ok() {
                // 512 MiB of a JSON string, 64 KiB at a time, until the hub stops reading.
                let chunk = vec![b'a'; 64 * 1024];
                let _ = stream.write_all(b"{\"payload\":\"").await;
                for _ in 0..(512 * 16) {
                    if stream.write_all(&chunk).await.is_err() {
                        break;
                    }
                    count.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                }
            }
            let _ = finished.send(true);
        });
        Self { url, written, done }
    }

    /// What it wrote before the hub hung up (waits until it stopped writing).
    async fn written(mut self) -> u64 {
        let _ = tokio::time::timeout(Duration::from_secs(10), self.done.wait_for(|d| *d)).await;
        self.written.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_answer_beyond_its_limit_is_refused_unread_not_relayed() {
    const MIB: u64 = 1024 * 1024;
    let town = Town::new().await;
    // The clinic streams an endless answer under a limit of its own (1 MiB); the payments
    // provider declares 512 MiB, beyond the hub's default.
    let endless = Flood::start(None).await;
    let declared = Flood::start(Some(512 * MIB)).await;
    for (provider, endpoint, category, limit) in [
        (&town.clinic, &endless.url, HEALTH_CHECKUP, Some(MIB)),
        (&town.payments, &declared.url, PAYMENT_HISTORY, None),
    ] {
        town.store
            .put_provider(&renkei_domain::Provider {
                id: provider.id.clone(),
                name: renkei_domain::LocalizedText::new("保有者", "Provider"),
                connection: renkei_domain::ProviderConnection::Inbound {
                    endpoint: endpoint.clone(),
                },
                categories: [common::cat(category)].into(),
                max_answer_bytes: limit,
                signing_keys: Default::default(),
                contact: None,
                status: renkei_domain::ProviderStatus::Approved,
            })
            .await
            .unwrap();
    }
    let token = town.service_token(&town.health).await;
    let alice = town.sign_in(town.alice).await;
    let granted = town.grant(&alice, "health-advice", "advice").await;
    let started = Instant::now();
    let response = town
        .request_data(
            &token,
            &granted.subject,
            "advice",
            &[HEALTH_CHECKUP, PAYMENT_HISTORY],
        )
        .await;
    let problem = expect_problem(response, 502, "/problems/provider-failure").await;
    let took = started.elapsed();
    let outcomes: Vec<(&str, &str)> = problem["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert!(p.get("payload").is_none(), "{p}");
            (p["status"].as_str().unwrap(), p["detail"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            (
                "provider-answer-too-large",
                "the provider's answer is larger than its limit of 1048576 bytes"
            ),
            (
                "provider-answer-too-large",
                "the provider's answer is larger than its limit of 8388608 bytes"
            ),
        ]
    );
    assert!(took < Duration::from_secs(2), "took {took:?}");
    // The hub stopped reading at the limit: what the clinic got out is the limit plus what
    // the sockets' buffers hold, not its 512 MiB; the declared answer was not read at all.
    let endless = endless.written().await;
    assert!(endless < 32 * MIB, "the hub read {endless} bytes");
    let declared = declared.written().await;
    assert!(declared < 32 * MIB, "the hub read {declared} bytes");
    let peak = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .map(str::to_owned)
        });
    eprintln!("refused in {took:?}; providers got out {endless} and {declared} bytes; {peak:?}");
}

/// Alice's log, oldest first: each entry's JSON, after checking its leaf hash commits to it.
async fn alices_log(town: &Town, alice: &str) -> Vec<Value> {
    use base64::Engine;
    let page: Value = town
        .get("/v1/me/log")
        .bearer_auth(alice)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let b64 = |v: &Value| {
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap()
    };
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let mut data = b64(&e["salt"]);
            data.extend_from_slice(e["entry"].as_str().unwrap().as_bytes());
            assert_eq!(
                renkei_log::merkle::leaf_hash(&data).as_bytes().to_vec(),
                b64(&e["leaf_hash"]),
                "the leaf commits to the entry"
            );
            serde_json::from_str(e["entry"].as_str().unwrap()).unwrap()
        })
        .collect()
}

/// The access record of `request` and what the log says it came to, if anything.
fn record_and_fulfilment(log: &[Value], request: &str) -> (Value, Option<Value>) {
    let record = log
        .iter()
        .find(|e| e["kind"] == "access" && e["request"] == request)
        .unwrap()
        .clone();
    let fulfilment = log
        .iter()
        .find(|e| e["kind"] == "fulfilment" && e["request"] == request)
        .cloned();
    if let Some(f) = &fulfilment {
        assert!(
            f["seq"].as_u64() > record["seq"].as_u64(),
            "after the record"
        );
    }
    (record, fulfilment)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_granted_request_came_to_is_in_the_residents_log_provider_by_provider() {
    let timeout = Duration::from_millis(300);
    // Both providers down: the service gets a 502 and nothing; the log says the request was
    // granted (before any provider was asked), then that nothing reached the service.
    let town = Town::with(TownOptions {
        provider_timeout: timeout,
        clinic: ProviderMode::Down,
        payments: ProviderMode::Down,
        ..TownOptions::default()
    })
    .await;
    let token = town.service_token(&town.health).await;
    let alice = town.sign_in(town.alice).await;
    let granted = town.grant(&alice, "health-advice", "advice").await;
    let response = town
        .request_data(
            &token,
            &granted.subject,
            "advice",
            &[HEALTH_CHECKUP, PAYMENT_HISTORY],
        )
        .await;
    let problem = expect_problem(response, 502, "/problems/provider-failure").await;
    let request = problem["request_id"].as_str().unwrap();
    let (record, fulfilment) = record_and_fulfilment(&alices_log(&town, &alice).await, request);
    assert_eq!(record["outcome"]["outcome"], "granted");
    let fulfilment = fulfilment.expect("the log says what the granted request came to");
    assert_eq!(
        fulfilment["providers"],
        serde_json::json!({
            "clinic": {"status": "failed", "reason": "provider-unreachable"},
            "payments": {"status": "failed", "reason": "provider-unreachable"},
        })
    );
    assert_eq!(fulfilment["service"], "health-advice");

    // Only the payment provider down: the clinic delivered, and the log says so.
    let town = Town::with(TownOptions {
        provider_timeout: timeout,
        payments: ProviderMode::Down,
        ..TownOptions::default()
    })
    .await;
    let alice = town.sign_in(town.alice).await;
    let (answer, _) = alices_advice(&town).await;
    let (_, fulfilment) =
        record_and_fulfilment(&alices_log(&town, &alice).await, &answer.request_id);
    assert_eq!(
        fulfilment.unwrap()["providers"],
        serde_json::json!({
            "clinic": {"status": "delivered"},
            "payments": {"status": "failed", "reason": "provider-unreachable"},
        })
    );

    // Every provider delivered: the granted record says it all, no entry follows.
    let town = Town::new().await;
    let alice = town.sign_in(town.alice).await;
    let (answer, _) = alices_advice(&town).await;
    assert!(answer.complete);
    let (_, fulfilment) =
        record_and_fulfilment(&alices_log(&town, &alice).await, &answer.request_id);
    assert_eq!(fulfilment, None);
}
