//! The resident portal and the operator console: server-rendered HTML pages (askama
//! templates, Fluent translations, Japanese by default and English by a visible switch,
//! times in Asia/Tokyo) over the hub's operations.
//!
//! This crate owns the pages, their forms and the little JavaScript they carry (passkeys,
//! checking history entries against the signed log), and the web security around them:
//! CSRF tokens on every form, `Secure; HttpOnly; SameSite=Lax` cookies, a strict
//! Content-Security-Policy. It renders and calls `Hub` methods, which hand back the
//! hub's own types (the API's answers are the same values). It must not talk to storage,
//! re-implement consent rules (those are `renkei_domain::decide` and the hub's consent
//! operations) or check tokens itself (the hub's extractors and keys do).
//!
//! [`router`] serves `/` (a redirect to the portal), `/portal/...` for residents,
//! `/oauth/authorize` (the OpenID consent page; the hub serves the other OAuth endpoints),
//! `/console/...` for operators and `/static/...`; the binary merges it beside the API.

mod assets;
mod audit;
mod authorize;
mod console;
mod console_emergency;
mod console_location;
mod console_providers;
mod counter;
mod ctx;
mod declarations;
mod disclosure;
mod error;
mod extract;
mod guard;
mod history;
pub mod i18n;
mod identity;
mod notices;
mod provider_codes;
mod proxies;
mod requests;
mod resident;
pub mod security;
mod session;
pub mod time;

use axum::Router;
use axum::response::Redirect;
use renkei_hub::Hub;
use renkei_hub::auth::ProxyPermission;
use renkei_hub::routes::{Access, Proxies, RouteAccess, Routes};

pub use error::PortalError;

/// What every handler shares.
#[derive(Clone)]
pub struct PortalState {
    pub hub: Hub,
}

/// The portal's and console's routes, behind the portal's security middleware.
pub fn router(hub: Hub) -> Router {
    routed(hub).0
}

