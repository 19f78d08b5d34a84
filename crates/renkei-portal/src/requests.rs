//! Disclosure, correction, deletion and suspension requests (開示・訂正・削除・利用停止): the
//! resident files one and follows it (`/portal/requests`), a proxy may file for them when the
//! resident entrusted that, and operators answer them in the console (`/console/requests`).

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use renkei_domain::{Actor, ResidentRequest, ResidentRequestKind, ResidentRequestStatus};
use renkei_hub::accounts::ResidentRequestBody;
use renkei_hub::auth::ProxyPermission;
use renkei_hub::catalogue::ServiceView;
use serde::Deserialize;

use crate::PortalState;
use crate::ctx::Ctx;
use crate::error::PortalError;
use crate::extract::{Form, Path, Query};
use crate::i18n::{Lang, Tr};
use crate::time::{tokyo, tokyo_iso};

/// One request as either page shows it.
pub struct RequestRow {
    pub id: String,
    pub kind: String,
    pub service: String,
    pub details: String,
    pub status: String,
    pub status_key: String,
    pub filed_by: String,
    pub filed: String,
    pub filed_iso: String,
    pub updated: String,
    pub response: Option<String>,
    pub resident: String,
}

fn service_name(catalogue: &[ServiceView], id: Option<&str>, t: &Tr) -> String {
    match id {
        None => t.get("request-service-hub"),
        Some(id) => catalogue.iter().find(|s| s.id == id).map_or_else(
            || id.to_owned(),
            |s| t.pick(&s.name_ja, &s.name_en).to_owned(),
        ),
    }
}

fn actor_text(t: &Tr, actor: &Actor) -> String {
    match actor {
        Actor::Resident => t.get("request-by-resident"),
        Actor::Proxy { .. } => t.get("request-by-proxy"),
        Actor::Staff { staff_id } => t.arg("actor-staff", "staff", staff_id),
        Actor::ProviderStaff { .. } => t.get("actor-provider-staff"),
        Actor::Hub => t.get("actor-hub"),
    }
}

fn row(r: &ResidentRequest, catalogue: &[ServiceView], t: &Tr) -> RequestRow {
    let lang: Lang = t.lang;
    RequestRow {
        id: r.id.to_string(),
        kind: t.get(&format!("request-kind-{}", r.kind.as_str())),
        service: service_name(catalogue, r.service.as_ref().map(|s| s.as_str()), t),
        details: r.details.clone(),
        status: t.get(&format!(
            "request-status-{}",
            r.status.as_str().replace('_', "-")
        )),
        status_key: r.status.as_str().to_owned(),
        filed_by: actor_text(t, &r.filed_by),
        filed: tokyo(r.filed_at, lang),
        filed_iso: tokyo_iso(r.filed_at),
        updated: tokyo(r.updated_at, lang),
        response: r.response.clone().filter(|s| !s.is_empty()),
        resident: r.resident.to_string(),
    }
}

/// The kinds as the form offers them: value and words.
fn kinds(t: &Tr) -> Vec<(String, String)> {
    ResidentRequestKind::ALL
        .iter()
        .map(|k| {
            (
                k.as_str().to_owned(),
                t.get(&format!("request-kind-{}", k.as_str())),
            )
        })
        .collect()
}

// ---------------------------------------------------------------- the resident's side

#[derive(Template)]
#[template(path = "portal/requests.html")]
struct RequestsPage {
    ctx: Ctx,
    kinds: Vec<(String, String)>,
    services: Vec<(String, String)>,
    requests: Vec<RequestRow>,
    done: Option<String>,
    failed: bool,
    /// What the form starts with: a notice's link names its declaration and service.
    prefill: Prefill,
}

/// The form's starting values.
#[derive(Default)]
pub struct Prefill {
    pub service: String,
    pub details: String,
}

#[derive(Deserialize)]
pub struct DoneQuery {
    #[serde(default)]
    done: Option<String>,
    /// A request about a declared emergency's release (from a notice).
    #[serde(default)]
    declaration: Option<String>,
    #[serde(default)]
    service: Option<String>,
}

