//! Security events for the city's SOC: what the hub raises (authentication failures
//! repeated, grants providers refused as replayed or badly signed, rate-limit trips, a
//! service asking far beyond its baseline, a log that is not consistent, a key rotation,
//! emergency declarations), signed as Security Event Tokens (RFC 8417,
//! `renkei_protocol::event::security`), kept in storage until the SOC has them, pushed to its
//! receiver (RFC 8935) and available to its polls (RFC 8936, `api_soc.rs`).
//!
//! Events are raised only when a SOC is configured (a token for polling, a receiver to push
//! to, or both). A pushed event the receiver accepted (202) is acknowledged, as a polled one
//! is by the poll's `ack`: with both configured, a poll returns what could not be pushed yet.

pub mod detect;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use renkei_protocol::event::security::{
    Offender, SecurityEvent, SecurityEventToken, sign_security_event,
};
use renkei_store::{DueSecurityEvent, SecurityEventAck, StoredSecurityEvent};
use tokio::sync::Notify;

use self::detect::{SurgeRule, SurgeWatch, Tally};
use crate::limits::PeerAddr;
use crate::metrics::{MetricsToken, ShortToken};
use crate::{Hub, HubError};

/// The path SOCs poll (and every event's `aud`, after the issuer).
pub const SOC_EVENTS_PATH: &str = "/v1/soc/events";
/// How long one replica holds an event it is pushing before another may try.
const LEASE: TimeDelta = TimeDelta::seconds(30);
/// How long an acknowledged event is kept (the SOC keeps its own copy; this is for an
/// operator asking what the SOC was told).
pub const ACKNOWLEDGED_KEPT: TimeDelta = TimeDelta::days(90);
/// How long a push may take.
const PUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// The token a SOC presents when it polls, kept as a digest like the metrics token.
#[derive(Clone, Debug)]
pub struct SocToken(MetricsToken);

impl SocToken {
    /// The token `secret` (at least [`MetricsToken::MIN_LEN`] characters, surrounding
    /// whitespace ignored).
    pub fn new(secret: &str) -> Result<Self, ShortToken> {
        MetricsToken::new(secret).map(Self)
    }

    /// Whether `presented` is the token, compared in constant time.
    pub fn admits(&self, presented: &str) -> bool {
        self.0.admits(presented)
    }
}

/// Where the SOC hears from the hub, and what makes an event.
#[derive(Debug, Clone)]
pub struct SocConfig {
    /// The token of `POST /v1/soc/events`; without one polling is off (404).
    pub token: Option<SocToken>,
    /// The SOC's push receiver (RFC 8935); without one nothing is pushed.
    pub push_url: Option<reqwest::Url>,
    /// Authentication failures from one address, or for one client id, within
    /// `window` that raise an event.
    pub failures: u32,
    /// The window of failures and of rate-limit trips (one event per caller per window).
    pub window: Duration,
    /// When a service's requests in an hour count as a surge.
    pub surge: SurgeRule,
}

impl Default for SocConfig {
    fn default() -> Self {
        Self {
            token: None,
            push_url: None,
            failures: 10,
            window: Duration::from_secs(300),
            surge: SurgeRule {
                hour: Duration::from_secs(3600),
                factor: 10,
                floor: 100,
            },
        }
    }
}

impl SocConfig {
    /// Whether a SOC hears from the hub at all.
    pub fn enabled(&self) -> bool {
        self.token.is_some() || self.push_url.is_some()
    }
}

/// The hub's watch on what makes an event, and the pusher's wake-up.
pub struct Soc {
    failures_by_address: Tally<String>,
    failures_by_client: Tally<String>,
    rate_limited: Tally<(&'static str, Offender)>,
    /// Checkpoint and tree sizes found inconsistent: the integrator tries again every
    /// second, and the SOC hears of each pair once per window.
    inconsistencies: Tally<(u64, u64)>,
    surges: SurgeWatch,
    raised: Arc<Notify>,
}

impl Soc {
    pub fn new(config: &SocConfig) -> Self {
        Self {
            failures_by_address: Tally::new(config.failures, config.window),
            failures_by_client: Tally::new(config.failures, config.window),
            rate_limited: Tally::new(1, config.window),
            inconsistencies: Tally::new(1, config.window),
            surges: SurgeWatch::new(config.surge),
            raised: Arc::new(Notify::new()),
        }
    }

    /// Woken when an event is raised (the pusher, and polls waiting for one).
    pub(crate) fn raised(&self) -> &Arc<Notify> {
        &self.raised
    }
}

impl Hub {
    fn soc_config(&self) -> &SocConfig {
        &self.config().soc
    }

