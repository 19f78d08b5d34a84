//! The brokered data request (flow 3): decide and record, sign one grant per provider,
//! fetch from the providers in parallel, relay their sealed answers.
//!
//! Decisions go through [`DecisionBatcher`]: concurrent requests are decided and recorded
//! together in one storage transaction (group commit), so many share one fsync.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use renkei_domain::{
    CategoryId, DataRequest, Decision, Grounds, LocationPrecision, Locator, ProviderConnection,
    ProviderDelivery, ProviderId, PurposeId, PurposeRef, RequestId, Service, ServiceId,
    ServiceSubject,
};
use renkei_protocol::envelope::SealedPayload;
use renkei_protocol::grant::{GrantClaims, sign_grant};
use renkei_store::{DecisionInput, Fulfilment, RecordedDecision, Store};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use utoipa::ToSchema;

use crate::metrics::Metrics;
use crate::{Hub, HubError, egress};

/// The most requests decided in one transaction.
const MAX_BATCH: usize = 256;

type Durable = Result<(), Failure>;
type Reply = oneshot::Sender<Result<(RecordedDecision, oneshot::Receiver<Durable>), Failure>>;

/// Why a batch failed, shared by every request in it.
#[derive(Debug, Clone)]
enum Failure {
    /// Storage was out of reach or could not write: `503`, try again.
    Unavailable,
    /// Anything else: its cause without personal data ([`crate::error::store_cause`]),
    /// logged once the failure reaches a response.
    Internal(String),
}

impl Failure {
    fn of(e: &renkei_store::StoreError) -> Self {
        if e.is_unavailable() {
            Self::Unavailable
        } else {
            Self::Internal(crate::error::store_cause(e))
        }
    }
}

impl From<Failure> for HubError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Unavailable => Self::StorageUnavailable,
            Failure::Internal(cause) => Self::internal_cause("recording a decision batch", cause),
        }
    }
}

/// Queues decisions for a single task that records them in batches.
pub struct DecisionBatcher {
    queue: mpsc::Sender<(DecisionInput, Reply)>,
}

/// A decision whose record is committing: wait for it before anything reaches the service.
#[must_use = "a decision may be acted on only once its record is durable"]
pub struct PendingRecord {
    durable: oneshot::Receiver<Durable>,
}

impl PendingRecord {
    /// Returns once the decision's access record is durable; an error if its commit failed.
    pub async fn durable(self) -> Result<(), HubError> {
        self.durable
            .await
            .map_err(|_| HubError::internal("decision recorder stopped"))?
            .map_err(HubError::from)
    }
}

impl DecisionBatcher {
    /// Starts the recording task (needs a Tokio runtime; see `record_batches`).
    pub fn start(store: Arc<dyn Store>, metrics: Arc<Metrics>) -> Self {
        let (queue, rx) = mpsc::channel::<(DecisionInput, Reply)>(4096);
        tokio::spawn(record_batches(store, rx, metrics));
        Self { queue }
    }

    /// Decides one request and writes its record; the record is still committing when this
    /// returns, and [`PendingRecord::durable`] says when it is durable.
    pub async fn decide_pending(
        &self,
        input: DecisionInput,
    ) -> Result<(RecordedDecision, PendingRecord), HubError> {
        let (tx, rx) = oneshot::channel();
        self.queue
            .send((input, tx))
            .await
            .map_err(|_| HubError::internal("decision recorder stopped"))?;
        let (decision, durable) = rx
            .await
            .map_err(|_| HubError::internal("decision recorder stopped"))?
            .map_err(HubError::from)?;
        Ok((decision, PendingRecord { durable }))
    }

    /// Decides and durably records one request; returns once the record is committed.
    pub async fn decide(&self, input: DecisionInput) -> Result<RecordedDecision, HubError> {
        let (decision, record) = self.decide_pending(input).await?;
        record.durable().await?;
        Ok(decision)
    }
}

