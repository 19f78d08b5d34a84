//! RFC 9457 problem details: every error the hub answers is one of these, with a stable `type`.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

/// A problem details object (`application/problem+json`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A stable URI reference naming the kind of problem, e.g. `/problems/consent-revoked`;
    /// `GET` it for a description.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// What went wrong this time. Never contains personal data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The data request this answers, when there was one (it is in the access log).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Extra machine-readable members, e.g. the categories not covered.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub extra: Option<serde_json::Value>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, title: &str) -> Self {
        Self {
            kind: format!("/problems/{code}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: None,
            request_id: None,
            extra: None,
        }
    }
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
    pub fn request_id(mut self, id: impl ToString) -> Self {
        self.request_id = Some(id.to_string());
        self
    }
    pub fn extra(mut self, extra: serde_json::Value) -> Self {
        self.extra = Some(extra);
        self
    }
    /// The stable code at the end of the `type` URI.
    pub fn code(&self) -> &str {
        self.kind.rsplit('/').next().unwrap_or_default()
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(self)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

/// The problem types the hub can answer, with what each means: served at `/problems/<code>`.
pub const CATALOGUE: &[(&str, &str)] = &[
    (
        "malformed-request",
        "The request body or parameters could not be read: malformed JSON, a missing or mistyped field, or a wrong content type.",
    ),
    (
        "invalid-field",
        "A field of the request was read but refused: a URL the hub may not call (not https, or an internal, private or metadata address), or a key that is not one. The `field` member names it.",
    ),
    (
        "unauthorized",
        "No valid bearer token or client credentials were presented.",
    ),
    (
        "invalid-client",
        "The client id or secret is wrong, or the service is not approved.",
    ),
    (
        "unsupported-grant-type",
        "The token endpoint issues tokens for the authorization_code and client_credentials grants only.",
    ),
    (
        "not-found",
        "The named thing does not exist, or is not yours to see.",
    ),
    ("unknown-service", "No service with this id is registered."),
    (
        "forbidden",
        "You are signed in, but may not do this: a proxy acting outside the scope the resident set, or a resident on an operator's page.",
    ),
    (
        "oauth-error",
        "An OAuth 2.0 or OpenID Connect request failed; the `error` member holds the RFC 6749 error code (invalid_request, invalid_grant, invalid_scope, ...).",
    ),
    (
        "token-inactive",
        "The token was revoked, its service was suspended, or a consent it was issued under was revoked or expired.",
    ),
    (
        "enrolment-refused",
        "The certificate or the signature over the challenge was not accepted; the `reason` member says why (unknown-issuer, expired, revoked, bad-signature, ...).",
    ),
    (
        "passkey-refused",
        "The passkey response did not verify: unknown credential, a ceremony that expired or was already finished, or a replayed assertion.",
    ),
    (
        "passkeys-unavailable",
        "Passkeys need the hub's issuer URL to name a domain (WebAuthn relying-party id), and it does not.",
    ),
    (
        "unknown-purpose",
        "The service declared no purpose with this id.",
    ),
    (
        "unknown-category",
        "The data category is not in the vocabulary.",
    ),
    (
        "unknown-subject",
        "The hub knows no resident by this subject for this service.",
    ),
    (
        "service-not-approved",
        "The service is not approved, or an operator suspended it.",
    ),
    (
        "category-not-in-purpose",
        "The purpose does not declare one of the categories asked for.",
    ),
    (
        "consent-missing",
        "The resident never consented to this purpose.",
    ),
    (
        "consent-revoked",
        "The resident revoked the consent to this purpose.",
    ),
    ("consent-expired", "The consent to this purpose expired."),
    (
        "consent-wrong-purpose-version",
        "The resident consented to an older version of this purpose; the current version needs a new consent.",
    ),
    (
        "category-not-covered",
        "The consent does not cover one of the categories asked for.",
    ),
    (
        "service-key-invalid",
        "The service's registered HPKE key is not an X25519 public key, so nothing could be sealed to it; the request was recorded as denied.",
    ),
    (
        "consent-already-active",
        "An active consent to this purpose version exists already.",
    ),
    (
        "consent-not-active",
        "The consent is already revoked or expired.",
    ),
    (
        "grant-expired",
        "A provider refused a grant that had expired.",
    ),
    (
        "grant-replayed",
        "A provider refused a grant it had already accepted once.",
    ),
    (
        "provider-failure",
        "No provider holding the data answered in time; nothing was returned.",
    ),
    ("demo-only", "This endpoint exists only in demo mode."),
    (
        "storage-unavailable",
        "The hub's storage is out of reach or cannot write for now (the database is down, the disk is full); nothing was answered from it. Try again after the `Retry-After` seconds; `GET /readyz` says when the hub is ready again.",
    ),
    (
        "rate-limited",
        "Too many requests from this address or client: try again after the number of seconds in the `Retry-After` header (also in `retry_after`).",
    ),
    (
        "internal",
        "The hub failed; nothing was changed. The incident is logged without personal data.",
    ),
];

/// `axum::Json`, but a body that cannot be read becomes a problem, not plain text.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(json_problem(&rejection)),
        }
    }
}

fn json_problem(rejection: &JsonRejection) -> Problem {
    let status = match rejection {
        JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        _ => StatusCode::BAD_REQUEST,
    };
    // serde's message names the field and position, never echoes values beyond the token.
    Problem::new(status, "malformed-request", "Malformed request").detail(rejection.body_text())
}

/// `axum::extract::Query`, with problems as rejections.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|r: QueryRejection| {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    "malformed-request",
                    "Malformed request",
                )
                .detail(r.body_text())
            })
    }
}

/// `axum::extract::Path`, with problems as rejections.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Self(p.0))
            .map_err(|r: PathRejection| {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    "malformed-request",
                    "Malformed request",
                )
                .detail(r.body_text())
            })
    }
}
