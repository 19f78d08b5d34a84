//! Outbound-only providers: those that may not accept connections (a registry in the
//! LGWAN segment under 三層分離) keep asking the hub for grants instead, over HTTP long
//! polls, and post their answers back. The hub relays each answer to the request waiting
//! for it, exactly as it relays an inbound provider's.
//!
//! Long polls rather than a WebSocket: municipal networks reach outside through HTTP
//! forward proxies that often refuse `Upgrade`, and a poll is an ordinary request that
//! needs nothing new on either side. One poll returns every grant waiting (up to a limit),
//! and one post carries every answer the provider has ready, so a busy provider pays one
//! round trip, and one authentication, for many grants each way.
//!
//! The relay is this hub process's own: grants wait in memory for a poll of the same
//! replica (docs/operating.md says how to run outbound providers behind several replicas).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use renkei_domain::ProviderId;
use renkei_protocol::outbound::GrantAnswer;
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;
use uuid::Uuid;

/// How long after its last poll ended a provider still counts as connected: the gap
/// between one poll's answer and the next poll, with room for a slow network.
const RECONNECT_GRACE: Duration = Duration::from_secs(2);

/// A grant handed to an outbound provider, which answers it under `ticket`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub ticket: Uuid,
    /// The hub-signed grant, as an inbound provider receives it in `Authorization`.
    pub grant: String,
}

/// Why the relay has no answer for a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    /// No poll from the provider is waiting or ended lately: its connection is down.
    #[error("the provider is not connected")]
    NotConnected,
    /// The provider took the grant (or never did) and did not answer in time.
    #[error("the provider did not answer in time")]
    Timeout,
    /// The provider's answer was larger than the request reads.
    #[error("the provider's answer is larger than its limit of {limit} bytes")]
    TooLarge { limit: u64 },
    /// The provider posted something that is not an answer.
    #[error("the provider's answer is not an answer")]
    BadAnswer,
}

/// An answer for a ticket that is not waiting (answered already, timed out, or another
/// provider's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no grant of this provider waits under ticket `{0}`")]
pub struct UnknownTicket(pub Uuid);

/// A request waiting for its answer.
struct Waiting {
    limit: u64,
    reply: oneshot::Sender<Result<GrantAnswer, RelayError>>,
}

/// The grants waiting for outbound providers, and the requests waiting for their answers.
pub struct OutboundRelay {
    lines: Mutex<HashMap<ProviderId, Line>>,
    /// How long after its last poll a provider still counts as connected.
    grace: Duration,
}

impl Default for OutboundRelay {
    fn default() -> Self {
        Self::with_grace(RECONNECT_GRACE)
    }
}

/// One provider's side of the relay.
struct Line {
    /// Grants not yet handed to a poll, oldest first.
    queue: VecDeque<Ticket>,
    /// Requests waiting for an answer, by ticket, with the most bytes each will read.
    waiting: HashMap<Uuid, Waiting>,
    /// Polls parked now.
    parked: usize,
    /// When the last poll returned.
    last_poll: Option<Instant>,
    /// Woken when a grant is queued.
    queued: Arc<Notify>,
}

impl Line {
    fn new() -> Self {
        Self {
            queue: VecDeque::new(),
            waiting: HashMap::new(),
            parked: 0,
            last_poll: None,
            queued: Arc::new(Notify::new()),
        }
    }

    fn is_connected(&self, now: Instant, grace: Duration) -> bool {
        self.parked > 0
            || self
                .last_poll
                .is_some_and(|at| now.saturating_duration_since(at) <= grace)
    }
}

impl OutboundRelay {
    /// A relay that counts a provider as connected for `grace` after its last poll.
    pub fn with_grace(grace: Duration) -> Self {
        Self {
            lines: Mutex::default(),
            grace,
        }
    }

    fn lines(&self) -> MutexGuard<'_, HashMap<ProviderId, Line>> {
        // A panic while the lock was held leaves plain data behind: queues and channels,
        // each consistent on its own. Going on beats refusing every outbound provider.
        self.lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `provider` has a poll waiting, or had one lately.
    pub fn is_connected(&self, provider: &ProviderId) -> bool {
        self.lines()
            .get(provider)
            .is_some_and(|line| line.is_connected(Instant::now(), self.grace))
    }

