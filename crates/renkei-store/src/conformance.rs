//! The store conformance suite: every backend must pass exactly these checks.
//!
//! Each check takes a freshly migrated, empty store. A backend's test file instantiates the
//! whole suite with [`crate::store_conformance_suite!`], one `#[tokio::test]` per check.

// Test code compiled into the library (so both backends' test files can share it): it
// unwraps and panics like any test does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use renkei_domain::{
    AccessOutcome, Actor, CategoryId, Consent, ConsentChannel, ConsentEventKind, ConsentId,
    DataCategory, DataRequest, Decision, LegalBasis, LocalizedText, Locator, Provider, ProviderId,
    PurposeId, RequestId, ResidentId, Service, ServiceId, ServiceStatus, ServiceSubject,
};
use uuid::Uuid;

pub mod faults;
mod identity;
pub use identity::*;

use crate::{
    AccessQuery, AuditOutcome, AuditQuery, DecisionInput, DeliveryOutcome, LogOrder, OutboxMessage,
    PurposeDraft, Store, StoreError,
};

/// Runs every check as its own test. `$factory` is an async fn returning
/// `Option<impl Store>`; `None` means the backend is not configured here (the test says so
/// and passes without checking anything).
#[macro_export]
macro_rules! store_conformance_suite {
    ($factory:path) => {
        $crate::store_conformance_suite!(@tests $factory;
            a_fresh_store_has_an_empty_access_log,
            purposes_get_a_new_version_only_when_they_change,
            a_granted_consent_is_listed_with_its_history,
            granting_the_same_purpose_version_twice_is_a_conflict,
            consent_to_a_new_purpose_version_supersedes_the_old_one,
            a_matching_consent_grants_the_request_with_only_the_requested_locators,
            a_revoked_consent_denies_the_next_request,
            a_category_outside_the_consent_is_denied_and_recorded,
            an_unknown_subject_is_denied_and_recorded_without_a_resident,
            a_suspended_service_is_denied,
            every_change_a_decision_reads_is_seen_by_the_next_batch,
            a_resident_cannot_revoke_another_residents_consent,
            a_consent_cannot_be_revoked_twice,
            the_access_log_is_gap_free_under_concurrent_batches,
            staged_decisions_are_recorded_only_when_committed,
            a_request_with_a_revoked_token_is_denied_and_recorded,
            access_records_filter_by_resident_service_and_cursor,
            webhook_messages_are_leased_once_and_retried_until_delivered,
            ensure_secret_keeps_the_first_value,
            secrets_are_listed_and_replaced_all_together_or_not_at_all,
            log_positions_are_shared_and_gap_free_across_access_records_and_consent_events,
            integrated_node_hashes_read_back_as_stored_and_are_never_rewritten,
            checkpoints_are_listed_in_order_of_size_and_never_replaced,
            a_residents_log_holds_only_their_entries_and_pages_by_after_seq,
            a_residents_log_pages_newest_first_by_before_seq,
            an_enrolment_challenge_can_be_taken_once_and_not_after_it_expires,
            enrolling_the_same_key_again_finds_the_same_resident,
            a_webauthn_ceremony_can_be_finished_once_and_only_as_its_kind,
            passkeys_are_kept_per_resident_and_a_credential_registers_once,
            an_authorization_code_redeems_once_and_reuse_revokes_its_tokens,
            an_expired_authorization_code_is_refused,
            a_code_presented_by_another_client_or_without_its_verifier_stays_redeemable,
            a_code_a_proxy_signed_in_for_keeps_the_appointment_they_acted_under,
            a_revoked_token_reads_back_as_revoked,
            purging_removes_only_what_expired_and_keeps_what_tokens_are_bound_to,
            a_service_client_registration_reads_back,
            only_the_appointing_resident_ends_a_proxy_appointment,
            an_operator_is_found_by_id_and_by_the_identity_they_sign_in_with,
            resident_requests_are_listed_and_their_status_updated,
            signing_keys_are_added_once_listed_in_activation_order_and_retired_once,
            a_signing_key_in_a_token_reads_back_with_no_private_half_and_is_no_stored_secret,
            operator_actions_take_log_positions_with_leaves_and_list_newest_first,
            a_fulfilment_takes_a_log_position_and_shows_in_its_residents_log,
            an_expired_consent_gets_one_expiry_entry_in_the_log,
            the_audit_search_filters_access_and_consent_entries_and_pages_newest_first,
        );
    };
    (@tests $factory:path; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                match $factory().await {
                    Some(store) => $crate::conformance::$check(std::sync::Arc::new(store)).await,
                    None => eprintln!("skipped: backend not configured for {}", stringify!($check)),
                }
            }
        )*
    };
}

