//! What can go wrong in the hub, and how each maps to a problem response.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use renkei_domain::{ConsentId, DenialReason, RequestId};
use renkei_store::StoreError;

use crate::problem::Problem;

/// An error of the hub's operations (shared by HTTP handlers, the demo and tests).
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("{0}")]
    Malformed(String),
    /// A field of a registration the hub refuses (a URL it must not call, a key that is
    /// not one); `detail` names the field.
    #[error("{detail}")]
    InvalidField { field: String, detail: String },
    #[error("missing or invalid bearer token")]
    Unauthorized,
    #[error("invalid client credentials")]
    InvalidClient,
    #[error("grant type `{0}` is not supported")]
    UnsupportedGrantType(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("unknown service `{0}`")]
    UnknownService(String),
    #[error("service `{0}` has no purpose `{1}`")]
    UnknownPurpose(String, String),
    #[error("unknown data category `{0}`")]
    UnknownCategory(String),
    #[error("service `{0}` is not approved")]
    ServiceNotApproved(String),
    #[error("request denied: {}", .reason.code())]
    Denied {
        request: RequestId,
        reason: DenialReason,
    },
    #[error("consent `{0}` to this purpose version is already active")]
    ConsentAlreadyActive(ConsentId),
    #[error("consent `{0}` is not active")]
    ConsentNotActive(ConsentId),
    #[error("no provider answered")]
    ProviderFailure {
        request: RequestId,
        failures: serde_json::Value,
    },
    #[error("this endpoint exists only in demo mode")]
    DemoOnly,
    #[error("{0}")]
    Forbidden(String),
    /// An OAuth 2.0 error (RFC 6749 §5.2): `error` is the registered code.
    #[error("{description}")]
    OAuth {
        error: OAuthErrorCode,
        description: String,
    },
    /// The bearer token was revoked, or a consent it was issued under no longer holds.
    #[error("the token is no longer active")]
    TokenInactive,
    #[error("enrolment refused: {detail}")]
    EnrolmentRefused {
        reason: &'static str,
        detail: String,
    },
    #[error("passkey refused: {0}")]
    PasskeyRefused(String),
    #[error("passkeys need the hub's issuer to be a domain name, not `{0}`")]
    PasskeysUnavailable(String),
    /// Storage is out of reach or cannot write for now: the caller may try again shortly
    /// (`Retry-After`), and a load balancer sends it elsewhere (`/readyz`).
    #[error("storage is unavailable")]
    StorageUnavailable,
    /// Too many requests from one address or client ([`crate::limits`]): try again after
    /// `retry_after` seconds.
    #[error("too many requests: try again in {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error("internal error: {0}")]
    Internal(String),
}

/// How long a client is asked to wait before it tries again while storage is unavailable.
pub const STORAGE_RETRY_AFTER_SECS: u32 = 1;

impl From<StoreError> for HubError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::NotFound(what),
            StoreError::ConsentAlreadyActive(id) => Self::ConsentAlreadyActive(id),
            StoreError::ConsentNotActive(id) => Self::ConsentNotActive(id),
            StoreError::Invalid(msg) => Self::Malformed(msg),
            e if e.is_unavailable() => {
                tracing::warn!(error = %e, "storage is unavailable");
                Self::StorageUnavailable
            }
            // The database's own message may quote stored values: log the kind only.
            other => Self::Internal(format!("storage: {other}")),
        }
    }
}

impl HubError {
    /// An OAuth `invalid_request` with what was wrong.
    pub fn oauth_request(description: impl Into<String>) -> Self {
        Self::OAuth {
            error: OAuthErrorCode::InvalidRequest,
            description: description.into(),
        }
    }

