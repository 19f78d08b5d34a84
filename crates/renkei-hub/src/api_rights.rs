//! The HTTP API of residents' requests routed to whoever holds the data (`rights.rs`): the
//! services' and providers' listings and answers, and the operators' deadline summary and
//! extensions. Routes are declared in `api.rs`; the handlers and their OpenAPI operations
//! live here.

use axum::Json;
use axum::extract::State;
use chrono::Utc;
use renkei_domain::{Recipient, ServiceId, ServiceStatus};
use utoipa::OpenApi;

use crate::api_accounts::RequestView;
use crate::api_identity::PROBLEM;
use crate::auth::{DataRequester, OperatorCaller};
use crate::problem::{ApiJson, ApiPath, Problem};
use crate::provider_sync::ProviderCaller;
use crate::rights::{
    ExtensionBody, OverdueRequestView, RecipientAnswerBody, RecipientView, RequestSummary,
    RoutedRequestView,
};
use crate::{Hub, HubError};

/// The routed requests' schemas for the API document (their operations come with their
/// routes, in `api.rs`).
#[derive(OpenApi)]
#[openapi(components(schemas(
    RecipientView,
    RoutedRequestView,
    RecipientAnswerBody,
    ExtensionBody,
    OverdueRequestView,
    RequestSummary
)))]
pub struct RightsApiDoc;

/// The service a service token speaks for, as these routes need it: a client-credentials
/// token not revoked, of a service still approved. A data request's decision checks both in
/// its own transaction; these routes have no decision to, so they check here.
async fn approved_service(hub: &Hub, caller: DataRequester) -> Result<ServiceId, HubError> {
    if let Some(jti) = &caller.token_id
        && hub.store().token_revoked(jti, None).await?
    {
        return Err(HubError::TokenInactive);
    }
    match hub.store().service(&caller.service).await? {
        Some(s) if s.status == ServiceStatus::Approved => Ok(s.id),
        _ => Err(HubError::ServiceNotApproved(caller.service.to_string())),
    }
}

/// The correction, deletion and suspension requests routed to the calling service that it
/// has not answered finally, oldest first, each naming the resident by the service's
/// pairwise subject. The same requests reach the service's webhook as
/// `urn:renkei:event:rights-request` events.
#[utoipa::path(get, path = "/v1/service/rights-requests", security(("service" = [])),
    responses((status = 200, body = Vec<RoutedRequestView>), (status = 401, body = Problem, content_type = PROBLEM), (status = 403, description = "The service is suspended", body = Problem, content_type = PROBLEM)))]
pub(crate) async fn service_rights_requests(
    State(hub): State<Hub>,
    caller: DataRequester,
) -> Result<Json<Vec<RoutedRequestView>>, HubError> {
    let service = approved_service(&hub, caller).await?;
    Ok(Json(hub.routed_to(&Recipient::Service(service)).await?))
}

/// The calling service answers a request routed to it: `done`, `refused` with a reason, or
/// `partly` with a note (which a final answer may follow). The resident reads the answer.
#[utoipa::path(post, path = "/v1/service/rights-requests/{id}/answer", params(("id" = String, Path)), request_body = RecipientAnswerBody, security(("service" = [])),
    responses((status = 200, body = RecipientView), (status = 400, body = Problem, content_type = PROBLEM), (status = 401, body = Problem, content_type = PROBLEM),
        (status = 403, description = "Already answered finally, or the service is suspended", body = Problem, content_type = PROBLEM), (status = 404, body = Problem, content_type = PROBLEM), (status = 415, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn service_answer(
    State(hub): State<Hub>,
    caller: DataRequester,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<RecipientAnswerBody>,
) -> Result<Json<RecipientView>, HubError> {
    let service = approved_service(&hub, caller).await?;
    Ok(Json(
        hub.answer_as_recipient(&Recipient::Service(service), &id, body)
            .await?,
    ))
}

/// The correction, deletion and suspension requests routed to the calling provider that it
/// has not answered finally, oldest first, each naming the resident by their code at this
/// provider (as the locator API does).
#[utoipa::path(get, path = "/v1/provider/rights-requests", security(("provider" = [])),
    responses((status = 200, body = Vec<RoutedRequestView>), (status = 401, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn provider_rights_requests(
    State(hub): State<Hub>,
    ProviderCaller(provider): ProviderCaller,
) -> Result<Json<Vec<RoutedRequestView>>, HubError> {
    Ok(Json(hub.routed_to(&Recipient::Provider(provider)).await?))
}

/// The calling provider answers a request routed to it. `done` to a deletion also removes
/// the provider's locators of the request's categories for that resident.
#[utoipa::path(post, path = "/v1/provider/rights-requests/{id}/answer", params(("id" = String, Path)), request_body = RecipientAnswerBody, security(("provider" = [])),
    responses((status = 200, body = RecipientView), (status = 400, body = Problem, content_type = PROBLEM), (status = 401, body = Problem, content_type = PROBLEM),
        (status = 403, description = "Already answered finally", body = Problem, content_type = PROBLEM), (status = 404, body = Problem, content_type = PROBLEM), (status = 415, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn provider_answer(
    State(hub): State<Hub>,
    ProviderCaller(provider): ProviderCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<RecipientAnswerBody>,
) -> Result<Json<RecipientView>, HubError> {
    Ok(Json(
        hub.answer_as_recipient(&Recipient::Provider(provider), &id, body)
            .await?,
    ))
}

/// The operators' summary of residents' requests: how many are open, which are past their
/// due date (the longest overdue first), how many were extended.
#[utoipa::path(get, path = "/v1/operator/request-summary", security(("operator" = [])),
    responses((status = 200, body = RequestSummary), (status = 401, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn request_summary(
    State(hub): State<Hub>,
    OperatorCaller(_operator): OperatorCaller,
) -> Result<Json<RequestSummary>, HubError> {
    Ok(Json(hub.request_summary(Utc::now()).await?))
}

/// Move an open request's due date later, with a reason the resident reads (an entry of the
/// log).
#[utoipa::path(post, path = "/v1/operator/requests/{id}/extension", params(("id" = String, Path)), request_body = ExtensionBody, security(("operator" = [])),
    responses((status = 200, body = RequestView), (status = 400, body = Problem, content_type = PROBLEM), (status = 401, body = Problem, content_type = PROBLEM),
        (status = 403, description = "The request is closed", body = Problem, content_type = PROBLEM), (status = 404, body = Problem, content_type = PROBLEM), (status = 415, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn extend_request(
    State(hub): State<Hub>,
    OperatorCaller(operator): OperatorCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ExtensionBody>,
) -> Result<Json<RequestView>, HubError> {
    let id = id
        .parse()
        .map_err(|_| HubError::NotFound(format!("resident request `{id}`")))?;
    let extended = hub.extend_request(&operator, id, body).await?;
    hub.request_views(vec![extended])
        .await?
        .into_iter()
        .next()
        .map(Json)
        .ok_or_else(|| HubError::internal("an extended request has no view"))
}
