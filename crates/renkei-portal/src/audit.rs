//! The operator console's audit search: access entries and consent changes by resident,
//! service, purpose, outcome, basis and Tokyo time range, newest first, paged by log
//! position (each search itself an operator entry of the log), and the operators' actions.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use renkei_domain::ServiceId;
use serde::Deserialize;

use crate::PortalState;
use crate::console::signed_in;
use crate::ctx::Ctx;
use crate::error::PortalError;
use crate::extract::Query;
use crate::i18n::Tr;

/// One log entry as the audit search lists it.
pub struct AuditRow {
    pub seq: u64,
    pub when: String,
    pub when_iso: String,
    pub resident: String,
    pub service: String,
    pub purpose: String,
    /// `granted`, `denied` or `consent`.
    pub outcome: String,
    pub what: String,
    pub basis: String,
    pub actor: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    ctx: Ctx,
    services: Vec<(String, String)>,
    purposes: Vec<(String, String)>,
    q: AuditForm,
    searched: bool,
    rows: Vec<AuditRow>,
    older: Option<String>,
    newest: Option<String>,
    error: bool,
    /// A search of the log was asked for without a reason: refused.
    no_reason: bool,
}

/// The search form, as sent (empty fields are "any").
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
pub struct AuditForm {
    #[serde(default)]
    pub resident: String,
    #[serde(default)]
    pub service: String,
    #[serde(default)]
    pub purpose: String,
    #[serde(default)]
    pub outcome: String,
    #[serde(default)]
    pub basis: String,
    #[serde(default)]
    pub since: String,
    #[serde(default)]
    pub until: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<u64>,
    /// Why the operator looks: required for a search of the log, which records it (and
    /// shows it to a resident the search names).
    #[serde(default)]
    pub reason: String,
}

/// The most entries one audit page lists.
const AUDIT_PAGE: u32 = 50;

impl AuditForm {
    fn searched(&self) -> bool {
        [
            &self.resident,
            &self.service,
            &self.purpose,
            &self.outcome,
            &self.basis,
            &self.since,
            &self.until,
        ]
        .iter()
        .any(|f| !f.is_empty())
            || self.before.is_some()
    }

    /// The store's query, or `None` when a field cannot be read.
    fn query(&self) -> Option<renkei_hub::audit::AuditQuery> {
        fn opt<T>(s: &str, parse: impl Fn(&str) -> Option<T>) -> Option<Option<T>> {
            let s = s.trim();
            if s.is_empty() {
                Some(None)
            } else {
                parse(s).map(Some)
            }
        }
        Some(renkei_hub::audit::AuditQuery {
            resident: opt(&self.resident, |s| s.parse().ok())?,
            service: opt(&self.service, |s| ServiceId::new(s).ok())?,
            purpose: opt(&self.purpose, |s| renkei_domain::PurposeId::new(s).ok())?,
            outcome: match self.outcome.trim() {
                // `operator` is no access outcome: the handler lists operators' acts instead.
                "" | "operator" => None,
                "granted" => Some(renkei_hub::audit::AuditOutcome::Granted),
                "denied" => Some(renkei_hub::audit::AuditOutcome::Denied),
                _ => return None,
            },
            basis: opt(&self.basis, |s| {
                matches!(s, "consent" | "emergency" | "none").then(|| s.to_owned())
            })?,
            since: opt(&self.since, crate::time::parse_tokyo_local)?,
            until: opt(&self.until, crate::time::parse_tokyo_local)?,
            before_seq: self.before,
            limit: AUDIT_PAGE,
        })
    }

    fn href(&self, before: Option<u64>) -> String {
        let form = Self {
            before,
            ..self.clone()
        };
        format!(
            "/console/audit?{}",
            serde_urlencoded::to_string(&form).unwrap_or_default()
        )
    }
}

