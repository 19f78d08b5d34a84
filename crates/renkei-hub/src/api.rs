//! The HTTP API: routes, handlers and the OpenAPI document that describes them.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use renkei_domain::{
    AccessOutcome, AccessRecord, ConsentChannel, ConsentId, ResidentId, ServiceId,
};
use renkei_store::{AccessQuery, LogOrder};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::api_identity as id;
use crate::auth::{DataRequester, ProxyPermission, ResidentCaller, ResidentSession};
use crate::broker::{DataRequestBody, DataResponse, ProviderResult, SealedPayloadView};
use crate::consents::{
    ConsentDetail, ConsentEventView, ConsentView, GrantConsentBody, GrantedConsent,
};
use crate::problem::{ApiJson, ApiPath, ApiQuery, Problem, ProblemKind, ProblemTypeDoc};
use crate::routes::{Access, HubGuard, Proxies, RouteAccess, Routes};
use crate::{Hub, HubError};

/// Every route of the hub.
pub fn router(hub: Hub) -> Router {
    routed(hub).0
}

/// Every route of the hub, and who may call each: the API's part of the route table
/// (`routes.rs`). A route is added here, with its access, or nowhere.
pub fn routed(hub: Hub) -> (Router, Vec<RouteAccess>) {
    use Access::*;
    use Proxies::{Entrusted, Never};
    use ProxyPermission::*;
    let (router, table) = Routes::new(HubGuard(hub.clone()))
        .get("/healthz", Public, healthz)
        .get("/readyz", Public, readyz)
        .get("/openapi.json", Public, openapi_json)
        .get("/.well-known/jwks.json", Public, jwks)
        .get("/problems/{code}", Public, problem_type)
        .get(
            "/.well-known/openid-configuration",
            Public,
            id::openid_configuration,
        )
        .post("/oauth/token", Client, id::token)
        .get("/oauth/userinfo", UserToken, id::userinfo_get)
        .post("/oauth/userinfo", UserToken, id::userinfo_post)
        .post("/oauth/introspect", Client, id::introspect)
        .post("/oauth/revoke", Client, id::revoke)
        .post("/v1/enrolment/challenges", Public, id::enrolment_challenge)
        .post("/v1/enrolment", Public, id::enrol)
        .post("/v1/passkeys/sign-in", Public, id::passkey_sign_in_start)
        .post(
            "/v1/passkeys/sign-in/{ceremony}",
            Public,
            id::passkey_sign_in_finish,
        )
        .get("/v1/me/passkeys", Resident(Never), id::my_passkeys)
        .post(
            "/v1/me/passkeys/registrations",
            Resident(Never),
            id::passkey_registration_start,
        )
        .post(
            "/v1/me/passkeys/registrations/{ceremony}",
            Resident(Never),
            id::passkey_registration_finish,
        )
        .post(
            "/v1/me/passkeys/{id}/remove",
            Resident(Never),
            id::remove_passkey,
        )
        .get("/v1/me/proxies", Resident(Never), id::my_proxies)
        .post("/v1/me/proxies", Resident(Never), id::invite_proxy)
        .post("/v1/me/proxies/{id}/end", Resident(Never), id::end_proxy)
        .post(
            "/v1/proxy-invitations/{code}/accept",
            Resident(Never),
            id::accept_invitation,
        )
        .get("/v1/me/acting-for", Resident(Never), id::acting_for)
        .post(
            "/v1/me/acting-for/{id}/session",
            Resident(Never),
            id::proxy_session,
        )
        .get(
            "/v1/me/requests",
            Resident(Entrusted(FileRequests)),
            id::my_requests,
        )
        .post(
            "/v1/me/requests",
            Resident(Entrusted(FileRequests)),
            id::file_request,
        )
        .post(
            "/v1/operator/session",
            OperatorIdentity,
            id::operator_session,
        )
        .post("/v1/operator/services", Operator, id::register_service)
        .get(
            "/v1/operator/services/{id}/review",
            Operator,
            id::review_service,
        )
        .post(
            "/v1/operator/services/{id}/approve",
            Operator,
            id::approve_service,
        )
        .post(
            "/v1/operator/services/{id}/suspend",
            Operator,
            id::suspend_service,
        )
        .get("/v1/operator/requests", Operator, id::operator_requests)
        .post("/v1/operator/requests/{id}", Operator, id::answer_request)
        .get("/v1/categories", Public, categories)
        .get("/v1/services", Public, services)
        .post("/v1/data-requests", ServiceToken, data_request)
        .get(
            "/v1/me/consents",
            Resident(Entrusted(ViewConsents)),
            my_consents,
        )
        .post(
            "/v1/me/consents",
            Resident(Entrusted(ManageConsents)),
            grant_consent,
        )
        .get(
            "/v1/me/consents/{id}",
            Resident(Entrusted(ViewConsents)),
            my_consent,
        )
        .get(
            "/v1/me/consents/{id}/receipt",
            Resident(Entrusted(ViewConsents)),
            my_receipt,
        )
        .post(
            "/v1/me/consents/{id}/revoke",
            Resident(Entrusted(ManageConsents)),
            revoke_consent,
        )
        .get(
            "/v1/me/access-records",
            Resident(Entrusted(ViewHistory)),
            my_access_records,
        )
        .get("/v1/me/log", Resident(Entrusted(ViewHistory)), my_log)
        .get("/log/checkpoint", Public, log_checkpoint)
        .get("/log/checkpoints/{size}", Public, log_checkpoint_at)
        .get("/log/key", Public, log_key)
        .get("/log/tile/{*path}", Public, log_tile)
        .get("/log/proof/inclusion", Public, log_inclusion)
        .get("/log/proof/consistency", Public, log_consistency)
        .post("/demo/sign-in", DemoOnly, demo_sign_in)
        .finish();
    let router = router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(hub);
    (router, table)
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Renkei hub", description = "Consent-first personal-data linkage hub: consents, brokered data requests, access records."),
    paths(
        healthz, readyz, openapi_json, jwks, categories, services, data_request, my_consents, grant_consent, my_consent, my_receipt,
        revoke_consent, my_access_records, my_log, log_checkpoint, log_checkpoint_at, log_key, log_tile, log_inclusion,
        log_consistency, demo_sign_in, problem_type
    ),
    components(schemas(
        Problem, ProblemKind, ProblemTypeDoc, TokenResponse, CategoryView, ServiceView, PurposeView, DataRequestBody, DataResponse, ProviderResult,
        SealedPayloadView, GrantConsentBody, GrantedConsent, ConsentView, ConsentDetail, ConsentEventView,
        ReceiptView, AccessRecordView, AccessPage, DemoSignIn, Health, LogPage, LogEntryView, ProofView
    )),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .build(),
        );
        components.add_security_scheme("service", bearer.clone());
        components.add_security_scheme("resident", bearer.clone());
        components.add_security_scheme("operator", bearer.clone());
        components.add_security_scheme("user", bearer);
    }
}

