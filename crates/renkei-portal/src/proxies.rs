//! Proxies (代理人): a resident appoints someone (a one-time code and a scope), sees what each
//! proxy did and ends an appointment at once (`/portal/proxies`); the person appointed accepts
//! the code and acts for the resident, every page saying for whom, with a way back to their
//! own session (`/portal/acting/...`).

use std::collections::BTreeSet;

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use renkei_domain::{ProxyId, ProxyScope, ServiceId};
use renkei_hub::accounts::{ProxyAction, ProxyInvitationBody};
use renkei_hub::auth::RESIDENT_TOKEN_SECONDS;
use renkei_hub::catalogue::ServiceView;
use serde::Deserialize;

use crate::PortalState;
use crate::ctx::Ctx;
use crate::error::PortalError;
use crate::extract::{Form, Path, Query};
use crate::i18n::Tr;
use crate::resident::{clear_sessions, signed_in};
use crate::security::{OWN_SESSION_COOKIE, SESSION_COOKIE, cookie, set_cookie};
use crate::session::{ResidentSession, resident, resident_name};
use crate::time::tokyo;

/// One appointment as the resident sees it.
pub struct ProxyRow {
    pub id: String,
    pub label: String,
    pub active: bool,
    pub since: String,
    pub ended: String,
    /// What the resident entrusted, in words.
    pub may: Vec<String>,
    pub services: String,
    /// What the proxy did under it, newest first.
    pub actions: Vec<(String, String)>,
}

/// Someone the signed-in person may act for.
pub struct ActingRow {
    pub id: String,
    pub name: String,
    pub since: String,
}

/// The code of a new invitation, shown once.
pub struct NewCode {
    pub code: String,
    pub label: String,
    pub expires: String,
}

#[derive(Template)]
#[template(path = "portal/proxies.html")]
struct ProxiesPage {
    ctx: Ctx,
    services: Vec<(String, String)>,
    proxies: Vec<ProxyRow>,
    acting: Vec<ActingRow>,
    code: Option<NewCode>,
    message: Option<String>,
    error: Option<String>,
}

fn service_name(catalogue: &[ServiceView], id: &ServiceId, t: &Tr) -> String {
    catalogue.iter().find(|s| s.id == id.as_str()).map_or_else(
        || id.to_string(),
        |s| t.pick(&s.name_ja, &s.name_en).to_owned(),
    )
}

fn purpose_title(catalogue: &[ServiceView], service: &ServiceId, purpose: &str, t: &Tr) -> String {
    catalogue
        .iter()
        .find(|s| s.id == service.as_str())
        .and_then(|s| s.purposes.iter().find(|p| p.id == purpose))
        .map_or_else(
            || purpose.to_owned(),
            |p| t.pick(&p.title_ja, &p.title_en).to_owned(),
        )
}

fn scope_words(scope: &ProxyScope, catalogue: &[ServiceView], t: &Tr) -> (Vec<String>, String) {
    let mut may = Vec::new();
    for (on, id) in [
        (scope.manage_consents, "proxy-may-consents"),
        (scope.view_history, "proxy-may-history"),
        (scope.file_requests, "proxy-may-requests"),
        (scope.sign_in_to_services, "proxy-may-sign-in"),
    ] {
        if on {
            may.push(t.get(id));
        }
    }
    let services = if scope.services.is_empty() {
        t.get("proxy-all-services")
    } else {
        scope
            .services
            .iter()
            .map(|s| service_name(catalogue, s, t))
            .collect::<Vec<_>>()
            .join(t.pick("、", ", "))
    };
    (may, services)
}

fn action_words(a: &ProxyAction, catalogue: &[ServiceView], t: &Tr) -> String {
    match a {
        ProxyAction::Consent {
            service,
            purpose,
            change,
            ..
        } => {
            let change = serde_json::to_value(change)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            t.arg2(
                "proxy-did-consent",
                (
                    "change",
                    &t.get_or(&format!("consent-change-{change}"), "consent-change-other"),
                ),
                (
                    "purpose",
                    &format!(
                        "{} — {}",
                        service_name(catalogue, service, t),
                        purpose_title(catalogue, service, purpose.as_str(), t)
                    ),
                ),
            )
        }
        ProxyAction::Request { kind, service, .. } => t.arg2(
            "proxy-did-request",
            ("kind", &t.get(&format!("request-kind-{}", kind.as_str()))),
            (
                "service",
                &service.as_ref().map_or_else(
                    || t.get("request-service-hub"),
                    |s| service_name(catalogue, s, t),
                ),
            ),
        ),
    }
}

