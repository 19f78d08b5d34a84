//! Outbound-only providers at the hub: their routes (the long poll that takes grants, the
//! post that answers one) and the brokered request's side, a grant handed to the poll
//! ([`crate::outbound`]) and its answer classified as an inbound provider's would be.

use std::time::Duration;

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use renkei_domain::{ProviderConnection, ProviderId};
use renkei_protocol::envelope::SealedPayload;
use renkei_protocol::outbound::GrantAnswer;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api_identity::PROBLEM;
use crate::broker::{FetchOutcome, not_sealed, refusal};
use crate::outbound::RelayError;
use crate::problem::{ApiJson, ApiPath, Problem, ProblemKind};
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

/// What the provider's inbound endpoint would have answered
/// (`renkei_protocol::outbound::GrantAnswer`).
#[derive(Debug, ToSchema)]
#[expect(
    dead_code,
    reason = "only the API document reads it; the handler reads bytes"
)]
pub struct GrantAnswerBody {
    /// The HTTP status.
    pub status: u16,
    /// A sealed payload, or a problem saying why not.
    pub body: serde_json::Value,
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

/// An outbound-only provider's answer to the grant it took under `ticket`: the status and
/// body its inbound endpoint would have answered.
#[utoipa::path(post, path = "/v1/provider/answers/{ticket}", params(("ticket" = Uuid, Path)), request_body = GrantAnswerBody, security(("provider" = [])),
    responses((status = 204, description = "Relayed to the waiting request"), (status = 400, body = Problem, content_type = PROBLEM),
        (status = 401, body = Problem, content_type = PROBLEM),
        (status = 404, description = "No request of this provider waits under the ticket (answered already, or given up)", body = Problem, content_type = PROBLEM),
        (status = 413, description = "Larger than the request reads: it fails as too large", body = Problem, content_type = PROBLEM),
        (status = 415, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn answer(
    State(hub): State<Hub>,
    ProviderCaller(provider): ProviderCaller,
    ApiPath(ticket): ApiPath<Uuid>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, Response> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return Err(Problem::new(ProblemKind::MalformedRequest)
            .with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
            .detail("an answer is `application/json`")
            .into_response());
    }
    let relay = hub.outbound();
    let unknown = || HubError::NotFound(format!("ticket `{ticket}`")).into_response();
    let limit = relay.expected(&provider, ticket).ok_or_else(unknown)?;
    // Read no more than the waiting request would: an answer is held in memory whole.
    let Ok(bytes) = to_bytes(
        body,
        usize::try_from(limit + ANSWER_OVERHEAD).unwrap_or(usize::MAX),
    )
    .await
    else {
        let _ = relay.fail(&provider, ticket, RelayError::TooLarge { limit });
        return Err(Problem::new(ProblemKind::MalformedRequest)
            .with_status(StatusCode::PAYLOAD_TOO_LARGE)
            .detail(format!("an answer to this grant is at most {limit} bytes"))
            .into_response());
    };
    if serde_json::from_slice::<GrantAnswer>(&bytes).is_err() {
        let _ = relay.fail(&provider, ticket, RelayError::BadAnswer);
        return Err(Problem::new(ProblemKind::MalformedRequest)
            .detail("an answer is `{\"status\": <HTTP status>, \"body\": <JSON>}`")
            .into_response());
    }
    relay
        .answer(&provider, ticket, bytes.to_vec())
        .map_err(|_| unknown())?;
    Ok(StatusCode::NO_CONTENT)
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
        let body = self
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
        let answer: GrantAnswer = serde_json::from_slice(&body).map_err(|_| not_sealed())?;
        if !(200..300).contains(&answer.status) {
            return Err(refusal(answer.status, Some(&answer.body)));
        }
        serde_json::from_value::<SealedPayload>(answer.body).map_err(|_| not_sealed())
    }
}

impl Hub {
    /// Whether outbound-only `provider` is polling this replica now (or did a moment ago):
    /// a request for it would be handed to the poll rather than failed at once.
    pub fn outbound_connected(&self, provider: &ProviderId) -> bool {
        self.outbound().is_connected(provider)
    }
}