fn cat(s: &str) -> CategoryId {
    CategoryId::new(s).unwrap_or_else(|e| unreachable!("{e}"))
}

fn service_id() -> ServiceId {
    ServiceId::new("health-advice").unwrap_or_else(|e| unreachable!("{e}"))
}

fn purpose_id() -> PurposeId {
    PurposeId::new("advice").unwrap_or_else(|e| unreachable!("{e}"))
}

fn draft(categories: &[&str]) -> PurposeDraft {
    PurposeDraft {
        service: service_id(),
        id: purpose_id(),
        title: LocalizedText::new("健康アドバイス", "Health advice"),
        description: LocalizedText::new(
            "健診結果と購買履歴から助言します",
            "Advice from checkups and purchases",
        ),
        categories: categories.iter().map(|c| cat(c)).collect(),
        retention_days: 365,
        legal_basis: LegalBasis::Consent,
    }
}

/// A tiny town: one service with one purpose, one provider, and `residents` residents
/// holding both categories there; returns the residents and their subjects.
async fn town(store: &dyn Store, residents: usize) -> Vec<(ResidentId, ServiceSubject)> {
    let now = Utc::now();
    for (id, special) in [("health.checkup", true), ("payment.history", false)] {
        store
            .put_category(&DataCategory {
                id: cat(id),
                name: LocalizedText::new(id, id),
                special_care: special,
            })
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
    }
    let service = Service {
        id: service_id(),
        name: LocalizedText::new("健康アドバイス", "Health advice"),
        sector: "health".into(),
        // Well-formed: decisions deny a service whose key is not an X25519 key.
        hpke_public_key: "A".repeat(43),
        webhook_url: Some("http://127.0.0.1:9/hook".into()),
        status: ServiceStatus::Approved,
    };
    store
        .put_service(&service, "hash")
        .await
        .unwrap_or_else(|e| unreachable!("{e}"));
    store
        .publish_purpose(&draft(&["health.checkup", "payment.history"]), now)
        .await
        .unwrap_or_else(|e| unreachable!("{e}"));
    let provider = ProviderId::new("clinic").unwrap_or_else(|e| unreachable!("{e}"));
    store
        .put_provider(&Provider {
            id: provider.clone(),
            name: LocalizedText::new("診療所", "Clinic"),
            endpoint: "http://127.0.0.1:9".into(),
            categories: [cat("health.checkup"), cat("payment.history")].into(),
            max_answer_bytes: None,
        })
        .await
        .unwrap_or_else(|e| unreachable!("{e}"));
    let mut out = Vec::new();
    for i in 0..residents {
        let resident = ResidentId::from_uuid(Uuid::new_v4());
        store
            .add_resident(resident, now)
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        let locators: Vec<Locator> = ["health.checkup", "payment.history"]
            .iter()
            .map(|c| Locator {
                resident,
                category: cat(c),
                provider: provider.clone(),
                reference: format!("P-{i}-{c}"),
            })
            .collect();
        store
            .put_locators(&locators)
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        let subject = ServiceSubject::new(format!("subject-{}", Uuid::new_v4().simple()))
            .unwrap_or_else(|e| unreachable!("{e}"));
        store
            .link_subject("health", &subject, resident)
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        out.push((resident, subject));
    }
    out
}

fn consent(resident: ResidentId, version: u32, categories: &[&str], at: DateTime<Utc>) -> Consent {
    Consent {
        id: ConsentId::from_uuid(Uuid::new_v4()),
        resident,
        purpose: renkei_domain::PurposeRef {
            service: service_id(),
            purpose: purpose_id(),
            version,
        },
        categories: categories.iter().map(|c| cat(c)).collect(),
        legal_basis: LegalBasis::Consent,
        granted_at: at,
        expires_at: Some(at + TimeDelta::days(365)),
        given_via: ConsentChannel::Portal,
        given_by: Actor::Resident,
        revoked_at: None,
    }
}

