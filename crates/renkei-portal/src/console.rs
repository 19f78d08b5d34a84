//! The operator console: services and their status, the review of a service waiting for
//! approval (declared purposes, categories, privacy-impact answers and the risk checklist of
//! `renkei_domain::review`, each flag to be ticked before approval), the category
//! vocabulary and suspension; providers and adding a category are `console_providers.rs`,
//! the audit search is `audit.rs`.

use std::collections::BTreeSet;

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use renkei_domain::review::{RiskFlag, unacknowledged};
use renkei_domain::{CategoryId, ServiceId};
use renkei_hub::catalogue::CategoryView;
use serde::Deserialize;

use crate::PortalState;
use crate::ctx::Ctx;
use crate::error::PortalError;
use crate::extract::{Form, Path, Query};
use crate::i18n::{Lang, Tr};
use crate::resident::{CategoryChip, chips};
use crate::security::{OPERATOR_COOKIE, set_cookie};
use crate::session::{OPERATOR_SESSION_SECONDS, OperatorSession, operator, resident};

fn render(t: &impl Template) -> Result<Response, PortalError> {
    Ok(Html(t.render()?).into_response())
}

pub async fn signed_in(
    state: &PortalState,
    headers: &HeaderMap,
) -> Result<OperatorSession, PortalError> {
    operator(&state.hub, headers)
        .await
        .ok_or(PortalError::OperatorSignedOut)
}

// ---------------------------------------------------------------- sign-in

#[derive(Template)]
#[template(path = "console/sign_in.html")]
struct SignInPage {
    ctx: Ctx,
    demo: bool,
    error: bool,
}

#[derive(Deserialize)]
pub struct SignInQuery {
    #[serde(default)]
    error: Option<String>,
}

pub async fn sign_in_page(
    State(state): State<PortalState>,
    ctx: Ctx,
    Query(q): Query<SignInQuery>,
) -> Result<Response, PortalError> {
    render(&SignInPage {
        ctx: ctx.console("console-sign-in-title", "", false),
        demo: state.hub.config().demo_mode,
        error: q.error.is_some(),
    })
}

#[derive(Deserialize)]
pub struct DemoOperatorForm {
    identity: String,
}

/// The console opens for an identity that has an operator account: the operator token comes
/// from the hub (`Hub::operator_token`) for the signed-in identity.
async fn operator_cookie(
    state: &PortalState,
    resident_token: &str,
) -> Result<Response, PortalError> {
    let session = state.hub.resident_session(resident_token).await?;
    let token = match state.hub.operator_token(&session).await {
        Ok(token) => token,
        Err(_) => return Ok(Redirect::to("/console/sign-in?error=1").into_response()),
    };
    // Counter staff have the counter and nothing else of the console.
    let home = match state.hub.operator_of(session.resident).await? {
        Some(o) if o.role == renkei_domain::OperatorRole::CounterStaff => "/console/counter",
        _ => "/console",
    };
    let mut response = Redirect::to(home).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(OPERATOR_COOKIE, &token, Some(OPERATOR_SESSION_SECONDS)),
    );
    Ok(response)
}

/// Opens the console for the identity signed in to the portal (passkey), if it is an operator.
pub async fn sign_in_with_portal_session(
    State(state): State<PortalState>,
    headers: HeaderMap,
) -> Result<Response, PortalError> {
    let Some(me) = resident(&state.hub, &headers).await else {
        return Ok(Redirect::to("/console/sign-in?error=1").into_response());
    };
    operator_cookie(&state, &me.token).await
}

/// Demo mode only: sign in as an operator identity of the demo town, without proof.
pub async fn demo_sign_in(
    State(state): State<PortalState>,
    Form(form): Form<DemoOperatorForm>,
) -> Result<Response, PortalError> {
    if !state.hub.config().demo_mode {
        return Err(PortalError::NotFound);
    }
    let Ok(identity) = form.identity.trim().parse::<renkei_domain::ResidentId>() else {
        return Ok(Redirect::to("/console/sign-in?error=1").into_response());
    };
    let Some(token) = crate::session::demo_session(&state.hub, identity).await? else {
        return Ok(Redirect::to("/console/sign-in?error=1").into_response());
    };
    operator_cookie(&state, &token).await
}

