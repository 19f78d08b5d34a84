//! A data provider's side of Renkei (データ保有者): an HTTP endpoint that answers only
//! hub-signed, audience-bound, short-lived, single-use grants, and seals every answer to the
//! requesting service's key so the hub relays ciphertext it cannot read.
//!
//! The demo town's registry, clinic and payment provider run this, and so do the tests and
//! benchmarks. It owns the provider protocol's server half; it must not know the hub's
//! storage or consents — the grant is all a provider trusts.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use renkei_domain::{CategoryId, ProviderId};
use renkei_protocol::envelope::{EnvelopeContext, seal};
use renkei_protocol::grant::{GrantError, GrantVerifier};
use renkei_protocol::keys::Jwks;

/// Where a provider keeps its residents' records.
pub trait Records: Send + Sync + 'static {
    /// The record of `reference` restricted to `categories` (as JSON), or `None` if unknown.
    fn lookup(&self, reference: &str, categories: &[CategoryId]) -> Option<serde_json::Value>;
}

/// What a provider has seen, for operators and tests.
#[derive(Debug, Default)]
pub struct ProviderStats {
    pub served: AtomicU64,
    pub refused: AtomicU64,
    pub refused_wrong_audience: AtomicU64,
    pub refused_replayed: AtomicU64,
    pub refused_expired: AtomicU64,
}

impl ProviderStats {
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

/// One provider: its id, the hub's keys it trusts, its records.
pub struct Provider {
    pub verifier: GrantVerifier,
    pub records: Arc<dyn Records>,
    /// Extra time before answering, to stand in for a slow back end (benchmarks, tests).
    pub delay: Duration,
    pub stats: ProviderStats,
}

impl Provider {
    pub fn new(id: ProviderId, hub_keys: Jwks, records: Arc<dyn Records>) -> Arc<Self> {
        Self::with_delay(id, hub_keys, records, Duration::ZERO)
    }

    pub fn with_delay(
        id: ProviderId,
        hub_keys: Jwks,
        records: Arc<dyn Records>,
        delay: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            verifier: GrantVerifier::new(id, hub_keys),
            records,
            delay,
            stats: ProviderStats::default(),
        })
    }
}

/// `POST /renkei/v1/fetch` with `Authorization: Bearer <grant>`.
#[expect(
    clippy::disallowed_methods,
    reason = "a provider's own server, outside the hub's route table: its one route is \
              authenticated by the grant it carries"
)]
pub fn router(provider: Arc<Provider>) -> Router {
    Router::new()
        .route("/renkei/v1/fetch", post(fetch))
        .with_state(provider)
}

fn refuse(status: StatusCode, code: &str, detail: &str) -> Response {
    let body = serde_json::json!({ "type": format!("/problems/{code}"), "title": code, "status": status.as_u16(), "detail": detail });
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}

async fn fetch(State(p): State<Arc<Provider>>, headers: HeaderMap) -> Response {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        p.stats.refused.fetch_add(1, Ordering::Relaxed);
        return refuse(
            StatusCode::UNAUTHORIZED,
            "grant-missing",
            "a hub-signed grant is required",
        );
    };
    let claims = match p.verifier.verify(token.trim(), chrono::Utc::now()) {
        Ok(claims) => claims,
        Err(e) => {
            p.stats.refused.fetch_add(1, Ordering::Relaxed);
            match e {
                GrantError::WrongAudience => p
                    .stats
                    .refused_wrong_audience
                    .fetch_add(1, Ordering::Relaxed),
                GrantError::Replayed => p.stats.refused_replayed.fetch_add(1, Ordering::Relaxed),
                GrantError::Expired => p.stats.refused_expired.fetch_add(1, Ordering::Relaxed),
                _ => 0,
            };
            return refuse(StatusCode::UNAUTHORIZED, e.code(), &e.to_string());
        }
    };
    if !p.delay.is_zero() {
        tokio::time::sleep(p.delay).await;
    }
    let Some(record) = p.records.lookup(&claims.sub, &claims.categories) else {
        p.stats.refused.fetch_add(1, Ordering::Relaxed);
        return refuse(
            StatusCode::NOT_FOUND,
            "record-not-found",
            "no record for this reference",
        );
    };
    let context = EnvelopeContext {
        provider: p.verifier.provider().clone(),
        request: claims.request_id,
    };
    let plaintext = record.to_string();
    match seal(&claims.service_hpke_key, &context, plaintext.as_bytes()) {
        Ok(sealed) => {
            p.stats.served.fetch_add(1, Ordering::Relaxed);
            axum::Json(sealed).into_response()
        }
        Err(e) => refuse(StatusCode::BAD_REQUEST, "bad-service-key", &e.to_string()),
    }
}

/// Records held in memory as `reference → {category → value}`.
pub struct MemoryRecords(
    pub std::collections::HashMap<String, serde_json::Map<String, serde_json::Value>>,
);

impl Records for MemoryRecords {
    fn lookup(&self, reference: &str, categories: &[CategoryId]) -> Option<serde_json::Value> {
        let all = self.0.get(reference)?;
        let picked: serde_json::Map<String, serde_json::Value> = categories
            .iter()
            .filter_map(|c| all.get(c.as_str()).map(|v| (c.to_string(), v.clone())))
            .collect();
        Some(serde_json::json!({ "reference": reference, "data": picked }))
    }
}
