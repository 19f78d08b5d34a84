//! The city's counter (窓口) in the console, for counter staff and operators: verify the
//! resident before them (an identity document seen; a card read at the kiosk goes through
//! the API, `POST /v1/counter/sessions`), then, in the counter session that opens, give or
//! revoke consents and file requests for them, each answered with a counter receipt to print
//! (PDF, with a QR code) and hand over. And the public page anyone's phone opens from that
//! QR code, which checks a receipt against the hub's keys.
//!
//! Everything goes through the hub's own methods (`renkei_hub::counter`), which log the
//! session and record every act with channel `counter` and the staff member as actor.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use renkei_domain::{IdentityDocument, OperatorId};
use renkei_hub::HubError;
use renkei_hub::accounts::ResidentRequestBody;
use renkei_hub::consents::{ConsentView, GrantConsentBody};
use renkei_hub::counter::{
    CounterAct, CounterReceipt, CounterSessionView, InPersonCheck, OpenCounterSessionBody,
};
use serde::Deserialize;

use crate::PortalState;
use crate::ctx::Ctx;
use crate::error::PortalError;
use crate::extract::Form;
use crate::i18n::{Lang, Tr};
use crate::resident::render;
use crate::time::tokyo;

/// The staff member the console cookie names: counter staff or an operator.
pub async fn staff_signed_in(
    state: &PortalState,
    headers: &HeaderMap,
) -> Result<OperatorId, PortalError> {
    crate::session::staff(&state.hub, headers)
        .await
        .ok_or(PortalError::OperatorSignedOut)
}

/// The console's layout for the counter: an operator keeps the console's navigation,
/// counter staff see the counter alone.
async fn layout(state: &PortalState, headers: &HeaderMap, ctx: Ctx, title: &str) -> Ctx {
    if crate::session::operator(&state.hub, headers)
        .await
        .is_some()
    {
        ctx.console(title, "/console/counter", true)
    } else {
        ctx.counter_desk(title)
    }
}

fn documents(t: &Tr) -> Vec<(&'static str, String)> {
    IdentityDocument::ALL
        .into_iter()
        .map(|d| {
            (
                d.as_str(),
                t.get(&format!(
                    "counter-document-{}",
                    d.as_str().replace('_', "-")
                )),
            )
        })
        .collect()
}

