//! The HTTP API of declared emergencies (`emergency.rs`): the public listing, and the
//! operators' steps. Routes are declared in `api.rs`; the handlers and their OpenAPI
//! operations live here.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use renkei_domain::{Declaration, DeclarationId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::api_identity::PROBLEM;
use crate::area_lists::{AreaListBody, AreaListEntry, AreaListResponse, AreaProviderResult};
use crate::auth::{DataRequester, OperatorCaller};
use crate::emergency::{DeclarationBody, RenewalBody};
use crate::problem::{ApiJson, ApiPath, ApiQuery, Problem};
use crate::{Hub, HubError};

/// The emergencies' schemas for the API document.
#[derive(OpenApi)]
#[openapi(components(schemas(
    DeclarationBody,
    RenewalBody,
    DeclarationView,
    RenewalView,
    AreaListBody,
    AreaListResponse,
    AreaListEntry,
    AreaProviderResult
)))]
pub struct EmergencyApiDoc;

/// A declared emergency as anyone may see it: its scope and window, never a resident, and
/// not which operators took its steps (the log says that).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeclarationView {
    pub id: String,
    /// `pending` (waiting for a second operator), `scheduled`, `in_force` or `ended`, now.
    pub state: String,
    pub reason: String,
    pub legal_basis: String,
    pub legal_basis_ja: String,
    pub legal_basis_en: String,
    pub categories: Vec<String>,
    pub services: Vec<String>,
    /// 地域メッシュ codes and `district:<id>` entries.
    pub area: Vec<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub declared_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// A later end waiting for a second operator's confirmation.
    pub renewal: Option<RenewalView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RenewalView {
    pub ends_at: DateTime<Utc>,
    pub proposed_at: DateTime<Utc>,
}

impl DeclarationView {
    pub fn at(d: &Declaration, now: DateTime<Utc>) -> Self {
        Self {
            id: d.id.to_string(),
            state: d.state_at(now).as_str().to_owned(),
            reason: d.reason.clone(),
            legal_basis: d.legal_basis.as_str().to_owned(),
            legal_basis_ja: d.legal_basis.citation_ja().to_owned(),
            legal_basis_en: d.legal_basis.citation_en().to_owned(),
            categories: d.categories.iter().map(ToString::to_string).collect(),
            services: d.services.iter().map(ToString::to_string).collect(),
            area: d.area.codes().iter().map(ToString::to_string).collect(),
            starts_at: d.starts_at,
            ends_at: d.ends_at,
            declared_at: d.declared.at,
            confirmed_at: d.confirmed.as_ref().map(|s| s.at),
            ended_at: d.ended.as_ref().map(|s| s.at),
            renewal: d.renewal.as_ref().map(|r| RenewalView {
                ends_at: r.ends_at,
                proposed_at: r.proposed.at,
            }),
        }
    }
}

fn view(d: &Declaration) -> Json<DeclarationView> {
    Json(DeclarationView::at(d, Utc::now()))
}

