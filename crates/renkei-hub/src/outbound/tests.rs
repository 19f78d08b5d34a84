//! The relay between brokered requests and outbound providers' polls.

use std::sync::Arc;
use std::time::Duration;

use renkei_domain::ProviderId;
use renkei_protocol::outbound::GrantAnswer;
use serde_json::value::RawValue;
use tokio::time::Instant;

use super::{OutboundRelay, RelayError, UnknownTicket};

/// An answer whose body is the JSON string `text`.
fn says(text: &str) -> GrantAnswer {
    GrantAnswer {
        status: 200,
        body: RawValue::from_string(serde_json::to_string(text).unwrap()).unwrap(),
    }
}

/// What an answer's body says, as [`says`] wrote it.
fn said(answer: Result<GrantAnswer, RelayError>) -> Result<String, RelayError> {
    answer.map(|a| serde_json::from_str(a.body.get()).unwrap())
}

fn registry() -> ProviderId {
    ProviderId::new("city-registry").unwrap()
}

/// What every request here reads at most.
const LIMIT: u64 = 1024;

/// Long enough for a task on a loaded CI machine to get its turn.
const PATIENT: Duration = Duration::from_secs(10);

/// Polls once in the background and answers every grant it gets with the grant's text.
fn echo_once(relay: &Arc<OutboundRelay>, provider: ProviderId) -> tokio::task::JoinHandle<usize> {
    let relay = relay.clone();
    tokio::spawn(async move {
        let tickets = relay.poll(&provider, 16, PATIENT).await;
        for t in &tickets {
            relay.answer(&provider, t.ticket, says(&t.grant)).unwrap();
        }
        tickets.len()
    })
}

/// Waits until `provider` has a poll parked.
async fn until_parked(relay: &OutboundRelay, provider: &ProviderId) {
    let start = Instant::now();
    while !relay.is_connected(provider) {
        assert!(start.elapsed() < PATIENT, "the poll never parked");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test]
async fn a_grant_for_a_provider_that_never_polled_fails_at_once() {
    let relay = OutboundRelay::default();
    let start = Instant::now();
    let sent = relay
        .send(&registry(), "grant".into(), LIMIT, PATIENT)
        .await;
    assert_eq!(said(sent), Err(RelayError::NotConnected));
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn a_parked_poll_receives_the_grant_and_its_answer_reaches_the_request() {
    let relay = Arc::new(OutboundRelay::default());
    let poller = echo_once(&relay, registry());
    until_parked(&relay, &registry()).await;
    let answer = relay
        .send(&registry(), "grant-1".into(), LIMIT, PATIENT)
        .await;
    assert_eq!(said(answer), Ok("grant-1".to_owned()));
    assert_eq!(poller.await.unwrap(), 1);
}

#[tokio::test]
async fn one_poll_takes_the_waiting_grants_up_to_its_limit_and_the_next_takes_the_rest() {
    let relay = Arc::new(OutboundRelay::default());
    let provider = registry();
    // A poll that returned just now keeps the provider connected, so grants queue up.
    assert!(relay.poll(&provider, 1, Duration::ZERO).await.is_empty());
    let mut requests = Vec::new();
    for i in 0..3 {
        let (sender, to) = (relay.clone(), provider.clone());
        requests.push(tokio::spawn(async move {
            sender.send(&to, format!("grant-{i}"), LIMIT, PATIENT).await
        }));
        // One at a time, so the queue's order is known.
        let start = Instant::now();
        while relay.lines().get(&provider).map_or(0, |l| l.queue.len()) <= i {
            assert!(start.elapsed() < PATIENT, "the grant never queued");
            tokio::task::yield_now().await;
        }
    }
    let first = relay.poll(&provider, 2, PATIENT).await;
    let second = relay.poll(&provider, 2, PATIENT).await;
    assert_eq!((first.len(), second.len()), (2, 1));
    for t in first.iter().chain(&second) {
        relay.answer(&provider, t.ticket, says(&t.grant)).unwrap();
    }
    let mut answers = Vec::new();
    for r in requests {
        answers.push(said(r.await.unwrap()).unwrap());
    }
    assert_eq!(answers, ["grant-0", "grant-1", "grant-2"]);
}

#[tokio::test]
async fn a_provider_cannot_answer_another_providers_ticket() {
    let relay = Arc::new(OutboundRelay::default());
    let clinic = ProviderId::new("hikari-clinic").unwrap();
    let _ = relay.poll(&registry(), 1, Duration::ZERO).await;
    let request = {
        let relay = relay.clone();
        tokio::spawn(async move {
            relay
                .send(&registry(), "grant".into(), LIMIT, PATIENT)
                .await
        })
    };
    let tickets = relay.poll(&registry(), 1, PATIENT).await;
    let ticket = tickets.first().unwrap().ticket;
    assert_eq!(relay.expected(&clinic, ticket), None);
    assert_eq!(relay.expected(&registry(), ticket), Some(LIMIT));
    assert_eq!(relay.expected_total(&registry()), (1, LIMIT));
    assert_eq!(relay.expected_total(&clinic), (0, 0));
    assert_eq!(
        relay.answer(&clinic, ticket, says("forged")),
        Err(UnknownTicket(ticket))
    );
    relay.answer(&registry(), ticket, says("genuine")).unwrap();
    assert_eq!(said(request.await.unwrap()), Ok("genuine".to_owned()));
    // Answered once: a second answer to the same ticket finds nothing.
    assert_eq!(
        relay.answer(&registry(), ticket, says("again")),
        Err(UnknownTicket(ticket))
    );
}

#[tokio::test]
async fn an_unanswered_grant_times_out_and_leaves_nothing_waiting() {
    let relay = OutboundRelay::default();
    let _ = relay.poll(&registry(), 1, Duration::ZERO).await;
    let sent = relay
        .send(
            &registry(),
            "grant".into(),
            LIMIT,
            Duration::from_millis(20),
        )
        .await;
    assert_eq!(said(sent), Err(RelayError::Timeout));
    let lines = relay.lines();
    let line = lines.get(&registry()).unwrap();
    assert!(line.queue.is_empty() && line.waiting.is_empty());
}

#[tokio::test]
async fn an_answer_under_a_ticket_nobody_waits_for_is_refused() {
    let relay = OutboundRelay::default();
    let _ = relay.poll(&registry(), 1, Duration::ZERO).await;
    let ticket = uuid::Uuid::new_v4();
    assert_eq!(
        relay.answer(&registry(), ticket, says("")),
        Err(UnknownTicket(ticket))
    );
}

#[tokio::test]
async fn a_provider_whose_polls_stopped_is_no_longer_connected_after_the_grace() {
    let relay = OutboundRelay::with_grace(Duration::from_millis(20));
    assert!(relay.poll(&registry(), 1, Duration::ZERO).await.is_empty());
    assert!(relay.is_connected(&registry()));
    tokio::time::sleep(Duration::from_millis(40)).await;
    assert!(!relay.is_connected(&registry()));
    assert_eq!(
        said(
            relay
                .send(&registry(), "grant".into(), LIMIT, PATIENT)
                .await
        ),
        Err(RelayError::NotConnected)
    );
}
