//! A data provider's side of Renkei (データ保有者): an HTTP endpoint that answers only
//! hub-signed, audience-bound, short-lived, single-use grants, signs every answer with the
//! provider's registered key and seals it to the requesting service's key, so the hub relays
//! ciphertext it can neither read nor forge (`renkei_protocol::payload`).
//!
//! [`kit`] is what a city runs beside a provider's own system: a configuration file maps
//! each data category to a query over the provider's database or to a CSV file. The demo
//! town's providers run on it; tests and benchmarks also use [`MemoryRecords`]. The crate
//! owns the provider protocol's server half; it must not know the hub's storage or
//! consents — the grant is all a provider trusts.
//!
//! A grant with the basis `data-subject-access` is the resident's own disclosure (開示): the
//! provider answers it with every category it holds of those the grant names, sealed to the
//! key the grant carries, which is the resident's (the hub cannot read it either).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use renkei_domain::{CategoryId, ProviderId};
use renkei_protocol::envelope::EnvelopeContext;
use renkei_protocol::grant::{GrantClaims, GrantError, GrantVerifier};
use renkei_protocol::keys::{Jwks, SigningKey};
use renkei_protocol::payload::{PayloadSealError, sign_and_seal};

pub mod area;
pub mod kit;

use kit::access_log::{AccessLine, AccessLog, GrantFacts};

/// Where a provider keeps its residents' records.
#[async_trait::async_trait]
pub trait Records: Send + Sync + 'static {
    /// The record of `reference` restricted to `categories` (as JSON), or `None` if unknown.
    async fn lookup(
        &self,
        reference: &str,
        categories: &[CategoryId],
    ) -> Result<Option<serde_json::Value>, RecordsError>;

    /// Whether this provider holds `category` at all; a grant naming another is refused
    /// before anything is read.
    fn serves(&self, _category: &CategoryId) -> bool {
        true
    }

    /// Whether this provider lists `category` by area (area lists under a declared
    /// emergency); an area grant naming another is refused before anything is read.
    fn serves_area(&self, _category: &CategoryId) -> bool {
        false
    }

    /// Every entry of `categories` whose place lies inside `area`, named by the resident's
    /// code at this provider: an entry holds at least one of the categories, and only them.
    async fn in_area(
        &self,
        _area: &renkei_domain::Area,
        categories: &[CategoryId],
    ) -> Result<Vec<area::AreaEntry>, RecordsError> {
        match categories.first() {
            Some(c) => Err(RecordsError::NotServed(c.clone())),
            None => Ok(Vec::new()),
        }
    }
}

/// Why records could not be read. Messages name a file, a column or an SQLSTATE, never a
/// record or a reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordsError {
    #[error("the records are unavailable: {0}")]
    Unavailable(String),
    #[error("the query failed (SQLSTATE `{0}`)")]
    Query(String),
    #[error(
        "column `{column}` has type `{type_name}`, which the kit does not read: cast it to text"
    )]
    ColumnType { column: String, type_name: String },
    #[error("category `{0}` is not one this provider serves")]
    NotServed(CategoryId),
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

/// One provider: its id, the hub's keys it trusts, the key it signs its answers with (the
/// one it registered with the city), its records.
pub struct Provider {
    pub verifier: GrantVerifier,
    signing_key: SigningKey,
    pub records: Arc<dyn Records>,
    /// Extra time before answering, to stand in for a slow back end (benchmarks, tests).
    pub delay: Duration,
    pub stats: ProviderStats,
    access_log: Option<AccessLog>,
}

impl Provider {
    pub fn new(
        id: ProviderId,
        hub_keys: Jwks,
        signing_key: SigningKey,
        records: Arc<dyn Records>,
    ) -> Arc<Self> {
        Self::builder(id, hub_keys, signing_key, records).build()
    }

    pub fn with_delay(
        id: ProviderId,
        hub_keys: Jwks,
        signing_key: SigningKey,
        records: Arc<dyn Records>,
        delay: Duration,
    ) -> Arc<Self> {
        Self::builder(id, hub_keys, signing_key, records)
            .delay(delay)
            .build()
    }

    pub fn builder(
        id: ProviderId,
        hub_keys: Jwks,
        signing_key: SigningKey,
        records: Arc<dyn Records>,
    ) -> ProviderBuilder {
        ProviderBuilder(Self {
            verifier: GrantVerifier::new(id, hub_keys),
            signing_key,
            records,
            delay: Duration::ZERO,
            stats: ProviderStats::default(),
            access_log: None,
        })
    }

    /// Writes the access-log line for a grant, if this provider keeps a log. A line that
    /// cannot be written stops the answer: a provider that cannot account for a release
    /// does not release.
    async fn record(&self, outcome: &str, grant: Option<&GrantClaims>) -> Result<(), Response> {
        let Some(log) = &self.access_log else {
            return Ok(());
        };
        let line = AccessLine {
            at: chrono::Utc::now(),
            outcome: outcome.to_owned(),
            grant: grant.map(|g| GrantFacts {
                jti: g.jti,
                request_id: g.request_id.to_string(),
                service: g.service.to_string(),
                purpose: g.purpose.to_string(),
                consent: g.consent.map(|c| c.to_string()),
                basis: g.basis.clone(),
                categories: g.categories.iter().map(ToString::to_string).collect(),
                reference: g.sub.clone(),
            }),
        };
        log.append(&line).await.map_err(|e| {
            tracing::error!(error = %e, "the provider's access log could not be written");
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "access-log-unavailable",
                "the provider cannot record this access",
            )
        })
    }
}

/// Sets up a [`Provider`].
pub struct ProviderBuilder(Provider);

impl ProviderBuilder {
    pub fn delay(mut self, delay: Duration) -> Self {
        self.0.delay = delay;
        self
    }