fn request(subject: &ServiceSubject, categories: &[&str]) -> DecisionInput {
    DecisionInput {
        request: DataRequest {
            id: RequestId::from_uuid(Uuid::new_v4()),
            service: service_id(),
            purpose: purpose_id(),
            categories: categories.iter().map(|c| cat(c)).collect(),
        },
        subject: subject.clone(),
        token_id: None,
    }
}

async fn decide_one(store: &dyn Store, input: DecisionInput) -> crate::RecordedDecision {
    let mut out = store
        .decide_and_record(&[input], Utc::now())
        .await
        .unwrap_or_else(|e| unreachable!("{e}"));
    assert_eq!(out.len(), 1);
    out.remove(0)
}

fn denial(d: &crate::RecordedDecision) -> Option<&str> {
    match &d.decision {
        Decision::Granted(_) => None,
        Decision::Denied(r) => Some(r.code()),
    }
}

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
        renkei_domain::AccessBasis::Consent { consent: c.id }
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

pub async fn webhook_messages_are_leased_once_and_retried_until_delivered(store: Arc<dyn Store>) {
    let people = town(store.as_ref(), 1).await;
    let c = consent(people[0].0, 1, &["health.checkup"], Utc::now());
    let m = OutboxMessage {
        id: Uuid::new_v4(),
        service: service_id(),
        event: serde_json::json!({"kind": "granted"}),
    };
    store.grant_consent(&c, Some(&m)).await.unwrap();
    let now = Utc::now() + TimeDelta::seconds(1);
    let first = store
        .take_due_messages(now, now + TimeDelta::seconds(30), 10)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    let again = store
        .take_due_messages(now, now + TimeDelta::seconds(30), 10)
        .await
        .unwrap();
    assert!(again.is_empty(), "a leased message is not handed out twice");
    store
        .record_delivery(
            m.id,
            DeliveryOutcome::RetryAt(now + TimeDelta::seconds(2)),
            Some("503"),
            now,
        )
        .await
        .unwrap();
    assert!(
        store
            .take_due_messages(
                now + TimeDelta::seconds(1),
                now + TimeDelta::seconds(30),
                10
            )
            .await
            .unwrap()
            .is_empty()
    );
    let retry = store
        .take_due_messages(
            now + TimeDelta::seconds(2),
            now + TimeDelta::seconds(30),
            10,
        )
        .await
        .unwrap();
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].attempts, 1);
    store
        .record_delivery(m.id, DeliveryOutcome::Delivered, None, now)
        .await
        .unwrap();
    assert!(
        store
            .take_due_messages(now + TimeDelta::days(1), now + TimeDelta::days(2), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn ensure_secret_keeps_the_first_value(store: Arc<dyn Store>) {
    let first = store
        .ensure_secret("pairwise", b"one", Utc::now())
        .await
        .unwrap();
    let second = store
        .ensure_secret("pairwise", b"two", Utc::now())
        .await
        .unwrap();
    assert_eq!(first, b"one");
    assert_eq!(second, b"one");
}

pub async fn secrets_are_listed_and_replaced_all_together_or_not_at_all(store: Arc<dyn Store>) {
    let now = Utc::now();
    store.ensure_secret("a", b"one", now).await.unwrap();
    store.ensure_secret("b", b"two", now).await.unwrap();
    store
        .add_signing_key(&crate::StoredSigningKey {
            kid: "k1".into(),
            alg: renkei_domain::SigningAlg::EdDsa,
            custody: crate::KeyCustody::Stored(b"private".to_vec()),
            created_at: now,
            active_from: now,
            retired_at: None,
        })
        .await
        .unwrap();
    let slot_a = crate::SecretSlot::Hub("a".into());
    let slot_b = crate::SecretSlot::Hub("b".into());
    let key = crate::SecretSlot::SigningKey("k1".into());
    let listed: Vec<(crate::SecretSlot, Vec<u8>)> = store
        .stored_secrets()
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.slot, s.value))
        .collect();
    assert_eq!(
        listed,
        vec![
            (slot_a.clone(), b"one".to_vec()),
            (slot_b.clone(), b"two".to_vec()),
            (key.clone(), b"private".to_vec()),
        ]
    );
    let replace =
        |slot: &crate::SecretSlot, expected: &[u8], value: &[u8]| crate::SecretReplacement {
            slot: slot.clone(),
            expected: expected.to_vec(),
            value: value.to_vec(),
        };
    // One stale expectation: nothing changes, not even the replacements before it.
    assert!(
        !store
            .replace_secrets(&[
                replace(&slot_a, b"one", b"ONE"),
                replace(&key, b"private", b"PRIVATE"),
                replace(&slot_b, b"stale", b"TWO"),
            ])
            .await
            .unwrap()
    );
    assert_eq!(store.ensure_secret("a", b"x", now).await.unwrap(), b"one");
    assert!(
        !store
            .replace_secrets(&[replace(&crate::SecretSlot::Hub("none".into()), b"", b"x")])
            .await
            .unwrap(),
        "a missing slot is not replaced"
    );
    assert!(
        store
            .replace_secrets(&[
                replace(&slot_a, b"one", b"ONE"),
                replace(&key, b"private", b"PRIVATE"),
                replace(&slot_b, b"two", b"TWO"),
            ])
            .await
            .unwrap()
    );
    assert_eq!(store.ensure_secret("a", b"x", now).await.unwrap(), b"ONE");
    assert_eq!(store.ensure_secret("b", b"x", now).await.unwrap(), b"TWO");
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(
        keys[0].custody,
        crate::KeyCustody::Stored(b"PRIVATE".to_vec())
    );
}