    /// Signs `event` and keeps it for the SOC; a failure is logged, never the caller's.
    pub async fn raise_security_event(&self, event: SecurityEvent) {
        if !self.soc_config().enabled() {
            return;
        }
        let uri = event.uri();
        let now = Utc::now();
        let audience = format!("{}{SOC_EVENTS_PATH}", self.config().issuer);
        let token = SecurityEventToken::new(self.config().issuer.clone(), audience, event, now);
        let jti = token.jti;
        let signed = match self
            .keys()
            .sign_with(move |key| sign_security_event(key, &token))
            .await
            .and_then(|signed| signed.map_err(|e| HubError::internal(e.to_string())))
        {
            Ok(signed) => signed,
            Err(e) => {
                return tracing::error!(error = %e, event = uri, "signing a security event failed");
            }
        };
        let stored = StoredSecurityEvent {
            jti,
            token: signed,
            raised_at: now,
        };
        match self.store().raise_security_event(&stored).await {
            Ok(()) => {
                tracing::warn!(event = uri, %jti, "security event raised");
                self.soc().raised().notify_waiters();
                self.soc().raised().notify_one();
            }
            Err(e) => tracing::error!(error = %e, event = uri, "keeping a security event failed"),
        }
    }

    /// Raises `event` from code that cannot wait for it to be kept.
    pub(crate) fn raise_security_event_soon(&self, event: SecurityEvent) {
        if !self.soc_config().enabled() {
            return;
        }
        let hub = self.clone();
        tokio::spawn(async move { hub.raise_security_event(event).await });
    }

    /// Counts a refused authentication of `client` (the id claimed) from `address`.
    pub(crate) fn authentication_failed(&self, address: std::net::IpAddr, client: &str) {
        let now = Instant::now();
        let window_seconds = self.soc_config().window.as_secs();
        let address = PeerAddr(address).subscriber().to_string();
        let soc = self.soc();
        for (tally, offender) in [
            (&soc.failures_by_address, Offender::Address(address)),
            (&soc.failures_by_client, Offender::Client(client.to_owned())),
        ] {
            let key = match &offender {
                Offender::Address(k) | Offender::Client(k) => k.clone(),
            };
            if let Some(failures) = tally.count(&key, now) {
                self.raise_security_event_soon(SecurityEvent::AuthenticationFailures {
                    offender,
                    failures,
                    window_seconds,
                });
            }
        }
    }

    /// Counts a refusal by the rate limit `limit` of `offender`: the first in a window
    /// raises an event.
    pub(crate) fn rate_limit_tripped(&self, limit: &'static str, offender: Offender) {
        let key = (limit, offender);
        if self
            .soc()
            .rate_limited
            .count(&key, Instant::now())
            .is_some()
        {
            self.raise_security_event_soon(SecurityEvent::RateLimited {
                limit,
                offender: key.1,
                window_seconds: self.soc_config().window.as_secs(),
            });
        }
    }