/// This document: the hub's API in OpenAPI 3.1.
#[utoipa::path(get, path = "/openapi.json", responses((status = 200, description = "An OpenAPI 3.1 document", body = Object)))]
async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi())
}

/// The whole API's OpenAPI document: the core and identity.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::api_identity::IdentityApiDoc::openapi());
    doc
}

#[derive(Serialize, ToSchema)]
struct Health {
    status: String,
}

/// Liveness: the hub's process answers. It does not touch storage, so it answers at once
/// even while storage is down (readiness, `/readyz`, says that): restarting a hub whose
/// storage is away would not bring it back.
#[utoipa::path(get, path = "/healthz", responses((status = 200, body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// Readiness: the hub can serve requests now. Storage is reachable within its timeout and
/// can take writes (the disk is not full, the file system not read-only, no write-back to
/// disk has failed); otherwise `503 storage-unavailable`, whose `detail` says which.
#[utoipa::path(get, path = "/readyz", responses((status = 200, body = Health), (status = 503, body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u32, description = "Seconds to wait before asking again")))))]
async fn readyz(State(hub): State<Hub>) -> Response {
    match hub.store.readiness().await {
        Ok(()) => Json(Health {
            status: "ready".into(),
        })
        .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            let mut response = not_ready(&e).into_response();
            response.headers_mut().insert(
                header::RETRY_AFTER,
                axum::http::HeaderValue::from(crate::error::STORAGE_RETRY_AFTER_SECS),
            );
            response
        }
    }
}

/// The readiness problem, saying why storage is not ready (no personal data: these are the
/// store's own words, never the database's).
fn not_ready(e: &renkei_store::StoreError) -> Problem {
    use renkei_store::StoreError as E;
    let why = match e {
        E::CannotWrite(why) => why.clone(),
        E::Sync(_) => "a write to disk failed: the hub acknowledges nothing more until it is \
                       restarted"
            .to_owned(),
        E::Unavailable(_) => "storage cannot be reached".to_owned(),
        _ => "storage cannot be used".to_owned(),
    };
    HubError::StorageUnavailable.to_problem().detail(why)
}

/// The hub's public keys: verify receipts, grants and webhook events with them.
#[utoipa::path(get, path = "/.well-known/jwks.json", responses((status = 200, description = "A JWK set", body = Object)))]
async fn jwks(State(hub): State<Hub>) -> Response {
    Json(hub.keys.jwks()).into_response()
}

