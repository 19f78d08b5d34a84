//! The resident portal and the operator console: server-rendered HTML pages (askama
//! templates, Fluent translations, Japanese by default and English by a visible switch,
//! times in Asia/Tokyo) over the hub's operations.
//!
//! This crate owns the pages, their forms and the little JavaScript they carry (passkeys,
//! checking history entries against the signed log), and the web security around them:
//! CSRF tokens on every form, `Secure; HttpOnly; SameSite=Lax` cookies, a strict
//! Content-Security-Policy. It renders and calls `Hub` methods (or the hub's own API,
//! in-process, where an operation exists only as an endpoint). It must not talk to storage,
//! re-implement consent rules (those are `renkei_domain::decide` and the hub's consent
//! operations) or check tokens itself (the hub's extractors and keys do).
//!
//! [`router`] serves `/` (a redirect to the portal), `/portal/...` for residents,
//! `/oauth/authorize` (the OpenID consent page; the hub serves the other OAuth endpoints),
//! `/console/...` for operators and `/static/...`; the binary merges it beside the API.

mod assets;
mod authorize;
mod console;
mod ctx;
mod error;
mod extract;
mod hubapi;
pub mod i18n;
mod identity;
mod proxies;
mod requests;
mod resident;
pub mod security;
mod session;
pub mod time;

use axum::Router;
use axum::response::Redirect;
use axum::routing::{get, post};
use renkei_hub::Hub;

pub use error::PortalError;

/// What every handler shares.
#[derive(Clone)]
pub struct PortalState {
    pub hub: Hub,
    api: hubapi::HubApi,
}

/// The portal's and console's routes, behind the portal's security middleware.
pub fn router(hub: Hub) -> Router {
    let state = PortalState {
        api: hubapi::HubApi::new(hub.clone()),
        hub,
    };
    Router::new()
        .route("/", get(|| async { Redirect::to("/portal") }))
        .route("/portal", get(resident::home))
        .route("/portal/sign-in", get(resident::sign_in_page))
        .route("/portal/sign-in/demo", post(resident::demo_sign_in))
        .route(
            "/portal/sign-in/passkey/start",
            post(identity::passkey_sign_in_start),
        )
        .route(
            "/portal/sign-in/passkey/finish",
            post(identity::passkey_sign_in_finish),
        )
        .route(
            "/portal/enrol",
            get(identity::enrol_form).post(identity::enrol),
        )
        .route("/portal/passkeys", get(identity::passkeys))
        .route(
            "/portal/passkeys/register/start",
            post(identity::passkey_register_start),
        )
        .route(
            "/portal/passkeys/register/finish",
            post(identity::passkey_register_finish),
        )
        .route("/portal/passkeys/remove", post(identity::passkey_remove))
        .route(
            "/oauth/authorize",
            get(authorize::authorize_page).post(authorize::authorize_answer),
        )
        .route("/portal/sign-out", post(resident::sign_out))
        .route("/portal/services", get(resident::services))
        .route("/portal/services/switch", post(resident::switch))
        .route("/portal/consents/{id}/receipt", get(resident::receipt))
        .route("/portal/history", get(resident::history))
        .route(
            "/portal/requests",
            get(requests::requests).post(requests::file),
        )
        .route("/portal/proxies", get(proxies::proxies))
        .route("/portal/proxies/invite", post(proxies::invite))
        .route("/portal/proxies/{id}/end", post(proxies::end))
        .route("/portal/acting/accept", post(proxies::accept))
        .route("/portal/acting/start", post(proxies::start))
        .route("/portal/acting/stop", post(proxies::stop))
        .route("/portal/acting/ended", get(proxies::ended))
        .route("/console", get(console::services))
        .route("/console/sign-in", get(console::sign_in_page))
        .route("/console/sign-in/demo", post(console::demo_sign_in))
        .route(
            "/console/sign-in/portal",
            post(console::sign_in_with_portal_session),
        )
        .route("/console/sign-out", post(console::sign_out))
        .route("/console/services/{id}", get(console::service))
        .route("/console/services/{id}/approve", post(console::approve))
        .route("/console/services/{id}/suspend", post(console::suspend))
        .route("/console/categories", get(console::categories))
        .route("/console/audit", get(console::audit))
        .route("/console/requests", get(requests::queue))
        .route("/console/requests/{id}/answer", post(requests::answer))
        .route("/static/{file}", get(assets::serve))
        .layer(axum::middleware::from_fn(security::protect))
        .with_state(state)
}
