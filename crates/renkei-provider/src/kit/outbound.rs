//! The kit's outbound-only mode: a provider that may not accept connections (三層分離)
//! asks the hub for grants with HTTP long polls and posts each answer back. It answers a
//! grant exactly as the inbound endpoint does ([`Provider::answer_grant`]): the same checks,
//! the same sealed payload, the same access-log line.
//!
//! Several polls are kept going at once, and a poll's answers are posted in the background
//! while its link polls again, so the provider always has a poll parked at the hub (a hub
//! with no poll parked, and none lately, fails requests for this provider at once) and a
//! grant never waits behind a slow answer.

use std::sync::Arc;
use std::time::Duration;

use axum::body::to_bytes;
use renkei_protocol::outbound::{GrantAnswer, PollAnswer, PollRequest, PolledGrant};

use crate::Provider;

/// How long the hub holds a poll open when no grant comes (the hub caps it too).
pub const POLL_WAIT: Duration = Duration::from_secs(25);
/// The most grants one poll takes.
pub const POLL_MAX: usize = 32;
/// The largest answer the kit reads back from its own answer path before posting it.
const ANSWER_LIMIT: usize = 64 * 1024 * 1024;
/// The first and the longest pause after a failed poll.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(200), Duration::from_secs(30));

/// Where the kit gets the bearer token each call to the hub carries.
#[async_trait::async_trait]
pub trait HubCredentials: Send + Sync + 'static {
    async fn bearer(&self) -> Result<String, String>;
}

/// Starts `pollers` polling loops against `hub` for `provider`; they run while the
/// provider lives.
pub fn start(
    client: reqwest::Client,
    hub: String,
    provider: &Arc<Provider>,
    credentials: Arc<dyn HubCredentials>,
    pollers: usize,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..pollers.max(1))
        .map(|_| {
            let link = Link {
                client: client.clone(),
                hub: hub.trim_end_matches('/').to_owned(),
                provider: Arc::downgrade(provider),
                credentials: credentials.clone(),
            };
            tokio::spawn(link.run())
        })
        .collect()
}

#[derive(Clone)]
struct Link {
    client: reqwest::Client,
    hub: String,
    provider: std::sync::Weak<Provider>,
    credentials: Arc<dyn HubCredentials>,
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
            let link = self.clone();
            let bearer = bearer.clone();
            let Some(provider) = self.provider.upgrade() else {
                return Ok(());
            };
            tokio::spawn(async move {
                // One answer lost is the hub's timeout for that request, not a reason to stop.
                if let Err(e) = link.answer(&provider, &grant, &bearer).await {
                    tracing::warn!(error = %e, "an answer did not reach the hub");
                }
            });
        }
        Ok(())
    }

    async fn answer(
        &self,
        provider: &Provider,
        polled: &PolledGrant,
        bearer: &str,
    ) -> Result<(), String> {
        let response = provider.answer_grant(Some(&polled.grant)).await;
        let status = response.status().as_u16();
        let bytes = to_bytes(response.into_body(), ANSWER_LIMIT)
            .await
            .map_err(|e| format!("reading the kit's own answer: {e}"))?;
        let body = serde_json::from_slice(&bytes)
            .map_err(|e| format!("the kit's own answer is not JSON: {e}"))?;
        let posted = self
            .client
            .post(format!(
                "{}/v1/provider/answers/{}",
                self.hub, polled.ticket
            ))
            .bearer_auth(bearer)
            .json(&GrantAnswer { status, body })
            .send()
            .await
            .map_err(|e| format!("posting an answer: {e}"))?;
        if posted.status().is_success() {
            Ok(())
        } else {
            Err(format!("the hub refused an answer: {}", posted.status()))
        }
    }
}