fn audit_row(
    e: &renkei_domain::LogEntry,
    catalogue: &[renkei_hub::catalogue::ServiceView],
    t: &Tr,
) -> AuditRow {
    use renkei_domain::{AccessBasis, AccessOutcome, Actor, LogEntry};
    let lang = t.lang;
    let names = |service: &ServiceId, purpose: &str| {
        let s = catalogue.iter().find(|s| s.id == service.as_str());
        let sname = s.map_or_else(
            || service.to_string(),
            |s| t.pick(&s.name_ja, &s.name_en).to_owned(),
        );
        let pname = s
            .and_then(|s| s.purposes.iter().find(|p| p.id == purpose))
            .map_or_else(
                || purpose.to_owned(),
                |p| t.pick(&p.title_ja, &p.title_en).to_owned(),
            );
        (sname, pname)
    };
    match e {
        LogEntry::Access(r) => {
            let (service, purpose) = names(&r.service, r.purpose.as_str());
            let (outcome, what) = match &r.outcome {
                AccessOutcome::Granted => ("granted", t.get("audit-outcome-granted")),
                AccessOutcome::Denied { reason } => (
                    "denied",
                    format!(
                        "{}: {}",
                        t.get("audit-outcome-denied"),
                        t.get_or(&format!("reason-{reason}"), "reason-other")
                    ),
                ),
            };
            let basis = match &r.basis {
                AccessBasis::Consent { consent, .. } => t.arg("audit-basis-consent", "id", consent),
                AccessBasis::Emergency { declaration } => {
                    t.arg("audit-basis-emergency", "id", declaration)
                }
                AccessBasis::None => t.get("audit-basis-none"),
                AccessBasis::DataSubjectAccess { .. } => t.get("audit-basis-data-subject-access"),
            };
            AuditRow {
                seq: r.seq,
                when: crate::time::tokyo(r.at, lang),
                when_iso: crate::time::tokyo_iso(r.at),
                resident: r
                    .resident
                    .map(|x| x.to_string())
                    .unwrap_or_else(|| "—".into()),
                actor: t.arg("audit-actor-service", "service", &service),
                service,
                purpose,
                outcome: outcome.to_owned(),
                what,
                basis,
            }
        }
        LogEntry::Consent(c) => {
            let (service, purpose) = names(&c.service, c.purpose.as_str());
            let change = serde_json::to_value(c.change)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let actor = match &c.actor {
                Actor::Resident => t.get("audit-actor-resident"),
                Actor::Proxy { proxy } => t.arg("audit-actor-proxy", "id", proxy),
                Actor::Staff { staff_id } => t.arg("audit-actor-staff", "id", staff_id),
                Actor::ProviderStaff { provider, staff_id } => t.arg2(
                    "audit-actor-provider-staff",
                    ("provider", provider),
                    ("id", staff_id),
                ),
                Actor::Hub => t.get("audit-actor-hub"),
            };
            AuditRow {
                seq: c.seq,
                when: crate::time::tokyo(c.at, lang),
                when_iso: crate::time::tokyo_iso(c.at),
                resident: c.resident.to_string(),
                service,
                purpose,
                outcome: "consent".into(),
                what: t.get_or(&format!("consent-change-{change}"), "consent-change-other"),
                basis: t.arg("audit-basis-consent", "id", &c.consent),
                actor,
            }
        }
        LogEntry::Fulfilment(f) => {
            let (service, _) = names(&f.service, "");
            let (what, outcome) = crate::history::fulfilment_what(f, t);
            AuditRow {
                seq: f.seq,
                when: crate::time::tokyo(f.at, lang),
                when_iso: crate::time::tokyo_iso(f.at),
                resident: f.resident.to_string(),
                actor: t.arg("audit-actor-service", "service", &service),
                service,
                purpose: "—".into(),
                outcome: outcome.to_owned(),
                what,
                basis: "—".into(),
            }
        }
        LogEntry::LocatorSync(l) => AuditRow {
            seq: l.seq,
            when: crate::time::tokyo(l.at, lang),
            when_iso: crate::time::tokyo_iso(l.at),
            resident: "—".into(),
            actor: t.arg("audit-actor-provider", "provider", &l.provider),
            service: "—".into(),
            purpose: "—".into(),
            outcome: "locator_sync".into(),
            what: t.arg2(
                "locator-sync-what",
                ("written", &l.counts.upserted),
                ("removed", &l.counts.removed),
            ),
            basis: "—".into(),
        },
        LogEntry::Rights(r) => {
            let (actor, what) = match &r.event {
                renkei_domain::RightsEvent::Routed {
                    services,
                    providers,
                    ..
                } => (
                    t.get("audit-actor-hub"),
                    t.arg2(
                        "rights-routed-what",
                        ("services", &services.len()),
                        ("providers", &providers.len()),
                    ),
                ),
                renkei_domain::RightsEvent::Answered {
                    recipient, answer, ..
                } => (
                    match recipient {
                        renkei_domain::Recipient::Service(s) => {
                            t.arg("audit-actor-service", "service", &names(s, "").0)
                        }
                        renkei_domain::Recipient::Provider(p) => {
                            t.arg("audit-actor-provider", "provider", p)
                        }
                    },
                    t.get(&format!("recipient-answer-{}", answer.as_str())),
                ),
            };
            AuditRow {
                seq: r.seq,
                when: crate::time::tokyo(r.at, lang),
                when_iso: crate::time::tokyo_iso(r.at),
                resident: r.resident.to_string(),
                actor,
                service: "—".into(),
                purpose: "—".into(),
                outcome: "rights".into(),
                what,
                basis: t.get(&format!("request-kind-{}", r.request_kind.as_str())),
            }
        }
        LogEntry::Operator(o) => {
            use renkei_domain::{OperatorAction, OperatorActor};
            let (what, service) = match &o.action {
                OperatorAction::RegisterService { service } => ("register-service", Some(service)),
                OperatorAction::ApproveService { service, .. } => {
                    ("approve-service", Some(service))
                }
                OperatorAction::SuspendService { service } => ("suspend-service", Some(service)),
                OperatorAction::AnswerRequest { .. } => ("answer-request", None),
                OperatorAction::ExtendRequest { .. } => ("extend-request", None),
                OperatorAction::AddOperator { .. } => ("add-operator", None),
                OperatorAction::RotateSigningKey { .. } => ("rotate-signing-key", None),
                OperatorAction::RetireSigningKey { .. } => ("retire-signing-key", None),
                OperatorAction::SearchAccessLog { service, .. } => {
                    ("search-access-log", service.as_ref())
                }
                OperatorAction::PublishPurpose { service, .. } => {
                    ("publish-purpose", Some(service))
                }
                OperatorAction::PutCategory { .. } => ("put-category", None),
                OperatorAction::RegisterProvider { .. } => ("register-provider", None),
                OperatorAction::ApproveProvider { .. } => ("approve-provider", None),
                OperatorAction::SuspendProvider { .. } => ("suspend-provider", None),
                OperatorAction::DeclareEmergency { .. } => ("declare-emergency", None),
                OperatorAction::ConfirmEmergency { .. } => ("confirm-emergency", None),
                OperatorAction::ProposeEmergencyRenewal { .. } => ("propose-renewal", None),
                OperatorAction::ConfirmEmergencyRenewal { .. } => ("confirm-renewal", None),
                OperatorAction::EndEmergency { .. } => ("end-emergency", None),
                OperatorAction::ConfirmLocationDeletion { service, .. } => {
                    ("confirm-location-deletion", Some(service))
                }
                // The city's counter and statutory representatives.
                OperatorAction::OpenCounterSession { .. } => ("open-counter-session", None),
                OperatorAction::RegisterRepresentative { .. } => ("register-representative", None),
                OperatorAction::EndRepresentative { .. } => ("end-representative", None),
            };
            let service = service.map_or_else(|| "—".to_owned(), |s| names(s, "").0);
            let actor = match &o.actor {
                OperatorActor::Operator { id } => t.arg("audit-actor-operator", "id", id),
                OperatorActor::CommandLine => t.get("audit-actor-command-line"),
            };
            AuditRow {
                seq: o.seq,
                when: crate::time::tokyo(o.at, lang),
                when_iso: crate::time::tokyo_iso(o.at),
                resident: "—".into(),
                service,
                purpose: "—".into(),
                outcome: "operator".into(),
                what: t.get(&format!("operator-action-{what}")),
                basis: "—".into(),
                actor,
            }
        }
    }
}

