//! The console's declared emergencies (`/console/declarations`): declare one, and the steps
//! on each (confirm, propose a renewal, confirm it, end), through the hub's own methods as
//! the API's are, so the two-person rule and the 72 hours are the domain's and every step is
//! logged there. The page shows who took each step, so a second operator sees what they are
//! asked to confirm.

use std::collections::BTreeSet;

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Asia::Tokyo;
use renkei_domain::{Declaration, DeclarationId, DeclarationState, EmergencyLegalBasis};
use renkei_hub::HubError;
use renkei_hub::emergency::DeclarationBody;
use serde::Deserialize;

use crate::PortalState;
use crate::console::signed_in;
use crate::console_providers::CategoryChoice;
use crate::ctx::Ctx;
use crate::declarations::{DeclarationRow, declaration_row};
use crate::error::PortalError;
use crate::extract::{Form, Path, Query};
use crate::time::{parse_tokyo_local, tokyo};

/// Who took a declaration's steps, and what this operator may do next.
pub struct ConsoleSteps {
    pub declared_by: String,
    pub confirmed_by: Option<String>,
    pub renewal_by: Option<String>,
    pub ended_by: Option<String>,
    pub can_confirm: bool,
    pub can_propose: bool,
    pub can_confirm_renewal: bool,
    pub can_end: bool,
    /// The renewal form's default: a day past the current end, at most 72 hours from now.
    pub renew_default: String,
}

/// A choice of the declare form (legal basis or responder service).
pub struct Choice {
    pub id: String,
    pub name: String,
}

#[derive(Template)]
#[template(path = "console/declarations.html")]
struct DeclarationsPage {
    ctx: Ctx,
    declarations: Vec<(DeclarationRow, ConsoleSteps)>,
    bases: Vec<Choice>,
    services: Vec<Choice>,
    categories: Vec<CategoryChoice>,
    starts_default: String,
    ends_default: String,
    error: Option<String>,
    message: Option<String>,
}

/// A `datetime-local` value in Tokyo time.
fn local(at: DateTime<Utc>) -> String {
    at.with_timezone(&Tokyo)
        .format("%Y-%m-%dT%H:%M")
        .to_string()
}

async fn page(
    state: &PortalState,
    ctx: Ctx,
    me: &renkei_domain::OperatorId,
    error: Option<String>,
    message: Option<String>,
) -> Result<Response, PortalError> {
    let t = ctx.t;
    let now = Utc::now();
    let catalogue = state.hub.services().await?;
    let vocabulary = state.hub.categories().await?;
    let declarations = state
        .hub
        .declarations(100)
        .await?
        .iter()
        .map(|d| console_row(d, me, now, &catalogue, &vocabulary, &t))
        .collect();
    let bases = EmergencyLegalBasis::ALL
        .iter()
        .map(|b| Choice {
            id: b.as_str().to_owned(),
            name: t.pick(b.citation_ja(), b.citation_en()).to_owned(),
        })
        .collect();
    let services = catalogue
        .iter()
        .filter(|s| s.status == "approved")
        .map(|s| Choice {
            id: s.id.clone(),
            name: t.pick(&s.name_ja, &s.name_en).to_owned(),
        })
        .collect();
    let categories = vocabulary
        .into_iter()
        .map(|c| CategoryChoice {
            checked: false,
            name: t.pick(&c.name_ja, &c.name_en).to_owned(),
            special_care: c.special_care,
            id: c.id,
        })
        .collect();
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = DeclarationsPage {
        ctx: ctx.console("console-declarations-title", "/console/declarations", true),
        declarations,
        bases,
        services,
        categories,
        starts_default: local(now),
        ends_default: local(now + TimeDelta::hours(24)),
        error,
        message,
    };
    Ok((status, Html(page.render()?)).into_response())
}

fn console_row(
    d: &Declaration,
    me: &renkei_domain::OperatorId,
    now: DateTime<Utc>,
    catalogue: &[renkei_hub::catalogue::ServiceView],
    vocabulary: &[renkei_hub::catalogue::CategoryView],
    t: &crate::i18n::Tr,
) -> (DeclarationRow, ConsoleSteps) {
    let state = d.state_at(now);
    let running = matches!(
        state,
        DeclarationState::Scheduled | DeclarationState::InForce
    );
    let step = |s: &renkei_domain::emergency::Step| {
        t.arg2(
            "console-declaration-step",
            ("operator", &s.by),
            ("at", &tokyo(s.at, t.lang)),
        )
    };
    let renew_to = (d.ends_at + TimeDelta::hours(24)).min(now + TimeDelta::hours(72));
    let row = declaration_row(d, catalogue, vocabulary, t, now);
    let steps = ConsoleSteps {
        declared_by: step(&d.declared),
        confirmed_by: d.confirmed.as_ref().map(step),
        renewal_by: d.renewal.as_ref().map(|r| step(&r.proposed)),
        ended_by: d.ended.as_ref().map(step),
        // The domain refuses the declarer anyway; the page does not offer it to them.
        can_confirm: state == DeclarationState::Pending && d.declared.by != *me,
        can_propose: running && d.renewal.is_none(),
        can_confirm_renewal: running && d.renewal.as_ref().is_some_and(|r| r.proposed.by != *me),
        can_end: state != DeclarationState::Ended,
        renew_default: local(renew_to),
    };
    (row, steps)
}

