//! Who may call each route: the one authorization decision every request passes before its
//! handler runs.
//!
//! Every route the binary serves (the API here, the portal and console in `renkei-portal`)
//! is registered through [`Routes`], which takes the route's [`Access`] beside its handler,
//! so a route cannot exist without saying who may call it. Each route gets a middleware that
//! asks its router's [`Guard`] whether the caller is of a kind the route admits, before the
//! handler runs. On the API the answer (who the caller is) travels to the handler in the
//! request's extensions, where the extractors of `auth.rs` take it from, so the handler acts
//! on the same decision; the pages' handlers read their session cookie again through the
//! same hub checks. Handlers keep the checks only they can make: the service a proxy's scope
//! must cover, whose consent an id names.
//!
//! [`Routes::finish`] also hands back the table itself ([`RouteAccess`] rows), from which the
//! authorization matrix test (`crates/renkei/tests/route_access.rs`) derives the expected
//! outcome of every route for every kind of caller.

use std::future::Future;

use axum::Router;
use axum::extract::Request;
use axum::handler::Handler;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;

use crate::auth::{
    DataRequester, OperatorCaller, ProxyPermission, ResidentCaller, ResidentSession, USER_AUDIENCE,
    bearer,
};
use crate::{Hub, HubError};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not: discovery, keys, the log, sign-in and enrolment ceremonies
    /// (their proof is their body), signing out.
    Public,
    /// Anyone, but only while the hub runs in demo mode (otherwise "demo only", 404).
    DemoOnly,
    /// A service authenticating as an OAuth client (HTTP Basic or form credentials). The
    /// credentials travel in the form body, so the handler checks them; no bearer token is
    /// taken in their stead.
    Client,
    /// A bearer token a service holds: its client-credentials token, or a code-flow token it
    /// holds for one resident (a data request).
    ServiceToken,
    /// A code-flow access token (held by a service for one resident).
    UserToken,
    /// A signed-in resident, or a proxy acting for them as [`Proxies`] says.
    Resident(Proxies),
    /// As [`Access::Resident`], but without a session the handler itself asks the browser to
    /// sign in (after checking the request, so the way back is kept): the OpenID consent page.
    ResidentOrSignIn(Proxies),
    /// A resident's own session (never a proxy's) whose identity holds an operator account:
    /// trading it for an operator session.
    OperatorIdentity,
    /// A city operator's session, for an operator account that exists.
    Operator,
}

/// Which proxies a resident route admits, besides the resident themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proxies {
    /// Every proxy acting for the resident (what the route shows depends on their scope).
    Any,
    /// Proxies entrusted with this.
    Entrusted(ProxyPermission),
    /// None: the resident's own account (passkeys, appointments, acting for others).
    Never,
}

impl Proxies {
    /// Refuses a session this rule does not admit. Whether the proxy's scope covers the
    /// service the request acts on is the handler's to check (it knows the service).
    pub fn admit(self, session: &ResidentSession) -> Result<(), HubError> {
        match self {
            Self::Any => Ok(()),
            Self::Entrusted(permission) => session.require(permission, None),
            Self::Never => session.require(ProxyPermission::ManageAccount, None),
        }
    }
}

/// One row of the table: a method and path, and who may call it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteAccess {
    pub method: Method,
    /// As the router spells it (`{id}`, `{*path}`).
    pub path: &'static str,
    pub access: Access,
}

/// Decides, for the routes of one router, whether a request may reach its handler.
pub trait Guard: Clone + Send + Sync + 'static {
    /// Runs `next` when the caller is of a kind `access` admits (having recorded who they
    /// are in the request's extensions), or answers the refusal.
    fn check(
        &self,
        access: Access,
        request: Request,
        next: Next,
    ) -> impl Future<Output = Response> + Send;
}

/// A router under construction whose every route declares its [`Access`].
pub struct Routes<S, G> {
    router: Router<S>,
    table: Vec<RouteAccess>,
    guard: G,
}

