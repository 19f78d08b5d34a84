//! What can go wrong in the hub, and how each maps to a problem response.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use renkei_domain::{ConsentId, DeclarationError, DenialReason, RequestId};
use renkei_store::StoreError;

use crate::problem::{Problem, ProblemKind};

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
    /// A step on an emergency declaration that its rules refuse, or that another step beat.
    #[error("{detail}")]
    DeclarationRefused {
        reason: &'static str,
        detail: String,
    },
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
    /// The hub failed (`InternalError`): answered as `internal`, logged with its cause.
    #[error("internal error: {0}")]
    Internal(#[source] InternalError),
}

/// A failure of the hub itself: what it was doing, why, and the error that said so.
///
/// INVARIANT: `context` and `cause` hold no personal data (they go to the log); the source
/// may (a database's message can quote stored values), so it is kept for callers that
/// inspect it but never logged.
#[derive(Debug, thiserror::Error)]
#[error("{context}")]
pub struct InternalError {
    context: String,
    cause: Option<String>,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl InternalError {
    /// What the hub was doing when it failed.
    pub fn context(&self) -> &str {
        &self.context
    }

    /// Why, without personal data: for a storage failure the error's kind and SQLSTATE.
    pub fn cause(&self) -> Option<&str> {
        self.cause.as_deref()
    }

    /// Logs this failure: context and cause, never the source's own message.
    fn log(&self) {
        tracing::error!(
            context = %self.context,
            cause = self.cause.as_deref().unwrap_or("-"),
            "request failed"
        );
    }
}

/// Why storage failed, without personal data: [`StoreError::cause`].
pub fn store_cause(e: &StoreError) -> String {
    e.cause()
}

/// How long a client is asked to wait before it tries again while storage is unavailable.
pub const STORAGE_RETRY_AFTER_SECS: u32 = 1;

impl From<StoreError> for HubError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::NotFound(what),
            StoreError::ConsentAlreadyActive(id) => Self::ConsentAlreadyActive(id),
            StoreError::ConsentNotActive(id) => Self::ConsentNotActive(id),
            // Only declarations' steps are written over a revision.
            StoreError::Stale(what) => Self::DeclarationRefused {
                reason: "changed-meanwhile",
                detail: format!("{what} changed meanwhile: read it again"),
            },
            StoreError::Invalid(msg) => Self::Malformed(msg),
            StoreError::LocatorsRefused(
                e @ renkei_domain::LocatorBatchError::NotRegistered { .. },
            ) => Self::Forbidden(e.to_string()),
            StoreError::LocatorsRefused(e) => Self::Malformed(e.to_string()),
            e if e.is_unavailable() => {
                tracing::warn!(error = %e, "storage is unavailable");
                Self::StorageUnavailable
            }
            // The database's own message may quote stored values: the cause is its kind and
            // SQLSTATE only.
            other => Self::Internal(InternalError {
                context: "storage".to_owned(),
                cause: Some(store_cause(&other)),
                source: Some(Box::new(other)),
            }),
        }
    }
}

impl From<DeclarationError> for HubError {
    fn from(e: DeclarationError) -> Self {
        Self::DeclarationRefused {
            reason: e.code(),
            detail: e.to_string(),
        }
    }
}

impl HubError {
    /// A failure of the hub: `context` says what it was doing, without personal data.
    pub fn internal(context: impl Into<String>) -> Self {
        Self::Internal(InternalError {
            context: context.into(),
            cause: None,
            source: None,
        })
    }

    /// A failure of the hub whose source is gone (shared by several callers), known by its
    /// cause without personal data.
    pub fn internal_cause(context: impl Into<String>, cause: impl Into<String>) -> Self {
        Self::Internal(InternalError {
            context: context.into(),
            cause: Some(cause.into()),
            source: None,
        })
    }