/// What a problem `type` means.
#[utoipa::path(get, path = "/problems/{code}", params(("code" = ProblemKind, Path)), responses((status = 200, body = ProblemTypeDoc), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn problem_type(ApiPath(code): ApiPath<String>) -> Response {
    match ProblemKind::from_code(&code) {
        Some(kind) => Json(ProblemTypeDoc::from(kind)).into_response(),
        None => not_found().await,
    }
}

async fn not_found() -> Response {
    Problem::new(ProblemKind::NotFound)
        .detail("no such resource")
        .into_response()
}

async fn method_not_allowed() -> Response {
    // The title has said so since the first release; the type is a malformed request.
    let mut problem =
        Problem::new(ProblemKind::MalformedRequest).with_status(StatusCode::METHOD_NOT_ALLOWED);
    "Method not allowed".clone_into(&mut problem.title);
    problem.into_response()
}

#[derive(Serialize, ToSchema)]
struct TokenResponse {
    access_token: String,
    token_type: String,
    expires_in: i64,
}

/// The client id and secret of an HTTP Basic `Authorization` header. RFC 6749 §2.3.1: the
/// client form-urlencodes each before joining them with `:` and Base64-encoding the pair, so
/// each is form-urldecoded here (`health%2Dadvice` is `health-advice`; `+` is a space). A
/// byte that needs no encoding may also come as it is.
pub(crate) fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let (scheme, value) = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .split_once(' ')?;
    // Authentication schemes are case-insensitive (RFC 9110 §11.1).
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(value.trim()).ok()?;
    // The `:` that joins them is the first one: an encoded id holds none of its own.
    let colon = decoded.iter().position(|&b| b == b':')?;
    let (id, secret) = (&decoded[..colon], &decoded[colon + 1..]);
    Some((form_urldecode(id)?, form_urldecode(secret)?))
}

/// `application/x-www-form-urlencoded` decoding of one value: `+` is a space, `%XX` a byte;
/// the result must be UTF-8.
fn form_urldecode(encoded: &[u8]) -> Option<String> {
    let plus_as_space: Vec<u8> = encoded
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    let bytes: Vec<u8> = percent_encoding::percent_decode(&plus_as_space).collect();
    String::from_utf8(bytes).ok()
}

#[derive(Serialize, ToSchema)]
struct CategoryView {
    id: String,
    name_ja: String,
    name_en: String,
    /// 要配慮個人情報 (special-care personal information).
    special_care: bool,
}

/// The data-category vocabulary.
#[utoipa::path(get, path = "/v1/categories", responses((status = 200, body = Vec<CategoryView>)))]
async fn categories(State(hub): State<Hub>) -> Result<Json<Vec<CategoryView>>, HubError> {
    let list = hub.store.categories().await?;
    Ok(Json(
        list.into_iter()
            .map(|c| CategoryView {
                id: c.id.to_string(),
                name_ja: c.name.ja,
                name_en: c.name.en,
                special_care: c.special_care,
            })
            .collect(),
    ))
}

#[derive(Serialize, ToSchema)]
struct ServiceView {
    id: String,
    name_ja: String,
    name_en: String,
    /// `pending`, `approved` or `suspended`.
    status: String,
    purposes: Vec<PurposeView>,
}

#[derive(Serialize, ToSchema)]
struct PurposeView {
    id: String,
    version: u32,
    title_ja: String,
    title_en: String,
    description_ja: String,
    description_en: String,
    categories: Vec<String>,
    retention_days: u32,
    legal_basis: String,
}

/// Registered services and the current version of each of their purposes.
#[utoipa::path(get, path = "/v1/services", responses((status = 200, body = Vec<ServiceView>)))]
async fn services(State(hub): State<Hub>) -> Result<Json<Vec<ServiceView>>, HubError> {
    let mut out = Vec::new();
    for s in hub.store.services().await? {
        let purposes = hub
            .store
            .purposes(&s.id)
            .await?
            .into_iter()
            .map(|p| PurposeView {
                id: p.id.to_string(),
                version: p.version,
                title_ja: p.title.ja,
                title_en: p.title.en,
                description_ja: p.description.ja,
                description_en: p.description.en,
                categories: p.categories.iter().map(|c| c.to_string()).collect(),
                retention_days: p.retention_days,
                legal_basis: p.legal_basis.as_str().to_owned(),
            })
            .collect();
        out.push(ServiceView {
            id: s.id.to_string(),
            name_ja: s.name.ja,
            name_en: s.name.en,
            status: s.status.as_str().to_owned(),
            purposes,
        });
    }
    Ok(Json(out))
}

