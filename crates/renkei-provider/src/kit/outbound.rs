//! The kit's outbound-only mode: a provider that may not accept connections (三層分離)
//! asks the hub for grants with HTTP long polls and posts the answers back. It answers a
//! grant exactly as the inbound endpoint does ([`Provider::answer_grant`]): the same checks,
//! the same sealed payload, the same access-log line.
//!
//! Several polls are kept going at once, and a poll's grants are answered in the background
//! while its link polls again, so the provider always has a poll parked at the hub (a hub
//! with no poll parked, and none lately, fails requests for this provider at once) and a
//! grant never waits behind a slow answer. Ready answers queue for a few posters; each
//! post takes every answer queued, so under load one request (and one token check at the
//! hub) carries many answers, and when idle an answer goes alone, at once.

use std::sync::Arc;
use std::time::Duration;

use axum::body::to_bytes;
use renkei_protocol::outbound::{
    AnswerBatch, AnswerBatchResult, PollAnswer, PollRequest, PolledGrant, TicketAnswer,
};
use serde_json::value::RawValue;
use tokio::sync::{Mutex, mpsc};

use crate::Provider;

/// How long the hub holds a poll open when no grant comes (the hub caps it too).
pub const POLL_WAIT: Duration = Duration::from_secs(25);
/// The most grants one poll takes.
pub const POLL_MAX: usize = 32;
/// The largest answer the kit reads back from its own answer path before posting it.
const ANSWER_LIMIT: usize = 64 * 1024 * 1024;
/// The most answers one post carries.
const POST_MAX: usize = 256;
/// The first and the longest pause after a failed poll.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(200), Duration::from_secs(30));

/// Where the kit gets the bearer token each call to the hub carries.
#[async_trait::async_trait]
pub trait HubCredentials: Send + Sync + 'static {
    async fn bearer(&self) -> Result<String, String>;
}

/// Starts `pollers` polling loops against `hub` for `provider`, and as many posters of
/// their answers; they run while the provider lives.
pub fn start(
    client: reqwest::Client,
    hub: String,
    provider: &Arc<Provider>,
    credentials: Arc<dyn HubCredentials>,
    pollers: usize,
) -> Vec<tokio::task::JoinHandle<()>> {
    let hub = hub.trim_end_matches('/').to_owned();
    let (ready, queued) = mpsc::unbounded_channel();
    let queued = Arc::new(Mutex::new(queued));
    let links = (0..pollers.max(1)).map(|_| {
        let link = Link {
            client: client.clone(),
            hub: hub.clone(),
            provider: Arc::downgrade(provider),
            credentials: credentials.clone(),
            ready: ready.clone(),
        };
        tokio::spawn(link.run())
    });
    let posters = (0..pollers.max(1)).map(|_| {
        let poster = Poster {
            client: client.clone(),
            hub: hub.clone(),
            credentials: credentials.clone(),
            queued: queued.clone(),
        };
        tokio::spawn(poster.run())
    });
    links.chain(posters).collect()
}

#[derive(Clone)]
struct Link {
    client: reqwest::Client,
    hub: String,
    provider: std::sync::Weak<Provider>,
    credentials: Arc<dyn HubCredentials>,
    /// Where answers wait for a poster.
    ready: mpsc::UnboundedSender<TicketAnswer>,
}

impl Link {
    async fn run(self) {
        let mut pause = BACKOFF.0;
        loop {
            if self.provider.strong_count() == 0 {
                return;
            }
            match self.poll_once().await {
                Ok(()) => pause = BACKOFF.0,
                Err(e) => {
                    tracing::warn!(error = %e, pause_ms = pause.as_millis(), "polling the hub failed");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(BACKOFF.1);
                }
            }
        }
    }