impl<S, G> Routes<S, G>
where
    S: Clone + Send + Sync + 'static,
    G: Guard,
{
    pub fn new(guard: G) -> Self {
        Self {
            router: Router::new(),
            table: Vec::new(),
            guard,
        }
    }

    pub fn get<H, T>(self, path: &'static str, access: Access, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.add(Method::GET, path, access, axum::routing::get(handler))
    }

    pub fn post<H, T>(self, path: &'static str, access: Access, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.add(Method::POST, path, access, axum::routing::post(handler))
    }

    fn add(
        mut self,
        method: Method,
        path: &'static str,
        access: Access,
        route: MethodRouter<S>,
    ) -> Self {
        let guard = self.guard.clone();
        let route = route.route_layer(axum::middleware::from_fn(
            move |request: Request, next: Next| {
                let guard = guard.clone();
                async move { guard.check(access, request, next).await }
            },
        ));
        self.table.push(RouteAccess {
            method,
            path,
            access,
        });
        // INVARIANT: this is the only place routes are added to the hub's and the portal's
        // routers (clippy.toml disallows `Router::route` elsewhere), so every route has a row.
        #[expect(
            clippy::disallowed_methods,
            reason = "the one place routes are added, each with its access"
        )]
        let router = self.router.route(path, route);
        self.router = router;
        self
    }

    /// The router, and its table of who may call what.
    pub fn finish(self) -> (Router<S>, Vec<RouteAccess>) {
        (self.router, self.table)
    }
}

/// The API's guard: bearer tokens, checked by the hub's own operations.
#[derive(Clone)]
pub struct HubGuard(pub Hub);

impl Guard for HubGuard {
    async fn check(&self, access: Access, mut request: Request, next: Next) -> Response {
        match self.0.admit(access, request.headers()).await {
            Ok(caller) => {
                let extensions = request.extensions_mut();
                match caller {
                    Caller::Nobody => {}
                    Caller::Resident(session) => {
                        extensions.insert(ResidentCaller(session));
                    }
                    Caller::Operator(operator) => {
                        extensions.insert(operator);
                    }
                    Caller::Service(requester) => {
                        extensions.insert(requester);
                    }
                }
                next.run(request).await
            }
            Err(e) => {
                let mut response = e.into_response();
                // RFC 6750 §3.1: a request that presented no token is challenged without an
                // error code; one whose token did not hold, with `invalid_token`.
                if response.status() == StatusCode::UNAUTHORIZED
                    && bearer(request.headers()).is_err()
                {
                    response.headers_mut().insert(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static(crate::error::BEARER_CHALLENGE),
                    );
                }
                response
            }
        }
    }
}

/// Who the guard found a request to come from.
enum Caller {
    /// Nobody in particular: the route is public, or its handler checks the credentials.
    Nobody,
    Resident(ResidentSession),
    Operator(OperatorCaller),
    Service(DataRequester),
}

impl Hub {
    /// The API's authorization decision: whether a request with `headers` may call a route
    /// declared `access`, and who it comes from.
    async fn admit(&self, access: Access, headers: &HeaderMap) -> Result<Caller, HubError> {
        match access {
            Access::Public | Access::Client => Ok(Caller::Nobody),
            Access::DemoOnly if self.config.demo_mode => Ok(Caller::Nobody),
            Access::DemoOnly => Err(HubError::DemoOnly),
            Access::ServiceToken => Ok(Caller::Service(
                DataRequester::authenticate(self, headers).await?,
            )),
            Access::UserToken => {
                // Signature, audience and times; whether the grant still holds (consents,
                // code, service) is read by the endpoint, which needs the grant anyway.
                self.keys.check(bearer(headers)?, USER_AUDIENCE)?;
                Ok(Caller::Nobody)
            }
            Access::Resident(proxies) | Access::ResidentOrSignIn(proxies) => {
                let session = self.resident_session(bearer(headers)?).await?;
                proxies.admit(&session)?;
                Ok(Caller::Resident(session))
            }
            Access::OperatorIdentity => {
                let session = self.resident_session(bearer(headers)?).await?;
                Proxies::Never.admit(&session)?;
                if self.operator_of(session.resident).await?.is_none() {
                    return Err(HubError::Forbidden(
                        "this identity is not an operator".into(),
                    ));
                }
                Ok(Caller::Resident(session))
            }
            Access::Operator => {
                let operator = self.operator_session(bearer(headers)?).await?;
                Ok(Caller::Operator(OperatorCaller(operator)))
            }
        }
    }
}