/// The audit search: access entries and consent changes by resident, service, purpose,
/// outcome, basis and time (Japan time), newest first, paged by log position.
pub async fn audit(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
    Query(form): Query<AuditForm>,
) -> Result<Response, PortalError> {
    let op = signed_in(&state, &headers).await?;
    let t = ctx.t;
    let catalogue = state.hub.services().await?;
    let services = catalogue
        .iter()
        .map(|s| (s.id.clone(), t.pick(&s.name_ja, &s.name_en).to_owned()))
        .collect();
    let purposes: std::collections::BTreeMap<String, String> = catalogue
        .iter()
        .flat_map(|s| s.purposes.iter())
        .map(|p| (p.id.clone(), t.pick(&p.title_ja, &p.title_en).to_owned()))
        .collect();
    let searched = form.searched();
    let (mut rows, mut error) = (Vec::new(), false);
    let mut older = None;
    // Listing operators' own acts names no resident; a search of the log says why.
    let no_reason = searched && form.outcome != "operator" && form.reason.trim().is_empty();
    if searched && !no_reason {
        let entries = match form.query() {
            // Operators' own acts are a search of their own.
            Some(_) if form.outcome == "operator" => Some(
                state
                    .hub
                    .operator_log(form.before, AUDIT_PAGE)
                    .await?
                    .into_iter()
                    .map(renkei_domain::LogEntry::Operator)
                    .collect::<Vec<_>>(),
            ),
            Some(query) => match state.hub.audit_search(&op.id, &query, &form.reason).await {
                Ok(found) => Some(found),
                // Too long a reason: the page says the search could not be read.
                Err(renkei_hub::HubError::Malformed(_)) => None,
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        match entries {
            Some(entries) => {
                if entries.len() == AUDIT_PAGE as usize {
                    older = entries.last().map(|e| form.href(Some(e.seq())));
                }
                rows = entries
                    .iter()
                    .map(|e| audit_row(e, &catalogue, &t))
                    .collect();
            }
            None => error = true,
        }
    }
    let newest = form.before.map(|_| form.href(None));
    let status = if error || no_reason {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let page = AuditPage {
        ctx: ctx.console("console-audit-title", "/console/audit", true),
        services,
        purposes: purposes.into_iter().collect(),
        q: form,
        searched,
        rows,
        older,
        newest,
        error,
        no_reason,
    };
    Ok((status, Html(page.render()?)).into_response())
}
