//! Conformance checks for the catalogue and consents: purpose versions, granting,
//! superseding, revoking, and the expiry entries the hub writes.

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use renkei_domain::{Actor, ConsentEventKind};

use super::{consent, decide_one, denial, draft, purpose_id, request, service_id, town};
use crate::{AccessQuery, Store, StoreError};

pub async fn a_fresh_store_has_an_empty_access_log(store: Arc<dyn Store>) {
    assert_eq!(store.log_size().await.unwrap(), 0);
    let q = AccessQuery {
        limit: 10,
        ..Default::default()
    };
    assert!(store.access_records(&q).await.unwrap().is_empty());
}

pub async fn purposes_get_a_new_version_only_when_they_change(store: Arc<dyn Store>) {
    town(store.as_ref(), 0).await;
    let now = Utc::now();
    let same = store
        .publish_purpose(&draft(&["health.checkup", "payment.history"]), now)
        .await
        .unwrap();
    assert_eq!(same.version, 1);
    let changed = store
        .publish_purpose(&draft(&["health.checkup"]), now)
        .await
        .unwrap();
    assert_eq!(changed.version, 2);
    let current = store
        .current_purpose(&service_id(), &purpose_id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(current, changed);
    let old = store
        .purpose_version(&same.reference())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.categories.len(), 2, "old versions stay as they were");
    assert_eq!(store.purposes(&service_id()).await.unwrap(), vec![changed]);
}

pub async fn a_purposes_location_use_and_a_location_category_are_kept(store: Arc<dyn Store>) {
    town(store.as_ref(), 0).await;
    let trace = renkei_domain::DataCategory {
        id: super::cat("mobility.trace"),
        name: renkei_domain::LocalizedText::new("移動履歴", "Movement history"),
        special_care: false,
        location: true,
    };
    store.put_category(&trace).await.unwrap();
    let categories = store.categories().await.unwrap();
    assert_eq!(categories.iter().find(|c| c.id == trace.id), Some(&trace));
    let now = Utc::now();
    let mut d = draft(&["mobility.trace"]);
    d.location = Some(renkei_domain::LocationUse {
        precision: renkei_domain::LocationPrecision::Mesh1km,
        retention_days: 30,
    });
    let first = store.publish_purpose(&d, now).await.unwrap();
    assert_eq!(first.location, d.location);
    let read = store.purpose_version(&first.reference()).await.unwrap();
    assert_eq!(read.and_then(|p| p.location), d.location);
    // A finer precision is a change the resident is asked about again: a new version.
    d.location = Some(renkei_domain::LocationUse {
        precision: renkei_domain::LocationPrecision::Exact,
        retention_days: 30,
    });
    let finer = store.publish_purpose(&d, now).await.unwrap();
    assert_eq!(finer.version, first.version + 1);
    assert_eq!(store.publish_purpose(&d, now).await.unwrap(), finer);
}

pub async fn a_location_deletion_owed_is_confirmed_once_with_its_log_entry(store: Arc<dyn Store>) {
    town(store.as_ref(), 0).await;
    let now = chrono::DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
    let owed = renkei_domain::LocationDeletion {
        service: service_id(),
        purpose: purpose_id(),
        purpose_version: 1,
        ended_at: now,
        due_at: now + TimeDelta::days(30),
        confirmed_at: None,
        confirmed_by: None,
    };
    store
        .record_location_deletions(std::slice::from_ref(&owed))
        .await
        .unwrap();
    // Owed again (a second suspension): the first due date stands.
    let later = renkei_domain::LocationDeletion {
        due_at: now + TimeDelta::days(60),
        ..owed.clone()
    };
    store.record_location_deletions(&[later]).await.unwrap();
    assert_eq!(
        store.location_deletions().await.unwrap(),
        vec![owed.clone()]
    );
    let operator = renkei_domain::OperatorId::new("tanaka").unwrap();
    let actor = renkei_domain::OperatorActor::Operator {
        id: operator.clone(),
    };
    let action = renkei_domain::OperatorAction::ConfirmLocationDeletion {
        service: service_id(),
        purpose: purpose_id(),
        version: 1,
    };
    let size = store.log_size().await.unwrap();
    let entry = store
        .confirm_location_deletion(&owed, &actor, &action, now)
        .await
        .unwrap();
    assert!(entry.is_some());
    assert_eq!(store.log_size().await.unwrap(), size + 1);
    let read = store.location_deletions().await.unwrap();
    assert_eq!(read[0].confirmed_at, Some(now));
    assert_eq!(read[0].confirmed_by, Some(operator));
    let again = store
        .confirm_location_deletion(&owed, &actor, &action, now)
        .await
        .unwrap();
    assert!(again.is_none(), "nothing left to confirm");
    assert_eq!(
        store.log_size().await.unwrap(),
        size + 1,
        "and nothing logged"
    );
}

pub async fn a_granted_consent_is_listed_with_its_history(store: Arc<dyn Store>) {
    let people = town(store.as_ref(), 1).await;
    let c = consent(people[0].0, 1, &["health.checkup"], Utc::now());
    store.grant_consent(&c, None).await.unwrap();
    let listed = store.consents_of(people[0].0).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, c.id);
    assert_eq!(listed[0].categories, c.categories);
    assert_eq!(
        listed[0].expires_at.map(|t| t.timestamp_millis()),
        c.expires_at.map(|t| t.timestamp_millis())
    );
    let history = store.consent_history(c.id).await.unwrap();
    assert_eq!(
        history.iter().map(|e| e.kind).collect::<Vec<_>>(),
        vec![ConsentEventKind::Granted]
    );
}

