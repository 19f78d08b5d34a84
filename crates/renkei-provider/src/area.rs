//! Area lists (`POST /renkei/v1/area-fetch`): under a declared emergency the hub sends an
//! area grant, and the provider, which holds the addresses, selects every entry of the
//! granted categories inside the area, signs and seals each one to the responder on its
//! own, and names it by the resident's code at this provider, so the hub can record the
//! release in that resident's history without learning where they live.
//!
//! Entries are signed and sealed on blocking threads, a share each, so a list of ten
//! thousand is ready in the time the machine's cores take for it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use renkei_domain::{Area, AreaCode, CategoryId, MAX_AREA_ENTRIES};
use renkei_protocol::envelope::EnvelopeContext;
use renkei_protocol::grant::{AreaAnswer, AreaAnswerEntry, AreaGrantClaims, GrantError};
use renkei_protocol::keys::SigningKey;
use renkei_protocol::payload::sign_and_seal;
use serde_json::{Map, Value};

use crate::kit::access_log::{AccessLine, GrantFacts};
use crate::{Provider, Records, RecordsError, refuse};

/// One entry of a list inside an area, before it is sealed.
#[derive(Debug, Clone, PartialEq)]
pub struct AreaEntry {
    /// The resident's code at this provider (what the resident gave it, see the hub's
    /// `GET /v1/me/provider-codes`).
    pub subject: String,
    /// What is released, category by category.
    pub data: Map<String, Value>,
}

/// Whether the place a record names lies inside `area`: a mesh code (JIS X 0410) or a
/// district, as the provider keeps it. A place that is not a code lies nowhere.
pub fn place_in_area(area: &Area, place: &str) -> bool {
    place
        .trim()
        .parse::<AreaCode>()
        .is_ok_and(|p| area.covers(&p))
}

async fn area_fetch(State(p): State<Arc<Provider>>, headers: HeaderMap) -> Response {
    let grant = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match answer_area(&p, grant).await {
        Ok(r) | Err(r) => r,
    }
}

/// The area route, merged into the provider's router.
#[expect(
    clippy::disallowed_methods,
    reason = "a provider's own server, outside the hub's route table: the route is \
              authenticated by the area grant it carries"
)]
pub(crate) fn routes() -> axum::Router<Arc<Provider>> {
    axum::Router::new().route("/renkei/v1/area-fetch", axum::routing::post(area_fetch))
}

async fn answer_area(p: &Provider, grant: Option<&str>) -> Result<Response, Response> {
    let refused = |outcome: &str| {
        p.stats.refused.fetch_add(1, Ordering::Relaxed);
        outcome.to_owned()
    };
    let Some(token) = grant else {
        p.record(&refused("grant-missing"), None).await?;
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "grant-missing",
            "a hub-signed area grant is required",
        ));
    };
    let claims = match p.verifier.verify_area(token.trim(), chrono::Utc::now()) {
        Ok(claims) => claims,
        Err(e) => {
            if e == GrantError::Replayed {
                p.stats.refused_replayed.fetch_add(1, Ordering::Relaxed);
            }
            p.record(&refused(e.code()), None).await?;
            return Err(refuse(StatusCode::UNAUTHORIZED, e.code(), &e.to_string()));
        }
    };
    // INVARIANT: only categories this provider lists by area are read, only inside the area.
    if let Some(other) = claims.categories.iter().find(|c| !p.records.serves_area(c)) {
        p.record(&refused("category-not-served"), None).await?;
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "category-not-served",
            &format!("category `{other}` is not listed by area here"),
        ));
    }
    if !p.delay.is_zero() {
        tokio::time::sleep(p.delay).await;
    }
    let entries = match p.records.in_area(&claims.area, &claims.categories).await {
        Ok(entries) if entries.len() <= MAX_AREA_ENTRIES => entries,
        Ok(_) => {
            p.record(&refused("too-many-entries"), None).await?;
            return Err(refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                "too-many-entries",
                &format!("more than {MAX_AREA_ENTRIES} entries: ask for a smaller area"),
            ));
        }
        Err(e) => {
            tracing::error!(error = %e, "the provider's records could not be read");
            p.record(&refused("records-unavailable"), None).await?;
            return Err(refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "records-unavailable",
                "the provider cannot read its records now",
            ));
        }
    };
    let sealed = seal_all(p.signing_key.clone(), &claims, entries).await;
    let entries = match sealed {
        Ok(entries) => entries,
        Err(e) => {
            tracing::error!(error = %e, "the provider could not seal an area list");
            return Err(refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "signing-unavailable",
                "the provider cannot sign its answer now",
            ));
        }
    };
    // The provider's own record: a line per resident released, synced before the answer.
    if let Some(log) = &p.access_log {
        let at = chrono::Utc::now();
        let lines: Vec<AccessLine> = entries
            .iter()
            .map(|e| AccessLine {
                at,
                outcome: "served".into(),
                grant: Some(area_facts(&claims, &e.subject)),
            })
            .collect();
        if let Err(e) = log.append_all(&lines).await {
            tracing::error!(error = %e, "the provider's access log could not be written");
            return Err(refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "access-log-unavailable",
                "the provider cannot record this access",
            ));
        }
    }
    p.stats.served.fetch_add(1, Ordering::Relaxed);
    Ok(axum::Json(AreaAnswer { entries }).into_response())
}