async fn proxies_page(
    state: &PortalState,
    ctx: Ctx,
    me: &ResidentSession,
    code: Option<NewCode>,
    message: Option<String>,
    error: Option<String>,
) -> Result<Response, PortalError> {
    let t = ctx.t;
    let lang = ctx.lang;
    let catalogue = state.hub.services().await?;
    let mut proxies = Vec::new();
    for a in state.hub.proxies(&me.hub).await? {
        let actions = state
            .hub
            .proxy_actions(&me.hub, a.id)
            .await?
            .iter()
            .map(|x| (tokyo(x.at(), lang), action_words(x, &catalogue, &t)))
            .collect();
        let (may, services) = scope_words(&a.scope, &catalogue, &t);
        proxies.push(ProxyRow {
            id: a.id.to_string(),
            label: a.label.clone(),
            active: a.is_active(),
            since: tokyo(a.appointed_at, lang),
            ended: a.ended_at.map(|at| tokyo(at, lang)).unwrap_or_default(),
            may,
            services,
            actions,
        });
    }
    let mut acting = Vec::new();
    for a in state.hub.acting_for(me.id).await? {
        acting.push(ActingRow {
            id: a.id.to_string(),
            name: resident_name(&state.hub, a.resident).await,
            since: tokyo(a.appointed_at, lang),
        });
    }
    let services = catalogue
        .iter()
        .filter(|s| s.status == "approved")
        .map(|s| (s.id.clone(), t.pick(&s.name_ja, &s.name_en).to_owned()))
        .collect();
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = ProxiesPage {
        ctx: ctx.portal_for("proxies-title", "/portal/proxies", me),
        services,
        proxies,
        acting,
        code,
        message,
        error,
    };
    Ok((status, Html(page.render()?)).into_response())
}

/// Only the resident themselves manages appointments: a proxy gets "not entrusted".
async fn own_session(
    state: &PortalState,
    headers: &HeaderMap,
) -> Result<ResidentSession, PortalError> {
    let me = signed_in(state, headers).await?;
    if me.hub.proxy.is_some() {
        return Err(PortalError::NotEntrusted);
    }
    Ok(me)
}

#[derive(Deserialize)]
pub struct MessageQuery {
    #[serde(default)]
    done: Option<String>,
}

pub async fn proxies(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
    Query(q): Query<MessageQuery>,
) -> Result<Response, PortalError> {
    let me = own_session(&state, &headers).await?;
    let message = q
        .done
        .filter(|d| matches!(d.as_str(), "ended" | "back" | "acting-ended"))
        .map(|d| ctx.t.get(&format!("proxy-done-{d}")));
    proxies_page(&state, ctx, &me, None, message, None).await
}

