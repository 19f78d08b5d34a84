//! The HTTP API of a resident's consents: listing them, saying yes to a purpose, reading one
//! with its history and its signed receipt, and revoking it. Routes are declared in
//! `api.rs`; the handlers and their OpenAPI operations live here (the rules, in
//! `consents.rs`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use renkei_domain::{ConsentChannel, ConsentId, ServiceId};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{ProxyPermission, ResidentCaller};
use crate::consents::{ConsentDetail, ConsentView, GrantConsentBody, GrantedConsent};
use crate::problem::{ApiJson, ApiPath, Problem};
use crate::{Hub, HubError};

/// The signed-in resident's consents, newest first. A proxy sees those of the services their
/// scope covers, if entrusted with managing consents or viewing the history (403 otherwise).
#[utoipa::path(get, path = "/v1/me/consents", security(("resident" = [])), responses((status = 200, body = Vec<ConsentView>), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn my_consents(
    State(hub): State<Hub>,
    ResidentCaller(me): ResidentCaller,
) -> Result<Json<Vec<ConsentView>>, HubError> {
    Ok(Json(hub.consents(&me).await?))
}

/// Say yes to one purpose of one service (never several at once).
#[utoipa::path(post, path = "/v1/me/consents", request_body = GrantConsentBody, security(("resident" = [])),
    responses((status = 415, body = Problem, content_type = "application/problem+json"), (status = 201, body = GrantedConsent), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn grant_consent(
    State(hub): State<Hub>,
    ResidentCaller(me): ResidentCaller,
    ApiJson(body): ApiJson<GrantConsentBody>,
) -> Result<Response, HubError> {
    let via = if hub.config().demo_mode {
        ConsentChannel::Demo
    } else {
        ConsentChannel::Portal
    };
    if let Ok(service) = ServiceId::new(body.service.clone()) {
        me.require(ProxyPermission::ManageConsents, Some(&service))?;
    }
    let granted = hub
        .grant_consent(me.resident, body, me.channel(via), me.actor())
        .await?;
    Ok((StatusCode::CREATED, Json(granted)).into_response())
}

/// One consent with its history (for a proxy, as for the list; a consent outside their scope
/// is not found).
#[utoipa::path(get, path = "/v1/me/consents/{id}", params(("id" = uuid::Uuid, Path)), security(("resident" = [])),
    responses((status = 200, body = ConsentDetail), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn my_consent(
    State(hub): State<Hub>,
    ResidentCaller(me): ResidentCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ConsentDetail>, HubError> {
    Ok(Json(hub.consent_detail(&me, consent_id(&id)?).await?))
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ReceiptView {
    /// Compact JWS; verify with `/.well-known/jwks.json`.
    receipt: String,
}

/// The consent's signed receipt (Kantara Consent Receipt v1.1 claims, as a JWS).
#[utoipa::path(get, path = "/v1/me/consents/{id}/receipt", params(("id" = uuid::Uuid, Path)), security(("resident" = [])),
    responses((status = 200, body = ReceiptView), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn my_receipt(
    State(hub): State<Hub>,
    ResidentCaller(me): ResidentCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ReceiptView>, HubError> {
    Ok(Json(ReceiptView {
        receipt: hub.receipt(&me, consent_id(&id)?).await?,
    }))
}

/// Stop a consent now. Once this answers, no data request that starts afterwards is served under it.
/// A proxy stops only consents of the services their scope covers (others are not found).
#[utoipa::path(post, path = "/v1/me/consents/{id}/revoke", params(("id" = uuid::Uuid, Path)), security(("resident" = [])),
    responses((status = 200, body = ConsentView), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn revoke_consent(
    State(hub): State<Hub>,
    ResidentCaller(me): ResidentCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ConsentView>, HubError> {
    Ok(Json(hub.revoke_consent(&me, consent_id(&id)?).await?))
}

fn consent_id(s: &str) -> Result<ConsentId, HubError> {
    s.parse()
        .map_err(|e: renkei_domain::IdError| HubError::Malformed(e.to_string()))
}