    /// A failure of the hub with the error that caused it, kept as the source; `cause` says
    /// why without personal data (it is logged, the source is not).
    pub fn internal_from(
        context: impl Into<String>,
        cause: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Internal(InternalError {
            context: context.into(),
            cause: Some(cause.into()),
            source: Some(Box::new(source)),
        })
    }

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
        use ProblemKind as K;
        match self {
            Self::Malformed(msg) => Problem::new(K::MalformedRequest).detail(msg),
            Self::InvalidField { field, detail } => Problem::new(K::InvalidField)
                .detail(detail)
                .extra(serde_json::json!({ "field": field })),
            Self::Unauthorized => Problem::new(K::Unauthorized),
            // The OAuth endpoints answer these three as RFC 6749 errors ([`OAuthError`]), so
            // no problem of theirs is sent; were one to reach a problem response, it would
            // keep the RFC 6749 `error` beside the nearest kind.
            Self::InvalidClient => Problem::new(K::Unauthorized)
                .detail(self.to_string())
                .extra(serde_json::json!({ "error": OAuthErrorCode::InvalidClient })),
            Self::UnsupportedGrantType(_) => Problem::new(K::MalformedRequest)
                .detail(self.to_string())
                .extra(serde_json::json!({ "error": OAuthErrorCode::UnsupportedGrantType })),
            Self::OAuth { error, description } => Problem::new(K::MalformedRequest)
                .detail(description)
                .extra(serde_json::json!({ "error": error, "error_description": description })),
            Self::NotFound(_) => Problem::new(K::NotFound).detail(self.to_string()),
            Self::UnknownService(_) => Problem::new(K::UnknownService).detail(self.to_string()),
            Self::UnknownPurpose(..) => Problem::new(K::UnknownPurpose).detail(self.to_string()),
            // Like an unknown purpose: the name is well formed, the vocabulary has no such entry.
            Self::UnknownCategory(_) => Problem::new(K::UnknownCategory).detail(self.to_string()),
            Self::ServiceNotApproved(_) => {
                Problem::new(K::ServiceNotApproved).detail(self.to_string())
            }
            // A revoked token is answered like every revoked token: one contract for it.
            Self::Denied {
                reason: DenialReason::TokenRevoked,
                ..
            } => Self::TokenInactive.to_problem(),
            Self::Denied { request, reason } => denial_problem(reason).request_id(request),
            Self::ConsentAlreadyActive(id) => Problem::new(K::ConsentAlreadyActive)
                .detail(self.to_string())
                .extra(serde_json::json!({ "consent_id": id })),
            Self::ConsentNotActive(_) => Problem::new(K::ConsentNotActive).detail(self.to_string()),
            Self::DeclarationRefused { reason, detail } => Problem::new(K::DeclarationRefused)
                .detail(detail)
                .extra(serde_json::json!({ "reason": reason })),
            Self::ProviderFailure { request, failures } => Problem::new(K::ProviderFailure)
                .detail("every provider holding the data failed or timed out; nothing was returned")
                .request_id(request)
                .extra(serde_json::json!({ "providers": failures })),
            Self::DemoOnly => Problem::new(K::DemoOnly).detail(self.to_string()),
            Self::Forbidden(msg) => Problem::new(K::Forbidden).detail(msg),
            Self::TokenInactive => Problem::new(K::TokenInactive).detail(self.to_string()),
            Self::EnrolmentRefused { reason, .. } => Problem::new(K::EnrolmentRefused)
                .detail(self.to_string())
                .extra(serde_json::json!({ "reason": reason })),
            Self::PasskeyRefused(_) => Problem::new(K::PasskeyRefused).detail(self.to_string()),
            Self::PasskeysUnavailable(_) => {
                Problem::new(K::PasskeysUnavailable).detail(self.to_string())
            }
            Self::StorageUnavailable => Problem::new(K::StorageUnavailable)
                .detail("the hub's storage is unavailable for now; try again shortly"),
            Self::RateLimited { retry_after } => Problem::new(K::RateLimited)
                .detail(self.to_string())
                .extra(serde_json::json!({ "retry_after": retry_after })),
            Self::Internal(_) => Problem::new(K::Internal),
        }
    }
}

