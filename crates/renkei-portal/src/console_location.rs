//! The console's list of location-data deletions services owe after they ended (each
//! overdue one marked), and the form by which an operator records a service's confirmation
//! (its data-deletion certificate). Both go through the hub's own methods; the
//! confirmation is logged there.

use askama::Template;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use renkei_domain::{PurposeId, ServiceId};
use serde::Deserialize;

use crate::PortalState;
use crate::console::signed_in;
use crate::ctx::Ctx;
use crate::error::PortalError;
use crate::extract::Form;
use crate::resident::render;
use crate::time::tokyo;

pub struct DeletionRow {
    pub service: String,
    pub purpose: String,
    pub version: u32,
    pub ended: String,
    pub due: String,
    pub confirmed: Option<String>,
    pub overdue: bool,
}

#[derive(Template)]
#[template(path = "console/location_deletions.html")]
struct DeletionsPage {
    ctx: Ctx,
    rows: Vec<DeletionRow>,
    overdue: usize,
}

pub async fn deletions(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
) -> Result<Response, PortalError> {
    signed_in(&state, &headers).await?;
    let lang = ctx.lang;
    let now = Utc::now();
    let rows: Vec<DeletionRow> = state
        .hub
        .location_deletions()
        .await?
        .into_iter()
        .map(|d| DeletionRow {
            overdue: d.is_overdue(now),
            service: d.service.to_string(),
            purpose: d.purpose.to_string(),
            version: d.purpose_version,
            ended: tokyo(d.ended_at, lang),
            due: tokyo(d.due_at, lang),
            confirmed: d.confirmed_at.map(|at| tokyo(at, lang)),
        })
        .collect();
    let overdue = rows.iter().filter(|r| r.overdue).count();
    render(&DeletionsPage {
        ctx: ctx.console(
            "console-location-deletions-title",
            "/console/location-deletions",
            true,
        ),
        rows,
        overdue,
    })
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    service: String,
    purpose: String,
    version: u32,
}

/// Records that the service confirmed one deletion.
pub async fn confirm(
    State(state): State<PortalState>,
    headers: HeaderMap,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, PortalError> {
    let op = signed_in(&state, &headers).await?;
    let service =
        ServiceId::new(form.service).map_err(|_| PortalError::BadRequest("service".into()))?;
    let purpose =
        PurposeId::new(form.purpose).map_err(|_| PortalError::BadRequest("purpose".into()))?;
    state
        .hub
        .confirm_location_deletion(&op.id, &service, &purpose, form.version)
        .await?;
    Ok(Redirect::to("/console/location-deletions").into_response())
}
