//! Area lists (issue 24): a responder service named by a declaration in force asks for every
//! entry of a list inside an area (`POST /v1/area-lists`), not one resident at a time.
//!
//! The hub holds no addresses, so it cannot select the residents itself: it decides the
//! request (`renkei_domain::decide_area_list`), sends each provider holding the categories an
//! area grant, and each provider selects the entries inside the area, seals each one to the
//! responder on its own, and names it by the resident's code at that provider. The hub maps
//! each code back to a resident within that provider's sector, then, in one transaction,
//! decides again and appends one access record per resident released (basis
//! `emergency:<declaration>`), and relays the entries only once that transaction is durable:
//! each resident finds the release in their verified history. An entry whose code names no
//! one, that holds a category the grant did not name, or that repeats one already taken,
//! is not relayed.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use chrono::Utc;
use futures_util::future::join_all;
use renkei_domain::{
    Area, AreaListRequest, CategoryId, DeclarationId, Provider, ProviderConnection,
    ProviderSubject, PurposeId, RequestId, Service, ServiceId,
};
use renkei_protocol::grant::{AreaAnswer, AreaAnswerEntry, AreaGrantClaims, sign_area_grant};
use renkei_store::{AreaListOutcome, AreaRelease, ReleasedEntry};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::broker::{SealedPayloadView, not_sealed, refusal};
use crate::{Hub, HubError, egress};

/// The most codes one area list may name (the grant carries them all).
pub const MAX_AREA_LIST_CODES: usize = 1_000;
/// The most the hub reads of one provider's area answer.
pub const AREA_ANSWER_LIMIT: u64 = 128 * 1024 * 1024;
/// How long a provider has to select, sign and seal its list.
pub const AREA_TIMEOUT: Duration = Duration::from_secs(30);

/// A responder's area list request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AreaListBody {
    /// The declaration in force the release rests on.
    pub declaration: uuid::Uuid,
    /// The responder's purpose (its records name it).
    #[schema(value_type = crate::schemas::Slug)]
    pub purpose: String,
    /// The categories wanted: all released by the declaration.
    #[schema(value_type = Vec<crate::schemas::Slug>, min_items = 1)]
    pub categories: Vec<String>,
    /// 地域メッシュ codes (JIS X 0410) or `district:<id>`, each inside the declaration's
    /// area; at most 1,000.
    #[schema(min_items = 1, max_items = 1000)]
    pub area: Vec<String>,
}

/// What an area list came to.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AreaListResponse {
    pub request_id: String,
    pub declaration: String,
    /// One per entry relayed, each sealed to the service on its own (open each as a data
    /// response's payload, with this request id and the entry's provider).
    pub entries: Vec<AreaListEntry>,
    /// Each provider asked, and what its part came to.
    pub providers: Vec<AreaProviderResult>,
    /// Entries a provider sent that were not relayed: their code names no resident at that
    /// provider, they hold a category not granted, or repeat an entry.
    pub not_relayed: u64,
}

/// One resident's entry at one provider.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AreaListEntry {
    pub provider: String,
    /// The resident, as this service knows them (pairwise subject).
    pub subject: String,
    pub categories: Vec<String>,
    /// The position of the resident's access record in the log.
    pub log_position: u64,
    pub payload: SealedPayloadView,
}

/// One provider's part of an area list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AreaProviderResult {
    pub provider: String,
    pub categories: Vec<String>,
    /// `ok`, or why its part is missing (as a data response's `status`).
    pub status: String,
    /// The entries it sent.
    pub entries: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