/// Drains the queue into `decide_and_stage` batches of up to [`MAX_BATCH`], hands each
/// request its decision at once, commits, and tells each request when its record is durable.
///
/// While storage is unavailable a batch fails within the store's connection timeout, and so
/// does every request queued meanwhile, at once: none waits for a batch of its own to time
/// out behind the one before it. The next request starts a new attempt, so the batcher
/// recovers by itself once storage is back.
async fn record_batches(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<(DecisionInput, Reply)>,
    metrics: Arc<Metrics>,
) {
    let mut pending = Vec::with_capacity(MAX_BATCH);
    let mut making_durable = tokio::task::JoinSet::new();
    while rx.recv_many(&mut pending, MAX_BATCH).await > 0 {
        while making_durable.try_join_next().is_some() {}
        let (inputs, replies): (Vec<_>, Vec<_>) = pending.drain(..).unzip();
        // INVARIANT: `now` is taken after every request in the batch was queued, so a
        // request that started after a revocation was answered is decided after it.
        let started = std::time::Instant::now();
        let staged = match store.decide_and_stage(&inputs, Utc::now()).await {
            Ok(staged) => staged,
            Err(e) => {
                let failure = Failure::of(&e);
                let mut failed = replies;
                if let Failure::Unavailable = failure {
                    // The queued requests would meet the same outage: they fail with this batch.
                    while let Ok((_, reply)) = rx.try_recv() {
                        failed.push(reply);
                    }
                }
                tracing::error!(error = %e, batch = inputs.len(), failed = failed.len(), "deciding a batch failed");
                for reply in failed {
                    let _ = reply.send(Err(failure.clone()));
                }
                continue;
            }
        };
        // The decisions go out at once, so providers are asked while the commit's
        // fsync runs; each request then waits for `durable` before it answers.
        let mut durable = Vec::with_capacity(replies.len());
        for (reply, decision) in replies.into_iter().zip(staged.decisions) {
            metrics.decision(&decision.decision);
            let (tx, rx) = oneshot::channel();
            durable.push(tx);
            let _ = reply.send(Ok((decision, rx)));
        }
        // Once committed, the writer is free: the next batch is decided while this one's
        // records are made durable (on SQLite, an fsync several batches may share).
        let batch = inputs.len();
        let durability = staged.commit.await;
        let metrics = metrics.clone();
        making_durable.spawn(async move {
            let outcome = match durability {
                Ok(durability) => durability.wait().await,
                Err(e) => Err(e),
            }
            .inspect(|()| metrics.batch(batch, started.elapsed()))
            .map_err(|e| {
                tracing::error!(error = %e, batch, "recording decisions failed");
                Failure::of(&e)
            });
            for tx in durable {
                let _ = tx.send(outcome.clone());
            }
        });
    }
    // Dropping the set would abort its tasks: every request still waiting is told first.
    while making_durable.join_next().await.is_some() {}
}

/// A service's request for one resident's data, for one purpose.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DataRequestBody {
    /// The resident, as this service knows them (pairwise subject).
    #[schema(value_type = crate::schemas::Subject)]
    pub subject: String,
    #[schema(value_type = crate::schemas::Slug)]
    pub purpose: String,
    /// The data categories wanted; all must be covered by the resident's consent.
    #[schema(value_type = Vec<crate::schemas::Slug>, min_items = 1)]
    pub categories: Vec<String>,
}

/// The answer to a granted data request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DataResponse {
    pub request_id: String,
    /// `true` when every provider answered.
    pub complete: bool,
    pub results: Vec<ProviderResult>,
    /// Categories the consent covers but for which no provider holds data on this resident.
    pub not_held: Vec<String>,
    /// The log's signed promise that this request's access record holds a position in the
    /// access log: a C2SP signed note by the log's checkpoint key whose text is the log's
    /// origin, `inclusion promise`, the position and the record's base64 leaf hash. Whoever
    /// keeps it can show later that the entry existed (`renkei log verify --promise`), even
    /// before a checkpoint covered it.
    pub log_promise: String,
}