#[derive(Template)]
#[template(path = "console/counter.html")]
struct StartPage {
    ctx: Ctx,
    documents: Vec<(&'static str, String)>,
    error: Option<String>,
}

/// The counter's first step: verify the resident.
pub async fn start(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
) -> Result<Response, PortalError> {
    staff_signed_in(&state, &headers).await?;
    let ctx = layout(&state, &headers, ctx, "counter-title").await;
    render(&StartPage {
        documents: documents(&ctx.t),
        ctx,
        error: None,
    })
}

#[derive(Deserialize)]
pub struct VerifyForm {
    document: String,
    name: String,
    date_of_birth: String,
}

/// Opens a counter session for the resident the document shows.
pub async fn open(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(form): Form<VerifyForm>,
) -> Result<Response, PortalError> {
    let staff = staff_signed_in(&state, &headers).await?;
    let body = OpenCounterSessionBody {
        card: None,
        in_person: Some(InPersonCheck {
            document: form.document,
            name: form.name,
            date_of_birth: form.date_of_birth,
        }),
    };
    match state.hub.open_counter_session(&staff, body).await {
        Ok(session) => {
            Ok(Redirect::to(&format!("/console/counter/sessions/{}", session.id)).into_response())
        }
        Err(e @ (HubError::NotFound(_) | HubError::InvalidField { .. })) => {
            let ctx = layout(&state, &headers, ctx, "counter-title").await;
            let error = match e {
                HubError::NotFound(_) => ctx.t.get("counter-not-found"),
                _ => ctx.t.get("counter-check-fields"),
            };
            render(&StartPage {
                documents: documents(&ctx.t),
                ctx,
                error: Some(error),
            })
        }
        Err(e) => Err(e.into()),
    }
}

pub struct PurposeChoice {
    pub value: String,
    pub label: String,
}

pub struct ConsentRow {
    pub id: String,
    pub label: String,
    pub state: String,
    pub active: bool,
    pub via: String,
}

#[derive(Template)]
#[template(path = "console/counter_session.html")]
struct SessionPage {
    ctx: Ctx,
    session: CounterSessionView,
    expires: String,
    verification: String,
    consents: Vec<ConsentRow>,
    purposes: Vec<PurposeChoice>,
    services: Vec<(String, String)>,
    error: Option<String>,
}

fn verification_text(t: &Tr, label: &str) -> String {
    match label.strip_prefix("in_person:") {
        Some(doc) => t.arg(
            "counter-verified-in-person",
            "document",
            &t.get(&format!("counter-document-{}", doc.replace('_', "-"))),
        ),
        None => t.get("counter-verified-card"),
    }
}

async fn session_page(
    state: &PortalState,
    headers: &HeaderMap,
    ctx: Ctx,
    staff: &OperatorId,
    id: &str,
    error: Option<String>,
) -> Result<Response, PortalError> {
    let (session, consents) = state.hub.counter_session_details(staff, id).await?;
    let ctx = layout(state, headers, ctx, "counter-session-title").await;
    let lang = ctx.lang;
    let services = state.hub.services().await?;
    let name_of = |id: &str| {
        services.iter().find(|s| s.id == id).map_or_else(
            || id.to_owned(),
            |s| lang.pick(&s.name_ja, &s.name_en).to_owned(),
        )
    };
    let consents = consents
        .iter()
        .map(|c: &ConsentView| ConsentRow {
            id: c.id.clone(),
            label: format!(
                "{} — {} (v{})",
                name_of(&c.service),
                c.purpose,
                c.purpose_version
            ),
            state: ctx.t.get_or(&format!("state-{}", c.state), "state-other"),
            active: c.state == "active",
            via: ctx.t.get_or(
                &format!("via-{}", c.given_via.replace('_', "-")),
                "via-other",
            ),
        })
        .collect();
    let approved = services.iter().filter(|s| s.status == "approved");
    let purposes = approved
        .clone()
        .flat_map(|s| {
            s.purposes
                .iter()
                .filter(|p| !p.emergency_only)
                .map(move |p| PurposeChoice {
                    value: format!("{}/{}", s.id, p.id),
                    label: format!(
                        "{} — {}",
                        lang.pick(&s.name_ja, &s.name_en),
                        lang.pick(&p.title_ja, &p.title_en)
                    ),
                })
        })
        .collect();
    let services = approved
        .map(|s| (s.id.clone(), lang.pick(&s.name_ja, &s.name_en).to_owned()))
        .collect();
    render(&SessionPage {
        expires: tokyo(session.expires_at, lang),
        verification: verification_text(&ctx.t, &session.verification),
        ctx,
        session,
        consents,
        purposes,
        services,
        error,
    })
}

/// The counter session: the resident's consents, and the forms to act for them.
pub async fn session(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, PortalError> {
    let staff = staff_signed_in(&state, &headers).await?;
    session_page(&state, &headers, ctx, &staff, &id, None).await
}

#[derive(Deserialize)]
pub struct GrantForm {
    /// `service/purpose`.
    purpose: String,
    #[serde(default)]
    valid_days: Option<u32>,
}

/// Where a counter act's receipt is shown.
fn receipt_page(session: &str, receipt: &str) -> Response {
    Redirect::to(&format!(
        "/console/counter/receipt?session={session}&receipt={receipt}"
    ))
    .into_response()
}

/// What the session page says when the hub refused an act it can explain.
async fn refused(
    state: &PortalState,
    headers: &HeaderMap,
    ctx: Ctx,
    staff: &OperatorId,
    id: &str,
    e: HubError,
) -> Result<Response, PortalError> {
    match e {
        HubError::Forbidden(detail) | HubError::InvalidField { detail, .. } => {
            session_page(state, headers, ctx, staff, id, Some(detail)).await
        }
        HubError::ConsentAlreadyActive(_) => {
            let text = ctx.t.get("counter-already-consents");
            session_page(state, headers, ctx, staff, id, Some(text)).await
        }
        e => Err(e.into()),
    }
}

/// Gives a consent for the session's resident.
pub async fn grant(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<GrantForm>,
) -> Result<Response, PortalError> {
    let staff = staff_signed_in(&state, &headers).await?;
    let (service, purpose) = form
        .purpose
        .split_once('/')
        .ok_or_else(|| PortalError::BadRequest("purpose".into()))?;
    let body = GrantConsentBody {
        service: service.to_owned(),
        purpose: purpose.to_owned(),
        valid_days: form.valid_days,
    };
    match state.hub.counter_grant_consent(&staff, &id, body).await {
        Ok(r) => Ok(receipt_page(&id, &r.receipt)),
        Err(e) => refused(&state, &headers, ctx, &staff, &id, e).await,
    }
}

/// Revokes one of the session's resident's consents.
pub async fn revoke(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path((id, consent)): Path<(String, String)>,
) -> Result<Response, PortalError> {
    let staff = staff_signed_in(&state, &headers).await?;
    match state
        .hub
        .counter_revoke_consent(&staff, &id, &consent)
        .await
    {
        Ok(r) => Ok(receipt_page(&id, &r.receipt)),
        Err(e) => refused(&state, &headers, ctx, &staff, &id, e).await,
    }
}

#[derive(Deserialize)]
pub struct RequestForm {
    kind: String,
    #[serde(default)]
    service: String,
    details: String,
}

/// Files a request for the session's resident.
pub async fn file_request(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<RequestForm>,
) -> Result<Response, PortalError> {
    let staff = staff_signed_in(&state, &headers).await?;
    let body = ResidentRequestBody {
        kind: form.kind,
        service: Some(form.service).filter(|s| !s.is_empty()),
        category: None,
        details: form.details,
    };
    match state.hub.counter_file_request(&staff, &id, body).await {
        Ok(r) => Ok(receipt_page(&id, &r.receipt)),
        Err(e) => refused(&state, &headers, ctx, &staff, &id, e).await,
    }
}

#[derive(Deserialize)]
pub struct ReceiptQuery {
    #[serde(default)]
    receipt: String,
    #[serde(default)]
    session: Option<String>,
}

/// A checked receipt as a page shows it.
pub struct ReceiptFacts {
    pub issued: String,
    pub staff: String,
    pub verification: String,
    pub what: String,
    pub reference: String,
}

fn facts(t: &Tr, lang: Lang, r: &CounterReceipt) -> ReceiptFacts {
    let issued = chrono::DateTime::from_timestamp(r.iat, 0)
        .map(|at| tokyo(at, lang))
        .unwrap_or_default();
    let (what, reference) = match &r.act {
        CounterAct::ConsentGiven {
            consent,
            service,
            purpose,
            version,
            ..
        } => (
            t.args(
                "counter-act-consent-given",
                &[
                    ("service", service),
                    ("purpose", &format!("{purpose} (v{version})")),
                ],
            ),
            consent.to_string(),
        ),
        CounterAct::ConsentRevoked {
            consent,
            service,
            purpose,
            version,
        } => (
            t.args(
                "counter-act-consent-revoked",
                &[
                    ("service", service),
                    ("purpose", &format!("{purpose} (v{version})")),
                ],
            ),
            consent.to_string(),
        ),
        CounterAct::RequestFiled {
            request,
            request_kind,
            ..
        } => (
            t.arg(
                "counter-act-request-filed",
                "kind",
                &t.get(&format!("request-kind-{}", request_kind.as_str())),
            ),
            request.to_string(),
        ),
    };
    ReceiptFacts {
        issued,
        staff: r.staff.to_string(),
        verification: verification_text(t, &r.verified.label()),
        what,
        reference,
    }
}

#[derive(Template)]
#[template(path = "console/counter_receipt.html")]
struct ReceiptPage {
    ctx: Ctx,
    facts: ReceiptFacts,
    receipt: String,
    check_url: String,
    session: Option<String>,
}

/// A counter receipt, with the links to print it and to check it.
pub async fn receipt(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
    Query(q): Query<ReceiptQuery>,
) -> Result<Response, PortalError> {
    staff_signed_in(&state, &headers).await?;
    let checked = state
        .hub
        .check_counter_receipt(&q.receipt)
        .map_err(|_| PortalError::BadRequest("receipt".into()))?;
    let ctx = layout(&state, &headers, ctx, "counter-receipt-title").await;
    render(&ReceiptPage {
        facts: facts(&ctx.t, ctx.lang, &checked),
        check_url: state.hub.receipt_check_url(&q.receipt),
        receipt: q.receipt,
        session: q.session,
        ctx,
    })
}

/// The printed receipt, as a file to download.
pub async fn receipt_pdf(
    State(state): State<PortalState>,
    headers: HeaderMap,
    Query(q): Query<ReceiptQuery>,
) -> Result<Response, PortalError> {
    staff_signed_in(&state, &headers).await?;
    let pdf = match state.hub.counter_receipt_pdf(&q.receipt).await {
        Ok(pdf) => pdf,
        Err(HubError::InvalidField { .. }) => {
            return Err(PortalError::BadRequest("receipt".into()));
        }
        Err(e) => return Err(e.into()),
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"counter-receipt.pdf\"",
            ),
        ],
        pdf,
    )
        .into_response())
}