/// Appoints: the hub makes a one-time code; the page shows it once (it is in no URL).
pub async fn invite(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, PortalError> {
    let me = own_session(&state, &headers).await?;
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let on = |name: &str| field(name).is_some_and(|v| v == "on");
    // INVARIANT: a service that cannot be read refuses the form. Dropped, it could leave
    // the set empty, and an empty set means every service.
    let Ok(services) = form
        .iter()
        .filter(|(k, _)| k == "service")
        .map(|(_, v)| ServiceId::new(v.as_str()))
        .collect::<Result<BTreeSet<ServiceId>, _>>()
    else {
        let error = Some(ctx.t.get("proxy-error-service"));
        return proxies_page(&state, ctx, &me, None, None, error).await;
    };
    let scope = ProxyScope {
        services,
        manage_consents: on("manage_consents"),
        view_history: on("view_history"),
        file_requests: on("file_requests"),
        sign_in_to_services: on("sign_in_to_services"),
    };
    let label = field("label").unwrap_or_default().trim().to_owned();
    if !(scope.manage_consents
        || scope.view_history
        || scope.file_requests
        || scope.sign_in_to_services)
    {
        let error = Some(ctx.t.get("proxy-error-nothing"));
        return proxies_page(&state, ctx, &me, None, None, error).await;
    }
    match state
        .hub
        .invite_proxy(
            &me.hub,
            ProxyInvitationBody {
                label: label.clone(),
                scope,
            },
        )
        .await
    {
        Ok(invitation) => {
            let code = Some(NewCode {
                code: invitation.code.to_string(),
                label,
                expires: tokyo(invitation.expires_at, ctx.lang),
            });
            proxies_page(&state, ctx, &me, code, None, None).await
        }
        Err(renkei_hub::HubError::Malformed(_)) => {
            let error = Some(ctx.t.get("proxy-error-label"));
            proxies_page(&state, ctx, &me, None, None, error).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Ends an appointment at once: the proxy's next request finds it ended.
pub async fn end(
    State(state): State<PortalState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, PortalError> {
    let me = own_session(&state, &headers).await?;
    let id: ProxyId = id.parse().map_err(|_| PortalError::NotFound)?;
    state.hub.end_proxy(&me.hub, id).await?;
    Ok(Redirect::to("/portal/proxies?done=ended").into_response())
}

/// Switches the browser to a session acting for someone, keeping the own one aside.
fn act_response(own: &str, acting: &str) -> Response {
    let mut response = Redirect::to("/portal").into_response();
    let h = response.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(OWN_SESSION_COOKIE, own, Some(RESIDENT_TOKEN_SECONDS)),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, acting, Some(RESIDENT_TOKEN_SECONDS)),
    );
    response
}

#[derive(Deserialize)]
pub struct AcceptForm {
    code: String,
}

/// The person invited, signed in as themselves, accepts a code and starts acting.
pub async fn accept(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(form): Form<AcceptForm>,
) -> Result<Response, PortalError> {
    let me = own_session(&state, &headers).await?;
    let refused = |ctx: Ctx| {
        let error = Some(ctx.t.get("proxy-error-code"));
        (ctx, error)
    };
    let Ok(code) = form.code.trim().parse::<uuid::Uuid>() else {
        let (ctx, error) = refused(ctx);
        return proxies_page(&state, ctx, &me, None, None, error).await;
    };
    let appointment = match state.hub.accept_proxy_invitation(&me.hub, code).await {
        Ok(a) => a,
        Err(renkei_hub::HubError::NotFound(_) | renkei_hub::HubError::Malformed(_)) => {
            let (ctx, error) = refused(ctx);
            return proxies_page(&state, ctx, &me, None, None, error).await;
        }
        Err(e) => return Err(e.into()),
    };
    let token = state
        .hub
        .proxy_session_token(&me.hub, appointment.id)
        .await?;
    Ok(act_response(&me.token, &token))
}

#[derive(Deserialize)]
pub struct StartForm {
    appointment: String,
}

/// Acts again under an appointment accepted before.
pub async fn start(
    State(state): State<PortalState>,
    headers: HeaderMap,
    Form(form): Form<StartForm>,
) -> Result<Response, PortalError> {
    let me = own_session(&state, &headers).await?;
    let id: ProxyId = form
        .appointment
        .parse()
        .map_err(|_| PortalError::NotFound)?;
    let token = state.hub.proxy_session_token(&me.hub, id).await?;
    Ok(act_response(&me.token, &token))
}

/// Back to one's own session kept aside, if it still holds; if it does not (it ran out, or
/// was signed out), to sign-in with every session cookie cleared: a session is never restored
/// from a cookie the hub no longer honours.
async fn restore(state: &PortalState, headers: &HeaderMap, to: &str) -> Response {
    // Without a session kept aside there is nothing to go back to: nothing changes.
    let Some(own) = cookie(headers, OWN_SESSION_COOKIE) else {
        return Redirect::to(to).into_response();
    };
    if state.hub.resident_session(own).await.is_err() {
        let mut response = Redirect::to("/portal/sign-in").into_response();
        clear_sessions(response.headers_mut());
        return response;
    }
    let mut response = Redirect::to(to).into_response();
    let h = response.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, own, Some(RESIDENT_TOKEN_SECONDS)),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(OWN_SESSION_COOKIE, "", Some(0)),
    );
    response
}

/// Stops acting for someone: the session acting for them ends at the hub too (a copy of its
/// cookie stops working), and the proxy is back in their own.
pub async fn stop(
    State(state): State<PortalState>,
    headers: HeaderMap,
) -> Result<Response, PortalError> {
    if cookie(&headers, OWN_SESSION_COOKIE).is_some()
        && let Some(acting) = cookie(&headers, SESSION_COOKIE)
    {
        state.hub.end_session(acting).await?;
    }
    Ok(restore(&state, &headers, "/portal/proxies?done=back").await)
}

/// Where a page sends a proxy whose appointment ended: back to their own session.
pub async fn ended(State(state): State<PortalState>, headers: HeaderMap) -> Response {
    if resident(&state.hub, &headers).await.is_some() {
        return Redirect::to("/portal").into_response();
    }
    restore(&state, &headers, "/portal/proxies?done=acting-ended").await
}
