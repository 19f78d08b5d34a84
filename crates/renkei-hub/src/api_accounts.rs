//! The HTTP API of the accounts (`accounts/`): proxies, residents' requests, operator
//! sessions and the operators' service registry. Routes are declared in `api.rs`; the
//! handlers and their OpenAPI operations live here.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use renkei_domain::{
    ProxyAppointment, ProxyScope, ResidentRequest, ResidentRequestStatus, ServiceId,
};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::accounts::{
    ProxyInvitation, ProxyInvitationBody, PurposeDeclaration, RegisteredService,
    ResidentRequestBody, ServiceRegistration,
};
use crate::api_identity::{PROBLEM, SessionToken, no_store, session_token};
use crate::auth::{OperatorCaller, ProxyPermission, ResidentCaller};
use crate::problem::{ApiJson, ApiPath, Problem};
use crate::{Hub, HubError};

/// The accounts' schemas for the API document (their operations come with their routes, in
/// `api.rs`).
#[derive(OpenApi)]
#[openapi(components(schemas(
    ProxyInvitationBody,
    crate::accounts::ProxyScopeSchema,
    ProxyInvitation,
    AppointmentView,
    ResidentRequestBody,
    RequestView,
    ServiceRegistration,
    crate::accounts::ControllerContactSchema,
    crate::accounts::PostalAddressSchema,
    PurposeDeclaration,
    RegisteredService,
    RiskView,
    Approval,
    RequestAnswer
)))]
pub struct AccountsApiDoc;

// --- proxies ---

/// A proxy appointment as the resident or the proxy sees it.
#[derive(Serialize, ToSchema)]
pub(crate) struct AppointmentView {
    id: String,
    label: String,
    #[schema(value_type = crate::accounts::ProxyScopeSchema)]
    scope: ProxyScope,
    appointed_at: chrono::DateTime<Utc>,
    ended_at: Option<chrono::DateTime<Utc>>,
}

impl From<ProxyAppointment> for AppointmentView {
    fn from(a: ProxyAppointment) -> Self {
        Self {
            id: a.id.to_string(),
            label: a.label,
            scope: a.scope,
            appointed_at: a.appointed_at,
            ended_at: a.ended_at,
        }
    }
}