// --- the transparency log ---

/// What a log position should hold after [`mixed_log`]: its kind and whom it names.
struct Expected {
    kind: &'static str,
    resident: Option<ResidentId>,
}

/// Writes ten log entries of every kind, interleaved: consent grants, revocations and
/// supersessions, granted and denied access records, and a record naming nobody. Returns what
/// each position should hold and the two residents (who have no other entries).
async fn mixed_log(store: &dyn Store) -> (Vec<Expected>, ResidentId, ResidentId) {
    let people = town(store, 2).await;
    let ((p0, s0), (p1, s1)) = (people[0].clone(), people[1].clone());
    let t0 = Utc::now();
    let at = |ms: i64| t0 + TimeDelta::milliseconds(ms);
    let c0 = consent(p0, 1, &["health.checkup"], at(0));
    store.grant_consent(&c0, None).await.unwrap(); // 0
    decide_one(store, request(&s0, &["health.checkup"])).await; // 1
    let stranger = ServiceSubject::new("nobody-knows-this-subject").unwrap();
    store
        .decide_and_record(
            &[
                request(&s1, &["health.checkup"]),
                request(&stranger, &["health.checkup"]),
            ],
            Utc::now(),
        )
        .await
        .unwrap(); // 2, 3
    let c1 = consent(p1, 1, &["health.checkup"], at(1));
    store.grant_consent(&c1, None).await.unwrap(); // 4
    store
        .revoke_consent(p0, c0.id, &Actor::Resident, at(2), None)
        .await
        .unwrap(); // 5
    decide_one(store, request(&s0, &["health.checkup"])).await; // 6
    store
        .publish_purpose(&draft(&["health.checkup"]), at(3))
        .await
        .unwrap();
    let c1v2 = consent(p1, 2, &["health.checkup"], at(4));
    store.grant_consent(&c1v2, None).await.unwrap(); // 7 (superseded), 8 (granted)
    decide_one(store, request(&s1, &["health.checkup"])).await; // 9
    let e = |kind, resident| Expected { kind, resident };
    let expected = vec![
        e("consent", Some(p0)),
        e("access", Some(p0)),
        e("access", Some(p1)),
        e("access", None),
        e("consent", Some(p1)),
        e("consent", Some(p0)),
        e("access", Some(p0)),
        e("consent", Some(p1)),
        e("consent", Some(p1)),
        e("access", Some(p1)),
    ];
    (expected, p0, p1)
}