    /// An OAuth `invalid_grant`: the code, its verifier or its redirect URI does not hold.
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::OAuth {
            error: OAuthErrorCode::InvalidGrant,
            description: description.into(),
        }
    }

    pub fn to_problem(&self) -> Problem {
        use StatusCode as S;
        match self {
            Self::Malformed(msg) => {
                Problem::new(S::BAD_REQUEST, "malformed-request", "Malformed request").detail(msg)
            }
            Self::InvalidField { field, detail } => {
                Problem::new(S::BAD_REQUEST, "invalid-field", "Invalid field")
                    .detail(detail)
                    .extra(serde_json::json!({ "field": field }))
            }
            Self::Unauthorized => {
                Problem::new(S::UNAUTHORIZED, "unauthorized", "Authentication required")
            }
            Self::InvalidClient => {
                Problem::new(S::UNAUTHORIZED, "invalid-client", "Invalid client")
                    .extra(serde_json::json!({ "error": "invalid_client" }))
            }
            Self::UnsupportedGrantType(_) => Problem::new(
                S::BAD_REQUEST,
                "unsupported-grant-type",
                "Unsupported grant type",
            )
            .detail(self.to_string())
            .extra(serde_json::json!({ "error": "unsupported_grant_type" })),
            Self::NotFound(_) => {
                Problem::new(S::NOT_FOUND, "not-found", "Not found").detail(self.to_string())
            }
            Self::UnknownService(_) => {
                Problem::new(S::NOT_FOUND, "unknown-service", "Unknown service")
                    .detail(self.to_string())
            }
            Self::UnknownPurpose(..) => {
                Problem::new(S::NOT_FOUND, "unknown-purpose", "Unknown purpose")
                    .detail(self.to_string())
            }
            // Like an unknown purpose: the name is well formed, the vocabulary has no such entry.
            Self::UnknownCategory(_) => {
                Problem::new(S::NOT_FOUND, "unknown-category", "Unknown data category")
                    .detail(self.to_string())
            }
            Self::ServiceNotApproved(_) => {
                Problem::new(S::FORBIDDEN, "service-not-approved", "Service not approved")
                    .detail(self.to_string())
            }
            // A revoked token is answered like every revoked token: one contract for it.
            Self::Denied {
                reason: DenialReason::TokenRevoked,
                ..
            } => Self::TokenInactive.to_problem(),
            Self::Denied { request, reason } => denial_problem(reason).request_id(request),
            Self::ConsentAlreadyActive(id) => Problem::new(
                S::CONFLICT,
                "consent-already-active",
                "Consent already active",
            )
            .detail(self.to_string())
            .extra(serde_json::json!({ "consent_id": id })),
            Self::ConsentNotActive(_) => {
                Problem::new(S::CONFLICT, "consent-not-active", "Consent not active")
                    .detail(self.to_string())
            }
            Self::ProviderFailure { request, failures } => {
                Problem::new(S::BAD_GATEWAY, "provider-failure", "No provider answered")
                    .detail(
                        "every provider holding the data failed or timed out; nothing was returned",
                    )
                    .request_id(request)
                    .extra(serde_json::json!({ "providers": failures }))
            }
            Self::DemoOnly => {
                Problem::new(S::NOT_FOUND, "demo-only", "Demo mode only").detail(self.to_string())
            }
            Self::Forbidden(msg) => {
                Problem::new(S::FORBIDDEN, "forbidden", "Forbidden").detail(msg)
            }
            Self::OAuth { error, description } => {
                Problem::new(S::BAD_REQUEST, "oauth-error", "OAuth error")
                    .detail(description)
                    .extra(serde_json::json!({ "error": error, "error_description": description }))
            }
            Self::TokenInactive => {
                Problem::new(S::UNAUTHORIZED, "token-inactive", "Token no longer active")
                    .detail(self.to_string())
            }
            Self::EnrolmentRefused { reason, .. } => {
                Problem::new(S::FORBIDDEN, "enrolment-refused", "Enrolment refused")
                    .detail(self.to_string())
                    .extra(serde_json::json!({ "reason": reason }))
            }
            Self::PasskeyRefused(_) => {
                Problem::new(S::FORBIDDEN, "passkey-refused", "Passkey refused")
                    .detail(self.to_string())
            }
            Self::PasskeysUnavailable(_) => {
                Problem::new(S::FORBIDDEN, "passkeys-unavailable", "Passkeys unavailable")
                    .detail(self.to_string())
            }
            Self::StorageUnavailable => Problem::new(
                S::SERVICE_UNAVAILABLE,
                "storage-unavailable",
                "Storage unavailable",
            )
            .detail("the hub's storage is unavailable for now; try again shortly"),
            Self::RateLimited { retry_after } => {
                Problem::new(S::TOO_MANY_REQUESTS, "rate-limited", "Too many requests")
                    .detail(self.to_string())
                    .extra(serde_json::json!({ "retry_after": retry_after }))
            }
            Self::Internal(_) => {
                Problem::new(S::INTERNAL_SERVER_ERROR, "internal", "Internal error")
            }
        }
    }
}