async fn requests_page(
    state: &PortalState,
    ctx: Ctx,
    headers: &HeaderMap,
    done: Option<String>,
    failed: bool,
    prefill: Prefill,
) -> Result<Response, PortalError> {
    let me = crate::resident::signed_in(state, headers).await?;
    if me.hub.require(ProxyPermission::FileRequests, None).is_err() {
        return Err(PortalError::NotEntrusted);
    }
    let t = ctx.t;
    let catalogue = state.hub.services().await?;
    let requests = state
        .hub
        .requests_of(&me.hub)
        .await?
        .iter()
        .map(|r| row(r, &catalogue, &t))
        .collect();
    // A proxy may file only about the services entrusted to them.
    let services = catalogue
        .iter()
        .filter(|s| s.status != "pending")
        .filter(|s| {
            renkei_domain::ServiceId::new(s.id.as_str()).is_ok_and(|id| {
                me.hub
                    .require(ProxyPermission::FileRequests, Some(&id))
                    .is_ok()
            })
        })
        .map(|s| (s.id.clone(), t.pick(&s.name_ja, &s.name_en).to_owned()))
        .collect();
    let page = RequestsPage {
        kinds: kinds(&t),
        ctx: ctx.portal_for("requests-title", "/portal/requests", &me),
        services,
        requests,
        done,
        failed,
        prefill,
    };
    let status = if failed {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((status, Html(page.render()?)).into_response())
}

pub async fn requests(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
    Query(q): Query<DoneQuery>,
) -> Result<Response, PortalError> {
    let done = q
        .done
        .filter(|d| d == "filed")
        .map(|_| ctx.t.get("request-filed"));
    // Only a well-formed id goes into the text: the query is anyone's to write.
    let prefill = match q
        .declaration
        .and_then(|d| d.parse::<renkei_domain::DeclarationId>().ok())
    {
        Some(d) => Prefill {
            service: q.service.unwrap_or_default(),
            details: ctx.t.arg("request-about-declaration", "id", &d),
        },
        None => Prefill::default(),
    };
    requests_page(&state, ctx, &headers, done, false, prefill).await
}

#[derive(Deserialize)]
pub struct FileForm {
    kind: String,
    #[serde(default)]
    service: String,
    #[serde(default)]
    details: String,
}

/// Files a request (the resident, or a proxy entrusted with requests).
pub async fn file(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(form): Form<FileForm>,
) -> Result<Response, PortalError> {
    let me = crate::resident::signed_in(&state, &headers).await?;
    let service = Some(form.service.trim().to_owned()).filter(|s| !s.is_empty());
    let body = ResidentRequestBody {
        kind: form.kind,
        service,
        details: form.details,
    };
    match state.hub.file_request(&me.hub, body).await {
        Ok(_) => Ok(Redirect::to("/portal/requests?done=filed").into_response()),
        Err(renkei_hub::HubError::Forbidden(_)) => Err(PortalError::NotEntrusted),
        Err(renkei_hub::HubError::Malformed(_) | renkei_hub::HubError::UnknownService(_)) => {
            requests_page(&state, ctx, &headers, None, true, Prefill::default()).await
        }
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------- the console's side

#[derive(Template)]
#[template(path = "console/requests.html")]
struct QueuePage {
    ctx: Ctx,
    open: Vec<RequestRow>,
    closed: Vec<RequestRow>,
    statuses: Vec<(String, String)>,
    message: Option<String>,
}

pub async fn queue(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
    Query(q): Query<DoneQuery>,
) -> Result<Response, PortalError> {
    let op = crate::console::signed_in(&state, &headers).await?;
    let t = ctx.t;
    let catalogue = state.hub.services().await?;
    let all = state.hub.resident_requests(&op.id, None).await?;
    let (open, closed): (Vec<_>, Vec<_>) = all.iter().partition(|r| {
        matches!(
            r.status,
            ResidentRequestStatus::Received | ResidentRequestStatus::InProgress
        )
    });
    let open = open.iter().map(|r| row(r, &catalogue, &t)).collect();
    // Answered ones, newest first.
    let closed = closed
        .iter()
        .rev()
        .map(|r| row(r, &catalogue, &t))
        .collect();
    let statuses = ResidentRequestStatus::ALL
        .iter()
        .map(|s| {
            (
                s.as_str().to_owned(),
                t.get(&format!("request-status-{}", s.as_str().replace('_', "-"))),
            )
        })
        .collect();
    let message = q
        .done
        .filter(|d| d == "answered")
        .map(|_| t.get("console-request-answered"));
    Ok(Html(
        QueuePage {
            ctx: ctx.console("console-requests-title", "/console/requests", true),
            open,
            closed,
            statuses,
            message,
        }
        .render()?,
    )
    .into_response())
}

#[derive(Deserialize)]
pub struct AnswerForm {
    status: String,
    #[serde(default)]
    response: String,
}

/// An operator sets a request's status and writes the city's answer.
pub async fn answer(
    State(state): State<PortalState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<AnswerForm>,
) -> Result<Response, PortalError> {
    let op = crate::console::signed_in(&state, &headers).await?;
    let id = id.parse().map_err(|_| PortalError::NotFound)?;
    let status = ResidentRequestStatus::parse(&form.status)
        .ok_or_else(|| PortalError::BadRequest("status".into()))?;
    let response = form.response.trim();
    if response.chars().count() > 4000 {
        return Err(PortalError::BadRequest("response".into()));
    }
    state
        .hub
        .answer_request(&op.id, id, status, Some(response).filter(|r| !r.is_empty()))
        .await?;
    Ok(Redirect::to("/console/requests?done=answered").into_response())
}
