//! The SOC's routes: `POST /v1/soc/events`, where it polls for security events (RFC 8936),
//! and `GET /v1/operator/incidents/report`, which lists the residents and categories a
//! service's granted requests reached in a window (what the APPI 漏えい等報告 and the
//! notices to residents need; `renkei incident report` calls it).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use renkei_domain::{AccessOutcome, LogEntry, OperatorAction, ServiceId};
use renkei_store::SecurityEventAck;
use renkei_store::security_events::MAX_SECURITY_EVENTS_READ;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::api_identity::PROBLEM;
use crate::audit::{AUDIT_LIMIT, AuditOutcome, AuditQuery};
use crate::auth::OperatorCaller;
use crate::problem::{ApiJson, ApiQuery, Problem};
use crate::{Hub, HubError};

/// The SOC routes' schemas for the API document.
#[derive(OpenApi)]
#[openapi(components(schemas(
    PollRequest,
    SetError,
    PollResponse,
    IncidentReport,
    AffectedResident
)))]
pub struct SocApiDoc;

/// How long a poll without `returnImmediately` waits for an event before answering none.
const POLL_WAIT: Duration = Duration::from_secs(20);

/// A poll (RFC 8936 §2.4): acknowledge what was received, report what could not be
/// processed, and ask for more. Members the hub does not know are ignored, as the RFC's
/// extensions may add some.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PollRequest {
    /// At most this many events in the answer (0 to 1000; 0 only acknowledges). Left out,
    /// up to 100.
    #[schema(minimum = 0, maximum = 1000)]
    pub max_events: Option<u32>,
    /// Answer at once even with no event; otherwise wait a while for one.
    #[serde(default)]
    pub return_immediately: bool,
    /// The `jti`s of events received and processed (any other string is no event's and is
    /// ignored).
    #[serde(default)]
    pub ack: Vec<String>,
    /// The `jti`s of events received but not processed, with why.
    #[serde(default)]
    pub set_errs: BTreeMap<String, SetError>,
}

/// Why the SOC could not process an event (RFC 8935 §2.3 error codes).
#[derive(Debug, Deserialize, ToSchema)]
pub struct SetError {
    pub err: String,
    pub description: String,
}

/// The events waiting (RFC 8936 §2.5): `jti` → the signed token.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PollResponse {
    pub sets: BTreeMap<uuid::Uuid, String>,
    /// More events wait than this answer holds.
    pub more_available: bool,
}

/// Poll for security events.
#[utoipa::path(post, path = "/v1/soc/events", security(("soc" = [])), request_body = PollRequest,
    responses((status = 200, body = PollResponse),
        (status = 400, description = "A malformed poll", body = Problem, content_type = PROBLEM),
        (status = 401, description = "No SOC token, or another", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No SOC token is configured: polling is off", body = Problem, content_type = PROBLEM),
        (status = 503, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn poll(
    State(hub): State<Hub>,
    ApiJson(body): ApiJson<PollRequest>,
) -> Result<Json<PollResponse>, HubError> {
    Ok(Json(hub.poll_security_events(body).await?))
}

impl Hub {
    /// Acknowledges what the poll says was received, then answers what waits.
    pub async fn poll_security_events(&self, poll: PollRequest) -> Result<PollResponse, HubError> {
        let max = poll.max_events.unwrap_or(100);
        if max > MAX_SECURITY_EVENTS_READ {
            return Err(HubError::Malformed(format!(
                "`maxEvents` must be at most {MAX_SECURITY_EVENTS_READ}, not `{max}`"
            )));
        }
        let jti = |s: &str| uuid::Uuid::parse_str(s).ok();
        let mut acks: Vec<SecurityEventAck> = poll
            .ack
            .iter()
            .filter_map(|s| jti(s))
            .map(|jti| SecurityEventAck { jti, error: None })
            .collect();
        for (jti, e) in poll.set_errs.iter().filter_map(|(s, e)| Some((jti(s)?, e))) {
            // Only the code is kept (a short token); the description is the SOC's text.
            let err: String = e
                .err
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(64)
                .collect();
            tracing::warn!(%jti, err = %err, "the SOC could not process a security event");
            acks.push(SecurityEventAck {
                jti,
                error: Some(err),
            });
        }
        if !acks.is_empty() {
            self.store()
                .acknowledge_security_events(&acks, Utc::now())
                .await?;
        }
        if max == 0 {
            return Ok(PollResponse {
                sets: BTreeMap::new(),
                more_available: false,
            });
        }
        let raised = self.soc().raised().clone();
        let deadline = tokio::time::Instant::now() + POLL_WAIT;
        loop {
            // Registered before reading, so an event raised in between wakes this poll.
            let notified = raised.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let mut waiting = self
                .store()
                .unacknowledged_security_events(max.saturating_add(1))
                .await?;
            let more_available = waiting.len() > max as usize;
            waiting.truncate(max as usize);
            if !waiting.is_empty() || poll.return_immediately {
                return Ok(PollResponse {
                    sets: waiting.into_iter().map(|e| (e.jti, e.token)).collect(),
                    more_available,
                });
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(PollResponse {
                    sets: BTreeMap::new(),
                    more_available: false,
                });
            }
        }
    }
}

/// The window and service of an incident report.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct IncidentQuery {
    /// The service whose granted requests are reported.
    service: String,
    /// From (RFC 3339, inclusive).
    from: DateTime<Utc>,
    /// To (RFC 3339, exclusive).
    to: DateTime<Utc>,
}

/// What a service's granted requests reached in a window.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IncidentReport {
    pub service: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Every resident reached, with the categories released about them.
    pub residents: Vec<AffectedResident>,
    /// Every category released, to anyone.
    pub categories: BTreeSet<String>,
}

/// One resident a service's granted requests reached.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AffectedResident {
    /// The resident's id at the hub (what the notice to them is addressed by).
    pub resident: uuid::Uuid,
    pub categories: BTreeSet<String>,
    /// How many granted requests named them.
    pub requests: u64,
}

