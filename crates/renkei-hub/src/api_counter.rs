//! The HTTP API of the city's counter (`counter.rs`) and of statutory representatives
//! (`representatives.rs`). Routes are declared in `api.rs`; the handlers and their OpenAPI
//! operations live here.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::accounts::ResidentRequestBody;
use crate::api_identity::PROBLEM;
use crate::auth::OperatorCaller;
use crate::consents::{ConsentView, GrantConsentBody};
use crate::counter::{
    CounterReceiptView, CounterSessionView, InPersonCheck, OpenCounterSessionBody, ReceiptBody,
};
use crate::problem::{ApiJson, ApiPath, Problem};
use crate::representatives::{RepresentativeBody, RepresentativeView};
use crate::{Hub, HubError};

/// The counter's and representatives' schemas for the API document.
#[derive(OpenApi)]
#[openapi(components(schemas(
    OpenCounterSessionBody,
    InPersonCheck,
    CounterSessionView,
    CounterSessionDetail,
    CounterReceiptView,
    ReceiptBody,
    RepresentativeBody,
    RepresentativeView
)))]
pub struct CounterApiDoc;

/// A counter session and its resident's consents.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CounterSessionDetail {
    pub session: CounterSessionView,
    pub consents: Vec<ConsentView>,
}

/// Open a counter session for a resident verified in person: the card certificate read at
/// the kiosk (the answer to an enrolment challenge), or an identity document staff saw (its
/// kind, and the name and birth date it shows). Counter staff and operators only; logged as
/// their act.
#[utoipa::path(post, path = "/v1/counter/sessions", request_body = OpenCounterSessionBody, security(("operator" = [])),
    responses((status = 201, body = CounterSessionView), (status = 400, body = Problem, content_type = PROBLEM), (status = 401, body = Problem, content_type = PROBLEM),
        (status = 403, description = "The card certificate was refused", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No single enrolled resident has this name and birth date", body = Problem, content_type = PROBLEM),
        (status = 415, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn open_session(
    State(hub): State<Hub>,
    OperatorCaller(staff): OperatorCaller,
    ApiJson(body): ApiJson<OpenCounterSessionBody>,
) -> Result<Response, HubError> {
    let session = hub.open_counter_session(&staff, body).await?;
    Ok((StatusCode::CREATED, Json(session)).into_response())
}

/// One of the caller's open counter sessions, and its resident's consents.
#[utoipa::path(get, path = "/v1/counter/sessions/{id}", params(("id" = uuid::Uuid, Path)), security(("operator" = [])),
    responses((status = 200, body = CounterSessionDetail), (status = 400, body = Problem, content_type = PROBLEM), (status = 401, body = Problem, content_type = PROBLEM),
        (status = 403, description = "The session is over", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such session of the caller's", body = Problem, content_type = PROBLEM)))]
pub(crate) async fn session(
    State(hub): State<Hub>,
    OperatorCaller(staff): OperatorCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CounterSessionDetail>, HubError> {
    let (session, consents) = hub.counter_session_details(&staff, &id).await?;
    Ok(Json(CounterSessionDetail { session, consents }))
}

/// Give a consent for the session's resident (channel `counter`, the staff member as actor),
/// answered with its counter receipt.
#[utoipa::path(post, path = "/v1/counter/sessions/{id}/consents", params(("id" = uuid::Uuid, Path)), request_body = GrantConsentBody, security(("operator" = [])),
    responses((status = 201, body = CounterReceiptView), (status = 400, body = Problem, content_type = PROBLEM), (status = 401, body = Problem, content_type = PROBLEM),
        (status = 403, description = "The session is over, the service is not approved, or a minor's consent to special-care data needs their representative", body = Problem, content_type = PROBLEM),
        (status = 404, body = Problem, content_type = PROBLEM),
        (status = 409, description = "The resident already consents to this purpose version", body = Problem, content_type = PROBLEM),
        (status = 415, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn grant_consent(
    State(hub): State<Hub>,
    OperatorCaller(staff): OperatorCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<GrantConsentBody>,
) -> Result<Response, HubError> {
    let receipt = hub.counter_grant_consent(&staff, &id, body).await?;
    Ok((StatusCode::CREATED, Json(receipt)).into_response())
}

/// Revoke one of the session's resident's consents, answered with its counter receipt.
#[utoipa::path(post, path = "/v1/counter/sessions/{id}/consents/{consent}/revoke", params(("id" = uuid::Uuid, Path), ("consent" = uuid::Uuid, Path)), security(("operator" = [])),
    responses((status = 200, body = CounterReceiptView), (status = 400, body = Problem, content_type = PROBLEM), (status = 401, body = Problem, content_type = PROBLEM),
        (status = 403, description = "The session is over", body = Problem, content_type = PROBLEM),
        (status = 404, body = Problem, content_type = PROBLEM),
        (status = 409, description = "The consent is not active", body = Problem, content_type = PROBLEM)))]
pub(crate) async fn revoke_consent(
    State(hub): State<Hub>,
    OperatorCaller(staff): OperatorCaller,
    ApiPath((id, consent)): ApiPath<(String, String)>,
) -> Result<Json<CounterReceiptView>, HubError> {
    Ok(Json(
        hub.counter_revoke_consent(&staff, &id, &consent).await?,
    ))
}

/// File a disclosure, correction, deletion or suspension request for the session's
/// resident, answered with its counter receipt.
#[utoipa::path(post, path = "/v1/counter/sessions/{id}/requests", params(("id" = uuid::Uuid, Path)), request_body = ResidentRequestBody, security(("operator" = [])),
    responses((status = 201, body = CounterReceiptView), (status = 400, body = Problem, content_type = PROBLEM), (status = 401, body = Problem, content_type = PROBLEM),
        (status = 403, description = "The session is over", body = Problem, content_type = PROBLEM),
        (status = 404, body = Problem, content_type = PROBLEM),
        (status = 415, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn file_request(
    State(hub): State<Hub>,
    OperatorCaller(staff): OperatorCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ResidentRequestBody>,
) -> Result<Response, HubError> {
    let receipt = hub.counter_file_request(&staff, &id, body).await?;
    Ok((StatusCode::CREATED, Json(receipt)).into_response())
}

/// The printed form of a counter receipt this hub signed: one A4 page (PDF) with a QR code
/// that opens the public check page.
#[utoipa::path(post, path = "/v1/counter/receipts/pdf", request_body = ReceiptBody, security(("operator" = [])),
    responses((status = 200, description = "The page", content_type = "application/pdf", body = Vec<u8>),
        (status = 400, description = "Not a counter receipt this hub signed", body = Problem, content_type = PROBLEM),
        (status = 401, body = Problem, content_type = PROBLEM), (status = 415, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn receipt_pdf(
    State(hub): State<Hub>,
    OperatorCaller(_): OperatorCaller,
    ApiJson(body): ApiJson<ReceiptBody>,
) -> Result<Response, HubError> {
    let pdf = hub.counter_receipt_pdf(&body.receipt).await?;
    Ok(([(header::CONTENT_TYPE, "application/pdf")], pdf).into_response())
}

/// Register a statutory representative (親権者 of a minor, 成年後見人), with a reference to
/// the evidence seen: they act for the resident as a proxy with full scope, a parent until
/// the child's 18th birthday.
#[utoipa::path(post, path = "/v1/operator/representatives", request_body = RepresentativeBody, security(("operator" = [])),
    responses((status = 201, body = RepresentativeView), (status = 400, body = Problem, content_type = PROBLEM), (status = 401, body = Problem, content_type = PROBLEM),
        (status = 403, description = "A parent of someone not a minor, or of unknown age; a resident as their own representative", body = Problem, content_type = PROBLEM),
        (status = 404, description = "An unknown resident", body = Problem, content_type = PROBLEM),
        (status = 415, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn register_representative(
    State(hub): State<Hub>,
    OperatorCaller(operator): OperatorCaller,
    ApiJson(body): ApiJson<RepresentativeBody>,
) -> Result<Response, HubError> {
    let view = hub.register_representative(&operator, body).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// End a statutory representation (the court's decision, a change of custody).
#[utoipa::path(post, path = "/v1/operator/representatives/{id}/end", params(("id" = uuid::Uuid, Path)), security(("operator" = [])),
    responses((status = 200, body = RepresentativeView), (status = 400, body = Problem, content_type = PROBLEM), (status = 401, body = Problem, content_type = PROBLEM),
        (status = 404, description = "No active representation with this id", body = Problem, content_type = PROBLEM)))]
pub(crate) async fn end_representative(
    State(hub): State<Hub>,
    OperatorCaller(operator): OperatorCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<RepresentativeView>, HubError> {
    Ok(Json(hub.end_representative(&operator, &id).await?))
}
