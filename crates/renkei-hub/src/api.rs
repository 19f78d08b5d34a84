//! The HTTP API: routes, handlers and the OpenAPI document that describes them.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::api_accounts as accounts;
use crate::api_consents as consents;
use crate::api_counter as counter;
use crate::api_emergency as emergency;
use crate::api_identity as id;
use crate::api_log::ProofView;
use crate::api_providers as providers;
use crate::api_rights as rights;
use crate::auth::{DataRequester, ProxyPermission};
use crate::broker::{DataRequestBody, DataResponse, ProviderResult, SealedPayloadView};
use crate::catalogue::{CategoryView, PurposeView, ServiceView};
use crate::consents::{
    ConsentDetail, ConsentEventView, ConsentView, GrantConsentBody, GrantedConsent,
};
use crate::history::{AccessPage, AccessRecordView, LogEntryView, LogPage};
use crate::notices::{NoticeChannelBody, NoticeReleaseView, NoticeView};
use crate::problem::{ApiJson, ApiPath, Problem, ProblemKind, ProblemTypeDoc};
use crate::routes::{Access, HubGuard, Proxies, RouteAccess, Routes};
use crate::{Hub, HubError};
use crate::{
    api_demo, api_log, api_outbound, catalogue, counter_consents, history, notices, provider_sync,
};

/// Every route of the hub.
pub fn router(hub: Hub) -> Router {
    routed(hub).0
}

/// Every route of the hub, and who may call each: the API's part of the route table
/// (`routes.rs`).
pub fn routed(hub: Hub) -> (Router, Vec<RouteAccess>) {
    let (router, table) = declared().finish(HubGuard(hub.clone()));
    let router = router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Every request is counted and timed by the route it matched.
        .layer(axum::middleware::from_fn_with_state(
            hub.clone(),
            crate::metrics::track,
        ))
        .with_state(hub);
    (router, table)
}

