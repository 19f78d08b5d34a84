//! Conformance checks for declared emergencies: each step written with its log entry over the
//! revision it came from, and decisions that see every step at once and each window's end
//! without any step.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use renkei_domain::{
    AccessBasis, Area, Declaration, DeclarationDraft, DeclarationId, EmergencyLegalBasis, LogEntry,
    OperatorAction, OperatorActor, OperatorId,
};
use uuid::Uuid;

use super::{cat, consent, denial, draft, request, service_id, town};
use crate::{AccessQuery, DecisionInput, RecordedDecision, Store, StoreError};

pub(super) fn op(id: &str) -> OperatorId {
    OperatorId::new(id).unwrap()
}

/// Now, as storage keeps times (milliseconds).
pub(super) fn now_ms() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap()
}

/// A declaration by `sato` releasing `health.checkup` to the town's service for an hour.
pub(super) fn declared(now: DateTime<Utc>) -> Declaration {
    let draft = DeclarationDraft {
        reason: "豪雨".into(),
        legal_basis: EmergencyLegalBasis::DisasterAct49_11,
        categories: [cat("health.checkup")].into(),
        services: [service_id()].into(),
        area: Area::parse(["5339", "district:hikari-1"]).unwrap(),
        starts_at: now,
        ends_at: now + TimeDelta::hours(1),
    };
    let id = DeclarationId::from_uuid(Uuid::new_v4());
    Declaration::declare(id, draft, op("sato"), now).unwrap()
}

pub(super) async fn step(store: &dyn Store, d: &Declaration, by: &str) -> Result<u64, StoreError> {
    let action = OperatorAction::ConfirmEmergency { declaration: d.id };
    let actor = OperatorActor::Operator { id: op(by) };
    store
        .record_declaration_step(d, &actor, &action, d.declared.at)
        .await
        .map(|entry| entry.seq)
}

pub(super) async fn decide_at(
    store: &dyn Store,
    input: DecisionInput,
    at: DateTime<Utc>,
) -> RecordedDecision {
    store
        .decide_and_record(&[input], at)
        .await
        .unwrap()
        .remove(0)
}

pub async fn a_declaration_step_is_written_with_its_log_entry_over_the_revision_it_came_from(
    store: Arc<dyn Store>,
) {
    let now = now_ms();
    let d = declared(now);
    let size = store.log_size().await.unwrap();
    assert_eq!(step(store.as_ref(), &d, "sato").await.unwrap(), size);
    assert_eq!(store.declaration(d.id).await.unwrap(), Some(d.clone()));
    let confirmed = d.clone().confirm(op("suzuki"), now).unwrap();
    assert_eq!(
        step(store.as_ref(), &confirmed, "suzuki").await.unwrap(),
        size + 1
    );
    // Another step taken from the same revision lost the race: nothing changes, no entry.
    let ended = d.clone().end(op("tanaka"), now).unwrap();
    assert!(matches!(
        step(store.as_ref(), &ended, "tanaka").await,
        Err(StoreError::Stale(_))
    ));
    assert!(
        matches!(
            step(store.as_ref(), &d, "sato").await,
            Err(StoreError::Database(_))
        ),
        "a declaration is created once"
    );
    assert_eq!(store.log_size().await.unwrap(), size + 2);
    assert_eq!(
        store.declaration(d.id).await.unwrap(),
        Some(confirmed.clone())
    );
    let log = store.operator_log(None, 10).await.unwrap();
    assert_eq!(log[0].actor, OperatorActor::Operator { id: op("suzuki") });
    let later = declared(now + TimeDelta::seconds(1));
    step(store.as_ref(), &later, "sato").await.unwrap();
    let listed = store.declarations(10).await.unwrap();
    assert_eq!(listed, vec![later, confirmed], "the latest declared first");
    assert_eq!(store.declarations(1).await.unwrap().len(), 1);
}

