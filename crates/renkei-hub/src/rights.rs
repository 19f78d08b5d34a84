//! Residents' rights reaching the data: a correction, deletion or suspension request about a
//! service or a data category is routed, as it is filed, to every service that received that
//! data within its purpose's retention (found from the resident's access records) and to
//! every provider whose locator points at it (`renkei_domain::rights::route`). Services hear
//! of it through the webhook outbox, as a signed `urn:renkei:event:rights-request` event
//! naming the resident by their pairwise subject; providers, which have no webhook, pull
//! theirs (`GET /v1/provider/rights-requests`, the resident named by their code there). Each
//! recipient answers through the API (done, refused with a reason, partly with a note); a
//! provider's `done` to a deletion removes its locators; the request's status follows the
//! answers. A suspension (利用停止) also revokes the matching consents at once, through the
//! same path as a resident's own revocation, so the next decision refuses.
//!
//! Every request is due a first answer [`crate::HubConfig::request_answer_days`] after it
//! was filed; operators see what is overdue and may extend a due date with a reason the
//! resident reads. Routing and each answer are entries of the log (ids and counts).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use renkei_domain::rights::{self, check_answer, check_extension};
use renkei_domain::{
    AccessOutcome, CategoryId, OperatorAction, OperatorActor, OperatorId, PurposeRef, Recipient,
    RecipientAnswer, RequestRecipient, ResidentRequest, ResidentRequestId, ResidentRequestKind,
};
use renkei_protocol::event::rights::RightsEventClaims;
use renkei_store::{AccessQuery, AnswerOutcome, LogOrder, OutboxMessage, RecipientAnswerDraft};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::ResidentSession;
use crate::consents::now_ms;
use crate::{Hub, HubError};

/// How many of the resident's access records routing reads, newest first: far more than
/// any retention holds for one resident.
const RECORDS_READ: u32 = 10_000;

/// What the webhook outbox keeps for a rights-request message (signed when sent).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RightsOutboxEvent {
    pub rights: RightsEventClaims,
}

/// One recipient of a routed request and its answer, as the resident and operators see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecipientView {
    /// `service` or `provider`.
    pub kind: String,
    /// The service's or provider's id.
    pub id: String,
    /// The categories the request concerns there.
    pub categories: Vec<String>,
    /// `pending`, `done`, `refused` or `partly`.
    pub answer: String,
    /// The recipient's reason or note.
    pub note: Option<String>,
    pub routed_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
}

impl From<RequestRecipient> for RecipientView {
    fn from(r: RequestRecipient) -> Self {
        Self {
            kind: r.recipient.kind().to_owned(),
            id: r.recipient.id().to_owned(),
            categories: r.categories.iter().map(ToString::to_string).collect(),
            answer: r.answer.as_str().to_owned(),
            note: r.note,
            routed_at: r.routed_at,
            answered_at: r.answered_at,
        }
    }
}

/// A request routed to the calling service or provider.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RoutedRequestView {
    pub id: String,
    /// `correction`, `deletion` or `suspension`.
    pub kind: String,
    /// The resident: their pairwise subject at the service, or their code at the provider.
    pub subject: String,
    pub categories: Vec<String>,
    /// The resident's own words: what to correct, delete or stop.
    pub details: String,
    pub filed_at: DateTime<Utc>,
    /// When a first answer is due.
    pub due_at: DateTime<Utc>,
    /// This recipient's answer so far: `pending` or `partly`, or final.
    pub answer: String,
    pub note: Option<String>,
}

/// A recipient's answer to a routed request.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecipientAnswerBody {
    /// `done`, `refused` (with a reason in `note`) or `partly` (with a note of what was not
    /// done); `partly` may be followed by a final answer.
    pub answer: String,
    /// What the resident reads: needed for `refused` and `partly`, at most 2000 characters.
    #[schema(max_length = 2000)]
    pub note: Option<String>,
}

/// An operator's extension of a request's due date.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtensionBody {
    /// The new due date: later than the present one.
    pub due_at: DateTime<Utc>,
    /// Why, as the resident reads it (1 to 2000 characters).
    #[schema(min_length = 1, max_length = 2000)]
    pub reason: String,
}

/// One overdue request, as the operators' summary lists it (no resident's words).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OverdueRequestView {
    pub id: String,
    pub kind: String,
    pub filed_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    /// Whole days past the due date.
    pub days_overdue: i64,
    /// Recipients that have not answered yet.
    pub pending_recipients: usize,
}

/// The operators' summary of residents' requests and their deadlines.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RequestSummary {
    /// The city's setting: days for a first answer.
    pub answer_days: u32,
    /// Requests waiting for an answer.
    pub open: usize,
    /// Open requests past their due date, the longest overdue first.
    pub overdue: Vec<OverdueRequestView>,
    /// Open requests whose due date was extended.
    pub extended: usize,
}