fn area_facts(claims: &AreaGrantClaims, subject: &str) -> GrantFacts {
    GrantFacts {
        jti: claims.jti,
        request_id: claims.request_id.to_string(),
        service: claims.service.to_string(),
        purpose: claims.purpose.to_string(),
        consent: None,
        basis: claims.basis.clone(),
        categories: claims.categories.iter().map(ToString::to_string).collect(),
        reference: subject.to_owned(),
    }
}

/// Signs and seals every entry to the service, on one blocking thread per core.
async fn seal_all(
    key: SigningKey,
    claims: &AreaGrantClaims,
    entries: Vec<AreaEntry>,
) -> Result<Vec<AreaAnswerEntry>, String> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let share = entries.len().div_ceil(threads).max(1);
    let context = EnvelopeContext {
        provider: claims.aud.clone(),
        request: claims.request_id,
    };
    let mut tasks = Vec::new();
    let mut entries = entries.into_iter();
    loop {
        let chunk: Vec<AreaEntry> = entries.by_ref().take(share).collect();
        if chunk.is_empty() {
            break;
        }
        let (key, context, claims) = (key.clone(), context.clone(), claims.clone());
        tasks.push(tokio::task::spawn_blocking(move || {
            let now = chrono::Utc::now();
            chunk
                .into_iter()
                .map(|entry| {
                    let categories: Vec<CategoryId> = claims
                        .categories
                        .iter()
                        .filter(|c| entry.data.contains_key(c.as_str()))
                        .cloned()
                        .collect();
                    let data = serde_json::json!({ "data": entry.data });
                    sign_and_seal(
                        &key,
                        &claims.service_hpke_key,
                        &context,
                        &claims.service,
                        &categories,
                        data,
                        now,
                    )
                    .map(|payload| AreaAnswerEntry {
                        subject: entry.subject,
                        categories,
                        payload,
                    })
                    .map_err(|e| e.to_string())
                })
                .collect::<Result<Vec<_>, String>>()
        }));
    }
    let mut sealed = Vec::new();
    for task in tasks {
        sealed.extend(task.await.map_err(|e| e.to_string())??);
    }
    Ok(sealed)
}

/// A register held in memory (tests, the benchmark): entries with their place, their
/// resident's code at this provider and their data, for the categories it lists.
pub struct MemoryRegister {
    pub categories: Vec<CategoryId>,
    /// `(subject, place, data by category)`.
    pub entries: Vec<(String, String, Map<String, Value>)>,
}

#[async_trait::async_trait]
impl Records for MemoryRegister {
    async fn lookup(
        &self,
        reference: &str,
        categories: &[CategoryId],
    ) -> Result<Option<Value>, RecordsError> {
        Ok(self
            .entries
            .iter()
            .find(|(subject, _, _)| subject == reference)
            .map(|(_, _, data)| {
                let picked: Map<String, Value> = categories
                    .iter()
                    .filter_map(|c| data.get(c.as_str()).map(|v| (c.to_string(), v.clone())))
                    .collect();
                serde_json::json!({ "reference": reference, "data": picked })
            }))
    }

    fn serves(&self, category: &CategoryId) -> bool {
        self.categories.contains(category)
    }

    fn serves_area(&self, category: &CategoryId) -> bool {
        self.categories.contains(category)
    }

    async fn in_area(
        &self,
        area: &Area,
        categories: &[CategoryId],
    ) -> Result<Vec<AreaEntry>, RecordsError> {
        Ok(self
            .entries
            .iter()
            .filter(|(_, place, _)| place_in_area(area, place))
            .filter_map(|(subject, _, data)| {
                let picked: Map<String, Value> = categories
                    .iter()
                    .filter_map(|c| data.get(c.as_str()).map(|v| (c.to_string(), v.clone())))
                    .collect();
                (!picked.is_empty()).then(|| AreaEntry {
                    subject: subject.clone(),
                    data: picked,
                })
            })
            .collect())
    }
}