/// One provider's part of the answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProviderResult {
    pub provider: String,
    pub categories: Vec<String>,
    /// `ok`, or why the provider's part is missing: `provider-timeout`,
    /// `provider-unreachable` (also when its endpoint is not an address the hub may reach),
    /// `provider-refused`, `provider-bad-answer`, `provider-answer-too-large` (more than the
    /// provider's limit; the rest was not read), `hub-failure` (no grant could be signed).
    pub status: String,
    /// The provider's answer, sealed to the service's key (HPKE): the hub cannot read it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<SealedPayloadView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// An HPKE envelope (RFC 9180): `enc` and `ciphertext` in base64url.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SealedPayloadView {
    pub suite: String,
    pub enc: String,
    pub ciphertext: String,
}

impl From<SealedPayload> for SealedPayloadView {
    fn from(p: SealedPayload) -> Self {
        Self {
            suite: p.suite,
            enc: p.enc,
            ciphertext: p.ciphertext,
        }
    }
}

impl Hub {
    /// Flow 3: decide, record, fetch and relay. `token_id` is the `jti` of the service's
    /// client-credentials token, for the decision to check against revoked tokens.
    pub async fn request_data(
        &self,
        service: &ServiceId,
        token_id: Option<String>,
        body: DataRequestBody,
    ) -> Result<DataResponse, HubError> {
        // Counted before anything is decided: a refused request is an access record too
        // (`unknown-subject` ones included), so this bounds what a service can append.
        self.limit_data_request(service)?;
        let (request, subject) = parse_request(service, body)?;
        self.resident_requested(service);
        let id = request.id;
        let (recorded, record) = self
            .decisions()
            .decide_pending(DecisionInput {
                request: request.clone(),
                subject,
                token_id,
            })
            .await?;
        let grounds = match recorded.decision {
            Decision::Granted(grounds) => grounds,
            Decision::Denied(reason) => {
                record.durable().await?;
                return Err(HubError::Denied {
                    request: id,
                    reason,
                });
            }
        };
        // The decision read the service and providers in its transaction: no second look-up.
        let service = recorded
            .service
            .clone()
            .ok_or_else(|| HubError::UnknownService(service.to_string()))?;
        let providers: BTreeMap<ProviderId, (ProviderConnection, u64)> = recorded
            .providers
            .iter()
            .map(|p| {
                let limit = p
                    .max_answer_bytes
                    .unwrap_or(self.config().provider_answer_limit);
                (p.id.clone(), (p.connection.clone(), limit))
            })
            .collect();
        let held: BTreeSet<&CategoryId> = recorded.locators.iter().map(|l| &l.category).collect();
        let not_held = request
            .categories
            .iter()
            .filter(|c| !held.contains(c))
            .map(|c| c.to_string())
            .collect();

        let log_promise = renkei_log::promise::Promise::new(
            &self.keys().log.origin,
            recorded.record.seq,
            recorded.leaf,
        )
        .and_then(|p| p.sign(&self.keys().log.signer))
        .map_err(|e| HubError::internal(format!("inclusion promise: {e}")))?;
        let now = Utc::now();
        // INVARIANT: providers may be asked before the access record is durable (they answer
        // sealed to the service, so the hub holds nothing it could read), but no answer goes
        // to the service until `record.durable()` returned: a crash before the commit loses
        // the request and its record together.
        // A granted decision read the current purpose, whose version its record states.
        let purpose_version = recorded
            .record
            .purpose_version
            .ok_or_else(|| HubError::internal("a granted record without a purpose version"))?;
        let location = self.location_precisions(&request, purpose_version).await?;
        let mut fetches = Vec::new();
        let (request, grounds, service, location) = (&request, &grounds, &service, &location);
        for ((provider, reference), categories) in group_by_provider(&recorded.locators) {
            let connection = providers.get(&provider).cloned();
            fetches.push(async move {
                // The decision checked what a grant needs of the service (its key); a grant
                // that still cannot be signed fails this provider's part, never the whole
                // request after its record said granted. Signed here, so that grants signed
                // in a token are signed concurrently.
                let grant = self
                    .grant(
                        request,
                        (grounds, purpose_version),
                        service,
                        &provider,
                        &reference,
                        (&categories, location),
                        now,
                    )
                    .await;
                let outcome = match (connection, grant) {
                    (_, Err(e)) => {
                        tracing::error!(provider = %provider, error = %e, "a grant could not be signed");
                        Err((
                            "hub-failure",
                            "the hub could not sign a grant for this provider".to_owned(),
                        ))
                    }
                    (Some((ProviderConnection::Inbound { endpoint }, limit)), Ok(grant)) => {
                        self.fetch(&endpoint, &grant, limit).await
                    }
                    (Some((ProviderConnection::Outbound, limit)), Ok(grant)) => {
                        self.fetch_outbound(&provider, grant, limit).await
                    }
                    (None, Ok(_)) => Err((
                        "provider-unreachable",
                        "the provider has no endpoint".to_owned(),
                    )),
                };
                (provider, categories, outcome)
            });
        }
        // The fetches run concurrently in this request's own task: they only wait on their
        // providers, so a task each would add a spawn and a join and buy nothing.
        let (outcomes, durable) = tokio::join!(join_all(fetches), record.durable());
        durable?;
        if let Some(resident) = recorded.record.resident {
            self.record_fulfilment(request, resident, &outcomes).await;
        }
        for (provider, _, outcome) in &outcomes {
            if let Err((status, detail)) = outcome {
                self.metrics().provider_failure(provider.as_str(), status);
                self.grant_refused(provider, &service.id, detail);
            }
        }
        let mut results = results(outcomes);
        results.sort_by(|a, b| a.provider.cmp(&b.provider));
        let complete = results.iter().all(|r| r.status == "ok");
        if !results.is_empty() && results.iter().all(|r| r.status != "ok") {
            let failures = serde_json::to_value(&results).unwrap_or_default();
            return Err(HubError::ProviderFailure {
                request: id,
                failures,
            });
        }
        Ok(DataResponse {
            request_id: id.to_string(),
            complete,
            results,
            not_held,
            log_promise,
        })
    }

