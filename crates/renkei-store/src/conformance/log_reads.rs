//! Conformance checks for reading the log: access records by filter, a resident's log in
//! either order, the operators' audit search, operators' acts and fulfilments.

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use renkei_domain::{AccessOutcome, PurposeId, ResidentId, ServiceId};
use uuid::Uuid;

use super::{decide_one, leaf_of, mixed_log, purpose_id, request, service_id, town};
use crate::{AccessQuery, AuditOutcome, AuditQuery, LogOrder, Store, StoreError};

pub async fn access_records_filter_by_resident_service_and_cursor(store: Arc<dyn Store>) {
    let people = town(store.as_ref(), 2).await;
    for _ in 0..3 {
        for (_, subject) in &people {
            decide_one(store.as_ref(), request(subject, &["health.checkup"])).await;
        }
    }
    let mine = AccessQuery {
        resident: Some(people[0].0),
        limit: 2,
        ..Default::default()
    };
    let page1 = store.access_records(&mine).await.unwrap();
    assert_eq!(page1.len(), 2);
    assert!(page1.iter().all(|r| r.resident == Some(people[0].0)));
    let page2 = store
        .access_records(&AccessQuery {
            after_seq: Some(page1[1].seq),
            ..mine.clone()
        })
        .await
        .unwrap();
    assert_eq!(page2.len(), 1);
    assert!(page2[0].seq > page1[1].seq);
    let other_service = AccessQuery {
        service: Some(ServiceId::new("community-bus").unwrap()),
        limit: 10,
        ..Default::default()
    };
    assert!(
        store
            .access_records(&other_service)
            .await
            .unwrap()
            .is_empty()
    );
    let future = AccessQuery {
        since: Some(Utc::now() + TimeDelta::hours(1)),
        limit: 10,
        ..Default::default()
    };
    assert!(store.access_records(&future).await.unwrap().is_empty());
}

