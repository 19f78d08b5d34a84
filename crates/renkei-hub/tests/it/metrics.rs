//! `GET /metrics`: what a city's Prometheus scrapes, read back with a Prometheus text-format
//! parser nobody here wrote; it counts what the town did and names none of its residents.

use prometheus_parse::{Sample, Scrape, Value};

use crate::common::{
    HEALTH_CHECKUP, METRICS_TOKEN, PAYMENT_HISTORY, ProviderMode, RESIDENT_ADDRESS, Town,
    TownOptions,
};

async fn scrape(town: &Town) -> (String, Scrape) {
    let response = town
        .get("/metrics")
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = response.text().await.unwrap();
    let parsed = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    (text, parsed)
}

/// The value of the one sample of `metric` whose labels include `labels`.
fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let matching: Vec<&Sample> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
        .collect();
    assert!(matching.len() <= 1, "{metric} {labels:?}: {matching:?}");
    matching.first().map(|s| match &s.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
        other => panic!("{metric} is not a single value: {other:?}"),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_decisions_and_provider_failures_and_name_no_resident() {
    let town = Town::with(TownOptions {
        payments: ProviderMode::Down,
        ..TownOptions::default()
    })
    .await;
    let alice = town.sign_in(town.alice).await;
    let consent = town.grant(&alice, "health-advice", "advice").await;
    let service = town.service_token(&town.health).await;
    let granted = town
        .request_data(
            &service,
            &consent.subject,
            "advice",
            &[HEALTH_CHECKUP, PAYMENT_HISTORY],
        )
        .await;
    assert_eq!(granted.status(), 200);
    // The consent does not cover her address: denied.
    let denied = town
        .request_data(&service, &consent.subject, "advice", &[RESIDENT_ADDRESS])
        .await;
    assert_eq!(denied.status(), 403);

    let (text, scrape) = scrape(&town).await;
    assert_eq!(
        value(
            &scrape,
            "renkei_http_requests_total",
            &[
                ("route", "/v1/data-requests"),
                ("method", "POST"),
                ("status", "200")
            ]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &scrape,
            "renkei_decisions_total",
            &[("outcome", "granted"), ("reason", "consent")]
        ),
        Some(1.0)
    );
    let denials: f64 = scrape
        .samples
        .iter()
        .filter(|s| {
            s.metric == "renkei_decisions_total" && s.labels.get("outcome") == Some("denied")
        })
        .map(|s| match s.value {
            Value::Counter(v) => v,
            _ => 0.0,
        })
        .sum();
    assert_eq!(denials, 1.0, "{text}");
    assert_eq!(
        value(
            &scrape,
            "renkei_provider_failures_total",
            &[("provider", "payments")]
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        value(&scrape, "renkei_decision_batch_size_count", &[]).unwrap_or(0.0) >= 1.0,
        "{text}"
    );
    assert!(value(&scrape, "renkei_webhook_backlog", &[]).is_some());
    assert!(value(&scrape, "renkei_log_unintegrated_entries", &[]).is_some());
    // A route is its template: the subject or a consent id never becomes a label.
    for personal in [
        consent.subject.as_str(),
        consent.consent.id.as_str(),
        town.alice.to_string().as_str(),
    ] {
        assert!(!text.contains(personal), "`{personal}` in the metrics");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_the_token_and_are_off_without_one() {
    let town = Town::new().await;
    for token in [None, Some("not-the-town-prometheus-token")] {
        let mut request = town.get("/metrics");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        assert_eq!(request.send().await.unwrap().status(), 401, "{token:?}");
    }
    let off = Town::with(TownOptions {
        metrics_token: None,
        ..TownOptions::default()
    })
    .await;
    let response = off
        .get("/metrics")
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    // Without a token the caller is challenged, as when metrics are on.
    let anonymous = off.get("/metrics").send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
}