    /// Appends what the request came to when any provider did not deliver, before the service
    /// hears it. A failure to append is logged and the answer goes out all the same: the access
    /// record already says granted, which never understates what was released.
    async fn record_fulfilment(
        &self,
        request: &DataRequest,
        resident: renkei_domain::ResidentId,
        outcomes: &[(ProviderId, Vec<CategoryId>, FetchOutcome)],
    ) {
        if outcomes.iter().all(|(_, _, outcome)| outcome.is_ok()) {
            return;
        }
        // A provider holding the resident under two references gets two grants: it
        // delivered if either part reached the service.
        let mut providers = BTreeMap::new();
        for (provider, _, outcome) in outcomes {
            let delivery = match outcome {
                Ok(_) => ProviderDelivery::Delivered,
                Err((status, _)) => ProviderDelivery::Failed {
                    reason: (*status).to_owned(),
                },
            };
            let slot = providers
                .entry(provider.clone())
                .or_insert(delivery.clone());
            if delivery == ProviderDelivery::Delivered {
                *slot = delivery;
            }
        }
        let fulfilment = Fulfilment {
            request: request.id,
            service: request.service.clone(),
            resident,
            providers,
        };
        if let Err(e) = self
            .store()
            .record_fulfilment(&fulfilment, Utc::now())
            .await
        {
            tracing::error!(error = %e, "recording what a request came to failed");
        }
    }

