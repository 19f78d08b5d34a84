//! The portal's and console's side of the route table (`renkei_hub::routes`): who a request
//! comes from, by its session cookies, and whether the route it asks for admits them.
//! It runs after the security middleware (CSRF is checked first) and before every handler.
//!
//! A refusal is what the pages answered before: to the sign-in page when signed out, to
//! `/portal/acting/ended` when a proxy's appointment ended, "not permitted" (403) for a proxy
//! asking for what was not entrusted; the passkey ceremonies, which `passkey.js` calls with
//! JSON, are answered in JSON.

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use renkei_hub::routes::{Access, Guard, Proxies};

use crate::PortalState;
use crate::error::PortalError;
use crate::i18n::Tr;
use crate::security::RequestContext;

/// Checks every portal and console route's [`Access`] by the request's session cookies.
#[derive(Clone)]
pub struct PortalGuard(pub PortalState);

/// Why a request does not reach its handler.
enum Refusal {
    Page(PortalError),
    /// `/console/sign-in/portal` without an operator's identity: the console's sign-in page
    /// says so.
    NotAnOperator,
}

impl Guard for PortalGuard {
    async fn check(&self, access: Access, request: Request, next: Next) -> Response {
        match self.admit(access, request.headers()).await {
            Ok(()) => next.run(request).await,
            Err(refusal) => refuse(refusal, &request),
        }
    }
}

impl PortalGuard {
    async fn admit(&self, access: Access, headers: &HeaderMap) -> Result<(), Refusal> {
        let state = &self.0;
        let page = Refusal::Page;
        match access {
            Access::Public => Ok(()),
            Access::DemoOnly if state.hub.config().demo_mode => Ok(()),
            Access::DemoOnly => Err(page(PortalError::NotFound)),
            Access::Resident(proxies) => {
                let me = crate::resident::signed_in(state, headers)
                    .await
                    .map_err(page)?;
                admit(proxies, &me.hub)
            }
            Access::ResidentOrSignIn(proxies) => {
                // Signed out, the handler checks the request and then asks to sign in, so
                // that the browser comes back to it.
                match crate::session::resident(&state.hub, headers).await {
                    Some(me) => admit(proxies, &me.hub),
                    None => Ok(()),
                }
            }
            Access::OperatorIdentity => {
                let Some(me) = crate::session::resident(&state.hub, headers).await else {
                    return Err(Refusal::NotAnOperator);
                };
                if admit(Proxies::Never, &me.hub).is_err() {
                    return Err(Refusal::NotAnOperator);
                }
                match state.hub.operator_of(me.id).await {
                    Ok(Some(_)) => Ok(()),
                    Ok(None) => Err(Refusal::NotAnOperator),
                    Err(e) => Err(page(e.into())),
                }
            }
            Access::Operator => crate::console::signed_in(state, headers)
                .await
                .map(|_| ())
                .map_err(page),
            Access::Counter => crate::counter::staff_signed_in(state, headers)
                .await
                .map(|_| ())
                .map_err(page),
            // Services and providers call the API, never a page: a page declaring so admits
            // nobody.
            Access::Client
            | Access::ServiceToken
            | Access::UserToken
            | Access::Provider
            | Access::Scraper
            | Access::Soc => Err(page(PortalError::Internal(
                "a page cannot admit a service or a provider".into(),
            ))),
        }
    }
}

fn admit(proxies: Proxies, session: &renkei_hub::auth::ResidentSession) -> Result<(), Refusal> {
    proxies
        .admit(session)
        .map_err(|_| Refusal::Page(PortalError::NotEntrusted))
}

fn refuse(refusal: Refusal, request: &Request) -> Response {
    let error = match refusal {
        Refusal::NotAnOperator => {
            return Redirect::to("/console/sign-in?error=1").into_response();
        }
        Refusal::Page(error) => error,
    };
    let json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return error.into_response();
    }
    let lang = request
        .extensions()
        .get::<RequestContext>()
        .map(|rc| rc.lang)
        .unwrap_or_default();
    let t = Tr::new(lang);
    let (status, message) = match error {
        PortalError::SignedOut | PortalError::ActingEnded | PortalError::OperatorSignedOut => {
            (StatusCode::UNAUTHORIZED, "passkey-signed-out")
        }
        PortalError::NotEntrusted => (StatusCode::FORBIDDEN, "passkey-not-proxy"),
        other => return other.into_response(),
    };
    crate::identity::json_message(status, t.get(message))
}
