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
    /// A problem of this kind, with the kind's own status and title.
    pub fn new(kind: ProblemKind) -> Self {
        Self {
            kind: kind.type_uri(),
            title: kind.title().to_owned(),
            status: kind.status().as_u16(),
            detail: None,
            request_id: None,
            extra: None,
        }
    }
    /// The same kind answered with another status (a wrong content type is a `415`
    /// `malformed-request`, a wrong method a `405` one).
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status.as_u16();
        self
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

/// A language a problem type is described in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Ja,
    En,
}

/// Every kind of problem the hub answers (and the two a provider answers a grant with, which
/// the hub relays): its stable code, status, title and description. The `type` of every
/// problem is one of these, and `/problems/<code>` describes each from here.
///
/// INVARIANT: a code, once sent, never changes: clients match on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemKind {
    MalformedRequest,
    InvalidField,
    Unauthorized,
    NotFound,
    UnknownService,
    Forbidden,
    TokenInactive,
    EnrolmentRefused,
    PasskeyRefused,
    PasskeysUnavailable,
    UnknownPurpose,
    UnknownCategory,
    UnknownSubject,
    ServiceNotApproved,
    CategoryNotInPurpose,
    ConsentMissing,
    ConsentRevoked,
    ConsentExpired,
    ConsentWrongPurposeVersion,
    CategoryNotCovered,
    NotInEmergency,
    EmergencyNotInForce,
    CategoryNotInEmergency,
    ServiceNotInEmergency,
    AreaNotInEmergency,
    ServiceKeyInvalid,
    ConsentAlreadyActive,
    ConsentNotActive,
    DeclarationRefused,
    GrantExpired,
    GrantReplayed,
    ProviderFailure,
    DemoOnly,
    StorageUnavailable,
    RateLimited,
    Internal,
}

impl ProblemKind {
    /// Every kind, in the order `/problems` lists them.
    pub const ALL: &[Self] = &[
        Self::MalformedRequest,
        Self::InvalidField,
        Self::Unauthorized,
        Self::NotFound,
        Self::UnknownService,
        Self::Forbidden,
        Self::TokenInactive,
        Self::EnrolmentRefused,
        Self::PasskeyRefused,
        Self::PasskeysUnavailable,
        Self::UnknownPurpose,
        Self::UnknownCategory,
        Self::UnknownSubject,
        Self::ServiceNotApproved,
        Self::CategoryNotInPurpose,
        Self::ConsentMissing,
        Self::ConsentRevoked,
        Self::ConsentExpired,
        Self::ConsentWrongPurposeVersion,
        Self::CategoryNotCovered,
        Self::NotInEmergency,
        Self::EmergencyNotInForce,
        Self::CategoryNotInEmergency,
        Self::ServiceNotInEmergency,
        Self::AreaNotInEmergency,
        Self::ServiceKeyInvalid,
        Self::ConsentAlreadyActive,
        Self::ConsentNotActive,
        Self::DeclarationRefused,
        Self::GrantExpired,
        Self::GrantReplayed,
        Self::ProviderFailure,
        Self::DemoOnly,
        Self::StorageUnavailable,
        Self::RateLimited,
        Self::Internal,
    ];