fn declaration_id(s: &str) -> Result<DeclarationId, HubError> {
    s.parse()
        .map_err(|_| HubError::Malformed(format!("`{s}` is not a declaration id")))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// At most this many (1 to 500; 100 if left out).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// Declared emergencies, in force and past, the latest declared first. Public: no
/// personal data.
#[utoipa::path(get, path = "/v1/declarations", params(ListQuery),
    responses((status = 200, body = Vec<DeclarationView>), (status = 400, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn declarations(
    State(hub): State<Hub>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Vec<DeclarationView>>, HubError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=renkei_store::emergency::MAX_DECLARATIONS_LISTED).contains(&limit) {
        return Err(HubError::Malformed(format!(
            "`limit` must be 1 to 500, not `{limit}`"
        )));
    }
    let now = Utc::now();
    Ok(Json(
        hub.declarations(limit)
            .await?
            .iter()
            .map(|d| DeclarationView::at(d, now))
            .collect(),
    ))
}

/// One declared emergency.
#[utoipa::path(get, path = "/v1/declarations/{id}", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = DeclarationView), (status = 400, body = Problem, content_type = PROBLEM), (status = 404, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn declaration(
    State(hub): State<Hub>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<DeclarationView>, HubError> {
    Ok(view(&hub.declaration(declaration_id(&id)?).await?))
}

/// Declare an emergency. It releases nothing until a second, different operator confirms it.
#[utoipa::path(post, path = "/v1/operator/declarations", request_body = DeclarationBody, security(("operator" = [])),
    responses((status = 201, body = DeclarationView), (status = 400, body = Problem, content_type = PROBLEM), (status = 401, body = Problem, content_type = PROBLEM), (status = 404, body = Problem, content_type = PROBLEM), (status = 409, body = Problem, content_type = PROBLEM), (status = 415, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn declare(
    State(hub): State<Hub>,
    OperatorCaller(operator): OperatorCaller,
    ApiJson(body): ApiJson<DeclarationBody>,
) -> Result<Response, HubError> {
    let declared = hub.declare_emergency(&operator, body).await?;
    Ok((StatusCode::CREATED, view(&declared)).into_response())
}

/// Confirm a declaration: refused to the operator who declared it.
#[utoipa::path(post, path = "/v1/operator/declarations/{id}/confirm", params(("id" = uuid::Uuid, Path)), security(("operator" = [])),
    responses((status = 200, body = DeclarationView), (status = 400, body = Problem, content_type = PROBLEM), (status = 401, body = Problem, content_type = PROBLEM), (status = 404, body = Problem, content_type = PROBLEM), (status = 409, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn confirm(
    State(hub): State<Hub>,
    OperatorCaller(operator): OperatorCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<DeclarationView>, HubError> {
    Ok(view(
        &hub.confirm_emergency(&operator, declaration_id(&id)?)
            .await?,
    ))
}

/// Propose a later end (at most 72 hours from now); a second operator confirms it.
#[utoipa::path(post, path = "/v1/operator/declarations/{id}/renewal", params(("id" = uuid::Uuid, Path)), request_body = RenewalBody, security(("operator" = [])),
    responses((status = 200, body = DeclarationView), (status = 400, body = Problem, content_type = PROBLEM), (status = 401, body = Problem, content_type = PROBLEM), (status = 404, body = Problem, content_type = PROBLEM), (status = 409, body = Problem, content_type = PROBLEM), (status = 415, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn propose_renewal(
    State(hub): State<Hub>,
    OperatorCaller(operator): OperatorCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<RenewalBody>,
) -> Result<Json<DeclarationView>, HubError> {
    Ok(view(
        &hub.propose_emergency_renewal(&operator, declaration_id(&id)?, body.ends_at)
            .await?,
    ))
}

/// Confirm the renewal waiting: refused to the operator who proposed it.
#[utoipa::path(post, path = "/v1/operator/declarations/{id}/renewal/confirm", params(("id" = uuid::Uuid, Path)), security(("operator" = [])),
    responses((status = 200, body = DeclarationView), (status = 400, body = Problem, content_type = PROBLEM), (status = 401, body = Problem, content_type = PROBLEM), (status = 404, body = Problem, content_type = PROBLEM), (status = 409, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn confirm_renewal(
    State(hub): State<Hub>,
    OperatorCaller(operator): OperatorCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<DeclarationView>, HubError> {
    Ok(view(
        &hub.confirm_emergency_renewal(&operator, declaration_id(&id)?)
            .await?,
    ))
}

/// End a declaration now, or withdraw a pending one.
#[utoipa::path(post, path = "/v1/operator/declarations/{id}/end", params(("id" = uuid::Uuid, Path)), security(("operator" = [])),
    responses((status = 200, body = DeclarationView), (status = 400, body = Problem, content_type = PROBLEM), (status = 401, body = Problem, content_type = PROBLEM), (status = 404, body = Problem, content_type = PROBLEM), (status = 409, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn end(
    State(hub): State<Hub>,
    OperatorCaller(operator): OperatorCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<DeclarationView>, HubError> {
    Ok(view(
        &hub.end_emergency(&operator, declaration_id(&id)?).await?,
    ))
}

/// Ask, under a declaration in force that names this service, for every entry of its
/// categories inside an area (e.g. the evacuation-support register in these mesh codes).
/// Each provider selects and seals the entries; the hub records one access record per
/// resident released (basis `emergency:<declaration>`) before relaying any of them.
#[utoipa::path(post, path = "/v1/area-lists", request_body = AreaListBody, security(("service" = [])),
    responses((status = 200, description = "Granted: the entries relayed, each sealed to the service", body = AreaListResponse),
        (status = 400, body = Problem, content_type = PROBLEM), (status = 401, body = Problem, content_type = PROBLEM),
        (status = 403, description = "Denied (recorded): `service-not-in-emergency`, `emergency-not-in-force`, `category-not-in-emergency`, `area-not-in-emergency`, …", body = Problem, content_type = PROBLEM),
        (status = 404, body = Problem, content_type = PROBLEM), (status = 415, body = Problem, content_type = PROBLEM), (status = 429, body = Problem, content_type = PROBLEM),
        (status = 503, description = "Storage unavailable: nothing was released", body = Problem, content_type = PROBLEM, headers(("Retry-After" = u32, description = "Seconds to wait before trying again")))))]
pub(crate) async fn area_list(
    State(hub): State<Hub>,
    caller: DataRequester,
    ApiJson(body): ApiJson<AreaListBody>,
) -> Result<Json<AreaListResponse>, HubError> {
    // Any token of the service will do, a code-flow one too: the list rests on the
    // declaration naming the service, never on the resident a token was issued for.
    hub.check_categories(&body.categories).await?;
    Ok(Json(
        hub.request_area_list(&caller.service, caller.token_id, body)
            .await?,
    ))
}
