//! Flow 2, interactive shut-out: once the hub has answered a revocation, no request that
//! starts afterwards gets data; and the service is told, by a signed, retried webhook.

// Tests may unwrap and panic (clippy.toml allows it in #[test] functions; this covers helpers).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use renkei_protocol::event::{ConsentChange, EventError, verify_event};
use serde_json::Value;

use crate::common;
use crate::common::{HEALTH_CHECKUP, PAYMENT_HISTORY, Town};

/// One data request as a worker saw it.
struct Attempt {
    started: Instant,
    status: u16,
    /// The problem `type`, when refused.
    kind: Option<String>,
    /// Whether any provider's sealed data came back.
    got_data: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_requests_racing_a_revocation_get_no_data_after_the_revocation_answered() {
    const WORKERS: usize = 64;
    const MAX_PER_WORKER: usize = 200;
    let town = Arc::new(Town::new().await);
    let alice = town.sign_in(town.alice).await;
    let granted = town.grant(&alice, "health-advice", "advice").await;
    let token = town.service_token(&town.health).await;
    let log_before = town.access_record_count().await;

    let revocation_answered: Arc<OnceLock<Instant>> = Arc::default();
    let granted_count = Arc::new(AtomicUsize::new(0));
    let hard_deadline = Instant::now() + Duration::from_secs(4);
    // Workers keep going for a while after the revocation answered, then stop.
    let tail = Duration::from_millis(400);

    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..WORKERS {
        let town = town.clone();
        let token = token.clone();
        let subject = granted.subject.clone();
        let answered = revocation_answered.clone();
        let granted_count = granted_count.clone();
        workers.spawn(async move {
            let mut attempts = Vec::new();
            for _ in 0..MAX_PER_WORKER {
                let now = Instant::now();
                if now >= hard_deadline || answered.get().is_some_and(|t| now >= *t + tail) {
                    break;
                }
                let started = Instant::now();
                let response = town
                    .request_data(
                        &token,
                        &subject,
                        "advice",
                        &[HEALTH_CHECKUP, PAYMENT_HISTORY],
                    )
                    .await;
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap();
                let got_data = status == 200
                    && body["results"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|r| r.get("payload").is_some());
                if got_data {
                    granted_count.fetch_add(1, Ordering::Relaxed);
                }
                attempts.push(Attempt {
                    started,
                    status,
                    kind: body["type"].as_str().map(str::to_owned),
                    got_data,
                });
            }
            attempts
        });
    }

    // The resident revokes while the requests are in full flow.
    let wait_until = Instant::now() + Duration::from_millis(1_500);
    while granted_count.load(Ordering::Relaxed) < WORKERS && Instant::now() < wait_until {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let response = town.revoke(&alice, &granted.consent.id).await;
    let answered_at = Instant::now();
    assert_eq!(response.status(), 200);
    revocation_answered.set(answered_at).unwrap();
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["state"], "revoked");

    let mut attempts = Vec::new();
    while let Some(done) = workers.join_next().await {
        attempts.extend(done.unwrap());
    }

    let before: Vec<&Attempt> = attempts
        .iter()
        .filter(|a| a.started < answered_at)
        .collect();
    let after: Vec<&Attempt> = attempts
        .iter()
        .filter(|a| a.started > answered_at)
        .collect();
    eprintln!(
        "{} requests: {} started before the revocation answered ({} got data), {} after",
        attempts.len(),
        before.len(),
        before.iter().filter(|a| a.got_data).count(),
        after.len()
    );
    // The race was real: data flowed before, and many requests started after.
    assert!(
        before.iter().filter(|a| a.got_data).count() > 0,
        "no request got data before the revocation"
    );
    assert!(
        after.len() >= WORKERS,
        "only {} requests started after the revocation",
        after.len()
    );
    // The promise: nothing that started after the answer got data, and each was told why.
    for a in &after {
        assert!(
            !a.got_data,
            "a request that started after the revocation got data"
        );
        assert_eq!(
            (a.status, a.kind.as_deref()),
            (403, Some("/problems/consent-revoked"))
        );
    }
    // Nothing failed for any other reason, and every request is in the access log.
    for a in &attempts {
        assert!(
            a.status == 200 || a.kind.as_deref() == Some("/problems/consent-revoked"),
            "unexpected answer {} {:?}",
            a.status,
            a.kind
        );
    }
    let logged = town.access_record_count().await - log_before;
    assert_eq!(logged, attempts.len());
    // Alice sees each of them: the granted ones, and the refusals with their reason.
    let records = town.all_access_records(&alice).await;
    assert_eq!(records.len(), attempts.len());
    let granted_total = attempts.iter().filter(|a| a.got_data).count();
    let denied = records
        .iter()
        .filter(|r| r["outcome"] == "denied" && r["reason"] == "consent-revoked")
        .count();
    assert_eq!(records.len() - denied, granted_total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_is_sent_to_the_service_webhook_signed_and_retried() {
    let town = Town::new().await;
    let alice = town.sign_in(town.alice).await;
    let granted = town.grant(&alice, "health-advice", "advice").await;
    let jwks = town.published_jwks().await;
    let service = &town.health.id;

    // The grant is announced first.
    let got = town.webhook.wait_for(1, Duration::from_secs(3)).await;
    assert_eq!(got.len(), 1, "the grant was not announced");
    let token = verify_event(&got[0].body, &jwks, service).unwrap();
    let (change, claims) = token.change().unwrap();
    assert_eq!(change, ConsentChange::Granted);
    assert_eq!(claims.consent.to_string(), granted.consent.id);

    // The service's endpoint is briefly unavailable when the revocation comes.
    town.webhook.fail_next.store(1, Ordering::SeqCst);
    let revoked_at = Instant::now();
    let response = town.revoke(&alice, &granted.consent.id).await;
    assert_eq!(response.status(), 200);

    let got = town.webhook.wait_for(3, Duration::from_secs(4)).await;
    assert_eq!(got.len(), 3, "the revocation was not delivered and retried");
    let (failed, retried) = (&got[1], &got[2]);
    assert_eq!(failed.answered, 503);
    assert_eq!(retried.answered, 202);
    // The first retry waits about a second (backoff), no more than the sender's wake-up on top.
    let gap = retried.at - failed.at;
    assert!(
        gap >= Duration::from_millis(900) && gap < Duration::from_millis(3_000),
        "retried after {gap:?}"
    );
    assert!(
        failed.at - revoked_at < Duration::from_secs(1),
        "sent at once"
    );

    for delivery in [failed, retried] {
        assert_eq!(
            delivery.content_type.as_deref(),
            Some("application/secevent+jwt")
        );
        let token = verify_event(&delivery.body, &jwks, service).unwrap();
        assert_eq!(token.iss, common::ISSUER);
        let (change, claims) = token.change().unwrap();
        assert_eq!(change, ConsentChange::Revoked);
        assert_eq!(claims.consent.to_string(), granted.consent.id);
        // The service hears of the resident only by its pairwise subject.
        assert_eq!(claims.subject.as_str(), granted.subject);
        assert!(!delivery.body.contains(&town.alice.to_string()));
        assert_eq!(claims.purpose.as_str(), "advice");
        assert_eq!(claims.purpose_version, 1);
        // Addressed to health-advice alone.
        assert_eq!(
            verify_event(&delivery.body, &jwks, &town.mobility.id).unwrap_err(),
            EventError::WrongAudience
        );
    }
    // Once delivered, it is not sent again.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(town.webhook.received().len(), 3);
}
