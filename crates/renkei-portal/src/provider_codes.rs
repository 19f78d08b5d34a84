//! "My codes at data providers": the resident's code at each approved provider (their
//! pairwise subject there, [`renkei_hub::Hub::provider_codes`]), to give at the provider's
//! counter or in its app so that it can tell the hub where their data is, or record a
//! consent they give there. Each provider knows them by another code, so no two providers
//! can join their records on it.

use askama::Template;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use crate::PortalState;
use crate::ctx::Ctx;
use crate::error::PortalError;
use crate::identity::account_holder;
use crate::resident::render;

pub struct CodeRow {
    pub provider: String,
    pub code: String,
}

#[derive(Template)]
#[template(path = "portal/provider_codes.html")]
struct ProviderCodesPage {
    ctx: Ctx,
    codes: Vec<CodeRow>,
}

/// The resident's own codes; never a proxy's to see (a code lets a provider name the
/// resident at the hub).
pub async fn provider_codes(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
) -> Result<Response, PortalError> {
    let me = account_holder(&state, &headers).await?;
    let lang = ctx.lang;
    let codes = state
        .hub
        .provider_codes(me.id)
        .await?
        .into_iter()
        .map(|c| CodeRow {
            provider: lang.pick(&c.name_ja, &c.name_en).to_owned(),
            code: c.code,
        })
        .collect();
    render(&ProviderCodesPage {
        ctx: ctx.portal_for("provider-codes-title", "/portal/provider-codes", &me),
        codes,
    })
}