/// What a refused step or declaration says, in the page's language; other errors propagate.
fn refusal(e: HubError, t: &crate::i18n::Tr) -> Result<String, PortalError> {
    match e {
        HubError::DeclarationRefused { reason, .. } => Ok(t.get_or(
            &format!("declaration-refused-{reason}"),
            "declaration-refused-other",
        )),
        HubError::Malformed(_)
        | HubError::InvalidField { .. }
        | HubError::UnknownService(_)
        | HubError::UnknownCategory(_) => Ok(e.to_string()),
        other => Err(other.into()),
    }
}

#[derive(Deserialize)]
pub struct DoneQuery {
    #[serde(default)]
    done: Option<String>,
}

/// Every declaration with its steps, and the form to declare one.
pub async fn declarations(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
    Query(q): Query<DoneQuery>,
) -> Result<Response, PortalError> {
    let op = signed_in(&state, &headers).await?;
    let message = q
        .done
        .filter(|d| ["declared", "confirmed", "renewal", "renewed", "ended"].contains(&d.as_str()))
        .map(|d| ctx.t.get(&format!("console-declaration-done-{d}")));
    page(&state, ctx, &op.id, None, message).await
}

/// Declares an emergency; it releases nothing until a second operator confirms it.
pub async fn declare(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, PortalError> {
    let op = signed_in(&state, &headers).await?;
    let mut body = DeclarationBody {
        reason: String::new(),
        legal_basis: String::new(),
        categories: Vec::new(),
        services: Vec::new(),
        area: Vec::new(),
        starts_at: None,
        ends_at: Utc::now(),
    };
    let mut ends = None;
    for (name, value) in fields {
        match name.as_str() {
            "reason" => body.reason = value,
            "legal_basis" => body.legal_basis = value,
            "category" => body.categories.push(value),
            "service" => body.services.push(value),
            // Codes separated by spaces, commas or new lines.
            "area" => body.area.extend(
                value
                    .split(|c: char| c.is_whitespace() || c == ',' || c == '、')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
            ),
            "starts_at" if !value.trim().is_empty() => {
                body.starts_at = parse_tokyo_local(value.trim());
            }
            "ends_at" => ends = parse_tokyo_local(value.trim()),
            _ => {}
        }
    }
    let Some(ends) = ends else {
        let why = ctx.t.get("console-declaration-bad-time");
        return page(&state, ctx, &op.id, Some(why), None).await;
    };
    body.ends_at = ends;
    let unique = |v: &mut Vec<String>| {
        let set: BTreeSet<String> = v.drain(..).collect();
        v.extend(set);
    };
    unique(&mut body.categories);
    unique(&mut body.services);
    match state.hub.declare_emergency(&op.id, body).await {
        Ok(_) => Ok(Redirect::to("/console/declarations?done=declared").into_response()),
        Err(e) => {
            let why = refusal(e, &ctx.t)?;
            page(&state, ctx, &op.id, Some(why), None).await
        }
    }
}

fn declaration_id(id: &str) -> Result<DeclarationId, PortalError> {
    id.parse().map_err(|_| PortalError::NotFound)
}

/// What came of a step: back to the list saying so, or the list saying why not (422).
async fn after_step(
    state: &PortalState,
    ctx: Ctx,
    op: &renkei_domain::OperatorId,
    result: Result<Declaration, HubError>,
    done: &str,
) -> Result<Response, PortalError> {
    match result {
        Ok(_) => Ok(Redirect::to(&format!("/console/declarations?done={done}")).into_response()),
        Err(e) => {
            let why = refusal(e, &ctx.t)?;
            page(state, ctx, op, Some(why), None).await
        }
    }
}

/// The second operator's step.
pub async fn confirm(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, PortalError> {
    let op = signed_in(&state, &headers).await?;
    let result = state
        .hub
        .confirm_emergency(&op.id, declaration_id(&id)?)
        .await;
    after_step(&state, ctx, &op.id, result, "confirmed").await
}

#[derive(Deserialize)]
pub struct RenewalForm {
    ends_at: String,
}

/// Proposes a later end.
pub async fn propose_renewal(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<RenewalForm>,
) -> Result<Response, PortalError> {
    let op = signed_in(&state, &headers).await?;
    let id = declaration_id(&id)?;
    let Some(ends_at) = parse_tokyo_local(form.ends_at.trim()) else {
        let why = ctx.t.get("console-declaration-bad-time");
        return page(&state, ctx, &op.id, Some(why), None).await;
    };
    let result = state
        .hub
        .propose_emergency_renewal(&op.id, id, ends_at)
        .await;
    after_step(&state, ctx, &op.id, result, "renewal").await
}

/// Confirms the renewal waiting (a second operator).
pub async fn confirm_renewal(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, PortalError> {
    let op = signed_in(&state, &headers).await?;
    let result = state
        .hub
        .confirm_emergency_renewal(&op.id, declaration_id(&id)?)
        .await;
    after_step(&state, ctx, &op.id, result, "renewed").await
}

/// Ends it now (any operator); its residents are told.
pub async fn end(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, PortalError> {
    let op = signed_in(&state, &headers).await?;
    let result = state.hub.end_emergency(&op.id, declaration_id(&id)?).await;
    after_step(&state, ctx, &op.id, result, "ended").await
}