    /// Counts a request of `service` naming a resident against its baseline.
    pub(crate) fn resident_requested(&self, service: &renkei_domain::ServiceId) {
        if let Some(surge) = self.soc().surges.count(service.as_str(), Instant::now()) {
            self.raise_security_event_soon(SecurityEvent::RequestSurge {
                service: service.clone(),
                residents_last_hour: surge.count,
                baseline_per_hour: surge.baseline,
            });
        }
    }
}

/// The wait before push attempt `attempts + 1`, as for webhooks (1 s doubling to an hour);
/// a push is never given up: the event waits for the SOC, or for a poll.
fn backoff(attempts: u32) -> TimeDelta {
    crate::webhooks::backoff(attempts)
}

pub(crate) fn start_pusher(hub: &Hub) -> Result<(), crate::HubError> {
    let Some(url) = hub.soc_config().push_url.clone() else {
        return Ok(());
    };
    // The receiver is the city's own, configured by its operator (often on its internal
    // network): unlike a service's webhook, it is not held to the public-address guard.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(PUSH_TIMEOUT)
        .build()
        .map_err(|e| crate::HubError::internal(format!("http client: {e}")))?;
    let weak = hub.downgrade();
    let wake = hub.soc().raised().clone();
    tokio::spawn(async move {
        loop {
            let Some(hub) = weak.upgrade() else { return };
            let now = Utc::now();
            match hub
                .store()
                .take_due_security_events(now, now + LEASE, 32)
                .await
            {
                Ok(due) => {
                    for event in due {
                        hub.push(&client, &url, event).await;
                    }
                }
                Err(e) => tracing::error!(error = %e, "reading the security events failed"),
            }
            drop(hub);
            let _ = tokio::time::timeout(Duration::from_millis(500), wake.notified()).await;
        }
    });
    Ok(())
}

impl Hub {
    async fn push(&self, client: &reqwest::Client, url: &reqwest::Url, due: DueSecurityEvent) {
        let jti = due.event.jti;
        let result = match client
            .post(url.clone())
            .header("content-type", "application/secevent+jwt")
            .header("accept", "application/json")
            .body(due.event.token)
            .send()
            .await
        {
            Err(e) if e.is_timeout() => Err("timed out".to_owned()),
            Err(_) => Err("could not connect".to_owned()),
            Ok(response) if response.status() == reqwest::StatusCode::ACCEPTED => Ok(()),
            Ok(response) => Err(refusal(response).await),
        };
        let outcome = match result {
            Ok(()) => {
                let ack = SecurityEventAck { jti, error: None };
                self.store()
                    .acknowledge_security_events(&[ack], Utc::now())
                    .await
            }
            Err(error) => {
                tracing::warn!(%jti, attempt = due.attempts + 1, error = %error, "pushing a security event failed");
                let next = Utc::now() + backoff(due.attempts);
                self.store().retry_security_event(jti, next, &error).await
            }
        };
        if let Err(e) = outcome {
            tracing::error!(error = %e, "recording a security event push failed");
        }
    }
}

/// What a receiver's refusal said: its status and, from the RFC 8935 §2.3 error body, the
/// `err` code (a short token of a fixed vocabulary; the description is not kept).
async fn refusal(response: reqwest::Response) -> String {
    let status = response.status().as_u16();
    let body = response.bytes().await.unwrap_or_default();
    let err = serde_json::from_slice::<serde_json::Value>(body.get(..4096).unwrap_or(&body))
        .ok()
        .and_then(|v| v.get("err").and_then(|e| e.as_str()).map(str::to_owned))
        .filter(|e| e.len() <= 64 && e.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    match err {
        Some(err) => format!("HTTP {status}: {err}"),
        None => format!("HTTP {status}"),
    }
}

/// The acts the rate limits count, seen by the SOC when one trips.
impl Hub {
    /// Counts an enrolment or passkey ceremony started from `from`.
    pub(crate) fn limit_ceremony(&self, from: PeerAddr) -> Result<(), HubError> {
        self.limiters().ceremony(from).inspect_err(|_| {
            self.rate_limit_tripped("ceremonies", address(from));
        })
    }

    /// Counts a client authentication attempt from `from` as `client`.
    pub(crate) fn limit_oauth(&self, from: PeerAddr, client: &str) -> Result<(), HubError> {
        self.limiters()
            .oauth_by_address(from)
            .inspect_err(|_| self.rate_limit_tripped("oauth", address(from)))?;
        self.limiters()
            .oauth_by_client(client)
            .inspect_err(|_| self.rate_limit_tripped("oauth", Offender::Client(client.to_owned())))
    }

    /// Counts a data request of `service`.
    pub(crate) fn limit_data_request(
        &self,
        service: &renkei_domain::ServiceId,
    ) -> Result<(), HubError> {
        self.limiters().data_request(service).inspect_err(|_| {
            self.rate_limit_tripped(
                "data-requests",
                Offender::Client(service.as_str().to_owned()),
            );
        })
    }

    /// A provider's refusal of a grant for `service`: one it says it has seen (the kit's
    /// `grant-replayed`) or whose signature it could not verify (`grant-bad-signature`)
    /// raises an event; `detail` is the hub's own description of the refusal
    /// (`broker::refusal`), which names the problem type the provider gave.
    pub(crate) fn grant_refused(
        &self,
        provider: &renkei_domain::ProviderId,
        service: &renkei_domain::ServiceId,
        detail: &str,
    ) {
        let (provider, service) = (provider.clone(), service.clone());
        let event = if detail.ends_with("/problems/grant-replayed") {
            SecurityEvent::GrantReplayed { provider, service }
        } else if detail.ends_with("/problems/grant-bad-signature") {
            SecurityEvent::GrantBadSignature { provider, service }
        } else {
            return;
        };
        self.raise_security_event_soon(event);
    }
}

fn address(from: PeerAddr) -> Offender {
    Offender::Address(from.subscriber().to_string())
}

impl Hub {
    /// The integrator refused to sign a tree that does not extend the last checkpoint: the
    /// SOC hears of it once per replica, pair of sizes and window (the integrator retries every
    /// second and would otherwise raise an event each time).
    pub(crate) async fn log_inconsistent(&self, found: &crate::log::Inconsistent) {
        let key = (found.checkpoint, found.tree);
        if self
            .soc()
            .inconsistencies
            .count(&key, Instant::now())
            .is_some()
        {
            self.raise_security_event(SecurityEvent::LogInconsistent {
                checkpoint_size: found.checkpoint,
                tree_size: found.tree,
            })
            .await;
        }
    }
}
