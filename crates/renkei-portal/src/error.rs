//! What can go wrong while serving a page, and the page each error shows. Messages never
//! quote personal data; internal details go to the log as a kind, not to the browser.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use renkei_hub::HubError;

/// An error of a portal or console page.
#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    /// No valid session: back to the sign-in page.
    #[error("not signed in")]
    SignedOut,
    /// No valid operator session: back to the console's sign-in page.
    #[error("operator not signed in")]
    OperatorSignedOut,
    /// A proxy's session for someone ended (the resident ended the appointment): back to
    /// the proxy's own session.
    #[error("acting for a resident ended")]
    ActingEnded,
    /// A proxy asked for what the resident did not entrust to them.
    #[error("not entrusted to this proxy")]
    NotEntrusted,
    #[error("not found")]
    NotFound,
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The hub refused an operation; the code is its problem type.
    #[error("the hub refused: {0}")]
    Refused(String),
    /// Too many attempts from this address ([`renkei_hub::limits`]).
    #[error("too many requests: try again in {retry_after} s")]
    TooManyRequests { retry_after: u64 },
    #[error("page rendering failed: {0}")]
    Render(#[from] askama::Error),
    /// The hub's storage is unavailable for now.
    #[error("storage is unavailable")]
    Unavailable,
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<HubError> for PortalError {
    fn from(e: HubError) -> Self {
        match e {
            HubError::Unauthorized => Self::SignedOut,
            HubError::NotFound(_) => Self::NotFound,
            HubError::Forbidden(_) => Self::NotEntrusted,
            // Context and cause only: the source may quote stored values.
            HubError::Internal(e) => Self::Internal(match e.cause() {
                Some(cause) => format!("{}: {cause}", e.context()),
                None => e.context().to_owned(),
            }),
            HubError::StorageUnavailable => Self::Unavailable,
            HubError::RateLimited { retry_after } => Self::TooManyRequests { retry_after },
            other => Self::Refused(other.to_problem().code().to_owned()),
        }
    }
}

impl IntoResponse for PortalError {
    fn into_response(self) -> Response {
        let (status, text) = match &self {
            Self::TooManyRequests { retry_after } => {
                let text = format!(
                    "Too many attempts: please try again in {retry_after} s / \
                     試行が多すぎます。{retry_after} 秒後にもう一度お試しください"
                );
                let mut response = page(StatusCode::TOO_MANY_REQUESTS, &text);
                response.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from(*retry_after),
                );
                return response;
            }
            Self::SignedOut => return Redirect::to("/portal/sign-in").into_response(),
            Self::OperatorSignedOut => return Redirect::to("/console/sign-in").into_response(),
            Self::ActingEnded => return Redirect::to("/portal/acting/ended").into_response(),
            Self::NotEntrusted => (
                StatusCode::FORBIDDEN,
                "Not permitted / 許可されていない操作です",
            ),
            Self::NotFound => (StatusCode::NOT_FOUND, "Not found / 見つかりません"),
            Self::BadRequest(_) => (
                StatusCode::BAD_REQUEST,
                "Bad request / 入力に誤りがあります",
            ),
            Self::Refused(_) => (StatusCode::CONFLICT, "Not possible / できませんでした"),
            Self::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable, please try again shortly / 一時的に利用できません。しばらくしてからもう一度お試しください",
            ),
            Self::Render(_) | Self::Internal(_) => {
                tracing::error!(error = %self, "portal page failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong / エラーが発生しました",
                )
            }
        };
        page(status, text)
    }
}

/// A plain page saying `text` (no personal data, nothing a template could fail on).
fn page(status: StatusCode, text: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"ja\"><head><meta charset=\"utf-8\"><title>{text}</title>\
         <link rel=\"stylesheet\" href=\"/static/portal.css\"></head><body><main id=\"main\">\
         <h1>{text}</h1><p><a href=\"/portal\">ポータルへ戻る / Back to the portal</a></p>\
         </main></body></html>"
    );
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}
