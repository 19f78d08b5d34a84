//! Operational metrics in the Prometheus text format (`GET /metrics`): requests and their
//! latencies by route and status, decisions by outcome and reason, decision batch sizes and
//! how long a batch takes to become durable (the commit and its fsync), provider failures
//! by provider and status, rate-limit refusals by route; and, read when scraped, the log's
//! checkpoint age, the entries no checkpoint covers yet (the integrator's lag) and the
//! webhook messages waiting to go out.
//!
//! The Prometheus project's own client (`prometheus-client`) keeps and encodes them.
//!
//! INVARIANT: no label carries a resident, a subject, a consent, or anything else a
//! request's path or body names: a route is its template (`/v1/consents/{id}`), a provider
//! its registered id, a reason a code of a fixed vocabulary.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use renkei_domain::{Decision, Grounds};

use crate::problem::Problem;
use crate::{Hub, HubError};

/// The token a metrics scraper presents (Prometheus' `authorization` with a
/// `credentials_file`), kept as its SHA-256 digest.
#[derive(Clone)]
pub struct MetricsToken([u8; 32]);

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(..)")
    }
}

impl MetricsToken {
    /// The shortest token taken: 128 bits as hex or base64 is 22 characters or more.
    pub const MIN_LEN: usize = 22;

    /// The token `secret` (surrounding whitespace, such as a file's final newline, ignored).
    pub fn new(secret: &str) -> Result<Self, ShortToken> {
        let secret = secret.trim();
        if secret.len() < Self::MIN_LEN {
            return Err(ShortToken(Self::MIN_LEN));
        }
        Ok(Self(digest(secret)))
    }

    /// Whether `presented` is the token, compared in constant time.
    pub fn admits(&self, presented: &str) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(&self.0, &digest(presented)).is_ok()
    }
}

fn digest(secret: &str) -> [u8; 32] {
    let mut out = [0; 32];
    out.copy_from_slice(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes()).as_ref(),
    );
    out
}

/// A metrics token too short to resist guessing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a metrics token must be at least {0} characters")]
pub struct ShortToken(usize);

/// The route label of a request no route matched: its path is the caller's, so it is
/// never a label.
const UNMATCHED: &str = "unmatched";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    outcome: &'static str,
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: String,
    status: &'static str,
}

/// The hub's metrics. Cheap to update from any task; encoded whole when scraped.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    rate_limited: Family<RouteLabels, Counter>,
    decisions: Family<DecisionLabels, Counter>,
    batch_size: Histogram,
    durable_seconds: Histogram,
    provider_failures: Family<ProviderLabels, Counter>,
    checkpoint_age: Gauge<f64, std::sync::atomic::AtomicU64>,
    unintegrated: Gauge,
    webhook_backlog: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("renkei");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "Requests answered, by route template, method and status",
            requests.clone(),
        );
        // 1 ms to about 16 s: a decision is a few ms, a brokered request waits for its
        // providers (3 s timeout by default), a long poll up to 30 s lands in +Inf.
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 15))
        });
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its answer, by route template and method",
            latency.clone(),
        );
        let rate_limited = Family::<RouteLabels, Counter>::default();
        registry.register(
            "rate_limited",
            "Requests refused by a rate limit (429), by route template and method",
            rate_limited.clone(),
        );
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "decisions",
            "Consent decisions, by outcome and reason (what a grant rests on, why a denial)",
            decisions.clone(),
        );
        let batch_size = Histogram::new(exponential_buckets(1.0, 2.0, 10));
        registry.register(
            "decision_batch_size",
            "Decisions recorded together in one storage transaction",
            batch_size.clone(),
        );
        let durable_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        registry.register(
            "decision_batch_durable_seconds",
            "Time for a decision batch's records to become durable (commit and fsync)",
            durable_seconds.clone(),
        );
        let provider_failures = Family::<ProviderLabels, Counter>::default();
        registry.register(
            "provider_failures",
            "Provider answers that failed, by provider and status",
            provider_failures.clone(),
        );
        let checkpoint_age = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "log_checkpoint_age_seconds",
            "Seconds since the log's latest checkpoint was signed",
            checkpoint_age.clone(),
        );
        let unintegrated = Gauge::default();
        registry.register(
            "log_unintegrated_entries",
            "Log entries appended but not yet covered by a checkpoint",
            unintegrated.clone(),
        );
        let webhook_backlog = Gauge::default();
        registry.register(
            "webhook_backlog",
            "Webhook messages waiting to be delivered",
            webhook_backlog.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            rate_limited,
            decisions,
            batch_size,
            durable_seconds,
            provider_failures,
            checkpoint_age,
            unintegrated,
            webhook_backlog,
        }
    }

    /// A request answered with `status` after `took`.
    pub fn request(&self, method: &str, route: &str, status: u16, took: Duration) {
        let route_labels = RouteLabels {
            method: method.to_owned(),
            route: route.to_owned(),
        };
        self.latency
            .get_or_create(&route_labels)
            .observe(took.as_secs_f64());
        if status == 429 {
            self.rate_limited.get_or_create(&route_labels).inc();
        }
        self.requests
            .get_or_create(&RequestLabels {
                method: route_labels.method,
                route: route_labels.route,
                status,
            })
            .inc();
    }

    /// A decision made.
    pub fn decision(&self, decision: &Decision) {
        let labels = match decision {
            Decision::Granted(Grounds::Consent { .. }) => DecisionLabels {
                outcome: "granted",
                reason: "consent",
            },
            Decision::Granted(Grounds::Emergency { .. }) => DecisionLabels {
                outcome: "granted",
                reason: "emergency",
            },
            Decision::Denied(reason) => DecisionLabels {
                outcome: "denied",
                reason: reason.code(),
            },
        };
        self.decisions.get_or_create(&labels).inc();
    }

    /// A batch of `size` decisions that took `took` to become durable.
    pub fn batch(&self, size: usize, took: Duration) {
        self.batch_size.observe(size as f64);
        self.durable_seconds.observe(took.as_secs_f64());
    }

    /// A provider's part of a request that failed with `status` (a fixed vocabulary:
    /// `provider-timeout`, `provider-refused`, ...).
    pub fn provider_failure(&self, provider: &str, status: &'static str) {
        self.provider_failures
            .get_or_create(&ProviderLabels {
                provider: provider.to_owned(),
                status,
            })
            .inc();
    }

    /// Everything, in the Prometheus text format (0.0.4).
    fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// Counts and times every request by the route that matched it (the template, never the