type AreaFetch = Result<Vec<AreaAnswerEntry>, (&'static str, String)>;

impl Hub {
    /// Decides, asks the providers, records one access record per resident and relays.
    pub async fn request_area_list(
        &self,
        service: &ServiceId,
        token_id: Option<String>,
        body: AreaListBody,
    ) -> Result<AreaListResponse, HubError> {
        self.limit_data_request(service)?;
        let request = parse(service, body)?;
        let id = request.id;
        let mut release = AreaRelease {
            request,
            token_id,
            entries: Vec::new(),
        };
        // Decided (and a denial recorded) before any provider is asked.
        if let AreaListOutcome::Denied { reason, .. } =
            self.store().record_area_list(&release, Utc::now()).await?
        {
            return Err(HubError::Denied {
                request: id,
                reason,
            });
        }
        let request = &release.request;
        let service = self
            .store()
            .service(service)
            .await?
            .ok_or_else(|| HubError::UnknownService(service.to_string()))?;
        let purpose_version = self
            .store()
            .current_purpose(&service.id, &request.purpose)
            .await?
            .map(|p| p.version)
            .ok_or_else(|| HubError::internal("a granted area list without a purpose"))?;
        let asked: Vec<(Provider, Vec<CategoryId>)> = self
            .store()
            .providers()
            .await?
            .into_iter()
            .filter(Provider::receives_grants)
            .filter_map(|p| {
                let categories: Vec<CategoryId> = request
                    .categories
                    .intersection(&p.categories)
                    .cloned()
                    .collect();
                (!categories.is_empty()).then_some((p, categories))
            })
            .collect();
        let fetches = asked.iter().map(|(provider, categories)| {
            self.area_from(request, &service, purpose_version, provider, categories)
        });
        let outcomes = join_all(fetches).await;

        let mut providers = Vec::new();
        let mut sent = 0_u64;
        let mut kept: Vec<AreaAnswerEntry> = Vec::new();
        let mut seen = HashSet::new();
        for ((provider, categories), outcome) in asked.iter().zip(outcomes) {
            let granted: BTreeSet<&CategoryId> = categories.iter().collect();
            let (status, count, detail) = match outcome {
                Ok(entries) => {
                    let count = entries.len() as u64;
                    sent += count;
                    for e in entries {
                        // INVARIANT: only entries naming a well-formed code, holding only
                        // categories this provider was granted, each once, go further.
                        let in_scope = !e.categories.is_empty()
                            && e.categories.iter().all(|c| granted.contains(c));
                        if in_scope
                            && ProviderSubject::new(e.subject.as_str()).is_ok()
                            && seen.insert((provider.id.clone(), e.subject.clone()))
                        {
                            release.entries.push(ReleasedEntry {
                                provider: provider.id.clone(),
                                subject: ProviderSubject::new(e.subject.as_str())
                                    .map_err(|e| HubError::internal(e.to_string()))?,
                                categories: e.categories.iter().cloned().collect(),
                            });
                            kept.push(e);
                        }
                    }
                    ("ok", count, None)
                }
                Err((status, detail)) => {
                    tracing::warn!(provider = %provider.id, status, "area list fetch failed");
                    (status, 0, Some(detail))
                }
            };
            providers.push(AreaProviderResult {
                provider: provider.id.to_string(),
                categories: categories.iter().map(ToString::to_string).collect(),
                status: status.to_owned(),
                entries: count,
                detail,
            });
        }
        // INVARIANT: nothing reaches the service before every released resident's record is
        // durable; the transaction decides again, so a declaration ended meanwhile releases
        // nothing.
        let (records, residents) = match self.store().record_area_list(&release, Utc::now()).await?
        {
            AreaListOutcome::Denied { reason, .. } => {
                return Err(HubError::Denied {
                    request: id,
                    reason,
                });
            }
            AreaListOutcome::Released { records, entries } => (records, entries),
        };
        tracing::info!(
            released = records.len(),
            sent,
            "area list recorded under a declaration"
        );
        let mut entries = Vec::with_capacity(kept.len());
        for ((released, answer), resident) in release.entries.iter().zip(kept).zip(residents) {
            let Some((resident, seq)) = resident else {
                continue;
            };
            entries.push(AreaListEntry {
                provider: released.provider.to_string(),
                subject: self.keys().subject(&service.sector, resident).to_string(),
                categories: answer.categories.iter().map(ToString::to_string).collect(),
                log_position: seq,
                payload: answer.payload.into(),
            });
        }
        Ok(AreaListResponse {
            request_id: id.to_string(),
            declaration: release.request.declaration.to_string(),
            not_relayed: sent.saturating_sub(entries.len() as u64),
            entries,
            providers,
        })
    }

    /// One provider's part: sign its area grant, post it, read its list.
    async fn area_from(
        &self,
        request: &AreaListRequest,
        service: &Service,
        purpose_version: u32,
        provider: &Provider,
        categories: &[CategoryId],
    ) -> AreaFetch {
        let ProviderConnection::Inbound { endpoint } = &provider.connection else {
            return Err((
                "provider-unreachable",
                "area lists reach inbound providers only".to_owned(),
            ));
        };
        let now = Utc::now().timestamp();
        let lifetime = i64::try_from(self.config().grant_lifetime.as_secs())
            .unwrap_or(30)
            .clamp(1, 60);
        let claims = AreaGrantClaims {
            iss: self.config().issuer.clone(),
            aud: provider.id.clone(),
            jti: uuid::Uuid::new_v4(),
            iat: now,
            exp: now + lifetime,
            request_id: request.id,
            service: request.service.clone(),
            purpose: request.purpose.clone(),
            purpose_version,
            categories: categories.to_vec(),
            area: request.area.clone(),
            service_hpke_key: service.hpke_public_key.clone(),
            emergency: request.declaration,
            basis: format!("emergency:{}", request.declaration),
        };
        let grant = match self
            .keys()
            .sign_with(move |key| sign_area_grant(key, &claims))
            .await
        {
            Ok(Ok(grant)) => grant,
            Ok(Err(e)) => {
                tracing::error!(provider = %provider.id, error = %e, "an area grant could not be signed");
                return Err(hub_failure());
            }
            Err(e) => {
                tracing::error!(provider = %provider.id, error = %e, "an area grant could not be signed");
                return Err(hub_failure());
            }
        };
        let unreachable = || {
            (
                "provider-unreachable",
                "the provider's endpoint is not an address the hub may reach".to_owned(),
            )
        };
        let url = format!("{}/renkei/v1/area-fetch", endpoint.trim_end_matches('/'));
        let url = reqwest::Url::parse(&url).map_err(|_| unreachable())?;
        if let Err(why) = egress::check_destination(&url, self.config().allow_local_network) {
            tracing::warn!(error = %why, "refused to send an area grant to a provider's endpoint");
            return Err(unreachable());
        }
        let response = self
            .http()
            .post(url)
            .bearer_auth(grant)
            .timeout(AREA_TIMEOUT)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    ("provider-timeout", "no answer in time".to_owned())
                } else {
                    (
                        "provider-unreachable",
                        "could not connect to the provider".to_owned(),
                    )
                }
            })?;
        let status = response.status();
        if !status.is_success() {
            let body = egress::read_limited(response, 16 * 1024)
                .await
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
            return Err(refusal(status.as_u16(), body.as_ref()));
        }
        let body = egress::read_limited(response, AREA_ANSWER_LIMIT)
            .await
            .map_err(|e| match e {
                egress::BodyError::TooLarge { limit } => (
                    "provider-answer-too-large",
                    format!("the provider's answer is larger than {limit} bytes"),
                ),
                egress::BodyError::Transport(e) if e.is_timeout() => (
                    "provider-timeout",
                    "the provider's answer did not arrive in time".to_owned(),
                ),
                egress::BodyError::Transport(_) => (
                    "provider-bad-answer",
                    "the provider's answer broke off".to_owned(),
                ),
            })?;
        serde_json::from_slice::<AreaAnswer>(&body)
            .map(|a| a.entries)
            .map_err(|_| not_sealed())
    }
}

