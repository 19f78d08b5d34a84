//! Conformance checks for residents told afterwards: the records under a declaration, its
//! notices written once whoever tries again, and residents' notice channels.

use std::sync::Arc;

use chrono::TimeDelta;
use renkei_domain::{AccessBasis, EmergencyNotice};
use uuid::Uuid;

use super::emergency::{decide_at, declared, now_ms, op, step};
use super::{request, service_id, town};
use crate::{OutboxMessage, Store};

pub async fn a_declarations_notices_are_written_once_from_the_records_under_it(
    store: Arc<dyn Store>,
) {
    let people = town(store.as_ref(), 3).await;
    let now = now_ms();
    let d = declared(now);
    step(store.as_ref(), &d, "sato").await.unwrap();
    let d = d.confirm(op("suzuki"), now).unwrap();
    step(store.as_ref(), &d, "suzuki").await.unwrap();
    // Two residents released (one twice), the third asked for outside the scope.
    for (_, subject) in [&people[0], &people[0], &people[1]] {
        let granted = decide_at(store.as_ref(), request(subject, &["health.checkup"]), now).await;
        assert_eq!(
            granted.record.basis,
            AccessBasis::Emergency { declaration: d.id }
        );
    }
    decide_at(
        store.as_ref(),
        request(&people[2].1, &["payment.history"]),
        now,
    )
    .await;
    assert!(
        store
            .declarations_awaiting_notices(now, 10)
            .await
            .unwrap()
            .is_empty(),
        "not over yet"
    );
    let records = store.records_under_declaration(d.id).await.unwrap();
    assert_eq!(records.len(), 3, "denied records have no emergency basis");
    assert!(records.windows(2).all(|w| w[0].seq < w[1].seq));

    let after_end = d.ends_at + TimeDelta::seconds(1);
    let due = store
        .declarations_awaiting_notices(after_end, 10)
        .await
        .unwrap();
    assert_eq!(due.iter().map(|x| x.id).collect::<Vec<_>>(), vec![d.id]);
    let notices = EmergencyNotice::from_records(d.id, &records, after_end);
    assert_eq!(notices.len(), 2);
    let message = OutboxMessage {
        id: Uuid::new_v4(),
        service: service_id(),
        event: serde_json::json!({"notice": "x"}),
    };
    let written = store
        .record_notices(d.id, &notices, std::slice::from_ref(&message), after_end)
        .await
        .unwrap();
    assert!(written);
    // A second writer (another replica, a retry) writes nothing, message included.
    let again = store
        .record_notices(d.id, &notices, &[], after_end)
        .await
        .unwrap();
    assert!(!again);
    assert!(
        store
            .declarations_awaiting_notices(after_end, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let first = store.notices(people[0].0, 10).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].releases.len(), 2);
    assert_eq!(first[0].declaration, d.id);
    assert_eq!(store.notices(people[1].0, 10).await.unwrap().len(), 1);
    assert!(store.notices(people[2].0, 10).await.unwrap().is_empty());
    let due = store
        .take_due_messages(
            after_end + TimeDelta::seconds(1),
            after_end + TimeDelta::seconds(30),
            10,
        )
        .await
        .unwrap();
    assert_eq!(due.len(), 1, "the message written with the notices");
}

pub async fn an_early_end_makes_the_notices_due_before_the_end_time(store: Arc<dyn Store>) {
    town(store.as_ref(), 1).await;
    let now = now_ms();
    let d = declared(now);
    step(store.as_ref(), &d, "sato").await.unwrap();
    assert!(
        store
            .declarations_awaiting_notices(now, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let ended = d.end(op("suzuki"), now).unwrap();
    step(store.as_ref(), &ended, "suzuki").await.unwrap();
    let due = store.declarations_awaiting_notices(now, 10).await.unwrap();
    assert_eq!(due, vec![ended.clone()]);
    assert!(store.record_notices(ended.id, &[], &[], now).await.unwrap());
    assert!(
        store
            .declarations_awaiting_notices(now, 10)
            .await
            .unwrap()
            .is_empty(),
        "a declaration with no release is done once too"
    );
}

pub async fn a_residents_notice_channels_are_added_once_and_removed(store: Arc<dyn Store>) {
    let people = town(store.as_ref(), 2).await;
    let (alice, bob) = (people[0].0, people[1].0);
    let now = now_ms();
    for _ in 0..2 {
        store
            .set_notice_channel(alice, &service_id(), true, now)
            .await
            .unwrap();
    }
    assert_eq!(
        store.notice_channels(&[alice, bob]).await.unwrap(),
        vec![(alice, service_id())]
    );
    store
        .set_notice_channel(alice, &service_id(), false, now)
        .await
        .unwrap();
    assert!(
        store
            .notice_channels(&[alice, bob])
            .await
            .unwrap()
            .is_empty()
    );
}
