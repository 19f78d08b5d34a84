//! Outbound-only providers at the hub: their routes (the long poll that takes grants, the
//! post that answers those ready) and the brokered request's side, a grant handed to the poll
//! ([`crate::outbound`]) and its answer classified as an inbound provider's would be.

use std::time::Duration;

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use renkei_domain::{ProviderConnection, ProviderId};
use renkei_protocol::envelope::SealedPayload;
use renkei_protocol::outbound::{AnswerBatch, GrantAnswer, TicketAnswer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api_identity::PROBLEM;
use crate::broker::{FetchOutcome, not_sealed, refusal};
use crate::outbound::RelayError;
use crate::problem::{ApiJson, Problem, ProblemKind};
use crate::provider_sync::ProviderCaller;
use crate::{Hub, HubError};

/// The longest a poll is held open: below the idle timeouts of common forward proxies.
const MAX_POLL_WAIT: Duration = Duration::from_secs(30);
/// The most grants one poll takes.
const MAX_POLL_GRANTS: usize = 256;
/// What an answer may carry besides the sealed payload it wraps (its status, the JSON
/// around it).
const ANSWER_OVERHEAD: u64 = 1024;

/// A provider's poll (`renkei_protocol::outbound::PollRequest`, as the API document shows it).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PollBody {
    /// The most grants this poll takes (the hub takes at most 256).
    pub max: usize,
    /// How long the hub may hold the poll open when no grant is waiting, in milliseconds
    /// (at most 30,000).
    pub wait_ms: u64,
}

/// The grants waiting, none when the wait ran out (`renkei_protocol::outbound::PollAnswer`).
#[derive(Debug, Serialize, ToSchema)]
pub struct PollView {
    pub grants: Vec<PolledGrantView>,
}

/// One grant, answered under its ticket.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolledGrantView {
    pub ticket: Uuid,
    /// The hub-signed grant, as an inbound provider receives it in `Authorization`.
    pub grant: String,
}

/// Answers an outbound provider had ready (`renkei_protocol::outbound::AnswerBatch`).
#[derive(Debug, ToSchema)]
#[expect(
    dead_code,
    reason = "only the API document reads it; the handler reads bytes"
)]
pub struct AnswerBatchBody {
    pub answers: Vec<TicketAnswerBody>,
}

/// What the provider's inbound endpoint would have answered to the grant taken under
/// `ticket` (`renkei_protocol::outbound::TicketAnswer`).
#[derive(Debug, ToSchema)]
#[expect(
    dead_code,
    reason = "only the API document reads it; the handler reads bytes"
)]
pub struct TicketAnswerBody {
    pub ticket: Uuid,
    /// The HTTP status.
    pub status: u16,
    /// A sealed payload, or a problem saying why not.
    pub body: serde_json::Value,
}

/// What the hub did with each answer of a batch
/// (`renkei_protocol::outbound::AnswerBatchResult`).
#[derive(Debug, Serialize, ToSchema)]
pub struct AnswerBatchView {
    /// How many answers reached the request waiting for them.
    pub relayed: usize,
    /// Tickets under which no request of this provider waits (answered already, given up,
    /// or never this provider's).
    pub unknown: Vec<Uuid>,
    /// Tickets whose answer was not an answer, or larger than its request reads: that
    /// request fails as a bad or too large answer from an inbound provider would.
    pub refused: Vec<Uuid>,
}

/// Refuses a provider registered with an endpoint: the hub sends its grants there, so a
/// poll of its own would only take them from nobody.
async fn outbound_only(hub: &Hub, provider: &ProviderId) -> Result<(), HubError> {
    match hub.store().provider(provider).await? {
        Some(p) if p.connection == ProviderConnection::Outbound => Ok(()),
        _ => Err(HubError::Forbidden(format!(
            "provider `{provider}` is registered with an endpoint, not as outbound-only"
        ))),
    }
}

