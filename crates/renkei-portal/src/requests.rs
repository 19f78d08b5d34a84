//! Disclosure, correction, deletion and suspension requests (開示・訂正・削除・利用停止): the
//! resident files one and follows it (`/portal/requests`): its due date, and each service's
//! and provider's answer when it was routed to them; a proxy may file for them when the
//! resident entrusted that; operators answer them in the console (`/console/requests`), see
//! the overdue ones flagged with a summary, and extend a due date with a reason.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use std::collections::HashMap;

use chrono::Utc;
use renkei_domain::{
    Actor, RequestRecipient, ResidentRequest, ResidentRequestId, ResidentRequestKind,
    ResidentRequestStatus,
};
use renkei_hub::accounts::ResidentRequestBody;
use renkei_hub::auth::ProxyPermission;
use renkei_hub::catalogue::{CategoryView, ServiceView};
use serde::Deserialize;

use crate::PortalState;
use crate::ctx::Ctx;
use crate::error::PortalError;
use crate::extract::{Form, Path, Query};
use crate::i18n::{Lang, Tr};
use crate::time::{tokyo, tokyo_date, tokyo_iso};

/// One recipient of a routed request and its answer, as both pages show it.
pub struct RecipientRow {
    pub name: String,
    /// `service` or `provider`.
    pub kind: String,
    pub kind_text: String,
    /// `pending`, `done`, `refused` or `partly`.
    pub answer: String,
    pub answer_text: String,
    pub note: Option<String>,
    pub answered: Option<String>,
}

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
    /// The category it names, in words.
    pub category: Option<String>,
    pub due: String,
    pub due_iso: String,
    pub overdue: bool,
    pub extension_reason: Option<String>,
    pub recipients: Vec<RecipientRow>,
}

/// What the pages need to name things: the services and the categories.
struct Names {
    services: Vec<ServiceView>,
    categories: Vec<CategoryView>,
    providers: HashMap<String, (String, String)>,
}

impl Names {
    async fn load(state: &PortalState) -> Result<Self, PortalError> {
        let providers = state
            .hub
            .providers()
            .await?
            .into_iter()
            .map(|p| (p.id, (p.name_ja, p.name_en)))
            .collect();
        Ok(Self {
            services: state.hub.services().await?,
            categories: state.hub.categories().await?,
            providers,
        })
    }

    fn category(&self, id: &str, t: &Tr) -> String {
        self.categories.iter().find(|c| c.id == id).map_or_else(
            || id.to_owned(),
            |c| t.pick(&c.name_ja, &c.name_en).to_owned(),
        )
    }

