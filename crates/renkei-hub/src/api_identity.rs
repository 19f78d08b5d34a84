//! The HTTP API of identity: OpenID Connect endpoints, enrolment and passkeys (proxies,
//! requests and the service registry are `api_accounts.rs`). Routes are declared in
//! `api.rs`; the handlers and their OpenAPI operations live here.

use axum::Json;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use renkei_domain::ServiceId;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use crate::auth::{
    ProxyPermission, RESIDENT_TOKEN_SECONDS, ResidentCaller, SERVICE_TOKEN_SECONDS, bearer,
    hash_client_secret,
};
use crate::enrolment::{EnrolmentBody, EnrolmentChallenge};
use crate::error::{OAuthError, OAuthErrorBody, OAuthErrorCode};
use crate::limits::PeerAddr;
use crate::oidc::{CodeTokens, Introspection};
use crate::passkeys::PasskeyView;
use crate::problem::{ApiJson, ApiPath, Problem};
use crate::{Hub, HubError};

/// Identity's schemas for the API document (its operations come with its routes, in
/// `api.rs`).
#[derive(OpenApi)]
#[openapi(components(schemas(
    OAuthForm,
    OAuthErrorBody,
    OAuthErrorCode,
    TokenResponse,
    CodeTokens,
    Introspection,
    TokenForm,
    EnrolmentChallenge,
    EnrolmentBody,
    SessionToken,
    PasskeyView,
    PasskeyFinish,
)))]
pub struct IdentityApiDoc;

pub(crate) const PROBLEM: &str = "application/problem+json";
/// The media type of the OAuth endpoints' errors (RFC 6749 §5.2).
const OAUTH_JSON: &str = "application/json";

pub(crate) fn no_store(body: impl Serialize) -> Response {
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        Json(serde_json::to_value(body).unwrap_or_default()),
    )
        .into_response()
}

// --- OAuth 2.0 / OpenID Connect ---

/// OpenID Provider metadata (OpenID Connect Discovery 1.0).
#[utoipa::path(get, path = "/.well-known/openid-configuration", responses((status = 200, body = Object)))]
pub(crate) async fn openid_configuration(State(hub): State<Hub>) -> Json<serde_json::Value> {
    Json(hub.openid_configuration())
}

/// The token endpoint's form (RFC 6749 §4.1.3 and §4.4).
#[derive(Deserialize, ToSchema)]
pub(crate) struct OAuthForm {
    #[schema(value_type = GrantType)]
    grant_type: String,
    client_id: Option<String>,
    client_secret: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    /// RFC 7523 §2.2: how a data provider authenticates (`client_credentials` only).
    client_assertion_type: Option<String>,
    client_assertion: Option<String>,
}

/// The grant types the token endpoint takes (others are `unsupported_grant_type`).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[expect(dead_code, reason = "describes the form in the API document only")]
pub(crate) enum GrantType {
    ClientCredentials,
    AuthorizationCode,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
}