fn denial_problem(reason: &DenialReason) -> Problem {
    use DenialReason as D;
    let (status, title, detail, extra) = match reason {
        D::ServiceNotApproved => (
            StatusCode::FORBIDDEN,
            "Service not approved",
            "the service is not approved or is suspended".to_owned(),
            None,
        ),
        D::UnknownPurpose => (
            StatusCode::NOT_FOUND,
            "Unknown purpose",
            "the service declared no such purpose".to_owned(),
            None,
        ),
        D::UnknownSubject => (
            StatusCode::NOT_FOUND,
            "Unknown subject",
            "no resident is known by this subject for this service".to_owned(),
            None,
        ),
        D::CategoryNotInPurpose { categories } => (
            StatusCode::FORBIDDEN,
            "Category not in purpose",
            "the purpose does not declare every category asked for".to_owned(),
            Some(serde_json::json!({ "categories": categories })),
        ),
        D::NoConsent => (
            StatusCode::FORBIDDEN,
            "No consent",
            "the resident has not consented to this purpose".to_owned(),
            None,
        ),
        D::ConsentRevoked => (
            StatusCode::FORBIDDEN,
            "Consent revoked",
            "the resident revoked consent to this purpose".to_owned(),
            None,
        ),
        D::ConsentExpired => (
            StatusCode::FORBIDDEN,
            "Consent expired",
            "the consent to this purpose has expired".to_owned(),
            None,
        ),
        D::PurposeChanged {
            consented_version,
            current_version,
        } => (
            StatusCode::FORBIDDEN,
            "Consent to an older purpose version",
            format!(
                "the consent was given for version {consented_version}; the purpose is now at version {current_version}"
            ),
            None,
        ),
        D::CategoryNotCovered { categories } => (
            StatusCode::FORBIDDEN,
            "Category not covered by consent",
            "the consent does not cover every category asked for".to_owned(),
            Some(serde_json::json!({ "categories": categories })),
        ),
        D::ServiceKeyInvalid => (
            StatusCode::CONFLICT,
            "Service key invalid",
            "the service's registered HPKE key is not an X25519 public key; nothing was released"
                .to_owned(),
            None,
        ),
        D::TokenRevoked => return HubError::TokenInactive.to_problem(),
    };
    let p = Problem::new(status, reason.code(), title).detail(detail);
    match extra {
        Some(e) => p.extra(e),
        None => p,
    }
}

impl HubError {
    /// How long the caller is asked to wait before trying again, if at all.
    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::StorageUnavailable => Some(u64::from(STORAGE_RETRY_AFTER_SECS)),
            Self::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    /// The `WWW-Authenticate` challenge of a 401 (RFC 9110 §11.6.1 requires one): HTTP Basic
    /// for a client's credentials refused over Basic, or none (RFC 6749 §5.2), `Bearer` with
    /// `invalid_token` for a bearer token that did not hold (RFC 6750 §3.1).
    fn challenge(&self) -> Option<&'static str> {
        match self {
            Self::InvalidClient => Some(BASIC_CHALLENGE),
            Self::Unauthorized
            | Self::TokenInactive
            | Self::Denied {
                reason: DenialReason::TokenRevoked,
                ..
            } => Some(INVALID_TOKEN_CHALLENGE),
            _ => None,
        }
    }

    /// This error as the OAuth endpoints answer it: the status and the RFC 6749 §5.2 error
    /// code. What the RFC names no code for (too many requests, storage away, a failure of
    /// the hub) takes the codes RFC 6749 §4.1.2.1 gives those cases, with the HTTP status
    /// that says it.
    pub fn oauth_error(&self) -> (StatusCode, OAuthErrorCode) {
        use OAuthErrorCode as C;
        use StatusCode as S;
        match self {
            // An unapproved (or suspended) service is no client of the hub.
            Self::InvalidClient | Self::ServiceNotApproved(_) => {
                (S::UNAUTHORIZED, C::InvalidClient)
            }
            // Form credentials refused: no HTTP authentication was tried (RFC 6749 §5.2).
            Self::OAuth { error, .. } => (S::BAD_REQUEST, *error),
            Self::UnsupportedGrantType(_) => (S::BAD_REQUEST, C::UnsupportedGrantType),
            Self::RateLimited { .. } => (S::TOO_MANY_REQUESTS, C::TemporarilyUnavailable),
            Self::StorageUnavailable => (S::SERVICE_UNAVAILABLE, C::TemporarilyUnavailable),
            Self::Internal(_) => (S::INTERNAL_SERVER_ERROR, C::ServerError),
            _ => (S::BAD_REQUEST, C::InvalidRequest),
        }
    }
}