fn hub_failure() -> (&'static str, String) {
    (
        "hub-failure",
        "the hub could not sign a grant for this provider".to_owned(),
    )
}

fn field(name: &str, e: impl std::fmt::Display) -> HubError {
    HubError::InvalidField {
        field: name.to_owned(),
        detail: e.to_string(),
    }
}

fn parse(service: &ServiceId, body: AreaListBody) -> Result<AreaListRequest, HubError> {
    let purpose = PurposeId::new(body.purpose).map_err(|e| HubError::Malformed(e.to_string()))?;
    if body.categories.is_empty() {
        return Err(HubError::Malformed(
            "`categories` must name at least one data category".into(),
        ));
    }
    let categories = body
        .categories
        .into_iter()
        .map(CategoryId::new)
        .collect::<Result<BTreeSet<_>, _>>()
        .map_err(|e| HubError::Malformed(e.to_string()))?;
    if body.area.len() > MAX_AREA_LIST_CODES {
        return Err(field(
            "area",
            format!(
                "an area list names at most {MAX_AREA_LIST_CODES} codes, not {}",
                body.area.len()
            ),
        ));
    }
    let area = Area::parse(body.area.iter().map(String::as_str)).map_err(|e| field("area", e))?;
    Ok(AreaListRequest {
        id: RequestId::from_uuid(uuid::Uuid::now_v7()),
        service: service.clone(),
        purpose,
        declaration: DeclarationId::from_uuid(body.declaration),
        categories,
        area,
    })
}