/// Checks a client's credentials (HTTP Basic or form fields); the service must be approved.
/// Every attempt counts against the rate limits of its address and of the client id it
/// names, before the secret is compared.
///
/// RFC 6749 §5.2: credentials refused over HTTP Basic, or none at all, are a 401 with a
/// `Basic` challenge (`HubError::InvalidClient`); refused form credentials are a 400
/// `invalid_client`, since no HTTP authentication scheme was tried (a 401 would need a
/// challenge, which relying-party libraries then read instead of the error).
async fn authenticate_client(
    hub: &Hub,
    from: PeerAddr,
    headers: &HeaderMap,
    client_id: Option<String>,
    client_secret: Option<String>,
) -> Result<ServiceId, HubError> {
    let (id, secret, basic) = match (
        crate::api::basic_credentials(headers),
        client_id,
        client_secret,
    ) {
        (Some((id, secret)), _, _) => (id, secret, true),
        (None, Some(id), Some(secret)) => (id, secret, false),
        _ => return Err(HubError::InvalidClient),
    };
    let refused = || {
        if basic {
            HubError::InvalidClient
        } else {
            HubError::OAuth {
                error: OAuthErrorCode::InvalidClient,
                description: HubError::InvalidClient.to_string(),
            }
        }
    };
    hub.limit_oauth(from, &id)?;
    let checked = async {
        let id = ServiceId::new(id.as_str()).map_err(|_| refused())?;
        let stored = hub
            .store()
            .client_secret_hash(&id)
            .await?
            .ok_or_else(refused)?;
        // Compared in constant time, so how long a refusal takes says nothing of how much of
        // the stored hash a guess matched.
        aws_lc_rs::constant_time::verify_slices_are_equal(
            stored.as_bytes(),
            hash_client_secret(&secret).as_bytes(),
        )
        .map_err(|_| refused())?;
        hub.approved_service(&id).await.map_err(|_| refused())?;
        Ok(id)
    }
    .await;
    // Refused credentials count towards a security event (storage failures do not).
    if matches!(
        checked,
        Err(HubError::InvalidClient | HubError::OAuth { .. })
    ) {
        // Only a well-formed id goes into an event: the rest is the caller's text.
        let client = ServiceId::new(id.as_str()).map_or("-".to_owned(), |id| id.to_string());
        hub.authentication_failed(from.0, &client);
    }
    checked
}

/// OAuth 2.0 token endpoint: `client_credentials` (a service's own token) or
/// `authorization_code` with its PKCE verifier (tokens for one resident, and an ID token).
/// Errors are RFC 6749 §5.2's `application/json`, not problems.
#[utoipa::path(post, path = "/oauth/token", request_body(content = OAuthForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = CodeTokens), (status = 400, description = "`invalid_request`, `invalid_grant`, `unsupported_grant_type`, or `invalid_client` for refused form credentials", body = OAuthErrorBody, content_type = OAUTH_JSON),
        (status = 401, description = "`invalid_client`: credentials refused over HTTP Basic, or none", body = OAuthErrorBody, content_type = OAUTH_JSON, headers(("WWW-Authenticate" = String, description = "`Basic realm=\"renkei\"`"))),
        (status = 429, description = "`temporarily_unavailable`: too many attempts", body = OAuthErrorBody, content_type = OAUTH_JSON, headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
        (status = 503, description = "`temporarily_unavailable`: storage unavailable", body = OAuthErrorBody, content_type = OAUTH_JSON, headers(("Retry-After" = u32, description = "Seconds to wait before trying again")))))]
pub(crate) async fn token(
    State(hub): State<Hub>,
    from: PeerAddr,
    headers: HeaderMap,
    form: Result<Form<OAuthForm>, FormRejection>,
) -> Result<Response, OAuthError> {
    let Form(form) = form.map_err(|r| HubError::oauth_request(r.body_text()))?;
    match form.grant_type.as_str() {
        "client_credentials" if form.client_assertion.is_some() => {
            let assertion = form.client_assertion.as_deref().unwrap_or_default();
            let answer = crate::provider_sync::provider_token(
                &hub,
                from,
                form.client_assertion_type.as_deref(),
                assertion,
            )
            .await?;
            Ok(no_store(answer))
        }
        "client_credentials" => {
            let id = authenticate_client(&hub, from, &headers, form.client_id, form.client_secret)
                .await?;
            let access_token = hub.keys().issue_service_token(&id, Utc::now())?;
            Ok(no_store(TokenResponse {
                access_token,
                token_type: "Bearer".into(),
                expires_in: SERVICE_TOKEN_SECONDS,
            }))
        }
        "authorization_code" => {
            let id = authenticate_client(&hub, from, &headers, form.client_id, form.client_secret)
                .await?;
            let tokens = hub
                .redeem_code(
                    &id,
                    form.code.as_deref(),
                    form.redirect_uri.as_deref(),
                    form.code_verifier.as_deref(),
                )
                .await?;
            Ok(no_store(tokens))
        }
        other => Err(HubError::UnsupportedGrantType(other.to_owned()).into()),
    }
}