/// An outbound-only provider's long poll: the grants waiting for it, or none when `wait_ms`
/// (at most 30 s) passes first. Answer each under its ticket.
#[utoipa::path(post, path = "/v1/provider/poll", request_body = PollBody, security(("provider" = [])),
    responses((status = 200, body = PollView), (status = 400, body = Problem, content_type = PROBLEM),
        (status = 401, body = Problem, content_type = PROBLEM),
        (status = 403, description = "The provider is registered with an endpoint", body = Problem, content_type = PROBLEM),
        (status = 415, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn poll(
    State(hub): State<Hub>,
    ProviderCaller(provider): ProviderCaller,
    ApiJson(body): ApiJson<PollBody>,
) -> Result<Json<PollView>, HubError> {
    outbound_only(&hub, &provider).await?;
    let wait = Duration::from_millis(body.wait_ms).min(MAX_POLL_WAIT);
    let tickets = hub
        .outbound()
        .poll(&provider, body.max.clamp(1, MAX_POLL_GRANTS), wait)
        .await;
    Ok(Json(PollView {
        grants: tickets
            .into_iter()
            .map(|t| PolledGrantView {
                ticket: t.ticket,
                grant: t.grant,
            })
            .collect(),
    }))
}

/// An outbound-only provider's answers to grants it took, as many as it has ready: each
/// the status and body its inbound endpoint would have answered, under the grant's ticket.
/// The body is read up to what the requests waiting for this provider read between them.
#[utoipa::path(post, path = "/v1/provider/answers", request_body = AnswerBatchBody, security(("provider" = [])),
    responses((status = 200, description = "Each answer relayed, or why not", body = AnswerBatchView), (status = 400, body = Problem, content_type = PROBLEM),
        (status = 401, body = Problem, content_type = PROBLEM),
        (status = 413, description = "Larger than the requests waiting read between them: nothing is relayed", body = Problem, content_type = PROBLEM),
        (status = 415, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn answers(
    State(hub): State<Hub>,
    ProviderCaller(provider): ProviderCaller,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<AnswerBatchView>, Response> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return Err(Problem::new(ProblemKind::MalformedRequest)
            .with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
            .detail("answers are `application/json`")
            .into_response());
    }
    let relay = hub.outbound();
    // Read no more than the waiting requests would: answers are held in memory whole.
    let (waiting, expected) = relay.expected_total(&provider);
    let overhead =
        ANSWER_OVERHEAD.saturating_mul(u64::try_from(waiting.max(1)).unwrap_or(u64::MAX));
    let limit = expected.saturating_add(overhead);
    let Ok(bytes) = to_bytes(body, usize::try_from(limit).unwrap_or(usize::MAX)).await else {
        return Err(Problem::new(ProblemKind::MalformedRequest)
            .with_status(StatusCode::PAYLOAD_TOO_LARGE)
            .detail(format!(
                "answers to this provider's waiting requests are at most {limit} bytes in all"
            ))
            .into_response());
    };
    let answers = parse_answers(&bytes).ok_or_else(|| {
        Problem::new(ProblemKind::MalformedRequest)
            .detail("answers are `{\"answers\": [{\"ticket\": <ticket>, \"status\": <HTTP status>, \"body\": <JSON>}]}`")
            .into_response()
    })?;
    let mut view = AnswerBatchView {
        relayed: 0,
        unknown: Vec::new(),
        refused: Vec::new(),
    };
    for (ticket, answer) in answers {
        let outcome = match (answer, relay.expected(&provider, ticket)) {
            (_, None) => Err(()),
            (Some(answer), Some(limit)) if answer.body.get().len() as u64 <= limit => relay
                .answer(&provider, ticket, answer)
                .map(|()| true)
                .map_err(|_| ()),
            (Some(_), Some(limit)) => relay
                .fail(&provider, ticket, RelayError::TooLarge { limit })
                .map(|()| false)
                .map_err(|_| ()),
            (None, Some(_)) => relay
                .fail(&provider, ticket, RelayError::BadAnswer)
                .map(|()| false)
                .map_err(|_| ()),
        };
        match outcome {
            Ok(true) => view.relayed += 1,
            Ok(false) => view.refused.push(ticket),
            Err(()) => view.unknown.push(ticket),
        }
    }
    Ok(Json(view))
}

/// The answers in a batch, each under its ticket, `None` where the item names a ticket but
/// is not an answer; `None` for the whole when it is not a batch.
fn parse_answers(bytes: &[u8]) -> Option<Vec<(Uuid, Option<GrantAnswer>)>> {
    #[derive(Deserialize)]
    struct Loose {
        answers: Vec<Box<RawValue>>,
    }
    #[derive(Deserialize)]
    struct TicketOnly {
        ticket: Uuid,
    }
    // The common case parses once; only a batch with a bad item is looked at item by item.
    if let Ok(batch) = serde_json::from_slice::<AnswerBatch>(bytes) {
        return Some(
            batch
                .answers
                .into_iter()
                .map(|a| {
                    let (ticket, answer) = a.into_answer();
                    (ticket, Some(answer))
                })
                .collect(),
        );
    }
    let loose: Loose = serde_json::from_slice(bytes).ok()?;
    let items = loose.answers.iter().filter_map(|item| {
        match serde_json::from_str::<TicketAnswer>(item.get()) {
            Ok(a) => Some((a.ticket, Some(a.into_answer().1))),
            Err(_) => serde_json::from_str::<TicketOnly>(item.get())
                .ok()
                .map(|t| (t.ticket, None)),
        }
    });
    Some(items.collect())
}

impl Hub {
    /// Asks an outbound provider through its poll, reading at most `limit` bytes of its
    /// answer: the same outcomes as [`Hub::fetch`] for an inbound one.
    pub(crate) async fn fetch_outbound(
        &self,
        provider: &ProviderId,
        grant: String,
        limit: u64,
    ) -> FetchOutcome {
        let timeout = self.config().provider_timeout;
        let answer = self
            .outbound()
            .send(provider, grant, limit, timeout)
            .await
            .map_err(|e| match e {
                RelayError::NotConnected => (
                    "provider-unreachable",
                    "the provider is not connected to the hub".to_owned(),
                ),
                RelayError::Timeout => (
                    "provider-timeout",
                    format!("no answer within {} ms", timeout.as_millis()),
                ),
                RelayError::TooLarge { .. } => ("provider-answer-too-large", e.to_string()),
                RelayError::BadAnswer => not_sealed(),
            })?;
        if !(200..300).contains(&answer.status) {
            let problem = serde_json::from_str(answer.body.get()).ok();
            return Err(refusal(answer.status, problem.as_ref()));
        }
        serde_json::from_str::<SealedPayload>(answer.body.get()).map_err(|_| not_sealed())
    }
}

impl Hub {
    /// Whether outbound-only `provider` is polling this replica now (or did a moment ago):
    /// a request for it would be handed to the poll rather than failed at once.
    pub fn outbound_connected(&self, provider: &ProviderId) -> bool {
        self.outbound().is_connected(provider)
    }
}