/// The leaf hash an entry and its salt commit to.
fn leaf_of(entry: &renkei_domain::LogEntry, salt: &[u8]) -> Vec<u8> {
    renkei_log::merkle::leaf_hash(&entry.leaf_data(salt))
        .as_bytes()
        .to_vec()
}

pub async fn log_positions_are_shared_and_gap_free_across_access_records_and_consent_events(
    store: Arc<dyn Store>,
) {
    let (expected, _, _) = mixed_log(store.as_ref()).await;
    assert_eq!(store.log_size().await.unwrap(), expected.len() as u64);
    let range = store.log_range(0, 100).await.unwrap();
    assert_eq!(
        range.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (0..expected.len() as u64).collect::<Vec<_>>(),
        "each position exactly once"
    );
    let mut salts = BTreeSet::new();
    for (stored, want) in range.iter().zip(&expected) {
        let leaf = stored.leaf.as_ref().unwrap();
        let entry = stored.entry.clone().unwrap().unwrap();
        assert_eq!((leaf.seq, entry.seq()), (stored.seq, stored.seq));
        assert_eq!(leaf.kind, want.kind, "position {}", stored.seq);
        assert_eq!(entry.kind(), want.kind, "position {}", stored.seq);
        assert_eq!(entry.resident(), want.resident, "position {}", stored.seq);
        assert_eq!(
            leaf.leaf_hash,
            leaf_of(&entry, &leaf.salt),
            "leaf {} commits to its entry",
            stored.seq
        );
        assert!(
            salts.insert(leaf.salt.clone()),
            "every leaf has a fresh salt"
        );
    }
    // Windows of the log, including past its end.
    let window = store.log_range(3, 4).await.unwrap();
    assert_eq!(
        window.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![3, 4, 5, 6]
    );
    assert_eq!(window, range[3..7].to_vec());
    let tail = store.log_range(8, 100).await.unwrap();
    assert_eq!(tail.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![8, 9]);
    assert!(store.log_range(10, 5).await.unwrap().is_empty());
    // The leaf hashes the integrator folds are the same leaves, in log order.
    let leaves: Vec<Vec<u8>> = range
        .iter()
        .map(|e| e.leaf.as_ref().unwrap().leaf_hash.clone())
        .collect();
    let hashes =
        |v: Vec<renkei_log::Hash>| v.iter().map(|h| h.as_bytes().to_vec()).collect::<Vec<_>>();
    assert_eq!(hashes(store.log_leaf_hashes(0, 100).await.unwrap()), leaves);
    assert_eq!(
        hashes(store.log_leaf_hashes(4, 3).await.unwrap()),
        leaves[4..7].to_vec()
    );
    assert!(store.log_leaf_hashes(10, 3).await.unwrap().is_empty());
}