    /// One poll; the answers to whatever it brought are posted in the background.
    async fn poll_once(&self) -> Result<(), String> {
        let bearer = self.credentials.bearer().await?;
        let wait_ms = u64::try_from(POLL_WAIT.as_millis()).unwrap_or(u64::MAX);
        let response = self
            .client
            .post(format!("{}/v1/provider/poll", self.hub))
            .bearer_auth(&bearer)
            .timeout(POLL_WAIT + Duration::from_secs(10))
            .json(&PollRequest {
                max: POLL_MAX,
                wait_ms,
            })
            .send()
            .await
            .map_err(|e| format!("the poll: {e}"))?;
        if !response.status().is_success() {
            return Err(format!(
                "the hub answered the poll with {}",
                response.status()
            ));
        }
        let polled: PollAnswer = response
            .json()
            .await
            .map_err(|e| format!("the hub's answer to the poll: {e}"))?;
        // The answers go on in tasks of their own while this link polls again at once: a
        // grant that arrives meanwhile must not wait for the slowest answer of this batch.
        for grant in polled.grants {
            let ready = self.ready.clone();
            let Some(provider) = self.provider.upgrade() else {
                return Ok(());
            };
            tokio::spawn(async move {
                match answer(&provider, &grant).await {
                    // The posters end only when every link and answer has, so this is sent.
                    Ok(answer) => drop(ready.send(answer)),
                    // One answer lost is the hub's timeout for that request, not a reason
                    // to stop.
                    Err(e) => tracing::warn!(error = %e, "a grant went unanswered"),
                }
            });
        }
        Ok(())
    }
}

/// The kit's answer to one polled grant, as its inbound endpoint would have answered.
async fn answer(provider: &Provider, polled: &PolledGrant) -> Result<TicketAnswer, String> {
    let response = provider.answer_grant(Some(&polled.grant)).await;
    let status = response.status().as_u16();
    let bytes = to_bytes(response.into_body(), ANSWER_LIMIT)
        .await
        .map_err(|e| format!("reading the kit's own answer: {e}"))?;
    let text = String::from_utf8(bytes.to_vec())
        .map_err(|e| format!("the kit's own answer is not text: {e}"))?;
    let body = RawValue::from_string(text)
        .map_err(|e| format!("the kit's own answer is not JSON: {e}"))?;
    Ok(TicketAnswer {
        ticket: polled.ticket,
        status,
        body,
    })
}

/// Posts queued answers, all that are queued at once.
struct Poster {
    client: reqwest::Client,
    hub: String,
    credentials: Arc<dyn HubCredentials>,
    queued: Arc<Mutex<mpsc::UnboundedReceiver<TicketAnswer>>>,
}

impl Poster {
    async fn run(self) {
        loop {
            let answers = {
                // One poster waits for the next answer; the others wait for the lock, so
                // each post takes what queued while the previous ones were on the wire.
                let mut queued = self.queued.lock().await;
                let Some(first) = queued.recv().await else {
                    return;
                };
                let mut answers = vec![first];
                while answers.len() < POST_MAX {
                    match queued.try_recv() {
                        Ok(next) => answers.push(next),
                        Err(_) => break,
                    }
                }
                answers
            };
            let count = answers.len();
            // Lost answers are their requests' timeouts at the hub, not a reason to stop.
            match self.post(AnswerBatch { answers }).await {
                Ok(result) if !result.refused.is_empty() => {
                    tracing::warn!(refused = result.refused.len(), "the hub refused answers");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, count, "answers did not reach the hub"),
            }
        }
    }

    async fn post(&self, batch: AnswerBatch) -> Result<AnswerBatchResult, String> {
        let bearer = self.credentials.bearer().await?;
        let posted = self
            .client
            .post(format!("{}/v1/provider/answers", self.hub))
            .bearer_auth(bearer)
            .json(&batch)
            .send()
            .await
            .map_err(|e| format!("posting answers: {e}"))?;
        if !posted.status().is_success() {
            return Err(format!("the hub refused answers: {}", posted.status()));
        }
        posted
            .json()
            .await
            .map_err(|e| format!("the hub's answer to the answers: {e}"))
    }
}