    pub fn access_log(mut self, log: AccessLog) -> Self {
        self.0.access_log = Some(log);
        self
    }

    pub fn build(self) -> Arc<Provider> {
        Arc::new(self.0)
    }
}

/// `POST /renkei/v1/fetch` with `Authorization: Bearer <grant>`, and
/// `POST /renkei/v1/area-fetch` with an area grant ([`area`]).
#[expect(
    clippy::disallowed_methods,
    reason = "a provider's own server, outside the hub's route table: its one route is \
              authenticated by the grant it carries"
)]
pub fn router(provider: Arc<Provider>) -> Router {
    Router::new()
        .route("/renkei/v1/fetch", post(fetch))
        .merge(area::routes())
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
    let grant = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    p.answer_grant(grant).await
}

impl Provider {
    /// Answers a grant (`None`: none came) as `POST /renkei/v1/fetch` does: the one path both
    /// an inbound request and an outbound poll take.
    pub async fn answer_grant(&self, grant: Option<&str>) -> Response {
        match answer(self, grant).await {
            Ok(response) | Err(response) => response,
        }
    }
}

async fn answer(p: &Provider, grant: Option<&str>) -> Result<Response, Response> {
    let Some(token) = grant else {
        p.stats.refused.fetch_add(1, Ordering::Relaxed);
        p.record("grant-missing", None).await?;
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "grant-missing",
            "a hub-signed grant is required",
        ));
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
            p.record(e.code(), None).await?;
            return Err(refuse(StatusCode::UNAUTHORIZED, e.code(), &e.to_string()));
        }
    };
    // INVARIANT: only what the grant covers is read, and only categories this provider holds.
    // The data subject's own access asks for everything the provider may hold of them: it is
    // answered with the categories of those it serves, never refused for the others.
    let categories: Vec<CategoryId> = if claims.is_data_subject_access() {
        claims
            .categories
            .iter()
            .filter(|c| p.records.serves(c))
            .cloned()
            .collect()
    } else {
        claims.categories.clone()
    };
    if let Some(other) = claims.categories.iter().find(|c| !p.records.serves(c))
        && !claims.is_data_subject_access()
    {
        p.stats.refused.fetch_add(1, Ordering::Relaxed);
        p.record("category-not-served", Some(&claims)).await?;
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "category-not-served",
            &RecordsError::NotServed(other.clone()).to_string(),
        ));
    }
    if !p.delay.is_zero() {
        tokio::time::sleep(p.delay).await;
    }
    let record = match p.records.lookup(&claims.sub, &categories).await {
        Ok(Some(record)) => record,
        Ok(None) => {
            p.stats.refused.fetch_add(1, Ordering::Relaxed);
            p.record("record-not-found", Some(&claims)).await?;
            return Err(refuse(
                StatusCode::NOT_FOUND,
                "record-not-found",
                "no record for this reference",
            ));
        }
        Err(e) => {
            p.stats.refused.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "the provider's records could not be read");
            p.record("records-unavailable", Some(&claims)).await?;
            return Err(refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "records-unavailable",
                "the provider cannot read its records now",
            ));
        }
    };
    let record = coarsen_locations(record, &claims.location);
    let context = EnvelopeContext {
        provider: p.verifier.provider().clone(),
        request: claims.request_id,
    };
    let signed = sign_and_seal(
        &p.signing_key,
        &claims.service_hpke_key,
        &context,
        &claims.service,
        &categories,
        record,
        chrono::Utc::now(),
    );
    match signed {
        Ok(sealed) => {
            p.record("served", Some(&claims)).await?;
            p.stats.served.fetch_add(1, Ordering::Relaxed);
            Ok(axum::Json(sealed).into_response())
        }
        Err(PayloadSealError::Seal(e)) => Err(refuse(
            StatusCode::BAD_REQUEST,
            "bad-service-key",
            &e.to_string(),
        )),
        Err(PayloadSealError::Sign(e)) => {
            tracing::error!(error = %e, "the provider could not sign its answer");
            Err(refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "signing-unavailable",
                "the provider cannot sign its answer now",
            ))
        }
    }
}

/// The record with each location category the grant names coarsened to its precision, in the
/// shape [`Records::lookup`] answers (`{"data": {category: value}}`); a record of another
/// shape is withheld whole when the grant names any location category.
///
/// INVARIANT: nothing finer than the grant's precision of a location category is sealed.
fn coarsen_locations(
    mut record: serde_json::Value,
    location: &std::collections::BTreeMap<CategoryId, renkei_domain::LocationPrecision>,
) -> serde_json::Value {
    if location.is_empty() {
        return record;
    }
    let Some(data) = record
        .get_mut("data")
        .and_then(serde_json::Value::as_object_mut)
    else {
        return serde_json::Value::Null;
    };
    for (category, precision) in location {
        if let Some(value) = data.get_mut(category.as_str()) {
            *value = renkei_domain::location::coarsen(value, *precision);
        }
    }
    record
}

/// Records held in memory as `reference → {category → value}`.
pub struct MemoryRecords(
    pub std::collections::HashMap<String, serde_json::Map<String, serde_json::Value>>,
);

#[async_trait::async_trait]
impl Records for MemoryRecords {
    async fn lookup(
        &self,
        reference: &str,
        categories: &[CategoryId],
    ) -> Result<Option<serde_json::Value>, RecordsError> {
        let Some(all) = self.0.get(reference) else {
            return Ok(None);
        };
        let picked: serde_json::Map<String, serde_json::Value> = categories
            .iter()
            .filter_map(|c| all.get(c.as_str()).map(|v| (c.to_string(), v.clone())))
            .collect();
        Ok(Some(
            serde_json::json!({ "reference": reference, "data": picked }),
        ))
    }
}