pub async fn integrated_node_hashes_read_back_as_stored_and_are_never_rewritten(
    store: Arc<dyn Store>,
) {
    use renkei_log::merkle;
    let (expected, _, _) = mixed_log(store.as_ref()).await;
    let size = expected.len() as u64;
    let leaves = store.log_leaf_hashes(0, 100).await.unwrap();
    // Fold the leaves as the integrator does.
    let mut known = std::collections::BTreeMap::new();
    let mut written = Vec::new();
    for (n, leaf) in (0..).zip(&leaves) {
        let first = merkle::stored_hash_index(0, n).unwrap();
        for (idx, hash) in
            (first..).zip(merkle::stored_hashes_for_append(n, *leaf, &known).unwrap())
        {
            known.insert(idx, hash);
            written.push((idx, hash));
        }
    }
    let root = merkle::root_hash(&leaves);
    let signed_at = crate::codec::time(crate::codec::millis(Utc::now())).unwrap();
    let checkpoint = crate::StoredCheckpoint {
        size,
        root,
        note: "example.org/log\n10\nroot\n\n— signature\n".into(),
        signed_at,
    };
    store.integrate(&written, &checkpoint).await.unwrap();

    // Read back in any order, repeats included.
    let mut asked: Vec<u64> = written.iter().map(|(i, _)| *i).rev().collect();
    asked.push(asked[0]);
    let want: Vec<_> = asked.iter().map(|i| known[i]).collect();
    assert_eq!(store.read_log_hashes(&asked).await.unwrap(), want);
    assert!(store.read_log_hashes(&[]).await.unwrap().is_empty());
    let beyond = merkle::stored_hash_count(size).unwrap();
    assert!(matches!(
        store.read_log_hashes(&[0, beyond]).await,
        Err(StoreError::NotFound(_))
    ));
    // The stored hashes give the tree's root back.
    let indexes = merkle::tree_hash_indexes(size).unwrap();
    let stored: std::collections::BTreeMap<u64, renkei_log::Hash> = indexes
        .iter()
        .copied()
        .zip(store.read_log_hashes(&indexes).await.unwrap())
        .collect();
    assert_eq!(merkle::tree_hash(size, &stored).unwrap(), root);
    assert_eq!(
        store.latest_checkpoint().await.unwrap(),
        Some(checkpoint.clone())
    );
    assert_eq!(
        store.checkpoint(size).await.unwrap(),
        Some(checkpoint.clone())
    );
    assert_eq!(store.checkpoint(size + 1).await.unwrap(), None);

    // Integrating again (another replica, the same leaves) changes nothing already stored.
    let other = renkei_log::Hash([7; 32]);
    store.integrate(&[(0, other)], &checkpoint).await.unwrap();
    assert_eq!(store.read_log_hashes(&[0]).await.unwrap(), vec![known[&0]]);

    // Many at once: more than one statement's worth of indexes.
    let many: Vec<(u64, renkei_log::Hash)> = (0..1_200u64)
        .map(|i| {
            let mut h = [0u8; 32];
            h[..8].copy_from_slice(&i.to_be_bytes());
            (1_000_000 + i * 3, renkei_log::Hash(h))
        })
        .collect();
    let later = crate::StoredCheckpoint {
        size: size + 1,
        ..checkpoint.clone()
    };
    store.integrate(&many, &later).await.unwrap();
    let asked: Vec<u64> = many.iter().map(|(i, _)| *i).rev().collect();
    let want: Vec<_> = many.iter().map(|(_, h)| *h).rev().collect();
    assert_eq!(store.read_log_hashes(&asked).await.unwrap(), want);
}

fn stored_checkpoint(size: u64) -> crate::StoredCheckpoint {
    let mut root = [0u8; 32];
    root[..8].copy_from_slice(&size.to_be_bytes());
    crate::StoredCheckpoint {
        size,
        root: renkei_log::Hash(root),
        note: format!("example.org/log\n{size}\n\n— example.org/log signature\n"),
        // Stored to the millisecond.
        signed_at: crate::codec::time(crate::codec::millis(Utc::now())).unwrap(),
    }
}

pub async fn checkpoints_are_listed_in_order_of_size_and_never_replaced(store: Arc<dyn Store>) {
    assert_eq!(store.latest_checkpoint().await.unwrap(), None);
    assert!(store.checkpoints().await.unwrap().is_empty());
    // Replicas may store theirs out of order.
    for size in [2, 7, 5, 0] {
        store
            .integrate(&[], &stored_checkpoint(size))
            .await
            .unwrap();
    }
    let listed = store.checkpoints().await.unwrap();
    assert_eq!(
        listed.iter().map(|c| c.size).collect::<Vec<_>>(),
        vec![0, 2, 5, 7]
    );
    assert_eq!(
        (listed[2].root, listed[2].note.as_str()),
        (
            stored_checkpoint(5).root,
            stored_checkpoint(5).note.as_str()
        )
    );
    assert_eq!(
        store.latest_checkpoint().await.unwrap().map(|c| c.size),
        Some(7)
    );
    // A second checkpoint of a size already signed does not replace the first.
    let first = store.checkpoint(5).await.unwrap().unwrap();
    let again = crate::StoredCheckpoint {
        note: "another note".into(),
        ..stored_checkpoint(5)
    };
    store.integrate(&[], &again).await.unwrap();
    assert_eq!(store.checkpoint(5).await.unwrap(), Some(first));
    assert_eq!(store.checkpoints().await.unwrap().len(), 4);
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
