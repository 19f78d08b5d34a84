//! The resident portal: sign-in and "my services" (one switch per purpose, receipts, past
//! consents); "who used my data" is `history.rs`.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use renkei_domain::{ConsentChannel, ConsentId, ResidentId};
use renkei_hub::auth::ProxyPermission;
use renkei_hub::consents::{ConsentView, GrantConsentBody};
use serde::Deserialize;

use crate::PortalState;
use crate::ctx::Ctx;
use crate::error::PortalError;
use crate::extract::{Form, Path, Query};
use crate::i18n::{Lang, Tr};
use crate::identity::{safe_next, with_next};
use crate::security::{OWN_SESSION_COOKIE, SESSION_COOKIE, cookie, set_cookie};
use crate::session::{ResidentSession, resident};
use crate::time::{tokyo, tokyo_date, tokyo_iso};
use renkei_hub::catalogue::{CategoryView, ProviderView, ServiceView};

pub(crate) fn render(t: &impl Template) -> Result<Response, PortalError> {
    Ok(Html(t.render()?).into_response())
}

pub async fn signed_in(
    state: &PortalState,
    headers: &HeaderMap,
) -> Result<ResidentSession, PortalError> {
    match resident(&state.hub, headers).await {
        Some(me) => Ok(me),
        None if crate::session::acting_ended(&state.hub, headers).await => {
            Err(PortalError::ActingEnded)
        }
        None => Err(PortalError::SignedOut),
    }
}

// ---------------------------------------------------------------- sign-in

#[derive(Template)]
#[template(path = "portal/sign_in.html")]
struct SignInPage {
    ctx: Ctx,
    demo: bool,
    error: bool,
    /// Where to go after signing in (a path on this site).
    next: Option<String>,
    /// Sign-in was asked for by a service's OpenID request.
    for_service: bool,
    enrol_href: String,
}

#[derive(Deserialize)]
pub struct SignInQuery {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    next: Option<String>,
}

pub async fn sign_in_page(
    State(state): State<PortalState>,
    ctx: Ctx,
    Query(q): Query<SignInQuery>,
) -> Result<Response, PortalError> {
    let next = safe_next(q.next.as_deref());
    render(&SignInPage {
        ctx: ctx.portal("sign-in-title", "", false),
        demo: state.hub.config().demo_mode,
        error: q.error.is_some(),
        for_service: next
            .as_deref()
            .is_some_and(|n| n.starts_with("/oauth/authorize")),
        enrol_href: with_next("/portal/enrol", next.as_deref()),
        next,
    })
}

#[derive(Deserialize)]
pub struct DemoSignInForm {
    resident: String,
    #[serde(default)]
    next: Option<String>,
}

/// Demo mode only: signs in as any resident of the demo town, as `POST /demo/sign-in` does.
pub async fn demo_sign_in(
    State(state): State<PortalState>,
    Form(form): Form<DemoSignInForm>,
) -> Result<Response, PortalError> {
    if !state.hub.config().demo_mode {
        return Err(PortalError::NotFound);
    }
    let next = safe_next(form.next.as_deref());
    let again = with_next("/portal/sign-in?error=1", next.as_deref());
    let Ok(resident) = form.resident.trim().parse::<ResidentId>() else {
        return Ok(Redirect::to(&again).into_response());
    };
    let Some(token) = crate::session::demo_session(&state.hub, resident).await? else {
        return Ok(Redirect::to(&again).into_response());
    };
    Ok(session_response(
        &token,
        next.as_deref().unwrap_or("/portal"),
    ))
}

/// Sets the session cookie and goes to `to`.
pub fn session_response(token: &str, to: &str) -> Response {
    let mut response = Redirect::to(to).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            SESSION_COOKIE,
            token,
            Some(renkei_hub::auth::RESIDENT_TOKEN_SECONDS),
        ),
    );
    response
}

/// Signs out of every session the browser holds: the one in use and, while acting for
/// someone, the proxy's own one kept aside. Each token is ended at the hub too, so a copy of
/// a cookie stops working now, and the next person at a shared terminal is nobody.
pub async fn sign_out(
    State(state): State<PortalState>,
    headers: HeaderMap,
) -> Result<Response, PortalError> {
    for name in [SESSION_COOKIE, OWN_SESSION_COOKIE] {
        if let Some(token) = cookie(&headers, name) {
            state.hub.end_session(token).await?;
        }
    }
    let mut response = Redirect::to("/portal/sign-in").into_response();
    clear_sessions(response.headers_mut());
    Ok(response)
}