pub async fn a_counter_consent_keeps_its_staff_member_and_form(store: Arc<dyn Store>) {
    let people = town(store.as_ref(), 1).await;
    let mut c = consent(people[0].0, 1, &["health.checkup"], Utc::now());
    c.given_via = renkei_domain::ConsentChannel::Counter;
    c.given_by = Actor::ProviderStaff {
        provider: renkei_domain::ProviderId::new("clinic").unwrap(),
        staff_id: renkei_domain::StaffId::new("N-0042").unwrap(),
    };
    c.form_reference = Some(renkei_domain::FormReference::new("F-2026-0001").unwrap());
    store.grant_consent(&c, None).await.unwrap();
    let read = store.consent(c.id).await.unwrap().unwrap();
    assert_eq!(read.given_via, c.given_via);
    assert_eq!(read.given_by, c.given_by);
    assert_eq!(read.form_reference, c.form_reference);
    let history = store.consent_history(c.id).await.unwrap();
    assert_eq!(history[0].actor, c.given_by, "the staff member acted");
}

pub async fn granting_the_same_purpose_version_twice_is_a_conflict(store: Arc<dyn Store>) {
    let people = town(store.as_ref(), 1).await;
    let first = consent(people[0].0, 1, &["health.checkup"], Utc::now());
    store.grant_consent(&first, None).await.unwrap();
    let second = consent(people[0].0, 1, &["health.checkup"], Utc::now());
    match store.grant_consent(&second, None).await {
        Err(StoreError::ConsentAlreadyActive(id)) => assert_eq!(id, first.id),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(
        store.consents_of(people[0].0).await.unwrap().len(),
        1,
        "the rejected grant left nothing behind"
    );
}

pub async fn consent_to_a_new_purpose_version_supersedes_the_old_one(store: Arc<dyn Store>) {
    let people = town(store.as_ref(), 1).await;
    let now = Utc::now();
    let v1 = consent(people[0].0, 1, &["health.checkup"], now);
    store.grant_consent(&v1, None).await.unwrap();
    store
        .publish_purpose(&draft(&["health.checkup"]), now)
        .await
        .unwrap();
    // The old consent no longer speaks for the purpose.
    let d = decide_one(store.as_ref(), request(&people[0].1, &["health.checkup"])).await;
    assert_eq!(denial(&d), Some("consent-wrong-purpose-version"));
    let v2 = consent(
        people[0].0,
        2,
        &["health.checkup"],
        now + TimeDelta::milliseconds(5),
    );
    store.grant_consent(&v2, None).await.unwrap();
    let old = store.consent(v1.id).await.unwrap().unwrap();
    assert!(old.revoked_at.is_some());
    let kinds: Vec<_> = store
        .consent_history(v1.id)
        .await
        .unwrap()
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        vec![ConsentEventKind::Granted, ConsentEventKind::Superseded]
    );
    let d = decide_one(store.as_ref(), request(&people[0].1, &["health.checkup"])).await;
    assert_eq!(denial(&d), None);
}

pub async fn a_resident_cannot_revoke_another_residents_consent(store: Arc<dyn Store>) {
    let people = town(store.as_ref(), 2).await;
    let c = consent(people[0].0, 1, &["health.checkup"], Utc::now());
    store.grant_consent(&c, None).await.unwrap();
    let err = store
        .revoke_consent(people[1].0, c.id, &Actor::Resident, Utc::now(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert!(
        store
            .consent(c.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none()
    );
}

pub async fn a_consent_cannot_be_revoked_twice(store: Arc<dyn Store>) {
    let people = town(store.as_ref(), 1).await;
    let c = consent(people[0].0, 1, &["health.checkup"], Utc::now());
    store.grant_consent(&c, None).await.unwrap();
    store
        .revoke_consent(people[0].0, c.id, &Actor::Resident, Utc::now(), None)
        .await
        .unwrap();
    let err = store
        .revoke_consent(people[0].0, c.id, &Actor::Resident, Utc::now(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::ConsentNotActive(_)), "{err:?}");
    assert_eq!(store.consent_history(c.id).await.unwrap().len(), 2);
}

pub async fn an_expired_consent_gets_one_expiry_entry_in_the_log(store: Arc<dyn Store>) {
    let people = town(store.as_ref(), 1).await;
    let granted = Utc::now() - TimeDelta::days(2);
    let mut c = consent(people[0].0, 1, &["health.checkup"], granted);
    c.expires_at = Some(granted + TimeDelta::days(1));
    store.grant_consent(&c, None).await.unwrap();
    let before = store.log_size().await.unwrap();
    assert_eq!(store.record_expiries(Utc::now(), 100).await.unwrap(), 1);
    assert_eq!(
        store.record_expiries(Utc::now(), 100).await.unwrap(),
        0,
        "recorded once only"
    );
    assert_eq!(store.log_size().await.unwrap(), before + 1);
    let kinds: Vec<_> = store
        .consent_history(c.id)
        .await
        .unwrap()
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        vec![ConsentEventKind::Granted, ConsentEventKind::Expired]
    );
}