    /// The stable code: the last segment of the problem's `type`.
    pub fn code(self) -> &'static str {
        match self {
            Self::MalformedRequest => "malformed-request",
            Self::InvalidField => "invalid-field",
            Self::Unauthorized => "unauthorized",
            Self::NotFound => "not-found",
            Self::UnknownService => "unknown-service",
            Self::Forbidden => "forbidden",
            Self::TokenInactive => "token-inactive",
            Self::EnrolmentRefused => "enrolment-refused",
            Self::PasskeyRefused => "passkey-refused",
            Self::PasskeysUnavailable => "passkeys-unavailable",
            Self::UnknownPurpose => "unknown-purpose",
            Self::UnknownCategory => "unknown-category",
            Self::UnknownSubject => "unknown-subject",
            Self::ServiceNotApproved => "service-not-approved",
            Self::CategoryNotInPurpose => "category-not-in-purpose",
            Self::ConsentMissing => "consent-missing",
            Self::ConsentRevoked => "consent-revoked",
            Self::ConsentExpired => "consent-expired",
            Self::ConsentWrongPurposeVersion => "consent-wrong-purpose-version",
            Self::CategoryNotCovered => "category-not-covered",
            Self::NotInEmergency => "not-in-emergency",
            Self::EmergencyNotInForce => "emergency-not-in-force",
            Self::CategoryNotInEmergency => "category-not-in-emergency",
            Self::ServiceNotInEmergency => "service-not-in-emergency",
            Self::AreaNotInEmergency => "area-not-in-emergency",
            Self::ServiceKeyInvalid => "service-key-invalid",
            Self::ConsentAlreadyActive => "consent-already-active",
            Self::ConsentNotActive => "consent-not-active",
            Self::DeclarationRefused => "declaration-refused",
            Self::GrantExpired => "grant-expired",
            Self::GrantReplayed => "grant-replayed",
            Self::ProviderFailure => "provider-failure",
            Self::DemoOnly => "demo-only",
            Self::StorageUnavailable => "storage-unavailable",
            Self::RateLimited => "rate-limited",
            Self::Internal => "internal",
        }
    }

    /// The kind with this code, if there is one.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.code() == code)
    }

    /// The problem's `type`: `/problems/<code>`.
    pub fn type_uri(self) -> String {
        format!("/problems/{}", self.code())
    }

    /// The status a problem of this kind is answered with (unless [`Problem::with_status`]
    /// says otherwise).
    pub fn status(self) -> StatusCode {
        use StatusCode as S;
        match self {
            Self::MalformedRequest | Self::InvalidField => S::BAD_REQUEST,
            Self::Unauthorized | Self::TokenInactive | Self::GrantExpired | Self::GrantReplayed => {
                S::UNAUTHORIZED
            }
            Self::NotFound
            | Self::UnknownService
            | Self::UnknownPurpose
            | Self::UnknownCategory
            | Self::UnknownSubject
            | Self::DemoOnly => S::NOT_FOUND,
            Self::Forbidden
            | Self::EnrolmentRefused
            | Self::PasskeyRefused
            | Self::PasskeysUnavailable
            | Self::ServiceNotApproved
            | Self::CategoryNotInPurpose
            | Self::ConsentMissing
            | Self::ConsentRevoked
            | Self::ConsentExpired
            | Self::ConsentWrongPurposeVersion
            | Self::CategoryNotCovered
            | Self::NotInEmergency
            | Self::EmergencyNotInForce
            | Self::CategoryNotInEmergency
            | Self::ServiceNotInEmergency
            | Self::AreaNotInEmergency => S::FORBIDDEN,
            Self::ServiceKeyInvalid
            | Self::ConsentAlreadyActive
            | Self::ConsentNotActive
            | Self::DeclarationRefused => S::CONFLICT,
            Self::ProviderFailure => S::BAD_GATEWAY,
            Self::StorageUnavailable => S::SERVICE_UNAVAILABLE,
            Self::RateLimited => S::TOO_MANY_REQUESTS,
            Self::Internal => S::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short summary, the same for every problem of this kind (RFC 9457 §3.1.3).
    pub fn title(self) -> &'static str {
        match self {
            Self::MalformedRequest => "Malformed request",
            Self::InvalidField => "Invalid field",
            Self::Unauthorized => "Authentication required",
            Self::NotFound => "Not found",
            Self::UnknownService => "Unknown service",
            Self::Forbidden => "Forbidden",
            Self::TokenInactive => "Token no longer active",
            Self::EnrolmentRefused => "Enrolment refused",
            Self::PasskeyRefused => "Passkey refused",
            Self::PasskeysUnavailable => "Passkeys unavailable",
            Self::UnknownPurpose => "Unknown purpose",
            Self::UnknownCategory => "Unknown data category",
            Self::UnknownSubject => "Unknown subject",
            Self::ServiceNotApproved => "Service not approved",
            Self::CategoryNotInPurpose => "Category not in purpose",
            Self::ConsentMissing => "No consent",
            Self::ConsentRevoked => "Consent revoked",
            Self::ConsentExpired => "Consent expired",
            Self::ConsentWrongPurposeVersion => "Consent to an older purpose version",
            Self::CategoryNotCovered => "Category not covered by consent",
            Self::NotInEmergency => "Not in an emergency",
            Self::EmergencyNotInForce => "Emergency not in force",
            Self::CategoryNotInEmergency => "Category not released by the emergency",
            Self::ServiceNotInEmergency => "Service not named by the emergency",
            Self::AreaNotInEmergency => "Area outside the emergency",
            Self::ServiceKeyInvalid => "Service key invalid",
            Self::ConsentAlreadyActive => "Consent already active",
            Self::ConsentNotActive => "Consent not active",
            Self::DeclarationRefused => "Declaration step refused",
            Self::GrantExpired => "Grant expired",
            Self::GrantReplayed => "Grant replayed",
            Self::ProviderFailure => "No provider answered",
            Self::DemoOnly => "Demo mode only",
            Self::StorageUnavailable => "Storage unavailable",
            Self::RateLimited => "Too many requests",
            Self::Internal => "Internal error",
        }
    }

    /// What a problem of this kind means, in `lang`: served at `/problems/<code>`.
    pub fn description(self, lang: Lang) -> &'static str {
        let (ja, en) = self.descriptions();
        match lang {
            Lang::Ja => ja,
            Lang::En => en,
        }
    }

    fn descriptions(self) -> (&'static str, &'static str) {
        match self {
            Self::MalformedRequest => (
                "リクエストの本文またはパラメータを読み取れませんでした。JSON の形式の誤り、必須フィールドの欠落や型の誤り、または Content-Type の誤りです。",
                "The request body or parameters could not be read: malformed JSON, a missing or mistyped field, or a wrong content type.",
            ),
            Self::InvalidField => (
                "リクエストのフィールドは読み取れましたが、受け付けられませんでした。ハブが呼び出してはならない URL（https でないもの、内部・プライベート・メタデータ用のアドレス）や、鍵として正しくない値などです。`field` メンバーがそのフィールドを示します。",
                "A field of the request was read but refused: a URL the hub may not call (not https, or an internal, private or metadata address), or a key that is not one. The `field` member names it.",
            ),
            Self::Unauthorized => (
                "有効なベアラートークンまたはクライアント認証情報が示されていません。",
                "No valid bearer token or client credentials were presented.",
            ),
            Self::NotFound => (
                "指定されたものが存在しないか、あなたが見ることのできないものです。",
                "The named thing does not exist, or is not yours to see.",
            ),
            Self::UnknownService => (
                "この ID のサービスは登録されていません。",
                "No service with this id is registered.",
            ),
            Self::Forbidden => (
                "サインインはしていますが、この操作は許可されていません。本人が定めた範囲を超えて行動する代理人や、運用者向けページにアクセスした住民などです。",
                "You are signed in, but may not do this: a proxy acting outside the scope the resident set, or a resident on an operator's page.",
            ),
            Self::TokenInactive => (
                "トークンが失効したか、そのサービスが停止されたか、トークン発行の根拠となった同意が撤回されたか期限切れになりました。",
                "The token was revoked, its service was suspended, or a consent it was issued under was revoked or expired.",
            ),
            Self::EnrolmentRefused => (
                "証明書、またはチャレンジに対する署名が受け付けられませんでした。`reason` メンバーが理由を示します（unknown-issuer、expired、revoked、bad-signature など）。",
                "The certificate or the signature over the challenge was not accepted; the `reason` member says why (unknown-issuer, expired, revoked, bad-signature, ...).",
            ),
            Self::PasskeyRefused => (
                "パスキーの応答を検証できませんでした。未知の認証情報、期限切れまたは完了済みの手続き、再送されたアサーションのいずれかです。",
                "The passkey response did not verify: unknown credential, a ceremony that expired or was already finished, or a replayed assertion.",
            ),
            Self::PasskeysUnavailable => (
                "パスキーを使うには、ハブの発行者 URL がドメイン名（WebAuthn のリライングパーティ ID）である必要がありますが、そうなっていません。",
                "Passkeys need the hub's issuer URL to name a domain (WebAuthn relying-party id), and it does not.",
            ),
            Self::UnknownPurpose => (
                "サービスはこの ID の利用目的を宣言していません。",
                "The service declared no purpose with this id.",
            ),
            Self::UnknownCategory => (
                "このデータ区分は語彙にありません。",
                "The data category is not in the vocabulary.",
            ),
            Self::UnknownSubject => (
                "このサービスに対して、この識別子で知られている住民はいません。",
                "The hub knows no resident by this subject for this service.",
            ),
            Self::ServiceNotApproved => (
                "サービスが承認されていないか、運用者により停止されています。",
                "The service is not approved, or an operator suspended it.",
            ),
            Self::CategoryNotInPurpose => (
                "求められたデータ区分のいずれかが、利用目的で宣言されていません。",
                "The purpose does not declare one of the categories asked for.",
            ),
            Self::ConsentMissing => (
                "住民はこの利用目的に同意していません。",
                "The resident never consented to this purpose.",
            ),
            Self::ConsentRevoked => (
                "住民はこの利用目的への同意を撤回しました。",
                "The resident revoked the consent to this purpose.",
            ),
            Self::ConsentExpired => (
                "この利用目的への同意は有効期限が切れています。",
                "The consent to this purpose expired.",
            ),
            Self::ConsentWrongPurposeVersion => (
                "住民が同意したのはこの利用目的の以前の版です。現在の版には改めて同意が必要です。",
                "The resident consented to an older version of this purpose; the current version needs a new consent.",
            ),
            Self::CategoryNotCovered => (
                "求められたデータ区分のいずれかが、同意の範囲に含まれていません。",
                "The consent does not cover one of the categories asked for.",
            ),
            Self::NotInEmergency => (
                "この利用目的は、非常時宣言が効力を持つ間だけ適用されます。現在、効力のある宣言はありません。",
                "This purpose applies only while a declared emergency is in force, and none is.",
            ),
            Self::EmergencyNotInForce => (
                "同意がなく、このサービスを指定する非常時宣言はまだ効力を持っていません（別の運用者による確認待ち、または開始前）。",
                "No consent covers the request, and the emergency declarations naming this service are not in force yet (waiting for a second operator's confirmation, or before their start).",
            ),
            Self::CategoryNotInEmergency => (
                "同意がなく、効力のある非常時宣言は求められたデータ区分のいずれかを対象としていません。`categories` メンバーがそれを示します。",
                "No consent covers the request, and the emergency declaration in force does not release one of the categories asked for; the `categories` member names them.",
            ),
            Self::ServiceNotInEmergency => (
                "地域リストの要求が示した非常時宣言は、このサービスを対象としていない（またはそのような宣言がない）ため、何も提供されませんでした。",
                "The area list request named an emergency declaration that does not name this service (or none that exists), so nothing was released.",
            ),
            Self::AreaNotInEmergency => (
                "地域リストの要求が、非常時宣言の区域の外にある地域メッシュまたは地区を含んでいます。`codes` メンバーがそれを示します。何も提供されませんでした。",
                "The area list request names mesh codes or districts outside the emergency declaration's area; the `codes` member names them. Nothing was released.",
            ),
            Self::ServiceKeyInvalid => (
                "サービスが登録した HPKE 鍵が X25519 公開鍵ではないため、何も暗号化して渡せませんでした。リクエストは拒否として記録されました。",
                "The service's registered HPKE key is not an X25519 public key, so nothing could be sealed to it; the request was recorded as denied.",
            ),
            Self::ConsentAlreadyActive => (
                "この利用目的のこの版への有効な同意がすでにあります。",
                "An active consent to this purpose version exists already.",
            ),
            Self::ConsentNotActive => (
                "この同意はすでに撤回されたか、期限が切れています。",
                "The consent is already revoked or expired.",
            ),
            Self::DeclarationRefused => (
                "非常時宣言へのこの操作は受け付けられませんでした。宣言した運用者自身による確認、72時間を超える期間、終了後の操作、同時に行われた別の操作などです。`reason` メンバーが理由を示します。",
                "This step on an emergency declaration was refused: a confirmation by the operator who declared it, a window over 72 hours, a step after its end, or another step taken meanwhile. The `reason` member says which.",
            ),
            Self::GrantExpired => (
                "提供元が、有効期限の切れたグラントを拒否しました。",
                "A provider refused a grant that had expired.",
            ),
            Self::GrantReplayed => (
                "提供元が、すでに一度受け付けたグラントを拒否しました。",
                "A provider refused a grant it had already accepted once.",
            ),
            Self::ProviderFailure => (
                "データを保持する提供元のいずれも時間内に応答しませんでした。何も返されていません。",
                "No provider holding the data answered in time; nothing was returned.",
            ),
            Self::DemoOnly => (
                "このエンドポイントはデモモードでのみ使えます。",
                "This endpoint exists only in demo mode.",
            ),
            Self::StorageUnavailable => (
                "ハブのストレージに現在到達できないか、書き込めません（データベースの停止、ディスクの満杯など）。ストレージからは何も応答していません。`Retry-After` の秒数が経ってから再試行してください。ハブが再び使えるようになったかは `GET /readyz` で分かります。",
                "The hub's storage is out of reach or cannot write for now (the database is down, the disk is full); nothing was answered from it. Try again after the `Retry-After` seconds; `GET /readyz` says when the hub is ready again.",
            ),
            Self::RateLimited => (
                "このアドレスまたはクライアントからのリクエストが多すぎます。`Retry-After` ヘッダー（`retry_after` にも同じ値）の秒数が経ってから再試行してください。",
                "Too many requests from this address or client: try again after the number of seconds in the `Retry-After` header (also in `retry_after`).",
            ),
            Self::Internal => (
                "ハブで障害が発生しました。何も変更されていません。この事象は個人情報を含めずに記録されています。",
                "The hub failed; nothing was changed. The incident is logged without personal data.",
            ),
        }
    }
}