impl Hub {
    /// Files `request` routed to whoever holds the data it is about; a suspension first
    /// revokes the resident's matching consents.
    pub(crate) async fn route_request(
        &self,
        session: &ResidentSession,
        request: &ResidentRequest,
    ) -> Result<(), HubError> {
        let routing = self.routing_of(request).await?;
        let revoked = if request.kind == ResidentRequestKind::Suspension {
            self.suspend_consents(session, request).await?
        } else {
            0
        };
        let recipients = routing.recipients();
        let messages = self.rights_messages(request, &routing.services).await?;
        let entry = self
            .store()
            .file_routed_request(request, &recipients, &messages, revoked)
            .await?;
        if !messages.is_empty() {
            self.outbox_written().notify_one();
        }
        tracing::info!(
            seq = entry.seq,
            recipients = recipients.len(),
            consents_revoked = revoked,
            "resident request routed"
        );
        Ok(())
    }

    /// Where `request` goes, from the resident's access records, the retention of each
    /// purpose version they name, and the resident's locators.
    async fn routing_of(&self, request: &ResidentRequest) -> Result<rights::Routing, HubError> {
        let records = self
            .store()
            .access_records(&AccessQuery {
                resident: Some(request.resident),
                service: request.service.clone(),
                after_seq: None,
                before_seq: None,
                order: LogOrder::NewestFirst,
                since: None,
                until: None,
                limit: RECORDS_READ,
            })
            .await?;
        let mut retention: HashMap<PurposeRef, Option<u32>> = HashMap::new();
        for r in records
            .iter()
            .filter(|r| r.outcome == AccessOutcome::Granted)
        {
            let Some(version) = r.purpose_version else {
                continue;
            };
            let key = PurposeRef {
                service: r.service.clone(),
                purpose: r.purpose.clone(),
                version,
            };
            if let std::collections::hash_map::Entry::Vacant(slot) = retention.entry(key) {
                let days = self
                    .store()
                    .purpose_version(slot.key())
                    .await?
                    .map(|p| p.retention_days);
                slot.insert(days);
            }
        }
        let locators = self.store().locators_of(request.resident).await?;
        Ok(rights::route(
            request,
            &records,
            |service, purpose, version| {
                retention
                    .get(&PurposeRef {
                        service: service.clone(),
                        purpose: purpose.clone(),
                        version,
                    })
                    .copied()
                    .flatten()
            },
            &locators,
            Utc::now(),
        ))
    }

    /// Revokes at once the resident's active consents a suspension covers: to the named
    /// service, and (when it names one) drawing on the named category. Returns how many.
    async fn suspend_consents(
        &self,
        session: &ResidentSession,
        request: &ResidentRequest,
    ) -> Result<u32, HubError> {
        let now = now_ms();
        let mut revoked = 0;
        for consent in self.store().consents_of(request.resident).await? {
            let covered = request
                .service
                .as_ref()
                .is_none_or(|s| &consent.purpose.service == s)
                && request
                    .category
                    .as_ref()
                    .is_none_or(|c| consent.categories.contains(c));
            if !covered || consent.clone().active_at(now).is_err() {
                continue;
            }
            self.revoke_now(&consent, &session.actor(), now).await?;
            revoked += 1;
        }
        Ok(revoked)
    }

    /// One webhook message per service recipient with a webhook.
    async fn rights_messages(
        &self,
        request: &ResidentRequest,
        services: &BTreeMap<renkei_domain::ServiceId, BTreeSet<CategoryId>>,
    ) -> Result<Vec<OutboxMessage>, HubError> {
        let issuer = self.config().issuer.trim_end_matches('/').to_owned();
        let mut messages = Vec::new();
        for (id, categories) in services {
            let Some(service) = self.store().service(id).await? else {
                continue;
            };
            if service.webhook_url.is_none() {
                continue;
            }
            let claims = RightsEventClaims {
                request: request.id,
                subject: self.keys().subject(&service.sector, request.resident),
                kind: request.kind.as_str().to_owned(),
                categories: categories.clone(),
                due: request.due_at.timestamp(),
                answer_url: format!("{issuer}/v1/service/rights-requests/{}/answer", request.id),
            };
            let event = serde_json::to_value(RightsOutboxEvent { rights: claims })
                .map_err(|e| HubError::internal(format!("rights event: {e}")))?;
            messages.push(OutboxMessage {
                id: uuid::Uuid::new_v4(),
                service: service.id.clone(),
                event,
            });
        }
        Ok(messages)
    }

    /// Every recipient of these requests, by request.
    pub async fn recipients_of(
        &self,
        requests: &[ResidentRequest],
    ) -> Result<HashMap<ResidentRequestId, Vec<RequestRecipient>>, HubError> {
        let ids: Vec<ResidentRequestId> = requests.iter().map(|r| r.id).collect();
        let mut out: HashMap<ResidentRequestId, Vec<RequestRecipient>> = HashMap::new();
        for r in self.store().request_recipients(&ids).await? {
            out.entry(r.request).or_default().push(r);
        }
        Ok(out)
    }

