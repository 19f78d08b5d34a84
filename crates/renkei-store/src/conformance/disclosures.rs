//! Conformance checks for what a resident's history shows of the data subject's own rights:
//! a disclosure (開示) is an access record whose recipient is the data subject, and an
//! operator's audit search naming a resident is an entry of their log, with its reason.

use std::sync::Arc;

use chrono::Utc;
use renkei_domain::{
    AccessBasis, AccessOutcome, LogEntry, OperatorAction, OperatorActor, OperatorId, ProviderId,
    PurposeId, RequestId, ServiceId,
};

use super::{cat, leaf_of, mixed_log, service_id};
use crate::{AccessQuery, Disclosure, Store};

fn everything() -> AccessQuery {
    AccessQuery {
        limit: 100,
        ..Default::default()
    }
}

pub async fn a_disclosure_is_an_access_record_of_the_data_subject_in_their_log(
    store: Arc<dyn Store>,
) {
    let (before, p0, p1) = mixed_log(store.as_ref()).await;
    let disclosure = Disclosure {
        request: RequestId::from_uuid(uuid::Uuid::now_v7()),
        resident: p1,
        proxy: Some(p0),
        categories: [cat("health.checkup")].into_iter().collect(),
        providers: [ProviderId::new("clinic").unwrap()].into_iter().collect(),
    };
    let record = store
        .record_disclosure(&disclosure, Utc::now())
        .await
        .unwrap();
    assert_eq!(
        record.seq,
        before.len() as u64,
        "the next position of the log"
    );
    assert_eq!(record.request, disclosure.request);
    assert_eq!(record.resident, Some(p1));
    assert_eq!(record.service, ServiceId::data_subject());
    assert_eq!(record.purpose, PurposeId::data_subject_access());
    assert_eq!(
        record.basis,
        AccessBasis::DataSubjectAccess { proxy: Some(p0) }
    );
    assert_eq!(record.outcome, AccessOutcome::Granted);
    assert_eq!(record.providers, disclosure.providers);

    let log = store.resident_log(p1, &everything()).await.unwrap();
    let (shown, leaf) = log.last().unwrap();
    assert_eq!(shown, &LogEntry::Access(record.clone()));
    assert_eq!(leaf.kind, "access");
    assert_eq!(leaf.leaf_hash, leaf_of(shown, &leaf.salt));
    let theirs = store.resident_log(p0, &everything()).await.unwrap();
    assert!(
        theirs.iter().all(|(e, _)| e.seq() != record.seq),
        "the proxy's own log does not show it"
    );
    let range = store.log_range(record.seq, 1).await.unwrap();
    assert_eq!(
        range[0].entry.clone().unwrap().unwrap(),
        LogEntry::Access(record)
    );
}

pub async fn an_operators_search_naming_a_resident_is_in_their_log_with_its_reason(
    store: Arc<dyn Store>,
) {
    let (_, p0, p1) = mixed_log(store.as_ref()).await;
    let actor = OperatorActor::Operator {
        id: OperatorId::new("tanaka").unwrap(),
    };
    let search = |resident, reason: &str| OperatorAction::SearchAccessLog {
        resident,
        service: None,
        reason: Some(reason.to_owned()),
    };
    let named = store
        .record_operator_action(&actor, &search(Some(p1), "complaint 2026-114"), Utc::now())
        .await
        .unwrap();
    let anonymous = store
        .record_operator_action(&actor, &search(None, "monthly review"), Utc::now())
        .await
        .unwrap();

    let log = store.resident_log(p1, &everything()).await.unwrap();
    let (shown, leaf) = log.last().unwrap();
    assert_eq!(shown, &LogEntry::Operator(named.clone()));
    assert_eq!(shown.resident(), Some(p1));
    assert_eq!(leaf.kind, "operator");
    assert_eq!(leaf.leaf_hash, leaf_of(shown, &leaf.salt));
    let LogEntry::Operator(entry) = shown else {
        panic!("an operator's entry: {shown:?}")
    };
    assert!(
        matches!(&entry.action, OperatorAction::SearchAccessLog { reason: Some(r), .. } if r == "complaint 2026-114")
    );
    let newest = store
        .resident_log(
            p1,
            &AccessQuery {
                order: crate::LogOrder::NewestFirst,
                limit: 1,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(newest[0].0.seq(), named.seq, "newest first, it leads");
    for other in [p0] {
        let theirs = store.resident_log(other, &everything()).await.unwrap();
        assert!(
            theirs
                .iter()
                .all(|(e, _)| !matches!(e, LogEntry::Operator(_)))
        );
    }
    let one_service = store
        .resident_log(
            p1,
            &AccessQuery {
                service: Some(service_id()),
                ..everything()
            },
        )
        .await
        .unwrap();
    assert!(
        one_service
            .iter()
            .all(|(e, _)| e.seq() != named.seq && e.seq() != anonymous.seq),
        "a page of one service's entries leaves searches out"
    );
}
