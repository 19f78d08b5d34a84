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
//! An API route is declared once, with its access and its OpenAPI operation (the one
//! `#[utoipa::path]` writes beside its handler): its method and path are the operation's, and
//! [`Routes::describe`] writes the operations into the document `GET /openapi.json` serves,
//! so the router and the document list the same routes by construction.
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
use axum::routing::{MethodFilter, MethodRouter};
use utoipa::openapi::path::{HttpMethod, Paths};
use utoipa::openapi::{OpenApi, RefOr, schema::Schema};

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
    /// A city operator's session, for an operator account that exists and is not counter
    /// staff's.
    Operator,
    /// The city's counter: a counter staff member's session, or any operator's.
    Counter,
    /// A data provider's token (from its client assertion), for a provider that is still
    /// registered and approved.
    Provider,
    /// A metrics scraper presenting the token the city configured
    /// ([`crate::HubConfig::metrics_token`]); with none configured, nobody (404).
    Scraper,
    /// The city's SOC presenting the token it was given ([`crate::soc::SocConfig::token`]);
    /// with none configured, nobody (404).
    Soc,
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
    pub path: String,
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

/// The routes of a router under construction, each declared with its [`Access`] and, for
/// the API's, with its OpenAPI operation. [`Routes::finish`] puts them behind a [`Guard`];
/// [`Routes::describe`] writes the API's into an OpenAPI document.
pub struct Routes<S> {
    routes: Vec<(RouteAccess, MethodRouter<S>)>,
    paths: Paths,
    schemas: Vec<(String, RefOr<Schema>)>,
}

impl<S> Default for Routes<S>
where
    S: Clone + Send + Sync + 'static,
{
    fn default() -> Self {
        Self::new()
    }
}

impl<S> Routes<S>
where
    S: Clone + Send + Sync + 'static,
{
    pub fn new() -> Self {
        Self {
            routes: Vec::new(),
            paths: Paths::new(),
            schemas: Vec::new(),
        }
    }

    /// A page (no OpenAPI operation) answering GET at `path`.
    pub fn get<H, T>(self, path: &'static str, access: Access, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.add(
            Method::GET,
            path.to_owned(),
            access,
            axum::routing::get(handler),
        )
    }

    /// A page (no OpenAPI operation) answering POST at `path`.
    pub fn post<H, T>(self, path: &'static str, access: Access, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.add(
            Method::POST,
            path.to_owned(),
            access,
            axum::routing::post(handler),
        )
    }

    /// An API route: `handler` answers the methods and path its OpenAPI `operation` (the
    /// type `#[utoipa::path]` makes beside it, `__path_<handler>`) declares, and the
    /// operation describes it. A path's last parameter written `{*name}` takes the rest of
    /// the path; the document writes it `{name}`.
    pub fn api<P, H, T>(mut self, access: Access, handler: H, _operation: P) -> Self
    where
        // `SchemaReferences` is how utoipa's own `#[derive(OpenApi)]` (and utoipa-axum)
        // collect the schemas an operation names; it is public but undocumented.
        P: utoipa::Path + utoipa::__dev::SchemaReferences,
        H: Handler<T, S>,
        T: 'static,
    {
        let path = P::path();
        let methods = P::methods();
        let mut operation = P::operation();
        // As utoipa's `#[derive(OpenApi)]` writes an operation: with its (empty) tags.
        operation.tags.get_or_insert_with(Vec::new);
        self.paths
            .add_path_operation(path.replace("{*", "{"), methods.clone(), operation);
        P::schemas(&mut self.schemas);
        for method in methods {
            let (method, filter) = http_method(&method);
            let route = axum::routing::on(filter, handler.clone());
            self = self.add(method, path.clone(), access, route);
        }
        self
    }

    fn add(mut self, method: Method, path: String, access: Access, route: MethodRouter<S>) -> Self {
        self.routes.push((
            RouteAccess {
                method,
                path,
                access,
            },
            route,
        ));
        self
    }

    /// Adds the API's operations, and the schemas they name, to `doc`.
    pub fn describe(&self, doc: &mut OpenApi) {
        doc.paths.merge(self.paths.clone());
        doc.components
            .get_or_insert_with(Default::default)
            .schemas
            .extend(self.schemas.iter().cloned());
    }

    /// The router, each route behind `guard`, and its table of who may call what.
    pub fn finish<G: Guard>(self, guard: G) -> (Router<S>, Vec<RouteAccess>) {
        let mut router = Router::new();
        let mut table = Vec::with_capacity(self.routes.len());
        for (row, route) in self.routes {
            let access = row.access;
            let guard = guard.clone();
            let route = route.route_layer(axum::middleware::from_fn(
                move |request: Request, next: Next| {
                    let guard = guard.clone();
                    async move { guard.check(access, request, next).await }
                },
            ));
            // INVARIANT: this is the only place routes are added to the hub's and the
            // portal's routers (clippy.toml disallows `Router::route` elsewhere), so every
            // route has a row and goes through the guard.
            #[expect(
                clippy::disallowed_methods,
                reason = "the one place routes are added, each with its access"
            )]
            let routed = router.route(&row.path, route);
            router = routed;
            table.push(row);
        }
        (router, table)
    }
}