pub async fn a_residents_log_holds_only_their_entries_and_pages_by_after_seq(
    store: Arc<dyn Store>,
) {
    let (expected, p0, p1) = mixed_log(store.as_ref()).await;
    let everything = store.log_range(0, 100).await.unwrap();
    let all = |limit| AccessQuery {
        limit,
        ..Default::default()
    };
    for person in [p0, p1] {
        let log = store.resident_log(person, &all(100)).await.unwrap();
        let want: Vec<u64> = (0..)
            .zip(&expected)
            .filter(|(_, e)| e.resident == Some(person))
            .map(|(seq, _)| seq)
            .collect();
        assert_eq!(
            log.iter().map(|(e, _)| e.seq()).collect::<Vec<_>>(),
            want,
            "exactly the resident's entries, in log order"
        );
        for (entry, leaf) in &log {
            assert_eq!(entry.resident(), Some(person));
            let stored = &everything[usize::try_from(entry.seq()).unwrap()];
            assert_eq!(Some(leaf), stored.leaf.as_ref());
            assert_eq!(Some(Ok(entry.clone())), stored.entry.clone());
            assert_eq!(leaf.leaf_hash, leaf_of(entry, &leaf.salt));
        }
        assert!(log.iter().any(|(e, _)| e.kind() == "access"));
        assert!(log.iter().any(|(e, _)| e.kind() == "consent"));
    }
    // Pages of two, each after the last one's final position.
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .resident_log(
                p1,
                &AccessQuery {
                    after_seq: after,
                    ..all(2)
                },
            )
            .await
            .unwrap();
        let seqs: Vec<u64> = page.iter().map(|(e, _)| e.seq()).collect();
        if seqs.is_empty() {
            break;
        }
        assert!(seqs.len() <= 2);
        after = seqs.last().copied();
        pages.push(seqs);
    }
    assert_eq!(pages, vec![vec![2, 4], vec![7, 8], vec![9]]);
    // Filters, and a resident with no history.
    let other_service = AccessQuery {
        service: Some(ServiceId::new("community-bus").unwrap()),
        ..all(100)
    };
    assert!(
        store
            .resident_log(p1, &other_service)
            .await
            .unwrap()
            .is_empty()
    );
    let future = AccessQuery {
        since: Some(Utc::now() + TimeDelta::hours(1)),
        ..all(100)
    };
    assert!(store.resident_log(p1, &future).await.unwrap().is_empty());
    let nobody = ResidentId::from_uuid(Uuid::new_v4());
    assert!(
        store
            .resident_log(nobody, &all(100))
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn a_residents_log_pages_newest_first_by_before_seq(store: Arc<dyn Store>) {
    let (_, p0, p1) = mixed_log(store.as_ref()).await;
    let newest = |limit| AccessQuery {
        order: LogOrder::NewestFirst,
        limit,
        ..Default::default()
    };
    // Pages of two from the newest, each before the last one's final position: access
    // entries and consent changes interleave exactly as in the log, mirrored.
    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .resident_log(
                p1,
                &AccessQuery {
                    before_seq: before,
                    ..newest(2)
                },
            )
            .await
            .unwrap();
        let seqs: Vec<u64> = page.iter().map(|(e, _)| e.seq()).collect();
        if seqs.is_empty() {
            break;
        }
        for (entry, leaf) in &page {
            assert_eq!(entry.resident(), Some(p1));
            assert_eq!(leaf.seq, entry.seq());
            assert_eq!(leaf.leaf_hash, leaf_of(entry, &leaf.salt));
        }
        before = seqs.last().copied();
        pages.push(seqs);
    }
    assert_eq!(pages, vec![vec![9, 8], vec![7, 4], vec![2]]);
    let whole = store.resident_log(p0, &newest(100)).await.unwrap();
    assert_eq!(
        whole.iter().map(|(e, _)| e.seq()).collect::<Vec<_>>(),
        vec![6, 5, 1, 0]
    );
    // Both cursors bound one range, in either order.
    let between = |order| AccessQuery {
        after_seq: Some(2),
        before_seq: Some(9),
        order,
        limit: 100,
        ..Default::default()
    };
    let seqs = |log: Vec<(renkei_domain::LogEntry, crate::StoredLeaf)>| {
        log.iter().map(|(e, _)| e.seq()).collect::<Vec<_>>()
    };
    assert_eq!(
        seqs(
            store
                .resident_log(p1, &between(LogOrder::NewestFirst))
                .await
                .unwrap()
        ),
        vec![8, 7, 4]
    );
    assert_eq!(
        seqs(
            store
                .resident_log(p1, &between(LogOrder::OldestFirst))
                .await
                .unwrap()
        ),
        vec![4, 7, 8]
    );
    // The access records alone page the same way.
    let access: Vec<u64> = store
        .access_records(&AccessQuery {
            resident: Some(p1),
            before_seq: Some(9),
            ..newest(100)
        })
        .await
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(access, vec![2]);
    let everyone: Vec<u64> = store
        .access_records(&newest(3))
        .await
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(everyone, vec![9, 6, 3]);
    // A cursor at the very start leaves nothing older.
    assert!(
        store
            .resident_log(
                p1,
                &AccessQuery {
                    before_seq: Some(0),
                    ..newest(100)
                }
            )
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn the_audit_search_filters_access_and_consent_entries_and_pages_newest_first(
    store: Arc<dyn Store>,
) {
    let (_, p0, p1) = mixed_log(store.as_ref()).await;
    let search = |q: AuditQuery| {
        let store = store.clone();
        async move {
            store
                .audit_search(&AuditQuery { limit: 100, ..q })
                .await
                .unwrap()
                .iter()
                .map(renkei_domain::LogEntry::seq)
                .collect::<Vec<u64>>()
        }
    };
    assert_eq!(
        search(AuditQuery::default()).await,
        (0..10).rev().collect::<Vec<_>>()
    );
    assert_eq!(
        search(AuditQuery {
            resident: Some(p0),
            ..Default::default()
        })
        .await,
        vec![6, 5, 1, 0],
        "the resident's access entries and consent changes"
    );
    let granted = AuditQuery {
        outcome: Some(AuditOutcome::Granted),
        ..Default::default()
    };
    assert_eq!(search(granted).await, vec![9, 1], "access entries only");
    let denied = AuditQuery {
        outcome: Some(AuditOutcome::Denied),
        ..Default::default()
    };
    assert_eq!(search(denied.clone()).await, vec![6, 3, 2]);
    assert_eq!(
        search(AuditQuery {
            resident: Some(p1),
            ..denied
        })
        .await,
        vec![2]
    );
    let basis = |kind: &str| AuditQuery {
        basis: Some(kind.to_owned()),
        ..Default::default()
    };
    assert_eq!(search(basis("consent")).await, vec![9, 1]);
    assert_eq!(search(basis("none")).await, vec![6, 3, 2]);
    assert_eq!(
        search(AuditQuery {
            service: Some(service_id()),
            purpose: Some(purpose_id()),
            ..Default::default()
        })
        .await
        .len(),
        10
    );
    for q in [
        AuditQuery {
            service: Some(ServiceId::new("community-bus").unwrap()),
            ..Default::default()
        },
        AuditQuery {
            purpose: Some(PurposeId::new("marketing").unwrap()),
            ..Default::default()
        },
        AuditQuery {
            since: Some(Utc::now() + TimeDelta::hours(1)),
            ..Default::default()
        },
        AuditQuery {
            until: Some(Utc::now() - TimeDelta::hours(1)),
            ..Default::default()
        },
    ] {
        assert!(search(q.clone()).await.is_empty(), "{q:?}");
    }
    // Pages of four, each before the last one's final position.
    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let page: Vec<u64> = store
            .audit_search(&AuditQuery {
                before_seq: before,
                limit: 4,
                ..Default::default()
            })
            .await
            .unwrap()
            .iter()
            .map(renkei_domain::LogEntry::seq)
            .collect();
        if page.is_empty() {
            break;
        }
        before = page.last().copied();
        pages.push(page);
    }
    assert_eq!(pages, vec![vec![9, 8, 7, 6], vec![5, 4, 3, 2], vec![1, 0]]);
    assert!(matches!(
        store.audit_search(&basis("con%")).await,
        Err(StoreError::Invalid(_))
    ));
}

pub async fn operator_actions_take_log_positions_with_leaves_and_list_newest_first(
    store: Arc<dyn Store>,
) {
    use renkei_domain::{OperatorAction, OperatorActor, OperatorId};
    let (before, _, _) = mixed_log(store.as_ref()).await;
    let operator = OperatorActor::Operator {
        id: OperatorId::new("tanaka").unwrap(),
    };
    let approve = OperatorAction::ApproveService {
        service: service_id(),
        acknowledged: vec!["special_care".into()],
    };
    let rotate = OperatorAction::RotateSigningKey {
        kid: "k2".into(),
        active_from: Utc::now(),
    };
    let first = store
        .record_operator_action(&operator, &approve, Utc::now())
        .await
        .unwrap();
    let second = store
        .record_operator_action(&OperatorActor::CommandLine, &rotate, Utc::now())
        .await
        .unwrap();
    assert_eq!(
        (first.seq, second.seq),
        (before.len() as u64, before.len() as u64 + 1),
        "operator acts take the next positions of the one log"
    );
    assert_eq!(store.log_size().await.unwrap(), before.len() as u64 + 2);

    let listed = store.operator_log(None, 10).await.unwrap();
    assert_eq!(listed, [second.clone(), first.clone()]);
    let older = store.operator_log(Some(second.seq), 10).await.unwrap();
    assert_eq!(older, std::slice::from_ref(&first));

    let range = store.log_range(first.seq, 2).await.unwrap();
    for (stored, want) in range.iter().zip([&first, &second]) {
        let leaf = stored.leaf.as_ref().unwrap();
        let entry = stored.entry.clone().unwrap().unwrap();
        assert_eq!(entry, renkei_domain::LogEntry::Operator(want.clone()));
        assert_eq!(leaf.kind, "operator");
        assert_eq!(
            entry.resident(),
            None,
            "an operator's act names no resident"
        );
        assert_eq!(leaf.leaf_hash, leaf_of(&entry, &leaf.salt));
    }
}

pub async fn a_fulfilment_takes_a_log_position_and_shows_in_its_residents_log(
    store: Arc<dyn Store>,
) {
    use renkei_domain::{ProviderDelivery, ProviderId};
    let (before, p0, p1) = mixed_log(store.as_ref()).await;
    let granted = store
        .resident_log(
            p1,
            &AccessQuery {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .into_iter()
        .find_map(|(e, _)| match e {
            renkei_domain::LogEntry::Access(r) if r.outcome == AccessOutcome::Granted => Some(r),
            _ => None,
        })
        .unwrap();
    let fulfilment = crate::Fulfilment {
        request: granted.request,
        service: granted.service.clone(),
        resident: p1,
        providers: [
            (
                ProviderId::new("clinic").unwrap(),
                ProviderDelivery::Delivered,
            ),
            (
                ProviderId::new("pay").unwrap(),
                ProviderDelivery::Failed {
                    reason: "provider-timeout".into(),
                },
            ),
        ]
        .into_iter()
        .collect(),
    };
    let entry = store
        .record_fulfilment(&fulfilment, Utc::now())
        .await
        .unwrap();
    assert_eq!(
        entry.seq,
        before.len() as u64,
        "the next position of the one log"
    );
    assert_eq!(
        (entry.request, &entry.providers),
        (granted.request, &fulfilment.providers)
    );
    assert_eq!(store.log_size().await.unwrap(), before.len() as u64 + 1);

    let newest = store
        .resident_log(
            p1,
            &AccessQuery {
                order: LogOrder::NewestFirst,
                limit: 1,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let (shown, leaf) = &newest[0];
    assert_eq!(shown, &renkei_domain::LogEntry::Fulfilment(entry.clone()));
    assert_eq!(leaf.kind, "fulfilment");
    assert_eq!(leaf.leaf_hash, leaf_of(shown, &leaf.salt));
    let others = store
        .resident_log(
            p0,
            &AccessQuery {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        others.iter().all(|(e, _)| e.seq() != entry.seq),
        "another resident's log does not show it"
    );

    let range = store.log_range(entry.seq, 1).await.unwrap();
    assert_eq!(
        range[0].entry.clone().unwrap().unwrap(),
        renkei_domain::LogEntry::Fulfilment(entry)
    );
}