#[derive(Template)]
#[template(path = "portal/receipt_check.html")]
struct CheckPage {
    ctx: Ctx,
    /// `None` before anything was given to check.
    genuine: Option<bool>,
    facts: Option<ReceiptFacts>,
    receipt: String,
}

fn check_page(ctx: Ctx, receipt: String, state: &PortalState) -> Result<Response, PortalError> {
    let ctx = ctx.portal("receipt-check-title", "", false);
    let receipt = receipt.trim().to_owned();
    let (genuine, facts) = if receipt.is_empty() {
        (None, None)
    } else {
        match state.hub.check_counter_receipt(&receipt) {
            Ok(r) => (Some(true), Some(facts(&ctx.t, ctx.lang, &r))),
            Err(_) => (Some(false), None),
        }
    };
    render(&CheckPage {
        ctx,
        genuine,
        facts,
        receipt,
    })
}

/// The public check of a counter receipt, given in the address (what the QR code opens).
pub async fn check(
    State(state): State<PortalState>,
    ctx: Ctx,
    Query(q): Query<ReceiptQuery>,
) -> Result<Response, PortalError> {
    check_page(ctx, q.receipt, &state)
}

#[derive(Deserialize)]
pub struct CheckForm {
    receipt: String,
}

/// The public check of a counter receipt, pasted.
pub async fn check_pasted(
    State(state): State<PortalState>,
    ctx: Ctx,
    Form(form): Form<CheckForm>,
) -> Result<Response, PortalError> {
    check_page(ctx, form.receipt, &state)
}