/// The request method of an OpenAPI operation, and the filter that routes it.
fn http_method(method: &HttpMethod) -> (Method, MethodFilter) {
    match method {
        HttpMethod::Get => (Method::GET, MethodFilter::GET),
        HttpMethod::Post => (Method::POST, MethodFilter::POST),
        HttpMethod::Put => (Method::PUT, MethodFilter::PUT),
        HttpMethod::Delete => (Method::DELETE, MethodFilter::DELETE),
        HttpMethod::Options => (Method::OPTIONS, MethodFilter::OPTIONS),
        HttpMethod::Head => (Method::HEAD, MethodFilter::HEAD),
        HttpMethod::Patch => (Method::PATCH, MethodFilter::PATCH),
        HttpMethod::Trace => (Method::TRACE, MethodFilter::TRACE),
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
                    Caller::Provider(provider) => {
                        extensions.insert(provider);
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
    Provider(crate::provider_sync::ProviderCaller),
}

impl Hub {
    /// The API's authorization decision: whether a request with `headers` may call a route
    /// declared `access`, and who it comes from.
    async fn admit(&self, access: Access, headers: &HeaderMap) -> Result<Caller, HubError> {
        match access {
            Access::Public | Access::Client => Ok(Caller::Nobody),
            Access::DemoOnly if self.config().demo_mode => Ok(Caller::Nobody),
            Access::DemoOnly => Err(HubError::DemoOnly),
            Access::ServiceToken => Ok(Caller::Service(
                DataRequester::authenticate(self, headers).await?,
            )),
            Access::UserToken => {
                // Signature, audience and times; whether the grant still holds (consents,
                // code, service) is read by the endpoint, which needs the grant anyway.
                self.keys().check(bearer(headers)?, USER_AUDIENCE)?;
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
            Access::Counter => {
                let staff = self.staff_session(bearer(headers)?).await?;
                Ok(Caller::Operator(OperatorCaller(staff)))
            }
            Access::Provider => Ok(Caller::Provider(
                crate::provider_sync::ProviderCaller::authenticate(self, headers).await?,
            )),
            // A caller without a token is challenged (401) whether or not the route is on:
            // only one that presents a token learns that it is off.
            Access::Scraper => match (&self.config().metrics_token, bearer(headers)?) {
                (None, _) => Err(HubError::NotFound(
                    "metrics (no metrics token is configured)".into(),
                )),
                (Some(token), presented) if token.admits(presented) => Ok(Caller::Nobody),
                (Some(_), _) => Err(HubError::Unauthorized),
            },
            Access::Soc => match (&self.config().soc.token, bearer(headers)?) {
                (None, _) => Err(HubError::NotFound(
                    "security events (no SOC token is configured)".into(),
                )),
                (Some(token), presented) if token.admits(presented) => Ok(Caller::Nobody),
                (Some(_), _) => Err(HubError::Unauthorized),
            },
        }
    }
}