/// Ask for one resident's data for one purpose. The hub checks the resident's consent,
/// records the decision, and relays each provider's answer sealed to the service's key.
#[utoipa::path(post, path = "/v1/data-requests", request_body = DataRequestBody, security(("service" = [])),
    responses((status = 415, body = Problem, content_type = "application/problem+json"), (status = 200, description = "Granted; `complete` is false when some provider failed", body = DataResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 403, description = "Denied (recorded)", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"), (status = 429, body = Problem, content_type = "application/problem+json"), (status = 502, body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable (`storage-unavailable`): nothing was released; try again after `Retry-After` seconds", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u32, description = "Seconds to wait before trying again")))))]
async fn data_request(
    State(hub): State<Hub>,
    caller: DataRequester,
    ApiJson(body): ApiJson<DataRequestBody>,
) -> Result<Json<DataResponse>, HubError> {
    let service = caller.service;
    if let Some(subject) = &caller.on_behalf_of
        && *subject != body.subject
    {
        return Err(HubError::Forbidden(
            "this access token was issued for another resident".into(),
        ));
    }
    hub.check_categories(&body.categories).await?;
    Ok(Json(
        hub.request_data(&service, caller.token_id, body).await?,
    ))
}

/// The signed-in resident's consents, newest first. A proxy sees those of the services their
/// scope covers, if entrusted with managing consents or viewing the history (403 otherwise).
#[utoipa::path(get, path = "/v1/me/consents", security(("resident" = [])), responses((status = 200, body = Vec<ConsentView>), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn my_consents(
    State(hub): State<Hub>,
    ResidentCaller(me): ResidentCaller,
) -> Result<Json<Vec<ConsentView>>, HubError> {
    Ok(Json(hub.consents(&me).await?))
}