    #[expect(clippy::too_many_arguments, reason = "each is one claim of the grant")]
    async fn grant(
        &self,
        request: &DataRequest,
        (grounds, purpose_version): (&Grounds, u32),
        service: &Service,
        provider: &ProviderId,
        reference: &str,
        (categories, location): (&[CategoryId], &BTreeMap<CategoryId, LocationPrecision>),
        now: DateTime<Utc>,
    ) -> Result<String, HubError> {
        // A grant lives at least a second (`exp` after `iat`) and at most a minute.
        let lifetime = i64::try_from(self.config().grant_lifetime.as_secs())
            .unwrap_or(30)
            .clamp(1, 60);
        let claims = GrantClaims {
            iss: self.config().issuer.clone(),
            aud: provider.clone(),
            sub: reference.to_owned(),
            jti: uuid::Uuid::new_v4(),
            iat: now.timestamp(),
            exp: now.timestamp() + lifetime,
            request_id: request.id,
            service: request.service.clone(),
            purpose: request.purpose.clone(),
            purpose_version,
            categories: categories.to_vec(),
            service_hpke_key: service.hpke_public_key.clone(),
            consent: grounds.consent().map(|c| c.consent().id),
            emergency: grounds.declaration(),
            basis: grounds.basis().to_string(),
            location: location
                .iter()
                .filter(|(c, _)| categories.contains(c))
                .map(|(c, p)| (c.clone(), *p))
                .collect(),
        };
        self.keys()
            .sign_with(move |key| sign_grant(key, &claims))
            .await?
            .map_err(|e| HubError::internal(format!("grant signing: {e}")))
    }

    /// The precision each location category the request asks for is released at: the
    /// purpose's declared one, or the coarsest for a purpose that declared none
    /// ([`renkei_domain::location::grant_precision`]). Empty when no category asked for holds
    /// a location.
    async fn location_precisions(
        &self,
        request: &DataRequest,
        purpose_version: u32,
    ) -> Result<BTreeMap<CategoryId, LocationPrecision>, HubError> {
        let vocabulary = self.store().categories().await?;
        let located: Vec<&CategoryId> = request
            .categories
            .iter()
            .filter(|c| vocabulary.iter().any(|v| &v.id == *c && v.location))
            .collect();
        if located.is_empty() {
            return Ok(BTreeMap::new());
        }
        let purpose = self
            .store()
            .purpose_version(&PurposeRef {
                service: request.service.clone(),
                purpose: request.purpose.clone(),
                version: purpose_version,
            })
            .await?;
        let precision =
            renkei_domain::location::grant_precision(purpose.and_then(|p| p.location).as_ref());
        Ok(located
            .into_iter()
            .map(|c| (c.clone(), precision))
            .collect())
    }

    /// Asks one provider, reading at most `limit` bytes of its answer.
    pub(crate) async fn fetch(&self, endpoint: &str, grant: &str, limit: u64) -> FetchOutcome {
        let url = format!("{}/renkei/v1/fetch", endpoint.trim_end_matches('/'));
        let unreachable = || {
            (
                "provider-unreachable",
                "the provider's endpoint is not an address the hub may reach".to_owned(),
            )
        };
        let url = reqwest::Url::parse(&url).map_err(|_| unreachable())?;
        if let Err(why) = egress::check_destination(&url, self.config().allow_local_network) {
            tracing::warn!(error = %why, "refused to send a grant to a provider's endpoint");
            return Err(unreachable());
        }
        let response = self
            .http()
            .post(url)
            .bearer_auth(grant)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    (
                        "provider-timeout",
                        format!(
                            "no answer within {} ms",
                            self.config().provider_timeout.as_millis()
                        ),
                    )
                } else {
                    (
                        "provider-unreachable",
                        "could not connect to the provider".to_owned(),
                    )
                }
            })?;
        let status = response.status();
        if !status.is_success() {
            // A provider refusing a grant says why in a problem `type` (e.g. grant-replayed),
            // in a few hundred bytes: more is not read.
            let body = egress::read_limited(response, PROBLEM_LIMIT)
                .await
                .ok()
                .and_then(|body| serde_json::from_slice::<serde_json::Value>(&body).ok());
            return Err(refusal(status.as_u16(), body.as_ref()));
        }
        let body = egress::read_limited(response, limit)
            .await
            .map_err(|e| match e {
                egress::BodyError::TooLarge { limit } => (
                    "provider-answer-too-large",
                    format!("the provider's answer is larger than its limit of {limit} bytes"),
                ),
                egress::BodyError::Transport(e) if e.is_timeout() => (
                    "provider-timeout",
                    "the provider's answer did not arrive in time".to_owned(),
                ),
                egress::BodyError::Transport(_) => (
                    "provider-bad-answer",
                    "the provider's answer broke off".to_owned(),
                ),
            })?;
        serde_json::from_slice::<SealedPayload>(&body).map_err(|_| not_sealed())
    }
}