    /// Hands `grant` to `provider`'s next poll and waits at most `timeout` for an answer of
    /// at most `limit` bytes. Fails at once when the provider is not connected, as a dead
    /// endpoint does.
    pub async fn send(
        &self,
        provider: &ProviderId,
        grant: String,
        limit: u64,
        timeout: Duration,
    ) -> Result<GrantAnswer, RelayError> {
        let ticket = Uuid::new_v4();
        let (tx, rx) = oneshot::channel();
        {
            let mut lines = self.lines();
            let line = match lines.get_mut(provider) {
                Some(line) if line.is_connected(Instant::now(), self.grace) => line,
                _ => return Err(RelayError::NotConnected),
            };
            line.queue.push_back(Ticket { ticket, grant });
            line.waiting.insert(ticket, Waiting { limit, reply: tx });
            line.queued.notify_one();
        }
        // INVARIANT: whatever happens to this request (answer, timeout, the caller dropping
        // the future), its ticket leaves the queue and the waiting map, so neither grows.
        let forget = Forget {
            relay: self,
            provider,
            ticket,
        };
        let answer = tokio::time::timeout(timeout, rx).await;
        drop(forget);
        match answer {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) | Err(_) => Err(RelayError::Timeout),
        }
    }

    /// A provider's poll: the grants waiting for it (at most `max`), waiting up to `wait`
    /// for one to arrive when none is. An empty answer means "ask again".
    pub async fn poll(&self, provider: &ProviderId, max: usize, wait: Duration) -> Vec<Ticket> {
        let queued = {
            let mut lines = self.lines();
            let line = lines.entry(provider.clone()).or_insert_with(Line::new);
            line.parked += 1;
            line.queued.clone()
        };
        let _parked = Parked {
            relay: self,
            provider,
        };
        let deadline = Instant::now() + wait;
        loop {
            // Registered before the queue is looked at, so a grant queued in between still
            // wakes this poll.
            let notified = queued.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let taken = self.take(provider, max);
            if !taken.is_empty() {
                return taken;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Vec::new();
            }
        }
    }

    fn take(&self, provider: &ProviderId, max: usize) -> Vec<Ticket> {
        let mut lines = self.lines();
        let Some(line) = lines.get_mut(provider) else {
            return Vec::new();
        };
        let n = line.queue.len().min(max.max(1));
        let taken: Vec<Ticket> = line.queue.drain(..n).collect();
        if !line.queue.is_empty() {
            // More than this poll takes: let another parked poll have the rest.
            line.queued.notify_one();
        }
        taken
    }

    /// The most bytes the request waiting under `ticket` reads, if one of `provider`'s
    /// requests waits under it: the most an answer's body may be.
    pub fn expected(&self, provider: &ProviderId, ticket: Uuid) -> Option<u64> {
        self.lines()
            .get(provider)
            .and_then(|line| line.waiting.get(&ticket))
            .map(|w| w.limit)
    }

    /// How many of `provider`'s requests wait for an answer, and the most bytes they read
    /// between them: what a batch of answers is read up to.
    pub fn expected_total(&self, provider: &ProviderId) -> (usize, u64) {
        self.lines().get(provider).map_or((0, 0), |line| {
            let bytes = line
                .waiting
                .values()
                .fold(0u64, |sum, w| sum.saturating_add(w.limit));
            (line.waiting.len(), bytes)
        })
    }

    /// A provider's answer to one of its tickets, passed to the request waiting for it.
    pub fn answer(
        &self,
        provider: &ProviderId,
        ticket: Uuid,
        answer: GrantAnswer,
    ) -> Result<(), UnknownTicket> {
        self.reply(provider, ticket, Ok(answer))
    }

    /// Ends the request waiting under `ticket` with `why` the provider's answer is unusable.
    pub fn fail(
        &self,
        provider: &ProviderId,
        ticket: Uuid,
        why: RelayError,
    ) -> Result<(), UnknownTicket> {
        self.reply(provider, ticket, Err(why))
    }

    fn reply(
        &self,
        provider: &ProviderId,
        ticket: Uuid,
        body: Result<GrantAnswer, RelayError>,
    ) -> Result<(), UnknownTicket> {
        let waiting = self
            .lines()
            .get_mut(provider)
            .and_then(|line| line.waiting.remove(&ticket))
            .ok_or(UnknownTicket(ticket))?;
        // The request may have given up a moment ago: then the answer has nowhere to go,
        // as if it had come after the timeout.
        waiting.reply.send(body).map_err(|_| UnknownTicket(ticket))
    }
}

/// Takes a ticket out of its provider's line when the request stops waiting.
struct Forget<'a> {
    relay: &'a OutboundRelay,
    provider: &'a ProviderId,
    ticket: Uuid,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        if let Some(line) = self.relay.lines().get_mut(self.provider) {
            line.waiting.remove(&self.ticket);
            line.queue.retain(|t| t.ticket != self.ticket);
        }
    }
}

/// Counts a poll as parked until it returns, however it returns.
struct Parked<'a> {
    relay: &'a OutboundRelay,
    provider: &'a ProviderId,
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        if let Some(line) = self.relay.lines().get_mut(self.provider) {
            line.parked = line.parked.saturating_sub(1);
            line.last_poll = Some(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests;