/// The kind of problem a denial is answered with: its code is the denial's own
/// ([`DenialReason::code`]), except a revoked token's, answered as every inactive token.
pub fn denial_kind(reason: &DenialReason) -> ProblemKind {
    use DenialReason as D;
    use ProblemKind as K;
    match reason {
        D::ServiceNotApproved => K::ServiceNotApproved,
        D::UnknownPurpose => K::UnknownPurpose,
        D::UnknownSubject => K::UnknownSubject,
        D::CategoryNotInPurpose { .. } => K::CategoryNotInPurpose,
        D::NoConsent => K::ConsentMissing,
        D::ConsentRevoked => K::ConsentRevoked,
        D::ConsentExpired => K::ConsentExpired,
        D::PurposeChanged { .. } => K::ConsentWrongPurposeVersion,
        D::CategoryNotCovered { .. } => K::CategoryNotCovered,
        D::ServiceKeyInvalid => K::ServiceKeyInvalid,
        D::TokenRevoked => K::TokenInactive,
        D::NotInEmergency => K::NotInEmergency,
        D::EmergencyNotInForce => K::EmergencyNotInForce,
        D::CategoryNotInEmergency { .. } => K::CategoryNotInEmergency,
        D::ServiceNotInEmergency => K::ServiceNotInEmergency,
        D::AreaNotInEmergency { .. } => K::AreaNotInEmergency,
    }
}