/// OpenID Connect userinfo: `sub`, and the verified name only if the resident shared it.
#[utoipa::path(get, path = "/oauth/userinfo", security(("user" = [])),
    responses((status = 200, body = Object), (status = 401, body = Problem, content_type = PROBLEM, headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"renkei\", error=\"invalid_token\"` (RFC 6750 §3)")))))]
pub(crate) async fn userinfo_get(
    State(hub): State<Hub>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, HubError> {
    Ok(Json(hub.userinfo(bearer(&headers)?).await?))
}

/// The same as `GET /oauth/userinfo`.
#[utoipa::path(post, path = "/oauth/userinfo", security(("user" = [])),
    responses((status = 200, body = Object), (status = 401, body = Problem, content_type = PROBLEM, headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"renkei\", error=\"invalid_token\"` (RFC 6750 §3)")))))]
pub(crate) async fn userinfo_post(
    State(hub): State<Hub>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, HubError> {
    Ok(Json(hub.userinfo(bearer(&headers)?).await?))
}

/// Introspection and revocation forms (RFC 7662, RFC 7009).
#[derive(Deserialize, ToSchema)]
pub(crate) struct TokenForm {
    token: String,
    token_type_hint: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// RFC 7662 token introspection, for the service that holds the token. Errors are RFC 6749
/// §5.2's `application/json` (RFC 7662 §2.3).
#[utoipa::path(post, path = "/oauth/introspect", request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = Introspection), (status = 400, description = "`invalid_request`, or `invalid_client` for refused form credentials", body = OAuthErrorBody, content_type = OAUTH_JSON),
        (status = 401, description = "`invalid_client`: credentials refused over HTTP Basic, or none", body = OAuthErrorBody, content_type = OAUTH_JSON, headers(("WWW-Authenticate" = String, description = "`Basic realm=\"renkei\"`"))),
        (status = 429, description = "`temporarily_unavailable`: too many attempts", body = OAuthErrorBody, content_type = OAUTH_JSON, headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
        (status = 503, description = "`temporarily_unavailable`: storage unavailable", body = OAuthErrorBody, content_type = OAUTH_JSON, headers(("Retry-After" = u32, description = "Seconds to wait before trying again")))))]
pub(crate) async fn introspect(
    State(hub): State<Hub>,
    from: PeerAddr,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Result<Response, OAuthError> {
    let Form(form) = form.map_err(|r| HubError::oauth_request(r.body_text()))?;
    let _ = form.token_type_hint;
    let caller =
        authenticate_client(&hub, from, &headers, form.client_id, form.client_secret).await?;
    Ok(no_store(hub.introspect(&caller, &form.token).await?))
}

/// RFC 7009 token revocation: the token stops working at once. Errors are RFC 6749 §5.2's
/// `application/json` (RFC 7009 §2.2.1).
#[utoipa::path(post, path = "/oauth/revoke", request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Revoked, or nothing to revoke"), (status = 400, description = "`invalid_request`, or `invalid_client` for refused form credentials", body = OAuthErrorBody, content_type = OAUTH_JSON),
        (status = 401, description = "`invalid_client`: credentials refused over HTTP Basic, or none", body = OAuthErrorBody, content_type = OAUTH_JSON, headers(("WWW-Authenticate" = String, description = "`Basic realm=\"renkei\"`"))),
        (status = 429, description = "`temporarily_unavailable`: too many attempts", body = OAuthErrorBody, content_type = OAUTH_JSON, headers(("Retry-After" = u32, description = "Seconds to wait before trying again"))),
        (status = 503, description = "`temporarily_unavailable`: storage unavailable", body = OAuthErrorBody, content_type = OAUTH_JSON, headers(("Retry-After" = u32, description = "Seconds to wait before trying again")))))]