/// Say yes to one purpose of one service (never several at once).
#[utoipa::path(post, path = "/v1/me/consents", request_body = GrantConsentBody, security(("resident" = [])),
    responses((status = 415, body = Problem, content_type = "application/problem+json"), (status = 201, body = GrantedConsent), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json")))]
async fn grant_consent(
    State(hub): State<Hub>,
    ResidentCaller(me): ResidentCaller,
    ApiJson(body): ApiJson<GrantConsentBody>,
) -> Result<Response, HubError> {
    let via = if hub.config.demo_mode {
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
async fn my_consent(
    State(hub): State<Hub>,
    ResidentCaller(me): ResidentCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ConsentDetail>, HubError> {
    Ok(Json(hub.consent_detail(&me, consent_id(&id)?).await?))
}

#[derive(Serialize, ToSchema)]
struct ReceiptView {
    /// Compact JWS; verify with `/.well-known/jwks.json`.
    receipt: String,
}

/// The consent's signed receipt (Kantara Consent Receipt v1.1 claims, as a JWS).
#[utoipa::path(get, path = "/v1/me/consents/{id}/receipt", params(("id" = uuid::Uuid, Path)), security(("resident" = [])),
    responses((status = 200, body = ReceiptView), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn my_receipt(
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
async fn revoke_consent(
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

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AccessFilter {
    /// Only this service's requests.
    #[param(value_type = Option<crate::schemas::Slug>, inline)]
    service: Option<String>,
    /// Only entries at or after this time (RFC 3339).
    since: Option<DateTime<Utc>>,
    /// Only entries before this time (RFC 3339).
    until: Option<DateTime<Utc>>,
    /// Paging cursor forward in time: `next_after` of the previous page (oldest first only).
    after: Option<u64>,
    /// Paging cursor back in time: `next_before` of the previous page; without `order`, it
    /// means `order=newest`. With both cursors a page holds entries between them.
    before: Option<u64>,
    /// Which end the pages start from: `oldest` (the default; paged on with `after`) or
    /// `newest` (entries newest first, paged on with `before`).
    #[param(inline)]
    order: Option<PageOrder>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// The order of a page, and so which end of the log the first page starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum PageOrder {
    /// Oldest first; the next page is `after=<next_after>`.
    Oldest,
    /// Newest first; the next (older) page is `before=<next_before>`.
    Newest,
}

#[derive(Serialize, ToSchema)]
struct AccessRecordView {
    seq: u64,
    request_id: String,
    at: DateTime<Utc>,
    service: String,
    purpose: String,
    purpose_version: Option<u32>,
    categories: Vec<String>,
    /// `{"kind":"consent","consent":"…"}` or `{"kind":"none"}`.
    #[schema(value_type = Object)]
    basis: serde_json::Value,
    /// `granted` or `denied`.
    outcome: String,
    /// The denial's problem code, when denied.
    reason: Option<String>,
    providers: Vec<String>,
}

impl From<AccessRecord> for AccessRecordView {
    fn from(r: AccessRecord) -> Self {
        let (outcome, reason) = match r.outcome {
            AccessOutcome::Granted => ("granted".to_owned(), None),
            AccessOutcome::Denied { reason } => ("denied".to_owned(), Some(reason)),
        };
        Self {
            seq: r.seq,
            request_id: r.request.to_string(),
            at: r.at,
            service: r.service.to_string(),
            purpose: r.purpose.to_string(),
            purpose_version: r.purpose_version,
            categories: r.categories.iter().map(|c| c.to_string()).collect(),
            basis: serde_json::to_value(&r.basis).unwrap_or_default(),
            outcome,
            reason,
            providers: r.providers.iter().map(|p| p.to_string()).collect(),
        }
    }
}

#[derive(Serialize, ToSchema)]
struct AccessPage {
    records: Vec<AccessRecordView>,
    /// Oldest-first pages: pass as `after` for the next page; absent on the last page.
    next_after: Option<u64>,
    /// Newest-first pages: pass as `before` for the next (older) page; absent when no older
    /// entry remains.
    next_before: Option<u64>,
}

/// Who asked for my data: every request naming the signed-in resident, granted or denied.
/// A proxy entrusted with the history sees the requests of the services their scope covers.
#[utoipa::path(get, path = "/v1/me/access-records", params(AccessFilter), security(("resident" = [])),
    responses((status = 200, body = AccessPage), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn my_access_records(
    State(hub): State<Hub>,
    ResidentCaller(me): ResidentCaller,
    ApiQuery(f): ApiQuery<AccessFilter>,
) -> Result<Json<AccessPage>, HubError> {
    let page = access_query(me.resident, f)?;
    let services = history_services(&me, page.query.service.as_ref())?;
    let store = hub.store.clone();
    let mut records = per_service(
        &page.query,
        services,
        |r: &AccessRecord| r.seq,
        |q| {
            let store = store.clone();
            async move { store.access_records(&q).await }
        },
    )
    .await?;
    let (next_after, next_before) = page.cursors(&mut records, |r| r.seq);
    Ok(Json(AccessPage {
        records: records.into_iter().map(Into::into).collect(),
        next_after,
        next_before,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct DemoSignIn {
    #[schema(value_type = uuid::Uuid)]
    resident: String,
}

/// Demo mode only: sign in as any resident of the demo town, without proof.
#[utoipa::path(post, path = "/demo/sign-in", request_body = DemoSignIn,
    responses((status = 415, body = Problem, content_type = "application/problem+json"), (status = 200, body = TokenResponse), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn demo_sign_in(
    State(hub): State<Hub>,
    ApiJson(body): ApiJson<DemoSignIn>,
) -> Result<Json<TokenResponse>, HubError> {
    if !hub.config.demo_mode {
        return Err(HubError::DemoOnly);
    }
    let resident: ResidentId = body
        .resident
        .parse()
        .map_err(|e: renkei_domain::IdError| HubError::Malformed(e.to_string()))?;
    if !hub.store.resident_exists(resident).await? {
        return Err(HubError::NotFound(format!("resident `{resident}`")));
    }
    let access_token = hub.keys.issue_resident_token(resident, Utc::now())?;
    Ok(Json(TokenResponse {
        access_token,
        token_type: "Bearer".into(),
        expires_in: crate::auth::RESIDENT_TOKEN_SECONDS,
    }))
}

fn text(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

/// The latest signed checkpoint of the access log (C2SP tlog-checkpoint in a signed note).
#[utoipa::path(get, path = "/log/checkpoint", responses((status = 200, content_type = "text/plain", body = String), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn log_checkpoint(State(hub): State<Hub>) -> Result<Response, HubError> {
    let latest = hub
        .store
        .latest_checkpoint()
        .await?
        .ok_or_else(|| HubError::NotFound("checkpoint".into()))?;
    Ok(([(header::CACHE_CONTROL, "no-cache")], text(latest.note)).into_response())
}

/// A checkpoint the hub signed earlier, by tree size (for consistency checks).
#[utoipa::path(get, path = "/log/checkpoints/{size}", params(("size" = u64, Path)),
    responses((status = 200, content_type = "text/plain", body = String), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
async fn log_checkpoint_at(
    State(hub): State<Hub>,
    ApiPath(size): ApiPath<u64>,
) -> Result<Response, HubError> {
    let c = hub
        .store
        .checkpoint(size)
        .await?
        .ok_or_else(|| HubError::NotFound(format!("checkpoint of size `{size}`")))?;
    Ok(text(c.note))
}

/// The log's verifier key (C2SP signed-note form): checkpoints verify with it.
#[utoipa::path(get, path = "/log/key", responses((status = 200, content_type = "text/plain", body = String)))]
async fn log_key(State(hub): State<Hub>) -> Response {
    text(format!("{}\n", hub.keys.log.verifier_key()))
}

/// A hash tile (C2SP tlog-tiles), e.g. `/log/tile/0/000` or `/log/tile/0/x001/234.p/5`.
#[utoipa::path(get, path = "/log/tile/{path}", params(("path" = String, Path, description = "`<L>/<N>[.p/<W>]`")),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>), (status = 404, description = "No such tile (a path that names none, or a tile beyond the latest checkpoint)", body = Problem, content_type = "application/problem+json")))]
async fn log_tile(
    State(hub): State<Hub>,
    ApiPath(path): ApiPath<String>,
) -> Result<Response, HubError> {
    let full = format!("tile/{path}");
    let bytes = crate::log::tile(hub.store.as_ref(), &full).await?;
    let cache = if full.contains(".p/") {
        "no-cache"
    } else {
        "public, max-age=31536000, immutable"
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CACHE_CONTROL, cache),
        ],
        bytes,
    )
        .into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct InclusionQuery {
    /// The leaf index (the entry's `seq`).
    index: u64,
    /// The tree size of a signed checkpoint.
    size: u64,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ConsistencyQuery {
    /// The smaller tree's size (a tree of no entries has nothing to prove).
    #[param(minimum = 1)]
    from: u64,
    #[param(minimum = 1)]
    to: u64,
}

/// A Merkle proof: base64 SHA-256 hashes, RFC 9162 order.
#[derive(Serialize, ToSchema)]
struct ProofView {
    proof: Vec<String>,
}

async fn signed_size(hub: &Hub, size: u64) -> Result<(), HubError> {
    let latest = hub.store.latest_checkpoint().await?.map_or(0, |c| c.size);
    // Whether a size is signed depends on the log, not on the request: no such proof (yet).
    if size > latest {
        return Err(HubError::NotFound(format!(
            "a proof for size `{size}`: the latest checkpoint covers {latest} entries"
        )));
    }
    Ok(())
}

/// An inclusion proof of entry `index` in the tree of `size` entries.
#[utoipa::path(get, path = "/log/proof/inclusion", params(InclusionQuery),
    responses((status = 200, body = ProofView), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 404, description = "No checkpoint of that size is signed yet, or the index is not in the tree", body = Problem, content_type = "application/problem+json")))]
async fn log_inclusion(
    State(hub): State<Hub>,
    ApiQuery(q): ApiQuery<InclusionQuery>,
) -> Result<Json<ProofView>, HubError> {
    signed_size(&hub, q.size).await?;
    if q.index >= q.size {
        return Err(HubError::NotFound(format!(
            "entry `{}` in a tree of {} entries",
            q.index, q.size
        )));
    }
    let proof = crate::log::inclusion_proof(hub.store.as_ref(), q.index, q.size).await?;
    Ok(Json(ProofView {
        proof: proof.iter().map(crate::log::b64).collect(),
    }))
}

/// A consistency proof that the tree of `from` entries is a prefix of the tree of `to`.
#[utoipa::path(get, path = "/log/proof/consistency", params(ConsistencyQuery),
    responses((status = 200, body = ProofView), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 404, description = "No checkpoint of size `to` is signed yet, or `from` is beyond `to`", body = Problem, content_type = "application/problem+json")))]
async fn log_consistency(
    State(hub): State<Hub>,
    ApiQuery(q): ApiQuery<ConsistencyQuery>,
) -> Result<Json<ProofView>, HubError> {
    signed_size(&hub, q.to).await?;
    if q.from > q.to {
        return Err(HubError::NotFound(format!(
            "a tree of {} entries inside one of {}",
            q.from, q.to
        )));
    }
    let proof = crate::log::consistency_proof(hub.store.as_ref(), q.from, q.to).await?;
    Ok(Json(ProofView {
        proof: proof.iter().map(crate::log::b64).collect(),
    }))
}

/// One of my log entries, with what a client needs to check it is in the signed log:
/// leaf hash = SHA-256(0x00 ‖ salt ‖ entry), and the inclusion proof against `checkpoint`.
#[derive(Serialize, ToSchema)]
struct LogEntryView {
    seq: u64,
    /// `access`, `consent`, or `fulfilment` (what a granted request came to, provider by
    /// provider, when any provider did not deliver).
    kind: String,
    /// The entry's canonical JSON, exactly the bytes the leaf commits to.
    entry: String,
    /// Base64.
    salt: String,
    /// Base64.
    leaf_hash: String,
    /// Inclusion proof against the page's checkpoint; absent while the entry is newer than it
    /// (checkpoints follow within a second).
    proof: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
struct LogPage {
    /// The signed checkpoint the proofs are against.
    checkpoint: String,
    /// The log's verifier key.
    verifier_key: String,
    /// Newest first with `order=newest` or `before`, otherwise oldest first.
    entries: Vec<LogEntryView>,
    /// Oldest-first pages: pass as `after` for the next page; absent on the last page.
    next_after: Option<u64>,
    /// Newest-first pages: pass as `before` for the next (older) page; absent when no older
    /// entry remains.
    next_before: Option<u64>,
}

/// My history in the tamper-evident log: every access record naming me, what each granted
/// request came to where a provider did not deliver, and every change to my consents, each
/// with its inclusion proof, filterable by service and time, paged from the oldest entry
/// forward (`after`) or from the newest back (`order=newest`, then `before`).
/// A proxy entrusted with the history sees the entries of the services their scope covers.
#[utoipa::path(get, path = "/v1/me/log", params(AccessFilter), security(("resident" = [])),
    responses((status = 200, body = LogPage), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json")))]
async fn my_log(
    State(hub): State<Hub>,
    ResidentCaller(me): ResidentCaller,
    ApiQuery(f): ApiQuery<AccessFilter>,
) -> Result<Json<LogPage>, HubError> {
    let page = access_query(me.resident, f)?;
    let services = history_services(&me, page.query.service.as_ref())?;
    let me = me.resident;
    let checkpoint = hub
        .store
        .latest_checkpoint()
        .await?
        .ok_or_else(|| HubError::internal("no checkpoint yet"))?;
    let store = hub.store.clone();
    let mut rows = per_service(
        &page.query,
        services,
        |(_, leaf): &(renkei_domain::LogEntry, renkei_store::StoredLeaf)| leaf.seq,
        |q| {
            let store = store.clone();
            async move { store.resident_log(me, &q).await }
        },
    )
    .await?;
    let (next_after, next_before) = page.cursors(&mut rows, |(_, leaf)| leaf.seq);
    let indexes: Vec<u64> = rows
        .iter()
        .filter(|(_, l)| l.seq < checkpoint.size)
        .map(|(_, l)| l.seq)
        .collect();
    let mut proofs = crate::log::inclusion_proofs(hub.store.as_ref(), &indexes, checkpoint.size)
        .await?
        .into_iter();
    let mut entries = Vec::with_capacity(rows.len());
    for (entry, leaf) in rows {
        let proof = if leaf.seq < checkpoint.size {
            proofs
                .next()
                .map(|p| p.iter().map(crate::log::b64).collect())
        } else {
            None
        };
        entries.push(LogEntryView {
            seq: leaf.seq,
            kind: leaf.kind,
            entry: String::from_utf8(entry.canonical()).unwrap_or_default(),
            salt: STANDARD.encode(&leaf.salt),
            leaf_hash: STANDARD.encode(&leaf.leaf_hash),
            proof,
        });
    }
    Ok(Json(LogPage {
        checkpoint: checkpoint.note,
        verifier_key: hub.keys.log.verifier_key(),
        entries,
        next_after,
        next_before,
    }))
}

/// The services a history page reads, one by one: `None` when the page reads as asked (the
/// resident; a proxy for every service; a proxy asking for one service of their scope),
/// otherwise each service of the proxy's scope. Refuses a proxy not entrusted with the
/// history, or asking for a service outside their scope.
fn history_services(
    me: &ResidentSession,
    asked: Option<&ServiceId>,
) -> Result<Option<Vec<ServiceId>>, HubError> {
    me.require(ProxyPermission::ViewHistory, asked)?;
    Ok(match (asked, me.services()) {
        (None, Some(scope)) => Some(scope.iter().cloned().collect()),
        _ => None,
    })
}

/// Reads one page with `read`, over `services` one at a time when given, merged into the
/// page one read over those services would give: every read starts from the same end with
/// the same limit, so the first `limit` of the merged rows are that page.
async fn per_service<T, Fut>(
    query: &AccessQuery,
    services: Option<Vec<ServiceId>>,
    seq: impl Fn(&T) -> u64,
    read: impl Fn(AccessQuery) -> Fut,
) -> Result<Vec<T>, HubError>
where
    Fut: std::future::Future<Output = renkei_store::StoreResult<Vec<T>>>,
{
    let Some(services) = services else {
        return Ok(read(query.clone()).await?);
    };
    let mut rows = Vec::new();
    for service in services {
        rows.extend(
            read(AccessQuery {
                service: Some(service),
                ..query.clone()
            })
            .await?,
        );
    }
    rows.sort_by_key(&seq);
    if query.order == LogOrder::NewestFirst {
        rows.reverse();
    }
    rows.truncate(query.limit as usize);
    Ok(rows)
}

/// A page as the store is asked for it: a newest-first page asks for one entry more than it
/// shows, so that `next_before` is given only when an older entry remains.
struct PageQuery {
    query: AccessQuery,
    /// The most entries the page shows.
    limit: u32,
}

impl PageQuery {
    /// Cuts the store's rows to the page and names the cursors of the next page:
    /// `(next_after, next_before)`. Oldest first keeps the API's first rule (a cursor
    /// whenever the page is full); newest first knows whether an older entry remains.
    fn cursors<T>(&self, rows: &mut Vec<T>, seq: impl Fn(&T) -> u64) -> (Option<u64>, Option<u64>) {
        let limit = self.limit as usize;
        match self.query.order {
            LogOrder::OldestFirst => {
                let next = (rows.len() == limit)
                    .then(|| rows.last().map(&seq))
                    .flatten();
                (next, None)
            }
            LogOrder::NewestFirst => {
                let more = rows.len() > limit;
                rows.truncate(limit);
                (None, more.then(|| rows.last().map(&seq)).flatten())
            }
        }
    }
}

fn access_query(me: ResidentId, f: AccessFilter) -> Result<PageQuery, HubError> {
    // Log positions are stored as 64-bit signed integers, as the document states them.
    for (name, cursor) in [("after", f.after), ("before", f.before)] {
        if cursor.is_some_and(|c| i64::try_from(c).is_err()) {
            return Err(HubError::Malformed(format!(
                "`{name}` must be a log position below 2^63"
            )));
        }
    }
    let limit = f.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(HubError::Malformed(format!(
            "`limit` must be 1 to 500, not `{limit}`"
        )));
    }
    // Either cursor bounds the page in either order (both: the entries between them); the
    // order given wins, and `before` alone means the newest first, as its pages go back.
    let order = match (f.order, f.before) {
        (Some(PageOrder::Newest), _) | (None, Some(_)) => LogOrder::NewestFirst,
        (Some(PageOrder::Oldest), _) | (None, None) => LogOrder::OldestFirst,
    };
    let service = f
        .service
        .map(ServiceId::new)
        .transpose()
        .map_err(|e| HubError::Malformed(e.to_string()))?;
    Ok(PageQuery {
        query: AccessQuery {
            resident: Some(me),
            service,
            after_seq: f.after,
            before_seq: f.before,
            order,
            since: f.since,
            until: f.until,
            limit: if order == LogOrder::NewestFirst {
                limit + 1
            } else {
                limit
            },
        },
        limit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn basic(pair: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            format!("Basic {}", STANDARD.encode(pair)).parse().unwrap(),
        );
        headers
    }

    #[test]
    fn basic_credentials_are_form_urldecoded_after_base64() {
        assert_eq!(
            basic_credentials(&basic("health%2Dadvice:s%3Acr%2Bt+x")),
            Some(("health-advice".to_owned(), "s:cr+t x".to_owned()))
        );
        // Characters that need no encoding may come as they are.
        assert_eq!(
            basic_credentials(&basic("health-advice:abc_DEF-123")),
            Some(("health-advice".to_owned(), "abc_DEF-123".to_owned()))
        );
    }

    #[test]
    fn basic_credentials_need_the_basic_scheme_a_colon_and_utf8() {
        let mut headers = basic("a:b");
        let value = headers[header::AUTHORIZATION]
            .to_str()
            .unwrap()
            .replace("Basic", "bAsIc");
        headers.insert(header::AUTHORIZATION, value.parse().unwrap());
        assert_eq!(
            basic_credentials(&headers),
            Some(("a".to_owned(), "b".to_owned()))
        );
        assert_eq!(basic_credentials(&basic("no-colon")), None);
        assert_eq!(basic_credentials(&basic("a:%FF")), None);
        let mut bearer = HeaderMap::new();
        bearer.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(basic_credentials(&bearer), None);
    }

    proptest! {
        /// Whatever the id and secret, what a client encodes as RFC 6749 says comes back.
        #[test]
        fn any_form_urlencoded_pair_is_read_back(id in ".*", secret in ".*") {
            let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let headers = basic(&format!("{}:{}", encode(&id), encode(&secret)));
            prop_assert_eq!(basic_credentials(&headers), Some((id, secret)));
        }

        /// Any header value is read or refused, never a panic.
        #[test]
        fn any_authorization_header_is_read_or_refused(value in "[ -~]*") {
            let mut headers = HeaderMap::new();
            if let Ok(v) = value.parse() {
                headers.insert(header::AUTHORIZATION, v);
            }
            let _ = basic_credentials(&headers);
        }
    }
}