/// The API's routes, each declared once with who may call it and the OpenAPI operation that
/// describes it (its method and path are the operation's). A route is added here, with its
/// access and description, or nowhere.
fn declared() -> Routes<Hub> {
    use Access::*;
    use Proxies::{Entrusted, Never};
    use ProxyPermission::*;
    Routes::new()
        .api(Public, healthz, __path_healthz)
        .api(Public, readyz, __path_readyz)
        .api(Public, openapi_json, __path_openapi_json)
        .api(Public, jwks, __path_jwks)
        .api(Public, problem_type, __path_problem_type)
        .api(
            Public,
            id::openid_configuration,
            id::__path_openid_configuration,
        )
        .api(Client, id::token, id::__path_token)
        .api(UserToken, id::userinfo_get, id::__path_userinfo_get)
        .api(UserToken, id::userinfo_post, id::__path_userinfo_post)
        .api(Client, id::introspect, id::__path_introspect)
        .api(Client, id::revoke, id::__path_revoke)
        .api(
            Public,
            id::enrolment_challenge,
            id::__path_enrolment_challenge,
        )
        .api(Public, id::enrol, id::__path_enrol)
        .api(
            Public,
            id::passkey_sign_in_start,
            id::__path_passkey_sign_in_start,
        )
        .api(
            Public,
            id::passkey_sign_in_finish,
            id::__path_passkey_sign_in_finish,
        )
        .api(Resident(Never), id::my_passkeys, id::__path_my_passkeys)
        .api(
            Resident(Never),
            id::passkey_registration_start,
            id::__path_passkey_registration_start,
        )
        .api(
            Resident(Never),
            id::passkey_registration_finish,
            id::__path_passkey_registration_finish,
        )
        .api(
            Resident(Never),
            id::remove_passkey,
            id::__path_remove_passkey,
        )
        .api(
            Resident(Never),
            accounts::my_proxies,
            accounts::__path_my_proxies,
        )
        .api(
            Resident(Never),
            accounts::invite_proxy,
            accounts::__path_invite_proxy,
        )
        .api(
            Resident(Never),
            accounts::end_proxy,
            accounts::__path_end_proxy,
        )
        .api(
            Resident(Never),
            accounts::accept_invitation,
            accounts::__path_accept_invitation,
        )
        .api(
            Resident(Never),
            accounts::acting_for,
            accounts::__path_acting_for,
        )
        .api(
            Resident(Never),
            accounts::proxy_session,
            accounts::__path_proxy_session,
        )
        .api(
            Resident(Entrusted(FileRequests)),
            accounts::my_requests,
            accounts::__path_my_requests,
        )
        .api(
            Resident(Entrusted(FileRequests)),
            accounts::file_request,
            accounts::__path_file_request,
        )
        .api(
            OperatorIdentity,
            accounts::operator_session,
            accounts::__path_operator_session,
        )
        .api(
            Operator,
            accounts::register_service,
            accounts::__path_register_service,
        )
        .api(
            Operator,
            accounts::review_service,
            accounts::__path_review_service,
        )
        .api(
            Operator,
            accounts::approve_service,
            accounts::__path_approve_service,
        )
        .api(
            Operator,
            accounts::suspend_service,
            accounts::__path_suspend_service,
        )
        .api(
            Operator,
            accounts::operator_requests,
            accounts::__path_operator_requests,
        )
        .api(
            Operator,
            accounts::answer_request,
            accounts::__path_answer_request,
        )
        .api(
            Public,
            emergency::declarations,
            emergency::__path_declarations,
        )
        .api(
            Public,
            emergency::declaration,
            emergency::__path_declaration,
        )
        .api(Operator, emergency::declare, emergency::__path_declare)
        .api(Operator, emergency::confirm, emergency::__path_confirm)
        .api(
            Operator,
            emergency::propose_renewal,
            emergency::__path_propose_renewal,
        )
        .api(
            Operator,
            emergency::confirm_renewal,
            emergency::__path_confirm_renewal,
        )
        .api(Operator, emergency::end, emergency::__path_end)
        .api(
            ServiceToken,
            emergency::area_list,
            emergency::__path_area_list,
        )
        .api(
            Operator,
            providers::publish_purpose,
            providers::__path_publish_purpose,
        )
        .api(
            Operator,
            providers::register_category,
            providers::__path_register_category,
        )
        .api(
            Operator,
            providers::register_provider,
            providers::__path_register_provider,
        )
        .api(
            Operator,
            providers::provider_registrations,
            providers::__path_provider_registrations,
        )
        .api(
            Operator,
            providers::approve_provider,
            providers::__path_approve_provider,
        )
        .api(
            Operator,
            providers::suspend_provider,
            providers::__path_suspend_provider,
        )
        .api(Public, catalogue::categories, catalogue::__path_categories)
        .api(Public, catalogue::services, catalogue::__path_services)
        .api(Public, catalogue::providers, catalogue::__path_providers)
        .api(ServiceToken, data_request, __path_data_request)
        .api(
            Resident(Entrusted(ViewConsents)),
            consents::my_consents,
            consents::__path_my_consents,
        )
        .api(
            Resident(Entrusted(ManageConsents)),
            consents::grant_consent,
            consents::__path_grant_consent,
        )
        .api(
            Resident(Entrusted(ViewConsents)),
            consents::my_consent,
            consents::__path_my_consent,
        )
        .api(
            Resident(Entrusted(ViewConsents)),
            consents::my_receipt,
            consents::__path_my_receipt,
        )
        .api(
            Resident(Entrusted(ManageConsents)),
            consents::revoke_consent,
            consents::__path_revoke_consent,
        )
        .api(
            Resident(Entrusted(ViewHistory)),
            history::my_access_records,
            history::__path_my_access_records,
        )
        .api(
            Resident(Entrusted(ViewHistory)),
            history::my_log,
            history::__path_my_log,
        )
        // --- disclosure (開示): one block ---
        .api(
            Resident(Entrusted(FileRequests)),
            crate::disclosure::my_disclosure,
            crate::disclosure::__path_my_disclosure,
        )
        .api(
            Resident(Entrusted(ViewHistory)),
            notices::my_notices,
            notices::__path_my_notices,
        )
        .api(
            Resident(Never),
            notices::set_my_notice_channel,
            notices::__path_set_my_notice_channel,
        )
        .api(
            Public,
            api_log::log_checkpoint,
            api_log::__path_log_checkpoint,
        )
        .api(
            Public,
            api_log::log_checkpoint_at,
            api_log::__path_log_checkpoint_at,
        )
        .api(Public, api_log::log_key, api_log::__path_log_key)
        .api(Public, api_log::log_tile, api_log::__path_log_tile)
        .api(
            Public,
            api_log::log_inclusion,
            api_log::__path_log_inclusion,
        )
        .api(
            Public,
            api_log::log_consistency,
            api_log::__path_log_consistency,
        )
        .api(
            DemoOnly,
            api_demo::demo_sign_in,
            api_demo::__path_demo_sign_in,
        )
        .api(
            Resident(Never),
            provider_sync::my_provider_codes,
            provider_sync::__path_my_provider_codes,
        )
        .api(
            Provider,
            provider_sync::sync_locators,
            provider_sync::__path_sync_locators,
        )
        .api(
            Provider,
            provider_sync::provider_locators,
            provider_sync::__path_provider_locators,
        )
        .api(Provider, api_outbound::poll, api_outbound::__path_poll)
        .api(
            Provider,
            api_outbound::answers,
            api_outbound::__path_answers,
        )
        .api(
            Scraper,
            crate::metrics::scrape,
            crate::metrics::__path_scrape,
        )
        // The city's SOC: security events, and the incident report.
        .api(Soc, crate::api_soc::poll, crate::api_soc::__path_poll)
        .api(
            Operator,
            crate::api_soc::incident_report,
            crate::api_soc::__path_incident_report,
        )
        .api(
            Provider,
            counter_consents::record_counter_consent,
            counter_consents::__path_record_counter_consent,
        )
        // Residents' requests routed to whoever holds the data, and their deadlines.
        .api(
            ServiceToken,
            rights::service_rights_requests,
            rights::__path_service_rights_requests,
        )
        .api(
            ServiceToken,
            rights::service_answer,
            rights::__path_service_answer,
        )
        .api(
            Provider,
            rights::provider_rights_requests,
            rights::__path_provider_rights_requests,
        )
        .api(
            Provider,
            rights::provider_answer,
            rights::__path_provider_answer,
        )
        .api(
            Operator,
            rights::request_summary,
            rights::__path_request_summary,
        )
        .api(
            Operator,
            rights::extend_request,
            rights::__path_extend_request,
        )
        // The city's counter and statutory representatives (issue 25, items 5 and 6).
        .api(Counter, counter::open_session, counter::__path_open_session)
        .api(Counter, counter::session, counter::__path_session)
        .api(
            Counter,
            counter::grant_consent,
            counter::__path_grant_consent,
        )
        .api(
            Counter,
            counter::revoke_consent,
            counter::__path_revoke_consent,
        )
        .api(Counter, counter::file_request, counter::__path_file_request)
        .api(Counter, counter::receipt_pdf, counter::__path_receipt_pdf)
        .api(
            Operator,
            counter::register_representative,
            counter::__path_register_representative,
        )
        .api(
            Operator,
            counter::end_representative,
            counter::__path_end_representative,
        )
}