/// Clears every resident session cookie (the one in use and the proxy's own kept aside).
pub fn clear_sessions(headers: &mut HeaderMap) {
    for name in [SESSION_COOKIE, OWN_SESSION_COOKIE] {
        headers.append(header::SET_COOKIE, set_cookie(name, "", Some(0)));
    }
}

// ---------------------------------------------------------------- home

#[derive(Template)]
#[template(path = "portal/home.html")]
struct HomePage {
    ctx: Ctx,
    counts: String,
    /// Declared emergencies in force or scheduled: every resident is shown them.
    declarations: Vec<crate::declarations::DeclarationRow>,
    /// How many notices of releases under declarations the resident has, in words (if any and
    /// they may see them).
    notices: Option<String>,
}

pub async fn home(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
) -> Result<Response, PortalError> {
    let me = match signed_in(&state, &headers).await {
        Ok(me) => me,
        Err(PortalError::SignedOut) => {
            return Ok(Redirect::to("/portal/sign-in").into_response());
        }
        Err(e) => return Err(e),
    };
    // A proxy not entrusted with consents is told nothing of them.
    let counts = if me.hub.require(ProxyPermission::ViewConsents, None).is_ok() {
        let consents = state.hub.consents(&me.hub).await?;
        let active = consents.iter().filter(|c| c.state == "active").count();
        let services = state
            .hub
            .services()
            .await?
            .iter()
            .filter(|s| s.status == "approved" && covers(&me, &s.id))
            .count();
        ctx.t.arg2(
            "home-services-count",
            ("active", &active),
            ("services", &services),
        )
    } else {
        String::new()
    };
    let declarations = crate::declarations::active_rows(&state, &ctx.t).await?;
    let notices = if me.hub.require(ProxyPermission::ViewHistory, None).is_ok() {
        let n = state.hub.my_notices(&me.hub).await?.len();
        (n > 0).then(|| ctx.t.count("home-notices", "count", n))
    } else {
        None
    };
    render(&HomePage {
        ctx: ctx.portal_for("home-title", "/portal", &me),
        counts,
        declarations,
        notices,
    })
}

// ---------------------------------------------------------------- my services

pub struct CategoryChip {
    pub name: String,
    pub special_care: bool,
}

pub struct PurposeCard {
    pub anchor: String,
    pub service: String,
    pub purpose: String,
    pub title: String,
    pub description: String,
    pub categories: Vec<CategoryChip>,
    pub on: bool,
    /// An active consent to an older version of this purpose.
    pub outdated: bool,
    pub consent: Option<String>,
    pub since: String,
    pub since_iso: String,
    pub until: String,
    pub retention: String,
    pub can_start: bool,
    /// Whether this session may switch it (a proxy only what the resident entrusted).
    pub can_switch: bool,
    /// Whether the resident ever agreed to this purpose (restart rather than start).
    pub had_consent: bool,
    /// Where, by whom and on which form, for a consent taken at a provider's counter.
    pub counter: Option<String>,
    /// How precisely the service receives location data and how long it may keep it.
    pub location: Option<String>,
}

pub struct ServiceCard {
    pub name: String,
    pub suspended: bool,
    pub purposes: Vec<PurposeCard>,
}

pub struct PastConsent {
    pub id: String,
    pub service: String,
    pub purpose: String,
    pub state: String,
    pub granted: String,
    pub ended: String,
    pub via: String,
    pub counter: Option<String>,
}

#[derive(Template)]
#[template(path = "portal/services.html")]
struct ServicesPage {
    ctx: Ctx,
    done: Option<String>,
    services: Vec<ServiceCard>,
    past: Vec<PastConsent>,
}

#[derive(Deserialize)]
pub struct DoneQuery {
    #[serde(default)]
    done: Option<String>,
}

/// Category names in the page's language, special-care ones marked.
pub fn chips(ids: &[String], vocabulary: &[CategoryView], lang: Lang) -> Vec<CategoryChip> {
    ids.iter()
        .map(|id| match vocabulary.iter().find(|c| &c.id == id) {
            Some(c) => CategoryChip {
                name: lang.pick(&c.name_ja, &c.name_en).to_owned(),
                special_care: c.special_care,
            },
            None => CategoryChip {
                name: id.clone(),
                special_care: false,
            },
        })
        .collect()
}

pub(crate) fn service_name(services: &[ServiceView], id: &str, lang: Lang) -> String {
    services.iter().find(|s| s.id == id).map_or_else(
        || id.to_owned(),
        |s| lang.pick(&s.name_ja, &s.name_en).to_owned(),
    )
}