fn denial_problem(reason: &DenialReason) -> Problem {
    use DenialReason as D;
    let (detail, extra) = match reason {
        D::ServiceNotApproved => (
            "the service is not approved or is suspended".to_owned(),
            None,
        ),
        D::UnknownPurpose => ("the service declared no such purpose".to_owned(), None),
        D::UnknownSubject => (
            "no resident is known by this subject for this service".to_owned(),
            None,
        ),
        D::CategoryNotInPurpose { categories } => (
            "the purpose does not declare every category asked for".to_owned(),
            Some(serde_json::json!({ "categories": categories })),
        ),
        D::NoConsent => (
            "the resident has not consented to this purpose".to_owned(),
            None,
        ),
        D::ConsentRevoked => (
            "the resident revoked consent to this purpose".to_owned(),
            None,
        ),
        D::ConsentExpired => ("the consent to this purpose has expired".to_owned(), None),
        D::PurposeChanged {
            consented_version,
            current_version,
        } => (
            format!(
                "the consent was given for version {consented_version}; the purpose is now at version {current_version}"
            ),
            None,
        ),
        D::CategoryNotCovered { categories } => (
            "the consent does not cover every category asked for".to_owned(),
            Some(serde_json::json!({ "categories": categories })),
        ),
        D::ServiceKeyInvalid => (
            "the service's registered HPKE key is not an X25519 public key; nothing was released"
                .to_owned(),
            None,
        ),
        D::NotInEmergency => (
            "the purpose applies only while a declared emergency is in force, and none is"
                .to_owned(),
            None,
        ),
        D::EmergencyNotInForce => (
            "no consent covers the request and the declarations naming this service are not in force"
                .to_owned(),
            None,
        ),
        D::CategoryNotInEmergency { categories } => (
            "no consent covers the request and the declaration in force does not release every category asked for"
                .to_owned(),
            Some(serde_json::json!({ "categories": categories })),
        ),
        D::ServiceNotInEmergency => (
            "the declaration named does not name this service, or does not exist".to_owned(),
            None,
        ),
        D::AreaNotInEmergency { codes } => (
            "the area asked for is not inside the declaration's area".to_owned(),
            Some(serde_json::json!({ "codes": codes })),
        ),
        D::TokenRevoked => return HubError::TokenInactive.to_problem(),
    };
    let p = Problem::new(denial_kind(reason)).detail(detail);
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
        if let Self::Internal(e) = &self {
            e.log();
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
        if let HubError::Internal(e) = &e {
            e.log();
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

#[cfg(test)]
mod tests {
    use super::*;
    use renkei_domain::CategoryId;
    use std::collections::BTreeSet;

    fn every_denial() -> Vec<DenialReason> {
        let categories: BTreeSet<_> = [CategoryId::new("health.checkup").unwrap()].into();
        vec![
            DenialReason::ServiceNotApproved,
            DenialReason::UnknownPurpose,
            DenialReason::UnknownSubject,
            DenialReason::CategoryNotInPurpose {
                categories: categories.clone(),
            },
            DenialReason::NoConsent,
            DenialReason::ConsentRevoked,
            DenialReason::ConsentExpired,
            DenialReason::PurposeChanged {
                consented_version: 1,
                current_version: 2,
            },
            DenialReason::CategoryNotCovered {
                categories: categories.clone(),
            },
            DenialReason::TokenRevoked,
            DenialReason::ServiceKeyInvalid,
            DenialReason::NotInEmergency,
            DenialReason::EmergencyNotInForce,
            DenialReason::CategoryNotInEmergency { categories },
            DenialReason::ServiceNotInEmergency,
            DenialReason::AreaNotInEmergency {
                codes: ["5339".parse().unwrap()].into(),
            },
        ]
    }

    fn one_of_each() -> Vec<HubError> {
        let request = RequestId::from_uuid(uuid::Uuid::nil());
        let consent = ConsentId::from_uuid(uuid::Uuid::nil());
        let mut all = vec![
            HubError::Malformed("m".into()),
            HubError::InvalidField {
                field: "f".into(),
                detail: "d".into(),
            },
            HubError::Unauthorized,
            HubError::InvalidClient,
            HubError::UnsupportedGrantType("password".into()),
            HubError::NotFound("x".into()),
            HubError::UnknownService("s".into()),
            HubError::UnknownPurpose("s".into(), "p".into()),
            HubError::UnknownCategory("c".into()),
            HubError::ServiceNotApproved("s".into()),
            HubError::ConsentAlreadyActive(consent),
            HubError::ConsentNotActive(consent),
            HubError::from(DeclarationError::SameOperator),
            HubError::ProviderFailure {
                request,
                failures: serde_json::json!([]),
            },
            HubError::DemoOnly,
            HubError::Forbidden("f".into()),
            HubError::oauth_request("r"),
            HubError::TokenInactive,
            HubError::EnrolmentRefused {
                reason: "expired",
                detail: "d".into(),
            },
            HubError::PasskeyRefused("p".into()),
            HubError::PasskeysUnavailable("localhost".into()),
            HubError::StorageUnavailable,
            HubError::RateLimited { retry_after: 1 },
            HubError::internal("i"),
        ];
        all.extend(
            every_denial()
                .into_iter()
                .map(|reason| HubError::Denied { request, reason }),
        );
        all
    }

    #[test]
    fn every_problem_the_hub_answers_names_a_kind_with_a_page() {
        for e in one_of_each() {
            let p = e.to_problem();
            let kind = ProblemKind::from_code(p.code())
                .unwrap_or_else(|| panic!("{e:?} answers an undescribed `{}`", p.kind));
            assert_eq!(p.kind, kind.type_uri());
            assert_eq!(p.title, kind.title(), "{e:?}");
        }
    }

    #[test]
    fn a_denial_is_answered_with_its_own_code_but_a_revoked_token_as_inactive() {
        for reason in every_denial() {
            let p = denial_problem(&reason);
            if reason == DenialReason::TokenRevoked {
                assert_eq!(p.code(), "token-inactive");
            } else {
                assert_eq!(p.code(), reason.code());
            }
        }
    }

    #[tokio::test]
    async fn a_storage_failure_keeps_its_source_and_logs_its_code_not_its_message() {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        sqlx::query("CREATE TABLE t (name TEXT NOT NULL)")
            .execute(&pool)
            .await
            .unwrap();
        let e = sqlx::query("INSERT INTO t VALUES (NULL)")
            .execute(&pool)
            .await
            .unwrap_err();
        let HubError::Internal(internal) = HubError::from(StoreError::from(e)) else {
            panic!("a failed statement is an internal error");
        };
        assert_eq!(internal.context(), "storage");
        // SQLITE_CONSTRAINT_NOTNULL.
        assert_eq!(
            internal.cause(),
            Some("database error: kind NotNullViolation, sqlstate 1299")
        );
        let source = std::error::Error::source(&internal).expect("the source is kept");
        assert!(source.downcast_ref::<StoreError>().is_some());
        assert_eq!(HubError::Internal(internal).to_problem().code(), "internal");
    }
}