/// path the caller sent).
pub async fn track(State(hub): State<Hub>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned();
    let response = next.run(request).await;
    hub.metrics()
        .request(&method, &route, response.status().as_u16(), start.elapsed());
    response
}

/// The hub's metrics in the Prometheus text format (0.0.4), for a scraper holding the
/// metrics token. No label names a resident or anything a request carried.
#[utoipa::path(get, path = "/metrics", security(("scraper" = [])),
    responses((status = 200, description = "The metrics", body = String, content_type = "text/plain; version=0.0.4; charset=utf-8"),
        (status = 401, description = "No metrics token, or another", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No metrics token is configured: metrics are off", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable (the gauges read it)", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn scrape(State(hub): State<Hub>) -> Result<Response, HubError> {
    let text = hub.scrape_metrics().await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        )],
        text,
    )
        .into_response())
}

impl Hub {
    /// The metrics, with the gauges read from storage now, in the Prometheus text format.
    pub async fn scrape_metrics(&self) -> Result<String, HubError> {
        let metrics = self.metrics();
        let store = self.store();
        let size = store.log_size().await?;
        let checkpoint = store.latest_checkpoint().await?;
        let covered = checkpoint.as_ref().map_or(0, |c| c.size);
        metrics
            .unintegrated
            .set(i64::try_from(size.saturating_sub(covered)).unwrap_or(i64::MAX));
        if let Some(c) = &checkpoint {
            let age = Utc::now().signed_duration_since(c.signed_at);
            metrics
                .checkpoint_age
                .set(age.num_milliseconds().max(0) as f64 / 1000.0);
        }
        metrics
            .webhook_backlog
            .set(i64::try_from(store.webhook_backlog().await?).unwrap_or(i64::MAX));
        metrics
            .encode()
            .map_err(|_| HubError::internal("encoding the metrics"))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Metrics, MetricsToken};

    #[test]
    fn a_metrics_token_admits_itself_only_and_refuses_short_ones() {
        let token = MetricsToken::new("s3cret-token-for-the-scraper\n").unwrap();
        assert!(token.admits("s3cret-token-for-the-scraper"));
        assert!(!token.admits("s3cret-token-for-the-scrapeR"));
        assert!(!token.admits(""));
        assert!(MetricsToken::new("short").is_err());
    }

    #[test]
    fn a_request_counts_under_its_route_template_and_a_refusal_as_rate_limited() {
        let metrics = Metrics::new();
        metrics.request("GET", "/v1/consents/{id}", 200, Duration::from_millis(3));
        metrics.request("POST", "/v1/data-requests", 429, Duration::from_millis(1));
        let text = metrics.encode().unwrap();
        assert!(
            text.contains(
                r#"renkei_http_requests_total{method="GET",route="/v1/consents/{id}",status="200"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"renkei_rate_limited_total{method="POST",route="/v1/data-requests"} 1"#
            ),
            "{text}"
        );
        assert!(!text.contains(r#"renkei_rate_limited_total{method="GET""#));
    }
}