pub(crate) fn purpose_title(
    services: &[ServiceView],
    service: &str,
    purpose: &str,
    lang: Lang,
) -> String {
    services
        .iter()
        .find(|s| s.id == service)
        .and_then(|s| s.purposes.iter().find(|p| p.id == purpose))
        .map_or_else(
            || purpose.to_owned(),
            |p| lang.pick(&p.title_ja, &p.title_en).to_owned(),
        )
}

/// Whether the session may see what concerns the service `id` (a proxy: within the scope).
pub(crate) fn covers(me: &ResidentSession, id: &str) -> bool {
    renkei_domain::ServiceId::new(id).is_ok_and(|s| me.hub.covers(Some(&s)))
}

fn via_text(t: &Tr, via: &str) -> String {
    t.get_or(&format!("via-{}", via.replace('_', "-")), "via-other")
}

/// For a consent a provider's staff took at its counter: which provider, which staff member
/// and which paper form, so the resident can follow it up there.
fn counter_text(t: &Tr, c: &ConsentView, providers: &[ProviderView], lang: Lang) -> Option<String> {
    if c.given_via != "counter" {
        return None;
    }
    let staff = c.given_by.get("staff_id")?.as_str()?;
    let Some(provider) = c.given_by.get("provider").and_then(|p| p.as_str()) else {
        // The city's own counter.
        return Some(t.arg("actor-staff", "staff", &staff));
    };
    let name = providers
        .iter()
        .find(|p| p.id == provider)
        .map_or(provider, |p| lang.pick(&p.name_ja, &p.name_en));
    Some(t.args(
        "counter-given",
        &[
            ("provider", &name),
            ("staff", &staff),
            ("form", &c.form_reference.as_deref().unwrap_or("-")),
        ],
    ))
}

fn consent_state_text(t: &Tr, c: &ConsentView) -> String {
    t.get_or(&format!("state-{}", c.state), "state-other")
}

pub async fn services(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
    Query(q): Query<DoneQuery>,
) -> Result<Response, PortalError> {
    let me = signed_in(&state, &headers).await?;
    let lang = ctx.lang;
    let t = ctx.t;
    let catalogue = state.hub.services().await?;
    let vocabulary = state.hub.categories().await?;
    let providers = state.hub.providers().await?;
    // The hub gives a proxy only the consents of the services entrusted (and refuses one
    // entrusted with neither consents nor the history); the page lists only those services.
    let consents = state.hub.consents(&me.hub).await?;
    // Newest first: the first consent per (service, purpose) is the one that counts.
    let mut latest: BTreeMap<(&str, &str), &ConsentView> = BTreeMap::new();
    for c in &consents {
        latest.entry((&c.service, &c.purpose)).or_insert(c);
    }
    let mut cards = Vec::new();
    for s in catalogue
        .iter()
        .filter(|s| s.status != "pending" && covers(&me, &s.id))
    {
        let suspended = s.status != "approved";
        let service_id = renkei_domain::ServiceId::new(s.id.as_str()).ok();
        let purposes = s
            .purposes
            .iter()
            .map(|p| {
                let current = latest.get(&(s.id.as_str(), p.id.as_str()));
                let active = current.filter(|c| c.state == "active");
                let on = active.is_some_and(|c| c.purpose_version == p.version);
                PurposeCard {
                    anchor: format!("p-{}-{}", s.id, p.id),
                    service: s.id.clone(),
                    purpose: p.id.clone(),
                    title: lang.pick(&p.title_ja, &p.title_en).to_owned(),
                    description: lang.pick(&p.description_ja, &p.description_en).to_owned(),
                    categories: chips(&p.categories, &vocabulary, lang),
                    on,
                    outdated: active.is_some() && !on,
                    consent: active.map(|c| c.id.clone()),
                    since: active
                        .map(|c| tokyo_date(c.granted_at, lang))
                        .unwrap_or_default(),
                    since_iso: active.map(|c| tokyo_iso(c.granted_at)).unwrap_or_default(),
                    until: active
                        .and_then(|c| c.expires_at)
                        .map(|at| tokyo_date(at, lang))
                        .unwrap_or_default(),
                    retention: t.count("retention-days", "days", p.retention_days as usize),
                    can_start: !suspended,
                    can_switch: me
                        .hub
                        .require(ProxyPermission::ManageConsents, service_id.as_ref())
                        .is_ok(),
                    had_consent: current.is_some(),
                    counter: active.and_then(|c| counter_text(&t, c, &providers, lang)),
                    location: p.location_precision.as_deref().map(|precision| {
                        t.arg2(
                            "purpose-location",
                            (
                                "precision",
                                &t.get_or(
                                    &format!("location-precision-{precision}"),
                                    "location-precision-other",
                                ),
                            ),
                            (
                                "days",
                                &p.location_retention_days.unwrap_or(p.retention_days),
                            ),
                        )
                    }),
                }
            })
            .collect();
        cards.push(ServiceCard {
            name: lang.pick(&s.name_ja, &s.name_en).to_owned(),
            suspended,
            purposes,
        });
    }
    let past = consents
        .iter()
        .filter(|c| c.state != "active")
        .map(|c| PastConsent {
            id: c.id.clone(),
            service: service_name(&catalogue, &c.service, lang),
            purpose: purpose_title(&catalogue, &c.service, &c.purpose, lang),
            state: consent_state_text(&t, c),
            granted: tokyo(c.granted_at, lang),
            ended: c
                .revoked_at
                .or(c.expires_at)
                .map(|at| tokyo(at, lang))
                .unwrap_or_default(),
            via: via_text(&t, &c.given_via),
            counter: counter_text(&t, c, &providers, lang),
        })
        .collect();
    let done = q
        .done
        .filter(|d| matches!(d.as_str(), "stopped" | "started" | "failed"))
        .map(|d| t.get(&format!("done-{d}")));
    render(&ServicesPage {
        ctx: ctx.portal_for("services-title", "/portal/services", &me),
        done,
        services: cards,
        past,
    })
}