pub async fn a_responder_without_consent_is_granted_only_inside_a_confirmed_declarations_window(
    store: Arc<dyn Store>,
) {
    let people = town(store.as_ref(), 1).await;
    let (resident, subject) = people[0].clone();
    let ask = |categories: &[&str]| request(&subject, categories);
    let now = now_ms();
    let d = declared(now);
    step(store.as_ref(), &d, "sato").await.unwrap();
    // Declared but not confirmed: nothing is released, and the batch caches what it read.
    let pending = decide_at(store.as_ref(), ask(&["health.checkup"]), now).await;
    assert_eq!(denial(&pending), Some("emergency-not-in-force"));
    let confirmed = d.confirm(op("suzuki"), now).unwrap();
    step(store.as_ref(), &confirmed, "suzuki").await.unwrap();
    let end = confirmed.ends_at;
    let granted = decide_at(
        store.as_ref(),
        ask(&["health.checkup"]),
        end - TimeDelta::milliseconds(1),
    )
    .await;
    assert_eq!(denial(&granted), None, "seen at once by the next batch");
    let basis = AccessBasis::Emergency {
        declaration: confirmed.id,
    };
    assert_eq!(granted.record.basis, basis);
    assert_eq!(granted.locators.len(), 1);
    let outside = decide_at(store.as_ref(), ask(&["payment.history"]), now).await;
    assert_eq!(denial(&outside), Some("category-not-in-emergency"));
    // Its end takes effect by itself, with nothing written.
    let after = decide_at(
        store.as_ref(),
        ask(&["health.checkup"]),
        end + TimeDelta::milliseconds(1),
    )
    .await;
    assert_eq!(denial(&after), Some("consent-missing"));
    let records = store
        .access_records(&AccessQuery {
            resident: Some(resident),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(records[1].basis, basis, "the basis is stored as decided");
    // Ended early: the next batch sees it.
    let ended = confirmed.end(op("tanaka"), now).unwrap();
    step(store.as_ref(), &ended, "tanaka").await.unwrap();
    let stopped = decide_at(store.as_ref(), ask(&["health.checkup"]), now).await;
    assert_eq!(denial(&stopped), Some("consent-missing"));
    let log = store
        .resident_log(
            resident,
            &AccessQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        log.iter()
            .any(|(e, _)| matches!(e, LogEntry::Access(r) if r.basis == basis))
    );
}

pub async fn a_dual_mode_purpose_is_granted_only_while_a_declaration_is_in_force(
    store: Arc<dyn Store>,
) {
    let people = town(store.as_ref(), 1).await;
    let (resident, subject) = people[0].clone();
    let now = now_ms();
    let purpose = store
        .publish_purpose(
            &crate::PurposeDraft {
                emergency_only: true,
                ..draft(&["health.checkup", "payment.history"])
            },
            now,
        )
        .await
        .unwrap();
    assert!(purpose.emergency_only);
    let c = consent(resident, purpose.version, &["payment.history"], now);
    store.grant_consent(&c, None).await.unwrap();
    let normal = decide_at(store.as_ref(), request(&subject, &["payment.history"]), now).await;
    assert_eq!(denial(&normal), Some("not-in-emergency"));
    // A declaration for other services and categories: the consent is the basis.
    let mut d = declared(now);
    d.services = [super::service_id_of("fire-dept")].into();
    step(store.as_ref(), &d, "sato").await.unwrap();
    let d = d.confirm(op("suzuki"), now).unwrap();
    step(store.as_ref(), &d, "suzuki").await.unwrap();
    let during = decide_at(store.as_ref(), request(&subject, &["payment.history"]), now).await;
    assert_eq!(denial(&during), None);
    assert_eq!(
        during.record.basis,
        AccessBasis::Consent {
            consent: c.id,
            during: Some(d.id)
        }
    );
}

fn code() -> renkei_domain::ProviderSubject {
    renkei_domain::ProviderSubject::new(format!("ps-{}", Uuid::new_v4().simple())).unwrap()
}

fn area_release(
    d: &Declaration,
    area: &[&str],
    entries: Vec<crate::ReleasedEntry>,
) -> crate::AreaRelease {
    crate::AreaRelease {
        request: renkei_domain::AreaListRequest {
            id: renkei_domain::RequestId::from_uuid(Uuid::now_v7()),
            service: service_id(),
            purpose: super::purpose_id(),
            declaration: d.id,
            categories: [cat("health.checkup")].into(),
            area: Area::parse(area.iter().copied()).unwrap(),
        },
        token_id: None,
        entries,
    }
}

pub async fn an_area_list_records_one_entry_per_resident_its_provider_names_and_nothing_else(
    store: Arc<dyn Store>,
) {
    use crate::{AreaListOutcome, ReleasedEntry};
    let people = town(store.as_ref(), 3).await;
    let clinic = renkei_domain::ProviderId::new("clinic").unwrap();
    let pharmacy = renkei_domain::ProviderId::new("pharmacy").unwrap();
    let (at_clinic, at_pharmacy) = (code(), code());
    let mut codes = Vec::new();
    for (resident, _) in &people[..2] {
        let c = code();
        store
            .link_provider_subject(&clinic, &c, *resident)
            .await
            .unwrap();
        codes.push(c);
    }
    // The third resident is known by a code at another provider only.
    let third = people[2].0;
    store
        .link_provider_subject(&pharmacy, &at_pharmacy, third)
        .await
        .unwrap();
    let entry = |subject: &renkei_domain::ProviderSubject| ReleasedEntry {
        provider: clinic.clone(),
        subject: subject.clone(),
        categories: [cat("health.checkup")].into(),
    };
    let now = now_ms();
    let d = declared(now);
    step(store.as_ref(), &d, "sato").await.unwrap();
    let pending = area_release(&d, &["53394526"], vec![entry(&codes[0])]);
    let size = store.log_size().await.unwrap();
    let AreaListOutcome::Denied { reason, record } =
        store.record_area_list(&pending, now).await.unwrap()
    else {
        panic!("a pending declaration releases nothing");
    };
    assert_eq!(reason.code(), "emergency-not-in-force");
    assert_eq!((record.seq, record.resident), (size, None));
    assert_eq!(
        store.log_size().await.unwrap(),
        size + 1,
        "one denial entry"
    );

    let d = d.confirm(op("suzuki"), now).unwrap();
    step(store.as_ref(), &d, "suzuki").await.unwrap();
    // Checked before any provider is asked: granted, nothing written.
    let size = store.log_size().await.unwrap();
    let empty = area_release(&d, &["53394526"], Vec::new());
    assert!(matches!(
        store.record_area_list(&empty, now).await.unwrap(),
        AreaListOutcome::Released { records, .. } if records.is_empty()
    ));
    assert_eq!(store.log_size().await.unwrap(), size);

    let release = area_release(
        &d,
        &["53394526"],
        vec![
            entry(&codes[0]),
            entry(&at_pharmacy),
            entry(&codes[1]),
            entry(&at_clinic),
            entry(&codes[0]),
        ],
    );
    let AreaListOutcome::Released { records, entries } =
        store.record_area_list(&release, now).await.unwrap()
    else {
        panic!("granted inside the declaration");
    };
    let (first, second) = (people[0].0, people[1].0);
    assert_eq!(
        entries,
        vec![
            Some((first, size)),
            None,
            Some((second, size + 1)),
            None,
            Some((first, size)),
        ],
        "a code is resolved in its own provider's sector only, each resident once"
    );
    assert_eq!(records.len(), 2);
    assert_eq!(store.log_size().await.unwrap(), size + 2);
    let basis = AccessBasis::Emergency { declaration: d.id };
    for (resident, seq) in [(first, size), (second, size + 1)] {
        let log = store
            .resident_log(
                resident,
                &AccessQuery {
                    limit: 10,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let released: Vec<_> = log
            .iter()
            .filter_map(|(e, _)| match e {
                LogEntry::Access(r) if r.basis == basis => Some(r),
                _ => None,
            })
            .collect();
        assert_eq!(released.len(), 1);
        assert_eq!(released[0].seq, seq);
        assert_eq!(released[0].request, release.request.id);
        assert_eq!(released[0].providers, [clinic.clone()].into());
        assert_eq!(released[0].purpose_version, Some(1));
    }
    let third_log = store
        .resident_log(
            third,
            &AccessQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        !third_log
            .iter()
            .any(|(e, _)| matches!(e, LogEntry::Access(r) if r.basis == basis)),
        "{third_log:?}"
    );

    // Outside the declaration's area, or after its end: one denial, no resident's entry.
    let wide = area_release(&d, &["5340"], vec![entry(&codes[0])]);
    let outcome = store.record_area_list(&wide, now).await.unwrap();
    assert!(matches!(
        outcome,
        AreaListOutcome::Denied { ref reason, .. } if reason.code() == "area-not-in-emergency"
    ));
    let late = store
        .record_area_list(&release, d.ends_at + TimeDelta::milliseconds(1))
        .await
        .unwrap();
    assert!(matches!(
        late,
        AreaListOutcome::Denied { ref reason, .. } if reason.code() == "emergency-not-in-force"
    ));
    assert_eq!(store.log_size().await.unwrap(), size + 4);
}