/// The residents and categories a service's granted requests reached between `from` and
/// `to`. The report is an entry of the log (a search of the access log for that service).
#[utoipa::path(get, path = "/v1/operator/incidents/report", params(IncidentQuery), security(("operator" = [])),
    responses((status = 200, body = IncidentReport),
        (status = 400, description = "A malformed query", body = Problem, content_type = PROBLEM),
        (status = 401, body = Problem, content_type = PROBLEM),
        (status = 403, body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such service", body = Problem, content_type = PROBLEM),
        (status = 503, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn incident_report(
    State(hub): State<Hub>,
    OperatorCaller(operator): OperatorCaller,
    ApiQuery(query): ApiQuery<IncidentQuery>,
) -> Result<Json<IncidentReport>, HubError> {
    // A malformed id names no service, as an unknown one does; an empty window (`to` not
    // after `from`) reaches nobody.
    let service = ServiceId::new(query.service.as_str())
        .map_err(|_| HubError::UnknownService(query.service.clone()))?;
    hub.store()
        .service(&service)
        .await?
        .ok_or_else(|| HubError::UnknownService(service.to_string()))?;
    let mut residents: BTreeMap<uuid::Uuid, AffectedResident> = BTreeMap::new();
    let mut before_seq = None;
    loop {
        let page = hub
            .store()
            .audit_search(&AuditQuery {
                resident: None,
                service: Some(service.clone()),
                purpose: None,
                outcome: Some(AuditOutcome::Granted),
                basis: None,
                since: Some(query.from),
                until: Some(query.to),
                before_seq,
                limit: AUDIT_LIMIT,
            })
            .await?;
        for entry in &page {
            let LogEntry::Access(record) = entry else {
                continue;
            };
            // The window is half-open, and only what was granted released anything.
            if record.at >= query.to
                || record.service != service
                || !matches!(record.outcome, AccessOutcome::Granted)
            {
                continue;
            }
            let Some(resident) = record.resident else {
                continue;
            };
            let affected =
                residents
                    .entry(resident.as_uuid())
                    .or_insert_with(|| AffectedResident {
                        resident: resident.as_uuid(),
                        categories: BTreeSet::new(),
                        requests: 0,
                    });
            affected
                .categories
                .extend(record.categories.iter().map(ToString::to_string));
            affected.requests += 1;
        }
        match page.last() {
            Some(last) if page.len() == AUDIT_LIMIT as usize => before_seq = Some(last.seq()),
            _ => break,
        }
    }
    hub.audit(
        &operator,
        OperatorAction::SearchAccessLog {
            resident: None,
            service: Some(service.clone()),
            reason: Some("incident report (APPI 漏えい等報告)".to_owned()),
        },
    )
    .await?;
    let categories = residents
        .values()
        .flat_map(|r| r.categories.iter().cloned())
        .collect();
    Ok(Json(IncidentReport {
        service: service.to_string(),
        from: query.from,
        to: query.to,
        residents: residents.into_values().collect(),
        categories,
    }))
}