pub(crate) async fn revoke(
    State(hub): State<Hub>,
    from: PeerAddr,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Result<Response, OAuthError> {
    let Form(form) = form.map_err(|r| HubError::oauth_request(r.body_text()))?;
    let caller =
        authenticate_client(&hub, from, &headers, form.client_id, form.client_secret).await?;
    hub.revoke_token(&caller, &form.token).await?;
    Ok(StatusCode::OK.into_response())
}

// --- enrolment and passkeys ---

/// A session token for the portal or an app acting for the resident.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct SessionToken {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
    /// Set by enrolment: `false` when this certificate enrolled before (same resident).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_resident: Option<bool>,
}

pub(crate) fn session_token(access_token: String, new_resident: Option<bool>) -> Response {
    no_store(SessionToken {
        access_token,
        token_type: "Bearer".into(),
        expires_in: RESIDENT_TOKEN_SECONDS,
        new_resident,
    })
}

/// A fresh challenge to sign with the certificate's key (single use, 5 minutes).
#[utoipa::path(post, path = "/v1/enrolment/challenges",
    responses((status = 201, body = EnrolmentChallenge), (status = 403, body = Problem, content_type = PROBLEM), (status = 429, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn enrolment_challenge(
    State(hub): State<Hub>,
    from: PeerAddr,
) -> Result<Response, HubError> {
    Ok((
        StatusCode::CREATED,
        no_store(hub.enrolment_challenge(from).await?),
    )
        .into_response())
}

/// Enrol with a certificate chaining to the city's trust anchor and a signature over a
/// challenge; answers a resident session. Enrolling again with the same card is how a
/// resident who lost every passkey gets back in.
#[utoipa::path(post, path = "/v1/enrolment", request_body = EnrolmentBody,
    responses((status = 200, body = SessionToken), (status = 400, body = Problem, content_type = PROBLEM), (status = 403, body = Problem, content_type = PROBLEM), (status = 415, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn enrol(
    State(hub): State<Hub>,
    ApiJson(body): ApiJson<EnrolmentBody>,
) -> Result<Response, HubError> {
    let outcome = hub.enrol(&body).await?;
    let token = hub
        .keys()
        .issue_resident_token(outcome.resident, Utc::now())?;
    Ok(session_token(token, Some(outcome.new_resident)))
}

/// Start signing in with a passkey: options for `navigator.credentials.get()`.
#[utoipa::path(post, path = "/v1/passkeys/sign-in",
    responses((status = 200, body = Object), (status = 403, body = Problem, content_type = PROBLEM), (status = 429, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn passkey_sign_in_start(
    State(hub): State<Hub>,
    from: PeerAddr,
) -> Result<Response, HubError> {
    Ok(no_store(hub.start_passkey_sign_in(from).await?))
}

/// Finish signing in: the assertion the browser returned; answers a resident session.
#[utoipa::path(post, path = "/v1/passkeys/sign-in/{ceremony}", params(("ceremony" = uuid::Uuid, Path)), request_body = CredentialJson,
    responses((status = 200, body = SessionToken), (status = 400, body = Problem, content_type = PROBLEM), (status = 403, body = Problem, content_type = PROBLEM), (status = 415, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn passkey_sign_in_finish(
    State(hub): State<Hub>,
    ApiPath(ceremony): ApiPath<String>,
    ApiJson(credential): ApiJson<serde_json::Value>,
) -> Result<Response, HubError> {
    let ceremony = ceremony_id(&ceremony)?;
    let credential: PublicKeyCredential = webauthn_credential(credential)?;
    let resident = hub.finish_passkey_sign_in(ceremony, &credential).await?;
    let token = hub.keys().issue_resident_token(resident, Utc::now())?;
    Ok(session_token(token, None))
}

/// A WebAuthn credential as a browser's `PublicKeyCredential.toJSON()` gives it: what the
/// API document states of it. The `response` holds the authenticator's answer (base64url
/// fields); whether those decode and verify is for the ceremony to judge.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[expect(dead_code, reason = "read to check the shape the document states")]
pub(crate) struct CredentialJson {
    /// The credential id, base64url.
    id: String,
    /// The same id, base64url.
    raw_id: String,
    #[serde(rename = "type")]
    kind: CredentialType,
    #[schema(value_type = Object)]
    response: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize, ToSchema)]
pub(crate) enum CredentialType {
    #[serde(rename = "public-key")]
    PublicKey,
}

/// Reads a credential: one not shaped as the document says is malformed (400); one shaped so
/// whose contents do not decode is refused (403), as one that does not verify is.
fn webauthn_credential<T: serde::de::DeserializeOwned>(
    json: serde_json::Value,
) -> Result<T, HubError> {
    serde_json::from_value::<CredentialJson>(json.clone())
        .map_err(|e| HubError::Malformed(format!("the credential: {e}")))?;
    serde_json::from_value(json)
        .map_err(|e| HubError::PasskeyRefused(format!("the credential does not decode: {e}")))
}

fn ceremony_id(s: &str) -> Result<uuid::Uuid, HubError> {
    s.parse()
        .map_err(|_| HubError::Malformed(format!("`{s}` is not a ceremony id")))
}

/// My passkeys.
#[utoipa::path(get, path = "/v1/me/passkeys", security(("resident" = [])),
    responses((status = 200, body = Vec<PasskeyView>), (status = 401, body = Problem, content_type = PROBLEM), (status = 403, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn my_passkeys(
    State(hub): State<Hub>,
    ResidentCaller(me): ResidentCaller,
) -> Result<Json<Vec<PasskeyView>>, HubError> {
    me.require(ProxyPermission::ManageAccount, None)?;
    Ok(Json(hub.passkeys(me.resident).await?))
}

/// Start registering a passkey: options for `navigator.credentials.create()`.
#[utoipa::path(post, path = "/v1/me/passkeys/registrations", security(("resident" = [])),
    responses((status = 200, body = Object), (status = 401, body = Problem, content_type = PROBLEM), (status = 403, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn passkey_registration_start(
    State(hub): State<Hub>,
    ResidentCaller(me): ResidentCaller,
) -> Result<Response, HubError> {
    me.require(ProxyPermission::ManageAccount, None)?;
    Ok(no_store(hub.start_passkey_registration(me.resident).await?))
}

/// The browser's answer to a registration, and a name for the passkey.
#[derive(Deserialize, ToSchema)]
pub(crate) struct PasskeyFinish {
    name: Option<String>,
    #[schema(value_type = CredentialJson)]
    credential: serde_json::Value,
}

/// Finish registering a passkey.
#[utoipa::path(post, path = "/v1/me/passkeys/registrations/{ceremony}", params(("ceremony" = uuid::Uuid, Path)), request_body = PasskeyFinish, security(("resident" = [])),
    responses((status = 201, body = PasskeyView), (status = 400, body = Problem, content_type = PROBLEM), (status = 401, body = Problem, content_type = PROBLEM), (status = 403, body = Problem, content_type = PROBLEM), (status = 415, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn passkey_registration_finish(
    State(hub): State<Hub>,
    ResidentCaller(me): ResidentCaller,
    ApiPath(ceremony): ApiPath<String>,
    ApiJson(body): ApiJson<PasskeyFinish>,
) -> Result<Response, HubError> {
    me.require(ProxyPermission::ManageAccount, None)?;
    let ceremony = ceremony_id(&ceremony)?;
    let credential: RegisterPublicKeyCredential = webauthn_credential(body.credential)?;
    let view = hub
        .finish_passkey_registration(me.resident, ceremony, body.name, &credential)
        .await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// Remove one of my passkeys (a lost phone).
#[utoipa::path(post, path = "/v1/me/passkeys/{id}/remove", params(("id" = String, Path)), security(("resident" = [])),
    responses((status = 204, description = "Removed"), (status = 401, body = Problem, content_type = PROBLEM), (status = 403, body = Problem, content_type = PROBLEM), (status = 404, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn remove_passkey(
    State(hub): State<Hub>,
    ResidentCaller(me): ResidentCaller,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, HubError> {
    me.require(ProxyPermission::ManageAccount, None)?;
    hub.remove_passkey(me.resident, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