pub async fn sign_out() -> Response {
    let mut response = Redirect::to("/console/sign-in").into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie(OPERATOR_COOKIE, "", Some(0)));
    response
}

// ---------------------------------------------------------------- services

pub struct ServiceRow {
    pub id: String,
    pub name: String,
    pub status: String,
    pub status_class: String,
    pub purposes: usize,
    pub pending: bool,
}

#[derive(Template)]
#[template(path = "console/services.html")]
struct ServicesPage {
    ctx: Ctx,
    operator: String,
    pending: Vec<ServiceRow>,
    others: Vec<ServiceRow>,
}

fn status_text(t: &Tr, status: &str) -> String {
    t.get_or(&format!("status-{status}"), "status-other")
}

pub async fn services(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
) -> Result<Response, PortalError> {
    let op = signed_in(&state, &headers).await?;
    let t = ctx.t;
    let rows: Vec<ServiceRow> = state
        .hub
        .services()
        .await?
        .iter()
        .map(|s| ServiceRow {
            id: s.id.clone(),
            name: t.pick(&s.name_ja, &s.name_en).to_owned(),
            status: status_text(&t, &s.status),
            status_class: s.status.clone(),
            purposes: s.purposes.len(),
            pending: s.status == "pending",
        })
        .collect();
    let (pending, others) = rows.into_iter().partition(|r| r.pending);
    render(&ServicesPage {
        ctx: ctx.console("console-services-title", "/console", true),
        operator: op.id.to_string(),
        pending,
        others,
    })
}

// ---------------------------------------------------------------- review

pub struct PurposeDetail {
    pub title: String,
    pub description: String,
    pub categories: Vec<CategoryChip>,
    pub retention: String,
    pub basis: String,
    pub version: u32,
}

pub struct FlagRow {
    pub key: String,
    pub text: String,
    pub checked: bool,
}

#[derive(Template)]
#[template(path = "console/review.html")]
struct ReviewPage {
    ctx: Ctx,
    id: String,
    name: String,
    status: String,
    pending: bool,
    approved: bool,
    purposes: Vec<PurposeDetail>,
    flags: Vec<FlagRow>,
    /// Privacy-impact answers: the question (in words when known) and the answer.
    pia: Vec<(String, String)>,
    /// What the service registered besides its purposes: the sector that decides its
    /// pairwise subjects, the URLs the hub and browsers will call, the key data is sealed to.
    sector: String,
    webhook_url: Option<String>,
    redirect_uris: Vec<String>,
    hpke_public_key: String,
    /// Whom residents contact about their data, as every receipt will say; `None` for a
    /// service registered before the hub asked.
    controller: Option<ControllerRow>,
    missing: bool,
    message: Option<String>,
}

/// The controller's contact details, as the review shows them.
struct ControllerRow {
    contact: String,
    /// In Japanese order: 〒 postal code, prefecture, municipality, street (country).
    address: String,
    email: String,
    phone: String,
}

impl From<renkei_domain::ControllerContact> for ControllerRow {
    fn from(c: renkei_domain::ControllerContact) -> Self {
        let a = c.address;
        Self {
            contact: c.contact,
            address: format!(
                "〒{} {}{}{} ({})",
                a.postal_code, a.region, a.locality, a.street_address, a.country
            ),
            email: c.email,
            phone: c.phone,
        }
    }
}