/// The portal's and console's routes, and who may call each: the pages' part of the route
/// table (`renkei_hub::routes`). A page is added here, with its access, or nowhere.
pub fn routed(hub: Hub) -> (Router, Vec<RouteAccess>) {
    use Access::*;
    use Proxies::{Any, Entrusted, Never};
    use ProxyPermission::*;
    let state = PortalState { hub };
    let (router, table) = Routes::new()
        .get("/", Public, || async { Redirect::to("/portal") })
        .get("/portal", Resident(Any), resident::home)
        .get("/portal/sign-in", Public, resident::sign_in_page)
        .post("/portal/sign-in/demo", DemoOnly, resident::demo_sign_in)
        .post(
            "/portal/sign-in/passkey/start",
            Public,
            identity::passkey_sign_in_start,
        )
        .post(
            "/portal/sign-in/passkey/finish",
            Public,
            identity::passkey_sign_in_finish,
        )
        .get("/portal/enrol", Public, identity::enrol_form)
        .post("/portal/enrol", Public, identity::enrol)
        .get("/portal/passkeys", Resident(Never), identity::passkeys)
        .post(
            "/portal/passkeys/register/start",
            Resident(Never),
            identity::passkey_register_start,
        )
        .post(
            "/portal/passkeys/register/finish",
            Resident(Never),
            identity::passkey_register_finish,
        )
        .post(
            "/portal/passkeys/remove",
            Resident(Never),
            identity::passkey_remove,
        )
        // Signing in to a service for someone is never a proxy's (it is its own permission,
        // not granted by any of today's).
        .get(
            "/oauth/authorize",
            ResidentOrSignIn(Entrusted(SignInToServices)),
            authorize::authorize_page,
        )
        .post(
            "/oauth/authorize",
            ResidentOrSignIn(Entrusted(SignInToServices)),
            authorize::authorize_answer,
        )
        .post("/portal/sign-out", Public, resident::sign_out)
        .get(
            "/portal/services",
            Resident(Entrusted(ViewConsents)),
            resident::services,
        )
        .post(
            "/portal/services/switch",
            Resident(Entrusted(ManageConsents)),
            resident::switch,
        )
        .get(
            "/portal/consents/{id}/receipt",
            Resident(Entrusted(ViewConsents)),
            resident::receipt,
        )
        .get(
            "/portal/history",
            Resident(Entrusted(ViewHistory)),
            history::history,
        )
        .get(
            "/portal/notices",
            Resident(Entrusted(ViewHistory)),
            notices::notices,
        )
        // Where the resident is told is theirs to choose, never a proxy's.
        .post(
            "/portal/notices/channels",
            Resident(Never),
            notices::set_channel,
        )
        // Declarations are public, as `GET /v1/declarations` is.
        .get("/portal/declarations", Public, declarations::declarations)
        .get(
            "/portal/declarations/{id}",
            Public,
            declarations::declaration,
        )
        .get(
            "/portal/requests",
            Resident(Entrusted(FileRequests)),
            requests::requests,
        )
        .post(
            "/portal/requests",
            Resident(Entrusted(FileRequests)),
            requests::file,
        )
        // --- disclosure (開示): one block ---
        .get(
            "/portal/disclosure",
            Resident(Entrusted(FileRequests)),
            disclosure::disclosure,
        )
        .post(
            "/portal/disclosure",
            Resident(Entrusted(FileRequests)),
            disclosure::download,
        )
        .get(
            "/portal/provider-codes",
            Resident(Never),
            provider_codes::provider_codes,
        )
        .get("/portal/proxies", Resident(Never), proxies::proxies)
        .post("/portal/proxies/invite", Resident(Never), proxies::invite)
        .post("/portal/proxies/{id}/end", Resident(Never), proxies::end)
        .post("/portal/acting/accept", Resident(Never), proxies::accept)
        .post("/portal/acting/start", Resident(Never), proxies::start)
        // Going back to one's own session only moves the browser's own cookies.
        .post("/portal/acting/stop", Public, proxies::stop)
        .get("/portal/acting/ended", Public, proxies::ended)
        .get("/console", Operator, console::services)
        .get("/console/sign-in", Public, console::sign_in_page)
        .post("/console/sign-in/demo", DemoOnly, console::demo_sign_in)
        .post(
            "/console/sign-in/portal",
            OperatorIdentity,
            console::sign_in_with_portal_session,
        )
        .post("/console/sign-out", Public, console::sign_out)
        .get("/console/services/{id}", Operator, console::service)
        .post("/console/services/{id}/approve", Operator, console::approve)
        .post("/console/services/{id}/suspend", Operator, console::suspend)
        .get("/console/categories", Operator, console::categories)
        .post(
            "/console/categories",
            Operator,
            console_providers::add_category,
        )
        .get("/console/providers", Operator, console_providers::providers)
        .post("/console/providers", Operator, console_providers::register)
        .post(
            "/console/providers/{id}/approve",
            Operator,
            console_providers::approve,
        )
        .post(
            "/console/providers/{id}/suspend",
            Operator,
            console_providers::suspend,
        )
        .get(
            "/console/location-deletions",
            Operator,
            console_location::deletions,
        )
        .post(
            "/console/location-deletions/confirm",
            Operator,
            console_location::confirm,
        )
        .get(
            "/console/declarations",
            Operator,
            console_emergency::declarations,
        )
        .post(
            "/console/declarations",
            Operator,
            console_emergency::declare,
        )
        .post(
            "/console/declarations/{id}/confirm",
            Operator,
            console_emergency::confirm,
        )
        .post(
            "/console/declarations/{id}/renewal",
            Operator,
            console_emergency::propose_renewal,
        )
        .post(
            "/console/declarations/{id}/renewal/confirm",
            Operator,
            console_emergency::confirm_renewal,
        )
        .post(
            "/console/declarations/{id}/end",
            Operator,
            console_emergency::end,
        )
        .get("/console/audit", Operator, audit::audit)
        .get("/console/requests", Operator, requests::queue)
        .post("/console/requests/{id}/answer", Operator, requests::answer)
        .post("/console/requests/{id}/extend", Operator, requests::extend)
        // The city's counter, and the public check of its receipts (issue 25, item 5).
        .get("/console/counter", Counter, counter::start)
        .post("/console/counter/sessions", Counter, counter::open)
        .get("/console/counter/sessions/{id}", Counter, counter::session)
        .post(
            "/console/counter/sessions/{id}/consents",
            Counter,
            counter::grant,
        )
        .post(
            "/console/counter/sessions/{id}/consents/{consent}/revoke",
            Counter,
            counter::revoke,
        )
        .post(
            "/console/counter/sessions/{id}/requests",
            Counter,
            counter::file_request,
        )
        .get("/console/counter/receipt", Counter, counter::receipt)
        .get(
            "/console/counter/receipt.pdf",
            Counter,
            counter::receipt_pdf,
        )
        .get("/portal/receipts/check", Public, counter::check)
        .post("/portal/receipts/check", Public, counter::check_pasted)
        .get(
            "/console/representatives",
            Operator,
            counter::representatives,
        )
        .post(
            "/console/representatives",
            Operator,
            counter::register_representative,
        )
        .get("/static/{file}", Public, assets::serve)
        .finish(guard::PortalGuard(state.clone()));
    let router = router
        .layer(axum::middleware::from_fn(security::protect))
        // Counted and timed by the page's route, as the API's requests are.
        .layer(axum::middleware::from_fn_with_state(
            state.hub.clone(),
            renkei_hub::metrics::track,
        ))
        .with_state(state);
    (router, table)
}