// ---------------------------------------------------------------- representatives

#[derive(Template)]
#[template(path = "console/representatives.html")]
struct RepresentativesPage {
    ctx: Ctx,
    message: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct RepresentativesQuery {
    #[serde(default)]
    done: Option<String>,
}

/// The form by which an operator registers a statutory representative (operators only).
pub async fn representatives(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
    Query(q): Query<RepresentativesQuery>,
) -> Result<Response, PortalError> {
    crate::console::signed_in(&state, &headers).await?;
    let ctx = ctx.console("representatives-title", "/console/representatives", true);
    let message = q
        .done
        .filter(|id| id.parse::<uuid::Uuid>().is_ok())
        .map(|id| ctx.t.arg("representatives-done", "id", &id));
    render(&RepresentativesPage {
        ctx,
        message,
        error: None,
    })
}

#[derive(Deserialize)]
pub struct RepresentativeForm {
    resident: String,
    representative: String,
    kind: String,
    evidence: String,
}

/// Registers a statutory representative; a refusal is said on the form's page.
pub async fn register_representative(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(form): Form<RepresentativeForm>,
) -> Result<Response, PortalError> {
    let op = crate::console::signed_in(&state, &headers).await?;
    let body = renkei_hub::representatives::RepresentativeBody {
        resident: form.resident.trim().to_owned(),
        representative: form.representative.trim().to_owned(),
        kind: form.kind,
        evidence: form.evidence.trim().to_owned(),
    };
    match state.hub.register_representative(&op.id, body).await {
        Ok(view) => {
            Ok(Redirect::to(&format!("/console/representatives?done={}", view.id)).into_response())
        }
        Err(
            e @ (HubError::Forbidden(_) | HubError::NotFound(_) | HubError::InvalidField { .. }),
        ) => {
            let ctx = ctx.console("representatives-title", "/console/representatives", true);
            render(&RepresentativesPage {
                ctx,
                message: None,
                error: Some(e.to_string()),
            })
        }
        Err(e) => Err(e.into()),
    }
}
