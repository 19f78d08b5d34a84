//! Conformance checks for decisions: what each batch decides and records, that it sees every
//! change made before it (through the store or not), and that its records are staged until
//! committed and gap-free under concurrent batches.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use renkei_domain::{
    AccessOutcome, Actor, ConsentId, Locator, ProviderId, ServiceStatus, ServiceSubject,
};
use uuid::Uuid;

use super::{cat, consent, decide_one, denial, draft, request, service_id, town};
use crate::{AccessQuery, DecisionInput, OutboxMessage, Store};

pub async fn a_matching_consent_grants_the_request_with_only_the_requested_locators(
    store: Arc<dyn Store>,
) {
    let people = town(store.as_ref(), 2).await;
    let c = consent(
        people[0].0,
        1,
        &["health.checkup", "payment.history"],
        Utc::now(),
    );
    store.grant_consent(&c, None).await.unwrap();
    let d = decide_one(store.as_ref(), request(&people[0].1, &["health.checkup"])).await;
    assert_eq!(denial(&d), None);
    assert_eq!(d.locators.len(), 1);
    assert_eq!(d.locators[0].category, cat("health.checkup"));
    assert_eq!(d.locators[0].resident, people[0].0);
    assert_eq!(d.record.outcome, AccessOutcome::Granted);
    assert_eq!(
        d.record.basis,
        renkei_domain::AccessBasis::Consent {
            consent: c.id,
            during: None
        }
    );
    let stored = store
        .access_records(&AccessQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(stored, vec![d.record]);
}

pub async fn staged_decisions_are_recorded_only_when_committed(store: Arc<dyn Store>) {
    let people = town(store.as_ref(), 1).await;
    let c = consent(people[0].0, 1, &["health.checkup"], Utc::now());
    store.grant_consent(&c, None).await.unwrap();
    let size = store.log_size().await.unwrap();
    let ask = || request(&people[0].1, &["health.checkup"]);

    // Dropped before its commit: nothing is recorded and the position is not used up.
    let dropped = store.decide_and_stage(&[ask()], Utc::now()).await.unwrap();
    assert_eq!(denial(&dropped.decisions[0]), None);
    assert_eq!(dropped.decisions[0].record.seq, size);
    drop(dropped);
    assert_eq!(store.log_size().await.unwrap(), size);

    // Staged: decided and positioned, but not readable until the commit returned (it may be
    // read before it is durable, but the hub answers nobody until then).
    let staged = store.decide_and_stage(&[ask()], Utc::now()).await.unwrap();
    let record = staged.decisions[0].record.clone();
    assert_eq!(record.seq, size, "the dropped batch left no gap");
    let all = AccessQuery {
        limit: 10,
        ..Default::default()
    };
    assert!(store.access_records(&all).await.unwrap().is_empty());
    let durability = staged.commit.await.unwrap();
    assert_eq!(store.access_records(&all).await.unwrap(), vec![record]);
    durability.wait().await.unwrap();
    assert_eq!(store.log_size().await.unwrap(), size + 1);
}

pub async fn a_request_with_a_revoked_token_is_denied_and_recorded(store: Arc<dyn Store>) {
    let people = town(store.as_ref(), 1).await;
    let c = consent(people[0].0, 1, &["health.checkup"], Utc::now());
    store.grant_consent(&c, None).await.unwrap();
    let with_token = |jti: &str| DecisionInput {
        token_id: Some(jti.to_owned()),
        ..request(&people[0].1, &["health.checkup"])
    };
    store
        .revoke_token(
            "revoked-jti",
            Utc::now() + TimeDelta::minutes(5),
            Utc::now(),
        )
        .await
        .unwrap();
    // One batch: the revoked token is denied, the live one beside it is not.
    let decided = store
        .decide_and_record(
            &[with_token("revoked-jti"), with_token("live-jti")],
            Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(denial(&decided[0]), Some("token-revoked"));
    assert!(decided[0].locators.is_empty());
    assert_eq!(decided[0].record.resident, Some(people[0].0));
    assert_eq!(denial(&decided[1]), None);
    let stored = store
        .access_records(&AccessQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(stored[0], decided[0].record, "the refusal is in the log");
}

pub async fn a_revoked_consent_denies_the_next_request(store: Arc<dyn Store>) {
    let people = town(store.as_ref(), 1).await;
    let c = consent(people[0].0, 1, &["health.checkup"], Utc::now());
    store.grant_consent(&c, None).await.unwrap();
    let notify = OutboxMessage {
        id: Uuid::new_v4(),
        service: service_id(),
        event: serde_json::json!({"kind": "revoked"}),
    };
    let revoked = store
        .revoke_consent(
            people[0].0,
            c.id,
            &Actor::Resident,
            Utc::now(),
            Some(&notify),
        )
        .await
        .unwrap();
    assert!(revoked.revoked_at.is_some());
    let d = decide_one(store.as_ref(), request(&people[0].1, &["health.checkup"])).await;
    assert_eq!(denial(&d), Some("consent-revoked"));
    assert!(d.locators.is_empty());
    let due = store
        .take_due_messages(Utc::now(), Utc::now() + TimeDelta::seconds(30), 10)
        .await
        .unwrap();
    assert_eq!(
        due.len(),
        1,
        "the revocation's webhook message was written with it"
    );
    assert_eq!(due[0].message, notify);
}

pub async fn a_category_outside_the_consent_is_denied_and_recorded(store: Arc<dyn Store>) {
    let people = town(store.as_ref(), 1).await;
    store
        .grant_consent(
            &consent(people[0].0, 1, &["health.checkup"], Utc::now()),
            None,
        )
        .await
        .unwrap();
    let d = decide_one(
        store.as_ref(),
        request(&people[0].1, &["health.checkup", "payment.history"]),
    )
    .await;
    assert_eq!(denial(&d), Some("category-not-covered"));
    let stored = store
        .access_records(&AccessQuery {
            resident: Some(people[0].0),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].outcome,
        AccessOutcome::Denied {
            reason: "category-not-covered".into()
        }
    );
    assert!(stored[0].providers.is_empty());
}

pub async fn an_unknown_subject_is_denied_and_recorded_without_a_resident(store: Arc<dyn Store>) {
    town(store.as_ref(), 1).await;
    let stranger = ServiceSubject::new("nobody-knows-this-subject").unwrap();
    let d = decide_one(store.as_ref(), request(&stranger, &["health.checkup"])).await;
    assert_eq!(denial(&d), Some("unknown-subject"));
    assert_eq!(d.record.resident, None);
    assert_eq!(store.log_size().await.unwrap(), 1);
}

pub async fn a_suspended_service_is_denied(store: Arc<dyn Store>) {
    let people = town(store.as_ref(), 1).await;
    store
        .grant_consent(
            &consent(people[0].0, 1, &["health.checkup"], Utc::now()),
            None,
        )
        .await
        .unwrap();
    store
        .set_service_status(&service_id(), ServiceStatus::Suspended)
        .await
        .unwrap();
    let d = decide_one(store.as_ref(), request(&people[0].1, &["health.checkup"])).await;
    assert_eq!(denial(&d), Some("service-not-approved"));
}

/// The store keeps what decisions read between batches (`decision_cache`): each kind of
/// change made through the store after a batch warmed it must still decide the next one.
pub async fn every_change_a_decision_reads_is_seen_by_the_next_batch(store: Arc<dyn Store>) {
    let people = town(store.as_ref(), 1).await;
    let (resident, subject) = people[0].clone();
    let c = consent(resident, 1, &["health.checkup"], Utc::now());
    store.grant_consent(&c, None).await.unwrap();
    let ask = |subject: &ServiceSubject, token: &str| DecisionInput {
        token_id: Some(token.to_owned()),
        ..request(subject, &["health.checkup"])
    };
    let d = decide_one(store.as_ref(), ask(&subject, "jti-1")).await;
    assert_eq!(denial(&d), None);
    assert_eq!(d.locators[0].reference, "P-0-health.checkup");

    // A subject unknown to one batch, linked before the next.
    let newcomer = ServiceSubject::new("subject-linked-later").unwrap();
    let d = decide_one(store.as_ref(), ask(&newcomer, "jti-1")).await;
    assert_eq!(denial(&d), Some("unknown-subject"));
    store
        .link_subject("health", &newcomer, resident)
        .await
        .unwrap();
    let d = decide_one(store.as_ref(), ask(&newcomer, "jti-1")).await;
    assert_eq!(
        denial(&d),
        None,
        "a subject linked since the last batch is known"
    );

    // The resident's data moved to another reference.
    let moved = Locator {
        resident,
        category: cat("health.checkup"),
        provider: ProviderId::new("clinic").unwrap(),
        reference: "P-moved".into(),
    };
    store.put_locators(&[moved]).await.unwrap();
    let d = decide_one(store.as_ref(), ask(&subject, "jti-1")).await;
    assert_eq!(d.locators[0].reference, "P-moved");

    // A token that was live in one batch and revoked before the next.
    store
        .revoke_token("jti-1", Utc::now() + TimeDelta::minutes(5), Utc::now())
        .await
        .unwrap();
    let d = decide_one(store.as_ref(), ask(&subject, "jti-1")).await;
    assert_eq!(denial(&d), Some("token-revoked"));

    // The service suspended, then approved again.
    store
        .set_service_status(&service_id(), ServiceStatus::Suspended)
        .await
        .unwrap();
    let d = decide_one(store.as_ref(), ask(&subject, "jti-2")).await;
    assert_eq!(denial(&d), Some("service-not-approved"));
    store
        .set_service_status(&service_id(), ServiceStatus::Approved)
        .await
        .unwrap();
    let d = decide_one(store.as_ref(), ask(&subject, "jti-2")).await;
    assert_eq!(denial(&d), None);

    // The consent revoked.
    store
        .revoke_consent(resident, c.id, &Actor::Resident, Utc::now(), None)
        .await
        .unwrap();
    let d = decide_one(store.as_ref(), ask(&subject, "jti-2")).await;
    assert_eq!(denial(&d), Some("consent-revoked"));

    // Consent again, then the purpose changes: the consent does not stretch to version 2.
    let again = consent(resident, 1, &["health.checkup"], Utc::now());
    store.grant_consent(&again, None).await.unwrap();
    let d = decide_one(store.as_ref(), ask(&subject, "jti-2")).await;
    assert_eq!(denial(&d), None);
    store
        .publish_purpose(&draft(&["health.checkup"]), Utc::now())
        .await
        .unwrap();
    let d = decide_one(store.as_ref(), ask(&subject, "jti-2")).await;
    assert_eq!(denial(&d), Some("consent-wrong-purpose-version"));
}

/// As [`every_change_a_decision_reads_is_seen_by_the_next_batch`], for a change written to the
/// database by something other than this store (an operator's SQL, another replica):
/// `revoke_directly` must set the consent's `revoked_at` with plain SQL.
pub async fn a_consent_revoked_by_plain_sql_denies_the_next_batch<F, Fut>(
    store: Arc<dyn Store>,
    revoke_directly: F,
) where
    F: FnOnce(ConsentId) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let people = town(store.as_ref(), 1).await;
    let c = consent(people[0].0, 1, &["health.checkup"], Utc::now());
    store.grant_consent(&c, None).await.unwrap();
    let d = decide_one(store.as_ref(), request(&people[0].1, &["health.checkup"])).await;
    assert_eq!(denial(&d), None);
    revoke_directly(c.id).await;
    let d = decide_one(store.as_ref(), request(&people[0].1, &["health.checkup"])).await;
    assert_eq!(denial(&d), Some("consent-revoked"));
}

/// The log's order is the order of decisions: a batch that queued for the log behind a
/// revocation is decided on the revoked consent, and lands after it. `hold_log` takes the
/// log's lock on a connection of its own and keeps it until the sender it returns is used or
/// dropped; `waiting` says how many statements of this store wait for a lock. Only
/// PostgreSQL runs it: SQLite's one writer orders every write by itself.
pub async fn a_batch_queued_behind_a_revocation_is_decided_after_it<H, HF, W, WF>(
    store: Arc<dyn Store>,
    hold_log: H,
    waiting: W,
) where
    H: FnOnce() -> HF,
    HF: std::future::Future<Output = tokio::sync::oneshot::Sender<()>>,
    W: Fn() -> WF,
    WF: std::future::Future<Output = usize>,
{
    let people = town(store.as_ref(), 1).await;
    let (resident, subject) = people[0].clone();
    let c = consent(resident, 1, &["health.checkup"], Utc::now());
    store.grant_consent(&c, None).await.unwrap();
    // Granted, and what it read is now cached at the current decision clock.
    let d = decide_one(store.as_ref(), request(&subject, &["health.checkup"])).await;
    assert_eq!(denial(&d), None);

    let release = hold_log().await;
    let until_waiting = |n: usize| {
        let waiting = &waiting;
        async move {
            for _ in 0..500 {
                if waiting().await >= n {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            panic!("{n} statements never queued for the log");
        }
    };
    let revocation = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .revoke_consent(resident, c.id, &Actor::Resident, Utc::now(), None)
                .await
        }
    });
    until_waiting(1).await;
    let batch = tokio::spawn({
        let store = store.clone();
        async move { decide_one(store.as_ref(), request(&subject, &["health.checkup"])).await }
    });
    until_waiting(2).await;
    drop(release);
    revocation.await.unwrap().unwrap();
    let d = batch.await.unwrap();

    let range = store.log_range(0, 100).await.unwrap();
    let revoked_at = range
        .iter()
        .rposition(|e| matches!(e.entry, Some(Ok(renkei_domain::LogEntry::Consent(_)))))
        .unwrap();
    let batch_at = range.iter().position(|e| e.seq == d.record.seq).unwrap();
    assert!(
        batch_at > revoked_at,
        "the batch queued behind the revocation"
    );
    assert_eq!(
        denial(&d),
        Some("consent-revoked"),
        "a decision logged after the revocation is made on it"
    );
}

pub async fn the_access_log_is_gap_free_under_concurrent_batches(store: Arc<dyn Store>) {
    let people = town(store.as_ref(), 4).await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        let subject = people[i % people.len()].1.clone();
        tasks.push(tokio::spawn(async move {
            let batch: Vec<_> = (0..8)
                .map(|_| request(&subject, &["health.checkup"]))
                .collect();
            store.decide_and_record(&batch, Utc::now()).await.unwrap()
        }));
    }
    let mut seqs = BTreeSet::new();
    for t in tasks {
        for d in t.await.unwrap() {
            assert!(seqs.insert(d.record.seq), "duplicate seq {}", d.record.seq);
        }
    }
    assert_eq!(seqs, (0..128).collect::<BTreeSet<u64>>());
    assert_eq!(store.log_size().await.unwrap(), 128);
    let stored = store
        .access_records(&AccessQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        stored.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (0..128).collect::<Vec<u64>>()
    );
}