/// A flag in words, for the checklist.
pub fn flag_text(
    flag: &RiskFlag,
    vocabulary: &[CategoryView],
    titles: &std::collections::BTreeMap<String, String>,
    t: &Tr,
) -> String {
    let title = flag
        .purpose()
        .map(|p| {
            titles
                .get(p.as_str())
                .cloned()
                .unwrap_or_else(|| p.to_string())
        })
        .unwrap_or_default();
    let names = |ids: &BTreeSet<CategoryId>| {
        let ids: Vec<String> = ids.iter().map(|c| c.to_string()).collect();
        chips(&ids, vocabulary, t.lang)
            .into_iter()
            .map(|c| c.name)
            .collect::<Vec<_>>()
            .join(t.pick("、", ", "))
    };
    match flag {
        RiskFlag::SpecialCare {
            purpose: _,
            categories,
        } => t.arg2(
            "flag-special-care",
            ("purpose", &title),
            ("categories", &names(categories)),
        ),
        RiskFlag::LocationForMarketing {
            purpose: _,
            categories,
            ..
        } => t.arg2(
            "flag-location-marketing",
            ("purpose", &title),
            ("categories", &names(categories)),
        ),
        RiskFlag::LocationRetention {
            categories,
            precision,
            retention_days,
            limit_days,
            ..
        } => t.args(
            "flag-location-retention",
            &[
                ("purpose", &title),
                ("categories", &names(categories)),
                ("precision", &precision.as_str()),
                ("days", &format!("{retention_days} / {limit_days}")),
            ],
        ),
        RiskFlag::LongRetention {
            purpose: _,
            retention_days,
            limit_days,
            ..
        } => {
            let days = format!("{retention_days} / {limit_days}");
            t.arg2("flag-long-retention", ("purpose", &title), ("days", &days))
        }
        RiskFlag::UnknownCategory {
            purpose: _,
            categories,
        } => t.arg2(
            "flag-unknown-category",
            ("purpose", &title),
            ("categories", &names(categories)),
        ),
        RiskFlag::SharedSector { sector, services } => {
            let ids: Vec<&str> = services.iter().map(ServiceId::as_str).collect();
            t.arg2(
                "flag-shared-sector",
                ("sector", sector),
                ("services", &ids.join(", ")),
            )
        }
    }
}

