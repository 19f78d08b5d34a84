//! Declared emergencies as residents and the public see them (`/portal/declarations`): those
//! in force or coming first, then past ones, each with its reason, legal basis, what it
//! releases to whom, where and when. Public, like `GET /v1/declarations`: no personal data,
//! and not which operators took its steps. The console's pages (`console_emergency.rs`) show
//! the same rows with the steps.

use askama::Template;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, Utc};
use renkei_domain::{Declaration, DeclarationId, DeclarationState};
use renkei_hub::catalogue::{CategoryView, ServiceView};

use crate::PortalState;
use crate::ctx::Ctx;
use crate::error::PortalError;
use crate::extract::Path;
use crate::i18n::Tr;
use crate::resident::{CategoryChip, chips, render};
use crate::session::resident;
use crate::time::{tokyo, tokyo_iso};

/// How many declarations the pages list.
const LISTED: u32 = 100;

/// One declaration as a page shows it.
pub struct DeclarationRow {
    pub id: String,
    /// `pending`, `scheduled`, `in_force` or `ended`.
    pub state_key: &'static str,
    pub state: String,
    pub reason: String,
    pub legal_basis: String,
    pub categories: Vec<CategoryChip>,
    pub services: Vec<String>,
    pub area: String,
    pub starts: String,
    pub starts_iso: String,
    pub ends: String,
    pub ends_iso: String,
    /// When a renewal waits for a second operator: its end.
    pub renewal: Option<String>,
    /// Ended early: when.
    pub ended: Option<String>,
}

impl DeclarationRow {
    /// Whether it releases now, or will once its start comes.
    pub fn active(&self) -> bool {
        matches!(self.state_key, "in_force" | "scheduled")
    }
}

/// The name of service `id` in the page's language, or the id.
pub fn service_label(catalogue: &[ServiceView], id: &str, t: &Tr) -> String {
    catalogue.iter().find(|s| s.id == id).map_or_else(
        || id.to_owned(),
        |s| t.pick(&s.name_ja, &s.name_en).to_owned(),
    )
}

pub fn declaration_row(
    d: &Declaration,
    catalogue: &[ServiceView],
    vocabulary: &[CategoryView],
    t: &Tr,
    now: DateTime<Utc>,
) -> DeclarationRow {
    let lang = t.lang;
    let state = d.state_at(now);
    let categories: Vec<String> = d.categories.iter().map(ToString::to_string).collect();
    DeclarationRow {
        id: d.id.to_string(),
        state_key: state.as_str(),
        state: t.get(&format!(
            "declaration-state-{}",
            state.as_str().replace('_', "-")
        )),
        reason: d.reason.clone(),
        legal_basis: t
            .pick(d.legal_basis.citation_ja(), d.legal_basis.citation_en())
            .to_owned(),
        categories: chips(&categories, vocabulary, lang),
        services: d
            .services
            .iter()
            .map(|s| service_label(catalogue, s.as_str(), t))
            .collect(),
        area: d
            .area
            .codes()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" "),
        starts: tokyo(d.starts_at, lang),
        starts_iso: tokyo_iso(d.starts_at),
        ends: tokyo(d.ends_at, lang),
        ends_iso: tokyo_iso(d.ends_at),
        renewal: d.renewal.as_ref().map(|r| tokyo(r.ends_at, lang)),
        ended: d.ended.as_ref().map(|s| tokyo(s.at, lang)),
    }
}

/// The declarations residents are shown on their start page: in force or scheduled.
pub async fn active_rows(state: &PortalState, t: &Tr) -> Result<Vec<DeclarationRow>, PortalError> {
    let now = Utc::now();
    let declarations = state.hub.declarations(LISTED).await?;
    let active: Vec<&Declaration> = declarations
        .iter()
        .filter(|d| {
            matches!(
                d.state_at(now),
                DeclarationState::InForce | DeclarationState::Scheduled
            )
        })
        .collect();
    if active.is_empty() {
        return Ok(Vec::new());
    }
    let catalogue = state.hub.services().await?;
    let vocabulary = state.hub.categories().await?;
    Ok(active
        .into_iter()
        .map(|d| declaration_row(d, &catalogue, &vocabulary, t, now))
        .collect())
}

#[derive(Template)]
#[template(path = "portal/declarations.html")]
struct DeclarationsPage {
    ctx: Ctx,
    active: Vec<DeclarationRow>,
    past: Vec<DeclarationRow>,
    /// One declaration's page rather than the list.
    single: bool,
}

/// The page's context: the portal's navigation when a resident is signed in.
async fn page_ctx(state: &PortalState, ctx: Ctx, headers: &HeaderMap) -> Ctx {
    match resident(&state.hub, headers).await {
        Some(me) => ctx.portal_for("declarations-title", "/portal/declarations", &me),
        None => ctx.portal("declarations-title", "/portal/declarations", false),
    }
}

fn split(rows: Vec<DeclarationRow>) -> (Vec<DeclarationRow>, Vec<DeclarationRow>) {
    // Pending ones release nothing and may be withdrawn: the public sees them once confirmed.
    rows.into_iter()
        .filter(|r| r.state_key != "pending")
        .partition(DeclarationRow::active)
}

/// Declared emergencies: those in force or scheduled, then past ones.
pub async fn declarations(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
) -> Result<Response, PortalError> {
    let now = Utc::now();
    let catalogue = state.hub.services().await?;
    let vocabulary = state.hub.categories().await?;
    let rows = state
        .hub
        .declarations(LISTED)
        .await?
        .iter()
        .map(|d| declaration_row(d, &catalogue, &vocabulary, &ctx.t, now))
        .collect();
    let (active, past) = split(rows);
    render(&DeclarationsPage {
        ctx: page_ctx(&state, ctx, &headers).await,
        active,
        past,
        single: false,
    })
}

/// One declaration (the history's and notices' links lead here).
pub async fn declaration(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, PortalError> {
    let id: DeclarationId = id.parse().map_err(|_| PortalError::NotFound)?;
    let d = state.hub.declaration(id).await?;
    let catalogue = state.hub.services().await?;
    let vocabulary = state.hub.categories().await?;
    let row = declaration_row(&d, &catalogue, &vocabulary, &ctx.t, Utc::now());
    if row.state_key == "pending" {
        return Err(PortalError::NotFound);
    }
    let (active, past) = split(vec![row]);
    render(&DeclarationsPage {
        ctx: page_ctx(&state, ctx, &headers).await,
        active,
        past,
        single: true,
    })
}
