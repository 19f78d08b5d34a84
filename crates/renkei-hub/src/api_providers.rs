//! The HTTP API of the operators' vocabulary and provider registry (`accounts/providers.rs`),
//! and of publishing a registered service's purposes. Routes are declared in `api.rs`; the
//! handlers and their OpenAPI operations live here.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use renkei_domain::{ProviderId, ServiceId};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::accounts::{
    CategoryRegistration, ProviderRegistration, ProviderRegistrationView, PurposeDeclaration,
};
use crate::api_identity::PROBLEM;
use crate::auth::OperatorCaller;
use crate::catalogue::{CategoryView, ProviderView, PurposeView};
use crate::problem::{ApiJson, ApiPath, Problem};
use crate::{Hub, HubError};

/// The registry's schemas for the API document.
#[derive(OpenApi)]
#[openapi(components(schemas(
    CategoryRegistration,
    ProviderRegistration,
    ProviderRegistrationView,
    ProviderView,
    PublishedPurpose
)))]
pub struct ProvidersApiDoc;

/// Add a data category to the vocabulary (an id already there is refused).
#[utoipa::path(post, path = "/v1/operator/categories", request_body = CategoryRegistration, security(("operator" = [])),
    responses((status = 201, body = CategoryView), (status = 400, body = Problem, content_type = PROBLEM), (status = 401, body = Problem, content_type = PROBLEM), (status = 415, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn register_category(
    State(hub): State<Hub>,
    OperatorCaller(operator): OperatorCaller,
    ApiJson(body): ApiJson<CategoryRegistration>,
) -> Result<Response, HubError> {
    let c = hub.register_category(&operator, body).await?;
    let view = CategoryView {
        id: c.id.to_string(),
        name_ja: c.name.ja,
        name_en: c.name.en,
        special_care: c.special_care,
        location: c.location,
    };
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// Register a data provider: pending, and sent no grant, until an operator approves it.
#[utoipa::path(post, path = "/v1/operator/providers", request_body = ProviderRegistration, security(("operator" = [])),
    responses((status = 201, body = ProviderRegistrationView), (status = 400, body = Problem, content_type = PROBLEM), (status = 401, body = Problem, content_type = PROBLEM), (status = 404, description = "A category outside the vocabulary (`unknown-category`)", body = Problem, content_type = PROBLEM), (status = 415, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn register_provider(
    State(hub): State<Hub>,
    OperatorCaller(operator): OperatorCaller,
    ApiJson(body): ApiJson<ProviderRegistration>,
) -> Result<Response, HubError> {
    let provider = hub.register_provider(&operator, body).await?;
    Ok((
        StatusCode::CREATED,
        Json(ProviderRegistrationView::from(provider)),
    )
        .into_response())
}

/// Every registered provider, whatever its status: what operators review.
#[utoipa::path(get, path = "/v1/operator/providers", security(("operator" = [])),
    responses((status = 200, body = Vec<ProviderRegistrationView>), (status = 401, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn provider_registrations(
    State(hub): State<Hub>,
    OperatorCaller(_operator): OperatorCaller,
) -> Result<Json<Vec<ProviderRegistrationView>>, HubError> {
    Ok(Json(
        hub.provider_registrations()
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

fn provider_id(s: &str) -> Result<ProviderId, HubError> {
    ProviderId::new(s).map_err(|e| HubError::Malformed(e.to_string()))
}

/// Approve a provider: it is sent grants from the next decision on.
#[utoipa::path(post, path = "/v1/operator/providers/{id}/approve", params(("id" = String, Path)), security(("operator" = [])),
    responses((status = 204, description = "Approved"), (status = 400, body = Problem, content_type = PROBLEM), (status = 401, body = Problem, content_type = PROBLEM), (status = 404, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn approve_provider(
    State(hub): State<Hub>,
    OperatorCaller(operator): OperatorCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, HubError> {
    hub.approve_provider(&operator, &provider_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Suspend a provider: no request from now on sends it a grant.
#[utoipa::path(post, path = "/v1/operator/providers/{id}/suspend", params(("id" = String, Path)), security(("operator" = [])),
    responses((status = 204, description = "Suspended"), (status = 400, body = Problem, content_type = PROBLEM), (status = 401, body = Problem, content_type = PROBLEM), (status = 404, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn suspend_provider(
    State(hub): State<Hub>,
    OperatorCaller(operator): OperatorCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, HubError> {
    hub.suspend_provider(&operator, &provider_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A purpose as published: its current version (unchanged when nothing the resident is
/// asked changed).
#[derive(Serialize, ToSchema)]
pub(crate) struct PublishedPurpose {
    service: String,
    purpose: PurposeView,
}

/// Publish a purpose of a registered service: a new purpose, or a new version of one when
/// anything the resident is asked changed (consents to the old version then no longer
/// serve, and residents are asked again); the same purpose again changes nothing.
#[utoipa::path(post, path = "/v1/operator/services/{id}/purposes", params(("id" = String, Path)), request_body = PurposeDeclaration, security(("operator" = [])),
    responses((status = 200, body = PublishedPurpose), (status = 400, body = Problem, content_type = PROBLEM), (status = 401, body = Problem, content_type = PROBLEM), (status = 404, body = Problem, content_type = PROBLEM), (status = 415, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn publish_purpose(
    State(hub): State<Hub>,
    OperatorCaller(operator): OperatorCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<PurposeDeclaration>,
) -> Result<Json<PublishedPurpose>, HubError> {
    let service = ServiceId::new(id).map_err(|e| HubError::Malformed(e.to_string()))?;
    let p = hub.publish_purpose(&operator, &service, body).await?;
    Ok(Json(PublishedPurpose {
        service: service.to_string(),
        purpose: PurposeView::from(p),
    }))
}