async fn review_page(
    state: &PortalState,
    ctx: Ctx,
    id: &str,
    acknowledged: &BTreeSet<String>,
    missing: bool,
    message: Option<String>,
) -> Result<Response, PortalError> {
    let t = ctx.t;
    let lang: Lang = ctx.lang;
    let catalogue = state.hub.services().await?;
    let service = catalogue
        .iter()
        .find(|s| s.id == id)
        .ok_or(PortalError::NotFound)?;
    let vocabulary = state.hub.categories().await?;
    let service_id = ServiceId::new(service.id.as_str()).map_err(|_| PortalError::NotFound)?;
    let titles: std::collections::BTreeMap<String, String> = service
        .purposes
        .iter()
        .map(|p| (p.id.clone(), lang.pick(&p.title_ja, &p.title_en).to_owned()))
        .collect();
    let flags = state
        .hub
        .review_service(&service_id)
        .await?
        .iter()
        .map(|f| FlagRow {
            key: f.key(),
            text: flag_text(f, &vocabulary, &titles, &t),
            checked: acknowledged.contains(&f.key()),
        })
        .collect();
    let details = service
        .purposes
        .iter()
        .map(|p| PurposeDetail {
            title: lang.pick(&p.title_ja, &p.title_en).to_owned(),
            description: lang.pick(&p.description_ja, &p.description_en).to_owned(),
            categories: chips(&p.categories, &vocabulary, lang),
            retention: t.count("retention-days", "days", p.retention_days as usize),
            basis: t.get_or(
                &format!("legal-basis-{}", p.legal_basis.replace('_', "-")),
                "basis-other",
            ),
            version: p.version,
        })
        .collect();
    let pia = state
        .hub
        .privacy_impact(&service_id)
        .await?
        .into_iter()
        .map(|(q, a)| {
            // Questions the console knows are worded; others show as the service sent them.
            let key = format!("pia-q-{q}");
            (if t.has(&key) { t.get(&key) } else { q }, a)
        })
        .collect();
    let (registered, client) = state.hub.service_registration(&service_id).await?;
    let page = ReviewPage {
        pia,
        sector: registered.sector,
        webhook_url: registered.webhook_url,
        controller: client
            .as_ref()
            .and_then(|c| c.controller.clone())
            .map(ControllerRow::from),
        redirect_uris: client.map(|c| c.redirect_uris).unwrap_or_default(),
        hpke_public_key: registered.hpke_public_key,
        ctx: ctx.console("console-review-title", "/console", true),
        id: service.id.clone(),
        name: lang.pick(&service.name_ja, &service.name_en).to_owned(),
        status: status_text(&t, &service.status),
        pending: service.status == "pending",
        approved: service.status == "approved",
        purposes: details,
        flags,
        missing,
        message,
    };
    let status = if missing {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((status, Html(page.render()?)).into_response())
}

pub async fn service(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, PortalError> {
    signed_in(&state, &headers).await?;
    review_page(&state, ctx, &id, &BTreeSet::new(), false, None).await
}

/// Approval: refused (422, the page again with what is missing) until every risk flag of the
/// service's current purposes is ticked.
pub async fn approve(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, PortalError> {
    let op = signed_in(&state, &headers).await?;
    let acknowledged: BTreeSet<String> = form
        .into_iter()
        .filter(|(k, _)| k == "ack")
        .map(|(_, v)| v)
        .collect();
    let service = ServiceId::new(id.as_str()).map_err(|_| PortalError::NotFound)?;
    // The hub refuses approval while a flag is unticked; ask it which ones first so the page
    // can say what is missing.
    let flags = state.hub.review_service(&service).await?;
    if !unacknowledged(&flags, &acknowledged).is_empty() {
        return review_page(&state, ctx, &id, &acknowledged, true, None).await;
    }
    state
        .hub
        .approve_service(&op.id, &service, &acknowledged)
        .await?;
    let message = Some(ctx.t.get("console-approved"));
    review_page(&state, ctx, &id, &acknowledged, false, message).await
}

/// Suspends a service at once: every token, code and data request of it stops.
pub async fn suspend(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, PortalError> {
    let op = signed_in(&state, &headers).await?;
    let service = ServiceId::new(id.as_str()).map_err(|_| PortalError::NotFound)?;
    state.hub.suspend_service(&op.id, &service).await?;
    let message = Some(ctx.t.get("console-suspended"));
    review_page(&state, ctx, &id, &BTreeSet::new(), false, message).await
}

// ---------------------------------------------------------------- vocabulary

pub struct CategoryRow {
    pub id: String,
    pub name_ja: String,
    pub name_en: String,
    pub special_care: bool,
}

#[derive(Template)]
#[template(path = "console/categories.html")]
struct CategoriesPage {
    ctx: Ctx,
    categories: Vec<CategoryRow>,
    error: Option<String>,
    message: Option<String>,
}

pub async fn categories(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
) -> Result<Response, PortalError> {
    signed_in(&state, &headers).await?;
    categories_page(&state, ctx, None, None).await
}

/// The vocabulary and the form that adds to it, saying what came of the last addition
/// (422 when it was refused).
pub async fn categories_page(
    state: &PortalState,
    ctx: Ctx,
    error: Option<String>,
    message: Option<String>,
) -> Result<Response, PortalError> {
    let categories = state
        .hub
        .categories()
        .await?
        .into_iter()
        .map(|c| CategoryRow {
            id: c.id,
            name_ja: c.name_ja,
            name_en: c.name_en,
            special_care: c.special_care,
        })
        .collect();
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = CategoriesPage {
        ctx: ctx.console("console-categories-title", "/console/categories", true),
        categories,
        error,
        message,
    };
    Ok((status, Html(page.render()?)).into_response())
}
