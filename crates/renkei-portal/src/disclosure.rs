//! The disclosure package (開示): the resident asks for everything about them and downloads
//! it as one file (`POST /portal/disclosure`), with a key made in their browser that only
//! they keep (`/static/disclosure.js`), and checks a package in the page against this hub's
//! log key and published keys, as `renkei verify-package` does offline.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use renkei_hub::HubError;
use renkei_hub::auth::ProxyPermission;
use serde::Deserialize;

use crate::PortalState;
use crate::ctx::Ctx;
use crate::error::PortalError;
use crate::extract::Form;
use crate::resident::signed_in;

#[derive(Template)]
#[template(path = "portal/disclosure.html")]
struct DisclosurePage {
    ctx: Ctx,
    /// The log's verifier key and the hub's JWK Set: what a package must have been made with.
    verifier_key: String,
    jwks: String,
    /// The key sent was refused (no JavaScript, or not an X25519 key).
    failed: bool,
}

async fn page(
    state: &PortalState,
    ctx: Ctx,
    headers: &HeaderMap,
    failed: bool,
) -> Result<Response, PortalError> {
    let me = signed_in(state, headers).await?;
    if me.hub.require(ProxyPermission::FileRequests, None).is_err() {
        return Err(PortalError::NotEntrusted);
    }
    let page = DisclosurePage {
        ctx: ctx.portal_for("disclosure-title", "/portal/disclosure", &me),
        verifier_key: state.hub.keys().log.verifier_key(),
        jwks: serde_json::to_string(&state.hub.keys().jwks()).unwrap_or_default(),
        failed,
    };
    let status = if failed {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok((status, Html(page.render()?)).into_response())
}

pub async fn disclosure(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
) -> Result<Response, PortalError> {
    page(&state, ctx, &headers, false).await
}

#[derive(Deserialize)]
pub struct DisclosureForm {
    #[serde(default)]
    recipient_key: String,
}

/// Assembles the package and answers it as a download.
pub async fn download(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(form): Form<DisclosureForm>,
) -> Result<Response, PortalError> {
    let me = signed_in(&state, &headers).await?;
    match state.hub.disclose(&me.hub, form.recipient_key.trim()).await {
        Ok(package) => {
            let body = serde_json::to_vec_pretty(&package)
                .map_err(|e| PortalError::Internal(format!("package: {e}")))?;
            let name = format!(
                "renkei-disclosure-{}.json",
                package.issued_at.format("%Y%m%d-%H%M%S")
            );
            Ok((
                [
                    (header::CONTENT_TYPE, "application/json".to_owned()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{name}\""),
                    ),
                    (header::CACHE_CONTROL, "no-store".to_owned()),
                ],
                body,
            )
                .into_response())
        }
        Err(HubError::Forbidden(_)) => Err(PortalError::NotEntrusted),
        Err(HubError::InvalidField { .. }) => page(&state, ctx, &headers, true).await,
        Err(e) => Err(e.into()),
    }
}