    /// The requests routed to `recipient` that it has not answered finally, oldest first,
    /// each naming the resident as `subject` does.
    pub(crate) async fn routed_to(
        &self,
        recipient: &Recipient,
    ) -> Result<Vec<RoutedRequestView>, HubError> {
        let mut out = Vec::new();
        for (request, mine) in self.store().routed_to(recipient, true).await? {
            let subject = match recipient {
                Recipient::Service(id) => {
                    let Some(service) = self.store().service(id).await? else {
                        continue;
                    };
                    self.keys()
                        .subject(&service.sector, request.resident)
                        .to_string()
                }
                Recipient::Provider(id) => self
                    .provider_subject(id, request.resident)
                    .await?
                    .to_string(),
            };
            out.push(RoutedRequestView {
                id: request.id.to_string(),
                kind: request.kind.as_str().to_owned(),
                subject,
                categories: mine.categories.iter().map(ToString::to_string).collect(),
                details: request.details,
                filed_at: request.filed_at,
                due_at: request.due_at,
                answer: mine.answer.as_str().to_owned(),
                note: mine.note,
            });
        }
        Ok(out)
    }

    /// `recipient`'s answer to request `id`: "not found" unless it was routed there.
    pub(crate) async fn answer_as_recipient(
        &self,
        recipient: &Recipient,
        id: &str,
        body: RecipientAnswerBody,
    ) -> Result<RecipientView, HubError> {
        let not_found = || HubError::NotFound(format!("request `{id}` routed to you"));
        let id: ResidentRequestId = id.parse().map_err(|_| not_found())?;
        let answer = RecipientAnswer::parse(&body.answer)
            .filter(|a| *a != RecipientAnswer::Pending)
            .ok_or_else(|| {
                HubError::Malformed(format!(
                    "`answer` must be done, refused or partly, not `{}`",
                    body.answer
                ))
            })?;
        let note = body
            .note
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty());
        check_answer(answer, note).map_err(|e| HubError::Malformed(e.to_string()))?;
        let draft = RecipientAnswerDraft {
            request: id,
            recipient,
            answer,
            note,
            at: now_ms(),
        };
        match self.store().answer_routed_request(&draft).await? {
            AnswerOutcome::Answered {
                recipients, entry, ..
            } => {
                tracing::info!(
                    seq = entry.seq,
                    answer = answer.as_str(),
                    "routed request answered"
                );
                recipients
                    .into_iter()
                    .find(|r| &r.recipient == recipient)
                    .map(RecipientView::from)
                    .ok_or_else(not_found)
            }
            AnswerOutcome::NotARecipient => Err(not_found()),
            AnswerOutcome::AlreadyAnswered(a) => Err(HubError::Forbidden(format!(
                "this request was already answered `{}`, which is final",
                a.as_str()
            ))),
        }
    }

    /// An operator moves a request's due date, with a reason the resident reads.
    pub async fn extend_request(
        &self,
        operator: &OperatorId,
        id: ResidentRequestId,
        body: ExtensionBody,
    ) -> Result<ResidentRequest, HubError> {
        let request = self
            .store()
            .requests(None)
            .await?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| HubError::NotFound(format!("resident request `{id}`")))?;
        let until =
            DateTime::from_timestamp_millis(body.due_at.timestamp_millis()).unwrap_or(body.due_at);
        let reason = check_extension(&request, until, &body.reason).map_err(|e| match e {
            renkei_domain::RightsError::Closed => HubError::Forbidden(e.to_string()),
            _ => HubError::Malformed(e.to_string()),
        })?;
        let action = OperatorAction::ExtendRequest {
            request: id,
            due_at: until,
        };
        let actor = OperatorActor::Operator {
            id: operator.clone(),
        };
        self.store()
            .extend_request(id, until, &reason, &actor, &action)
            .await?
            .ok_or_else(|| HubError::NotFound(format!("resident request `{id}`")))
    }

    /// The operators' summary: open requests, the overdue ones at `now`, the extended ones.
    pub async fn request_summary(&self, now: DateTime<Utc>) -> Result<RequestSummary, HubError> {
        let requests = self.store().requests(None).await?;
        let open: Vec<&ResidentRequest> = requests.iter().filter(|r| r.status.is_open()).collect();
        let overdue: Vec<ResidentRequest> = open
            .iter()
            .filter(|r| r.is_overdue(now))
            .map(|r| (*r).clone())
            .collect();
        let recipients = self.recipients_of(&overdue).await?;
        let mut listed: Vec<OverdueRequestView> = overdue
            .iter()
            .map(|r| OverdueRequestView {
                id: r.id.to_string(),
                kind: r.kind.as_str().to_owned(),
                filed_at: r.filed_at,
                due_at: r.due_at,
                days_overdue: (now - r.due_at).num_days(),
                pending_recipients: recipients.get(&r.id).map_or(0, |rs| {
                    rs.iter()
                        .filter(|x| x.answer == RecipientAnswer::Pending)
                        .count()
                }),
            })
            .collect();
        listed.sort_by_key(|r| r.due_at);
        Ok(RequestSummary {
            answer_days: self.config().request_answer_days,
            open: open.len(),
            extended: open.iter().filter(|r| r.extension_reason.is_some()).count(),
            overdue: listed,
        })
    }
}