#[derive(Deserialize)]
pub struct SwitchForm {
    service: String,
    purpose: String,
    /// `stop` or `start`.
    action: String,
    #[serde(default)]
    consent: Option<String>,
}

/// One purpose's switch: revoke at once, or grant again (a new consent, via the portal).
pub async fn switch(
    State(state): State<PortalState>,
    headers: HeaderMap,
    Form(form): Form<SwitchForm>,
) -> Result<Response, PortalError> {
    let me = signed_in(&state, &headers).await?;
    // A proxy may switch only what the resident entrusted to them.
    let service = renkei_domain::ServiceId::new(form.service.as_str())
        .map_err(|_| PortalError::BadRequest("service".into()))?;
    // Checked before it goes into the redirect's anchor: a `Location` cannot carry any byte.
    let purpose = renkei_domain::PurposeId::new(form.purpose.as_str())
        .map_err(|_| PortalError::BadRequest("purpose".into()))?;
    let anchor = format!("#p-{service}-{purpose}");
    if me
        .hub
        .require(ProxyPermission::ManageConsents, Some(&service))
        .is_err()
    {
        return Ok(Redirect::to(&format!("/portal/services?done=failed{anchor}")).into_response());
    }
    let result = match form.action.as_str() {
        "stop" => {
            let id: ConsentId = form
                .consent
                .as_deref()
                .unwrap_or_default()
                .parse()
                .map_err(|_| PortalError::BadRequest("consent id".into()))?;
            // The hub checks the consent itself against the session, whatever the form says.
            state
                .hub
                .revoke_consent(&me.hub, id)
                .await
                .map(|_| "stopped")
        }
        "start" => state
            .hub
            .grant_consent(
                me.id,
                GrantConsentBody {
                    service: form.service.clone(),
                    purpose: form.purpose.clone(),
                    valid_days: None,
                },
                me.hub.channel(ConsentChannel::Portal),
                me.hub.actor(),
            )
            .await
            .map(|_| "started"),
        _ => return Err(PortalError::BadRequest("action".into())),
    };
    let done = match result {
        Ok(done) => done,
        Err(renkei_hub::HubError::Unauthorized) => return Err(PortalError::SignedOut),
        Err(e) => {
            tracing::warn!(code = e.to_problem().code(), "a consent switch was refused");
            "failed"
        }
    };
    Ok(Redirect::to(&format!("/portal/services?done={done}{anchor}")).into_response())
}

/// The consent's signed receipt (JWS), as a file to keep.
pub async fn receipt(
    State(state): State<PortalState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, PortalError> {
    let me = signed_in(&state, &headers).await?;
    let id: ConsentId = id.parse().map_err(|_| PortalError::NotFound)?;
    let jws = state.hub.receipt(&me.hub, id).await?;
    let mut response = jws.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jose"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"consent-receipt-{id}.jws\""
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}