/// Invite someone to act for me within a scope; they accept with the code.
#[utoipa::path(post, path = "/v1/me/proxies", request_body = ProxyInvitationBody, security(("resident" = [])),
    responses((status = 201, body = ProxyInvitation), (status = 400, body = Problem, content_type = PROBLEM), (status = 401, body = Problem, content_type = PROBLEM), (status = 403, body = Problem, content_type = PROBLEM), (status = 415, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn invite_proxy(
    State(hub): State<Hub>,
    ResidentCaller(me): ResidentCaller,
    ApiJson(body): ApiJson<ProxyInvitationBody>,
) -> Result<Response, HubError> {
    let invitation = hub.invite_proxy(&me, body).await?;
    Ok((StatusCode::CREATED, Json(invitation)).into_response())
}

/// The proxies I appointed, ended ones too.
#[utoipa::path(get, path = "/v1/me/proxies", security(("resident" = [])),
    responses((status = 200, body = Vec<AppointmentView>), (status = 401, body = Problem, content_type = PROBLEM), (status = 403, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn my_proxies(
    State(hub): State<Hub>,
    ResidentCaller(me): ResidentCaller,
) -> Result<Json<Vec<AppointmentView>>, HubError> {
    Ok(Json(
        hub.proxies(&me)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

/// End an appointment now: the proxy's sessions stop at once.
#[utoipa::path(post, path = "/v1/me/proxies/{id}/end", params(("id" = uuid::Uuid, Path)), security(("resident" = [])),
    responses((status = 200, body = AppointmentView), (status = 400, body = Problem, content_type = PROBLEM), (status = 401, body = Problem, content_type = PROBLEM), (status = 403, body = Problem, content_type = PROBLEM), (status = 404, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn end_proxy(
    State(hub): State<Hub>,
    ResidentCaller(me): ResidentCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AppointmentView>, HubError> {
    let id = id
        .parse()
        .map_err(|_| HubError::Malformed(format!("`{id}` is not an appointment id")))?;
    Ok(Json(hub.end_proxy(&me, id).await?.into()))
}

/// Accept an invitation to act for someone (signed in as myself).
#[utoipa::path(post, path = "/v1/proxy-invitations/{code}/accept", params(("code" = uuid::Uuid, Path)), security(("resident" = [])),
    responses((status = 200, body = AppointmentView), (status = 400, body = Problem, content_type = PROBLEM), (status = 401, body = Problem, content_type = PROBLEM), (status = 403, body = Problem, content_type = PROBLEM), (status = 404, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn accept_invitation(
    State(hub): State<Hub>,
    ResidentCaller(me): ResidentCaller,
    ApiPath(code): ApiPath<String>,
) -> Result<Json<AppointmentView>, HubError> {
    let code = code
        .parse()
        .map_err(|_| HubError::Malformed(format!("`{code}` is not an invitation code")))?;
    Ok(Json(hub.accept_proxy_invitation(&me, code).await?.into()))
}

/// The residents I may act for.
#[utoipa::path(get, path = "/v1/me/acting-for", security(("resident" = [])),
    responses((status = 200, body = Vec<AppointmentView>), (status = 401, body = Problem, content_type = PROBLEM), (status = 403, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn acting_for(
    State(hub): State<Hub>,
    ResidentCaller(me): ResidentCaller,
) -> Result<Json<Vec<AppointmentView>>, HubError> {
    me.require(ProxyPermission::ManageAccount, None)?;
    Ok(Json(
        hub.acting_for(me.resident)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

/// A session acting for the resident of one appointment; everything done in it is marked
/// as done by a proxy.
#[utoipa::path(post, path = "/v1/me/acting-for/{id}/session", params(("id" = uuid::Uuid, Path)), security(("resident" = [])),
    responses((status = 200, body = SessionToken), (status = 400, body = Problem, content_type = PROBLEM), (status = 401, body = Problem, content_type = PROBLEM), (status = 403, body = Problem, content_type = PROBLEM), (status = 404, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn proxy_session(
    State(hub): State<Hub>,
    ResidentCaller(me): ResidentCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, HubError> {
    let id = id
        .parse()
        .map_err(|_| HubError::Malformed(format!("`{id}` is not an appointment id")))?;
    Ok(session_token(hub.proxy_session_token(&me, id).await?, None))
}

// --- resident requests ---

#[derive(Serialize, ToSchema)]
pub(crate) struct RequestView {
    id: String,
    kind: String,
    service: Option<String>,
    /// The data category it concerns, if it names one.
    category: Option<String>,
    details: String,
    status: String,
    /// `resident`, or `proxy` when a proxy filed it.
    filed_by: String,
    filed_at: chrono::DateTime<Utc>,
    updated_at: chrono::DateTime<Utc>,
    response: Option<String>,
    /// When a first answer is due.
    due_at: chrono::DateTime<Utc>,
    /// Past its due date and still open.
    overdue: bool,
    /// Why the due date was moved, if it was.
    extension_reason: Option<String>,
    /// Who a correction, deletion or suspension went to, and what each answered.
    recipients: Vec<crate::rights::RecipientView>,
}

impl RequestView {
    fn new(
        r: ResidentRequest,
        recipients: Vec<renkei_domain::RequestRecipient>,
        now: chrono::DateTime<Utc>,
    ) -> Self {
        Self {
            id: r.id.to_string(),
            kind: r.kind.as_str().to_owned(),
            service: r.service.as_ref().map(ToString::to_string),
            category: r.category.as_ref().map(ToString::to_string),
            overdue: r.is_overdue(now),
            details: r.details,
            status: r.status.as_str().to_owned(),
            filed_by: match r.filed_by {
                renkei_domain::Actor::Proxy { .. } => "proxy".into(),
                _ => "resident".into(),
            },
            filed_at: r.filed_at,
            updated_at: r.updated_at,
            response: r.response,
            due_at: r.due_at,
            extension_reason: r.extension_reason,
            recipients: recipients.into_iter().map(Into::into).collect(),
        }
    }
}

impl Hub {
    /// The API's view of these requests, each with its recipients' answers.
    pub(crate) async fn request_views(
        &self,
        requests: Vec<ResidentRequest>,
    ) -> Result<Vec<RequestView>, HubError> {
        let mut recipients = self.recipients_of(&requests).await?;
        let now = Utc::now();
        Ok(requests
            .into_iter()
            .map(|r| {
                let mine = recipients.remove(&r.id).unwrap_or_default();
                RequestView::new(r, mine, now)
            })
            .collect())
    }
}

/// My disclosure, correction, deletion and suspension requests, with their status.
#[utoipa::path(get, path = "/v1/me/requests", security(("resident" = [])),
    responses((status = 200, body = Vec<RequestView>), (status = 401, body = Problem, content_type = PROBLEM), (status = 403, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn my_requests(
    State(hub): State<Hub>,
    ResidentCaller(me): ResidentCaller,
) -> Result<Json<Vec<RequestView>>, HubError> {
    let requests = hub.requests_of(&me).await?;
    Ok(Json(hub.request_views(requests).await?))
}

/// File a disclosure, correction, deletion or suspension request (開示・訂正・削除・利用停止).
#[utoipa::path(post, path = "/v1/me/requests", request_body = ResidentRequestBody, security(("resident" = [])),
    responses((status = 201, body = RequestView), (status = 400, body = Problem, content_type = PROBLEM), (status = 401, body = Problem, content_type = PROBLEM), (status = 403, body = Problem, content_type = PROBLEM), (status = 404, body = Problem, content_type = PROBLEM), (status = 415, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn file_request(
    State(hub): State<Hub>,
    ResidentCaller(me): ResidentCaller,
    ApiJson(body): ApiJson<ResidentRequestBody>,
) -> Result<Response, HubError> {
    let request = hub.file_request(&me, body).await?;
    let view = hub
        .request_views(vec![request])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| HubError::internal("a filed request has no view"))?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

// --- operators ---

/// Trade a signed-in identity's session for an operator session, if it is an operator.
#[utoipa::path(post, path = "/v1/operator/session", security(("resident" = [])),
    responses((status = 200, body = SessionToken), (status = 401, body = Problem, content_type = PROBLEM), (status = 403, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn operator_session(
    State(hub): State<Hub>,
    ResidentCaller(me): ResidentCaller,
) -> Result<Response, HubError> {
    Ok(session_token(hub.operator_token(&me).await?, None))
}

/// Register a service (pending until approved); the client secret is shown once.
#[utoipa::path(post, path = "/v1/operator/services", request_body = ServiceRegistration, security(("operator" = [])),
    responses((status = 201, body = RegisteredService), (status = 400, body = Problem, content_type = PROBLEM), (status = 401, body = Problem, content_type = PROBLEM), (status = 415, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn register_service(
    State(hub): State<Hub>,
    OperatorCaller(operator): OperatorCaller,
    ApiJson(body): ApiJson<ServiceRegistration>,
) -> Result<Response, HubError> {
    let registered = hub.register_service(&operator, body).await?;
    Ok((StatusCode::CREATED, no_store(registered)).into_response())
}

#[derive(Serialize, ToSchema)]
pub(crate) struct RiskView {
    /// Acknowledge with this key.
    key: String,
    kind: String,
    /// The purpose the risk is about; none for a risk of the whole service (a shared sector).
    purpose: Option<String>,
    #[schema(value_type = Object)]
    detail: serde_json::Value,
}

fn service_id(s: &str) -> Result<ServiceId, HubError> {
    ServiceId::new(s).map_err(|e| HubError::Malformed(e.to_string()))
}

/// The approval checklist: risks an operator must confirm before approving.
#[utoipa::path(get, path = "/v1/operator/services/{id}/review", params(("id" = String, Path)), security(("operator" = [])),
    responses((status = 200, body = Vec<RiskView>), (status = 400, body = Problem, content_type = PROBLEM), (status = 401, body = Problem, content_type = PROBLEM), (status = 404, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn review_service(
    State(hub): State<Hub>,
    OperatorCaller(_operator): OperatorCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Vec<RiskView>>, HubError> {
    let flags = hub.review_service(&service_id(&id)?).await?;
    Ok(Json(
        flags
            .into_iter()
            .map(|f| RiskView {
                key: f.key(),
                kind: f.kind().to_owned(),
                purpose: f.purpose().map(ToString::to_string),
                detail: serde_json::to_value(&f).unwrap_or_default(),
            })
            .collect(),
    ))
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct Approval {
    /// The keys of every flagged risk, confirmed.
    #[serde(default)]
    acknowledged: BTreeSet<String>,
}

/// Approve a service; refused until every flagged risk is acknowledged.
#[utoipa::path(post, path = "/v1/operator/services/{id}/approve", params(("id" = String, Path)), request_body = Approval, security(("operator" = [])),
    responses((status = 204, description = "Approved"), (status = 400, body = Problem, content_type = PROBLEM), (status = 401, body = Problem, content_type = PROBLEM), (status = 403, body = Problem, content_type = PROBLEM), (status = 404, body = Problem, content_type = PROBLEM), (status = 415, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn approve_service(
    State(hub): State<Hub>,
    OperatorCaller(operator): OperatorCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<Approval>,
) -> Result<Response, HubError> {
    hub.approve_service(&operator, &service_id(&id)?, &body.acknowledged)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Suspend a service: its tokens and data requests stop at once.
#[utoipa::path(post, path = "/v1/operator/services/{id}/suspend", params(("id" = String, Path)), security(("operator" = [])),
    responses((status = 204, description = "Suspended"), (status = 400, body = Problem, content_type = PROBLEM), (status = 401, body = Problem, content_type = PROBLEM), (status = 404, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn suspend_service(
    State(hub): State<Hub>,
    OperatorCaller(operator): OperatorCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, HubError> {
    hub.suspend_service(&operator, &service_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Residents' requests waiting for an answer (or all of them).
#[utoipa::path(get, path = "/v1/operator/requests", security(("operator" = [])),
    responses((status = 200, body = Vec<RequestView>), (status = 401, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn operator_requests(
    State(hub): State<Hub>,
    OperatorCaller(_operator): OperatorCaller,
) -> Result<Json<Vec<RequestView>>, HubError> {
    let requests = hub.store().requests(None).await?;
    Ok(Json(hub.request_views(requests).await?))
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct RequestAnswer {
    /// `received`, `in_progress`, `completed` or `rejected`.
    status: String,
    response: Option<String>,
}

/// Answer a resident's request.
#[utoipa::path(post, path = "/v1/operator/requests/{id}", params(("id" = String, Path)), request_body = RequestAnswer, security(("operator" = [])),
    responses((status = 200, body = RequestView), (status = 400, body = Problem, content_type = PROBLEM), (status = 401, body = Problem, content_type = PROBLEM), (status = 404, body = Problem, content_type = PROBLEM), (status = 415, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn answer_request(
    State(hub): State<Hub>,
    OperatorCaller(operator): OperatorCaller,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<RequestAnswer>,
) -> Result<Json<RequestView>, HubError> {
    let id = id
        .parse()
        .map_err(|_| HubError::Malformed(format!("`{id}` is not a request id")))?;
    let status = ResidentRequestStatus::parse(&body.status)
        .ok_or_else(|| HubError::Malformed(format!("unknown status `{}`", body.status)))?;
    let answered = hub
        .answer_request(&operator, id, status, body.response.as_deref())
        .await?;
    hub.request_views(vec![answered])
        .await?
        .into_iter()
        .next()
        .map(Json)
        .ok_or_else(|| HubError::internal("an answered request has no view"))
}
