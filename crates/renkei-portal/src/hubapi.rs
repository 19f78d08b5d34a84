//! The hub's public HTTP API, called in-process (no socket): for what the hub offers as an
//! endpoint but not (yet) as a `Hub` method — the catalogue and a resident's signed history.
//! The portal thus reads exactly what any client of the API reads, through the same checks,
//! and never touches storage.

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use renkei_hub::Hub;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tower::ServiceExt;

use crate::error::PortalError;

/// The biggest answer read (a history page of 500 entries with proofs fits).
const MAX_BODY: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone, Deserialize)]
pub struct CategoryView {
    pub id: String,
    pub name_ja: String,
    pub name_en: String,
    pub special_care: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServiceView {
    pub id: String,
    pub name_ja: String,
    pub name_en: String,
    pub status: String,
    pub purposes: Vec<PurposeView>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PurposeView {
    pub id: String,
    pub version: u32,
    pub title_ja: String,
    pub title_en: String,
    pub description_ja: String,
    pub description_en: String,
    pub categories: Vec<String>,
    pub retention_days: u32,
    pub legal_basis: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogPage {
    pub checkpoint: String,
    pub verifier_key: String,
    pub entries: Vec<LogEntryView>,
    /// The next (older) page of a newest-first page; `after` pages find their own way.
    pub next_before: Option<u64>,
}

/// Where a page of the resident's signed history starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogPageAt {
    /// The newest entries, newest first.
    Newest,
    /// The entries before this log position, newest first.
    Before(u64),
    /// The entries after this log position, oldest first.
    After(u64),
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogEntryView {
    pub seq: u64,
    pub kind: String,
    /// Canonical JSON: exactly the bytes the leaf commits to.
    pub entry: String,
    pub salt: String,
    pub leaf_hash: String,
    pub proof: Option<Vec<String>>,
}

/// An in-process client of the hub's API.
#[derive(Clone)]
pub struct HubApi {
    router: Router,
}

impl HubApi {
    pub fn new(hub: Hub) -> Self {
        Self {
            router: renkei_hub::router(hub),
        }
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        token: Option<&str>,
    ) -> Result<T, PortalError> {
        let mut request = Request::get(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request
            .body(Body::empty())
            .map_err(|e| PortalError::Internal(format!("request: {e}")))?;
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .map_err(|e| PortalError::Internal(format!("hub api: {e}")))?;
        let status = response.status();
        let bytes = to_bytes(response.into_body(), MAX_BODY)
            .await
            .map_err(|e| PortalError::Internal(format!("hub api body: {e}")))?;
        match status {
            StatusCode::OK => serde_json::from_slice(&bytes)
                .map_err(|e| PortalError::Internal(format!("hub api {path}: {e}"))),
            StatusCode::UNAUTHORIZED => Err(PortalError::SignedOut),
            // What the page asked for (a cursor from the address bar, say) the API refused:
            // the page says so, as the API would.
            StatusCode::BAD_REQUEST => Err(PortalError::BadRequest(format!("hub api {path}"))),
            StatusCode::NOT_FOUND => Err(PortalError::NotFound),
            StatusCode::SERVICE_UNAVAILABLE => Err(PortalError::Unavailable),
            other => Err(PortalError::Internal(format!("hub api {path}: {other}"))),
        }
    }

    pub async fn categories(&self) -> Result<Vec<CategoryView>, PortalError> {
        self.get("/v1/categories", None).await
    }

    pub async fn services(&self) -> Result<Vec<ServiceView>, PortalError> {
        self.get("/v1/services", None).await
    }

    /// A page of the resident's signed history from `at` (newest first unless `at` is
    /// [`LogPageAt::After`]), with proofs against the latest checkpoint.
    pub async fn my_log(
        &self,
        token: &str,
        service: Option<&str>,
        at: LogPageAt,
        limit: u32,
    ) -> Result<LogPage, PortalError> {
        let mut query = vec![("limit".to_owned(), limit.to_string())];
        if let Some(s) = service {
            query.push(("service".into(), s.to_owned()));
        }
        query.push(match at {
            LogPageAt::Newest => ("order".into(), "newest".into()),
            LogPageAt::Before(b) => ("before".into(), b.to_string()),
            LogPageAt::After(a) => ("after".into(), a.to_string()),
        });
        let query = serde_urlencoded::to_string(&query)
            .map_err(|e| PortalError::Internal(format!("query: {e}")))?;
        self.get(&format!("/v1/me/log?{query}"), Some(token)).await
    }

    /// Demo mode: the hub's `POST /demo/sign-in`; `None` when there is no such resident.
    pub async fn demo_sign_in(
        &self,
        resident: renkei_domain::ResidentId,
    ) -> Result<Option<String>, PortalError> {
        #[derive(Deserialize)]
        struct Token {
            access_token: String,
        }
        let body = serde_json::json!({ "resident": resident.to_string() }).to_string();
        let request = Request::post("/demo/sign-in")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .map_err(|e| PortalError::Internal(format!("request: {e}")))?;
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .map_err(|e| PortalError::Internal(format!("hub api: {e}")))?;
        if response.status() != StatusCode::OK {
            return Ok(None);
        }
        let bytes = to_bytes(response.into_body(), MAX_BODY)
            .await
            .map_err(|e| PortalError::Internal(format!("hub api body: {e}")))?;
        let token: Token = serde_json::from_slice(&bytes)
            .map_err(|e| PortalError::Internal(format!("demo sign-in: {e}")))?;
        Ok(Some(token.access_token))
    }
}