/// A provider's refusal of a grant, named by the problem `type` its answer gave, if any.
pub(crate) fn refusal(status: u16, body: Option<&serde_json::Value>) -> (&'static str, String) {
    let kind = body
        .and_then(|v| v.get("type"))
        .and_then(|t| t.as_str())
        .filter(|t| t.len() < 100 && t.starts_with("/problems/"));
    let detail = match kind {
        Some(kind) => format!("the provider answered HTTP {status}: {kind}"),
        None => format!("the provider answered HTTP {status}"),
    };
    ("provider-refused", detail)
}

/// A provider's answer that is not what a provider answers.
pub(crate) fn not_sealed() -> (&'static str, String) {
    (
        "provider-bad-answer",
        "the provider's answer is not a sealed payload".to_owned(),
    )
}

fn parse_request(
    service: &ServiceId,
    body: DataRequestBody,
) -> Result<(DataRequest, ServiceSubject), HubError> {
    let subject =
        ServiceSubject::new(body.subject).map_err(|e| HubError::Malformed(e.to_string()))?;
    let purpose = PurposeId::new(body.purpose).map_err(|e| HubError::Malformed(e.to_string()))?;
    if body.categories.is_empty() {
        return Err(HubError::Malformed(
            "`categories` must name at least one data category".into(),
        ));
    }
    let categories = body
        .categories
        .into_iter()
        .map(CategoryId::new)
        .collect::<Result<BTreeSet<_>, _>>()
        .map_err(|e| HubError::Malformed(e.to_string()))?;
    let request = DataRequest {
        id: RequestId::from_uuid(uuid::Uuid::now_v7()),
        service: service.clone(),
        purpose,
        categories,
    };
    Ok((request, subject))
}

/// The most the hub reads of a provider's refusal (a problem document).
const PROBLEM_LIMIT: u64 = 16 * 1024;

pub(crate) type FetchOutcome = Result<SealedPayload, (&'static str, String)>;

/// Every provider's part of the answer.
fn results(outcomes: Vec<(ProviderId, Vec<CategoryId>, FetchOutcome)>) -> Vec<ProviderResult> {
    let mut results = Vec::with_capacity(outcomes.len());
    for (provider, categories, outcome) in outcomes {
        let categories = categories.iter().map(|c| c.to_string()).collect();
        results.push(match outcome {
            Ok(payload) => ProviderResult {
                provider: provider.to_string(),
                categories,
                status: "ok".into(),
                payload: Some(payload.into()),
                detail: None,
            },
            Err((status, detail)) => {
                tracing::warn!(provider = %provider, status, "provider fetch failed");
                ProviderResult {
                    provider: provider.to_string(),
                    categories,
                    status: status.into(),
                    payload: None,
                    detail: Some(detail),
                }
            }
        });
    }
    results
}

/// One grant per provider and resident reference there.
fn group_by_provider(locators: &[Locator]) -> BTreeMap<(ProviderId, String), Vec<CategoryId>> {
    let mut groups: BTreeMap<(ProviderId, String), Vec<CategoryId>> = BTreeMap::new();
    for l in locators {
        groups
            .entry((l.provider.clone(), l.reference.clone()))
            .or_default()
            .push(l.category.clone());
    }
    groups
}