    fn recipient(&self, r: &RequestRecipient, t: &Tr) -> RecipientRow {
        let id = r.recipient.id();
        let name = match r.recipient {
            renkei_domain::Recipient::Service(_) => service_name(&self.services, Some(id), t),
            renkei_domain::Recipient::Provider(_) => self
                .providers
                .get(id)
                .map_or_else(|| id.to_owned(), |(ja, en)| t.pick(ja, en).to_owned()),
        };
        RecipientRow {
            name,
            kind: r.recipient.kind().to_owned(),
            kind_text: t.get(&format!("recipient-kind-{}", r.recipient.kind())),
            answer: r.answer.as_str().to_owned(),
            answer_text: t.get(&format!("recipient-answer-{}", r.answer.as_str())),
            note: r.note.clone(),
            answered: r.answered_at.map(|at| tokyo(at, t.lang)),
        }
    }
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

fn row(
    r: &ResidentRequest,
    names: &Names,
    recipients: &HashMap<ResidentRequestId, Vec<RequestRecipient>>,
    t: &Tr,
) -> RequestRow {
    let lang: Lang = t.lang;
    RequestRow {
        id: r.id.to_string(),
        kind: t.get(&format!("request-kind-{}", r.kind.as_str())),
        service: match (&r.service, &r.category) {
            (None, Some(_)) => t.get("request-service-any"),
            (s, _) => service_name(&names.services, s.as_ref().map(|s| s.as_str()), t),
        },
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
        category: r.category.as_ref().map(|c| names.category(c.as_str(), t)),
        due: tokyo_date(r.due_at, lang),
        due_iso: tokyo_iso(r.due_at),
        overdue: r.is_overdue(Utc::now()),
        extension_reason: r.extension_reason.clone(),
        recipients: recipients
            .get(&r.id)
            .into_iter()
            .flatten()
            .map(|x| names.recipient(x, t))
            .collect(),
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
    categories: Vec<(String, String)>,
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
    let names = Names::load(state).await?;
    let mine = state.hub.requests_of(&me.hub).await?;
    let recipients = state.hub.recipients_of(&mine).await?;
    let requests = mine
        .iter()
        .map(|r| row(r, &names, &recipients, &t))
        .collect();
    let categories = names
        .categories
        .iter()
        .map(|c| (c.id.clone(), t.pick(&c.name_ja, &c.name_en).to_owned()))
        .collect();
    // A proxy may file only about the services entrusted to them.
    let services = names
        .services
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
        categories,
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
    category: String,
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
    let category = Some(form.category.trim().to_owned()).filter(|c| !c.is_empty());
    let body = ResidentRequestBody {
        kind: form.kind,
        service,
        category,
        details: form.details,
    };
    match state.hub.file_request(&me.hub, body).await {
        Ok(_) => Ok(Redirect::to("/portal/requests?done=filed").into_response()),
        Err(renkei_hub::HubError::Forbidden(_)) => Err(PortalError::NotEntrusted),
        Err(
            renkei_hub::HubError::Malformed(_)
            | renkei_hub::HubError::UnknownService(_)
            | renkei_hub::HubError::UnknownCategory(_),
        ) => requests_page(&state, ctx, &headers, None, true, Prefill::default()).await,
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
    summary: renkei_hub::rights::RequestSummary,
    answer_days: usize,
    overdue_count: usize,
    /// The extension form's earliest date (`datetime-local`, Tokyo): tomorrow.
    extend_min: String,
}

pub async fn queue(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
    Query(q): Query<DoneQuery>,
) -> Result<Response, PortalError> {
    let op = crate::console::signed_in(&state, &headers).await?;
    let t = ctx.t;
    let names = Names::load(&state).await?;
    let all = state.hub.resident_requests(&op.id, None).await?;
    let recipients = state.hub.recipients_of(&all).await?;
    let (open, closed): (Vec<_>, Vec<_>) = all.iter().partition(|r| r.status.is_open());
    // Open ones by due date, the overdue first in the eye.
    let mut open: Vec<RequestRow> = open
        .iter()
        .map(|r| row(r, &names, &recipients, &t))
        .collect();
    open.sort_by(|a, b| a.due_iso.cmp(&b.due_iso));
    // Answered ones, newest first.
    let closed = closed
        .iter()
        .rev()
        .map(|r| row(r, &names, &recipients, &t))
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
    let message = match q.done.as_deref() {
        Some("answered") => Some(t.get("console-request-answered")),
        Some("extended") => Some(t.get("console-request-extended")),
        _ => None,
    };
    let now = Utc::now();
    let summary = state.hub.request_summary(now).await?;
    let extend_min = (now + chrono::TimeDelta::days(1))
        .with_timezone(&chrono_tz::Asia::Tokyo)
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    Ok(Html(
        QueuePage {
            ctx: ctx.console("console-requests-title", "/console/requests", true),
            open,
            closed,
            statuses,
            message,
            answer_days: summary.answer_days as usize,
            overdue_count: summary.overdue.len(),
            summary,
            extend_min,
        }
        .render()?,
    )
    .into_response())
}

#[derive(Deserialize)]
pub struct ExtendForm {
    due_at: String,
    #[serde(default)]
    reason: String,
}

/// An operator moves a request's due date later, with a reason the resident reads.
pub async fn extend(
    State(state): State<PortalState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<ExtendForm>,
) -> Result<Response, PortalError> {
    let op = crate::console::signed_in(&state, &headers).await?;
    let id = id.parse().map_err(|_| PortalError::NotFound)?;
    let due_at = crate::time::parse_tokyo_local(&form.due_at)
        .ok_or_else(|| PortalError::BadRequest("due_at".into()))?;
    let body = renkei_hub::rights::ExtensionBody {
        due_at,
        reason: form.reason,
    };
    match state.hub.extend_request(&op.id, id, body).await {
        Ok(_) => Ok(Redirect::to("/console/requests?done=extended").into_response()),
        Err(renkei_hub::HubError::Malformed(_) | renkei_hub::HubError::Forbidden(_)) => {
            Err(PortalError::BadRequest("reason".into()))
        }
        Err(e) => Err(e.into()),
    }
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