/// The document's parts besides its operations (those come from `declared`): its
/// description, the schemas clients name, and the bearer-token security schemes.
#[derive(OpenApi)]
#[openapi(
    info(title = "Renkei hub", description = "Consent-first personal-data linkage hub: consents, brokered data requests, access records."),
    components(schemas(
        Problem, ProblemKind, ProblemTypeDoc, TokenResponse, CategoryView, ServiceView, PurposeView, DataRequestBody, DataResponse, ProviderResult,
        SealedPayloadView, GrantConsentBody, GrantedConsent, ConsentView, ConsentDetail, ConsentEventView,
        consents::ReceiptView, AccessRecordView, AccessPage, api_demo::DemoSignIn, Health, LogPage, LogEntryView, ProofView,
        NoticeView, NoticeReleaseView, NoticeChannelBody
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
        components.add_security_scheme("user", bearer.clone());
        components.add_security_scheme("provider", bearer);
        components.add_security_scheme(
            "soc",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "scraper",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// This document: the hub's API in OpenAPI 3.1.
#[utoipa::path(get, path = "/openapi.json", responses((status = 200, description = "An OpenAPI 3.1 document", body = Object)))]
async fn openapi_json() -> Json<&'static utoipa::openapi::OpenApi> {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    Json(DOC.get_or_init(openapi))
}

/// The whole API's OpenAPI document: the core's and identity's schemas, and the operation
/// of every route as `declared` declares it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::api_identity::IdentityApiDoc::openapi());
    doc.merge(crate::api_accounts::AccountsApiDoc::openapi());
    doc.merge(crate::api_emergency::EmergencyApiDoc::openapi());
    doc.merge(crate::api_soc::SocApiDoc::openapi());
    doc.merge(crate::api_providers::ProvidersApiDoc::openapi());
    doc.merge(crate::api_rights::RightsApiDoc::openapi());
    doc.merge(crate::api_counter::CounterApiDoc::openapi());
    declared().describe(&mut doc);
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
    match hub.store().readiness().await {
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
    Json(hub.keys().jwks()).into_response()
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
pub(crate) struct TokenResponse {
    pub(crate) access_token: String,
    pub(crate) token_type: String,
    pub(crate) expires_in: i64,
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
    let mut parts = decoded.splitn(2, |&b| b == b':');
    let (id, secret) = (parts.next()?, parts.next()?);
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