/// The challenge of a 401 for a client's credentials.
pub const BASIC_CHALLENGE: &str = "Basic realm=\"renkei\", charset=\"UTF-8\"";
/// The challenge of a 401 for a bearer token that was presented and did not hold.
pub const INVALID_TOKEN_CHALLENGE: &str = "Bearer realm=\"renkei\", error=\"invalid_token\"";
/// The challenge of a 401 for a request that presented no bearer token (RFC 6750 §3.1: no
/// error code then).
pub const BEARER_CHALLENGE: &str = "Bearer realm=\"renkei\"";

fn with_headers(mut response: Response, e: &HubError) -> Response {
    let headers = response.headers_mut();
    if let Some(seconds) = e.retry_after() {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if let Some(challenge) = e.challenge() {
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
    }
    response
}

impl IntoResponse for HubError {
    fn into_response(self) -> Response {
        if let Self::Internal(msg) = &self {
            tracing::error!(error = %msg, "request failed");
        }
        with_headers(self.to_problem().into_response(), &self)
    }
}

/// An error of the OAuth endpoints (token, introspection, revocation), answered as RFC 6749
/// §5.2 (which RFC 7662 §2.3 and RFC 7009 §2.2.1 follow) says: `application/json` with
/// `error` and `error_description`, not a problem, since relying-party libraries read
/// these by the media type. Everywhere else errors are problems.
#[derive(Debug)]
pub struct OAuthError(pub HubError);

impl From<HubError> for OAuthError {
    fn from(e: HubError) -> Self {
        Self(e)
    }
}

/// An OAuth 2.0 error code the token, introspection and revocation endpoints answer (RFC
/// 6749 §5.2; the last two from §4.1.2.1).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OAuthErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnsupportedGrantType,
    TemporarilyUnavailable,
    ServerError,
}

/// The body of an OAuth error (RFC 6749 §5.2).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct OAuthErrorBody {
    pub error: OAuthErrorCode,
    /// What went wrong, in printable ASCII without a double quote or a backslash (RFC 6749
    /// §5.2). Never contains personal data or the client secret.
    pub error_description: String,
}

/// RFC 6749 §5.2: `error_description` holds only %x20-21 / %x23-5B / %x5D-7E; anything else
/// (a quote, a backslash, a non-ASCII character of someone's input) becomes `?`.
pub fn oauth_description(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' => c,
            _ => '?',
        })
        .collect()
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let e = self.0;
        if let HubError::Internal(msg) = &e {
            tracing::error!(error = %msg, "request failed");
        }
        let (status, error) = e.oauth_error();
        let description = match &e {
            // Nothing of the hub's inner workings goes out.
            HubError::Internal(_) => "the hub failed; nothing was changed".to_owned(),
            HubError::OAuth { description, .. } => description.clone(),
            other => other.to_string(),
        };
        let body = OAuthErrorBody {
            error,
            error_description: oauth_description(&description),
        };
        let mut response = (status, axum::Json(body)).into_response();
        // RFC 6749 §5.1 asks the same of token answers; errors carry no secret, but no
        // cache keeps them either.
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        let mut response = with_headers(response, &e);
        // A 401 here is always about the client's credentials: challenge for Basic.
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(BASIC_CHALLENGE),
            );
        }
        response
    }
}