/// What `/problems/<code>` answers: a problem type described.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProblemTypeDoc {
    /// The `type` described, e.g. `/problems/consent-revoked`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    /// The status a problem of this type is usually answered with.
    pub status: u16,
    /// What it means, in English.
    pub description: String,
    /// What it means, in Japanese.
    pub description_ja: String,
}

impl From<ProblemKind> for ProblemTypeDoc {
    fn from(kind: ProblemKind) -> Self {
        Self {
            kind: kind.type_uri(),
            title: kind.title().to_owned(),
            status: kind.status().as_u16(),
            description: kind.description(Lang::En).to_owned(),
            description_ja: kind.description(Lang::Ja).to_owned(),
        }
    }
}

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
    Problem::new(ProblemKind::MalformedRequest)
        .with_status(status)
        .detail(rejection.body_text())
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
                Problem::new(ProblemKind::MalformedRequest).detail(r.body_text())
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
                Problem::new(ProblemKind::MalformedRequest).detail(r.body_text())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Fails to compile when a kind is added, until it is listed here (and so in `ALL`,
    /// which the test below compares with this list).
    fn position(kind: ProblemKind) -> usize {
        use ProblemKind as K;
        match kind {
            K::MalformedRequest => 0,
            K::InvalidField => 1,
            K::Unauthorized => 2,
            K::NotFound => 3,
            K::UnknownService => 4,
            K::Forbidden => 5,
            K::TokenInactive => 6,
            K::EnrolmentRefused => 7,
            K::PasskeyRefused => 8,
            K::PasskeysUnavailable => 9,
            K::UnknownPurpose => 10,
            K::UnknownCategory => 11,
            K::UnknownSubject => 12,
            K::ServiceNotApproved => 13,
            K::CategoryNotInPurpose => 14,
            K::ConsentMissing => 15,
            K::ConsentRevoked => 16,
            K::ConsentExpired => 17,
            K::ConsentWrongPurposeVersion => 18,
            K::CategoryNotCovered => 19,
            K::NotInEmergency => 20,
            K::EmergencyNotInForce => 21,
            K::CategoryNotInEmergency => 22,
            K::ServiceNotInEmergency => 23,
            K::AreaNotInEmergency => 24,
            K::ServiceKeyInvalid => 25,
            K::ConsentAlreadyActive => 26,
            K::ConsentNotActive => 27,
            K::DeclarationRefused => 28,
            K::GrantExpired => 29,
            K::GrantReplayed => 30,
            K::ProviderFailure => 31,
            K::DemoOnly => 32,
            K::StorageUnavailable => 33,
            K::RateLimited => 34,
            K::Internal => 35,
        }
    }

    #[test]
    fn every_kind_is_listed_once_with_a_distinct_code() {
        for (i, kind) in ProblemKind::ALL.iter().enumerate() {
            assert_eq!(position(*kind), i, "{kind:?} is out of place in ALL");
        }
        assert_eq!(ProblemKind::ALL.len(), position(ProblemKind::Internal) + 1);
        let codes: BTreeSet<_> = ProblemKind::ALL.iter().map(|k| k.code()).collect();
        assert_eq!(codes.len(), ProblemKind::ALL.len());
    }

    #[test]
    fn a_kind_is_found_by_its_code_and_nothing_else_is() {
        for kind in ProblemKind::ALL {
            assert_eq!(ProblemKind::from_code(kind.code()), Some(*kind));
        }
        for code in ["", "no-such-problem", "Not-Found", "/problems/not-found"] {
            assert_eq!(ProblemKind::from_code(code), None, "{code}");
        }
    }

    #[test]
    fn the_api_document_names_each_kind_by_its_code() {
        // The OpenAPI schema of `ProblemKind` comes from its serde names.
        for kind in ProblemKind::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.code());
        }
    }

    #[test]
    fn every_kind_is_described_in_japanese_and_english() {
        for kind in ProblemKind::ALL {
            let (ja, en) = (kind.description(Lang::Ja), kind.description(Lang::En));
            assert!(!en.is_empty() && en.is_ascii(), "{kind:?}: {en}");
            // Japanese prose: it has kana or kanji, and is not the English text.
            assert!(
                ja.chars().any(|c| ('\u{3040}'..='\u{9fff}').contains(&c)),
                "{kind:?}: {ja}"
            );
            assert!(!kind.title().is_empty());
        }
    }

    #[test]
    fn a_problem_carries_its_kinds_type_title_and_status() {
        let p = Problem::new(ProblemKind::ConsentRevoked);
        assert_eq!(p.kind, "/problems/consent-revoked");
        assert_eq!(p.code(), "consent-revoked");
        assert_eq!((p.title.as_str(), p.status), ("Consent revoked", 403));
        let p = Problem::new(ProblemKind::MalformedRequest)
            .with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!((p.code(), p.status), ("malformed-request", 415));
    }
}
