//! The store conformance suite: every backend must pass exactly these checks.
//!
//! Each check takes a freshly migrated, empty store. A backend's test file instantiates the
//! whole suite with [`crate::store_conformance_suite!`], one `#[tokio::test]` per check. The
//! checks live in one file per concern; this one lists them and holds the fixtures they share
//! (a tiny town, consents, requests, a log of every kind of entry).

// Test code compiled into the library (so both backends' test files can share it): it
// unwraps and panics like any test does.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::unreachable
)]

use chrono::{DateTime, TimeDelta, Utc};
use renkei_domain::{
    Actor, CategoryId, Consent, ConsentChannel, ConsentId, DataCategory, DataRequest, Decision,
    LegalBasis, LocalizedText, Locator, Provider, ProviderId, PurposeId, RequestId, ResidentId,
    Service, ServiceId, ServiceStatus, ServiceSubject,
};
use uuid::Uuid;

mod consents;
mod counter;
mod decisions;
mod disclosures;
mod emergency;
pub mod faults;
mod identity;
mod locators;
mod log;
mod log_reads;
mod notices;
mod outbox_and_secrets;
mod providers;
mod rights;
mod security_events;

pub use consents::*;
pub use counter::*;
pub use decisions::*;
pub use disclosures::*;
pub use emergency::*;
pub use identity::*;
pub use locators::*;
pub use log::*;
pub use log_reads::*;
pub use notices::*;
pub use outbox_and_secrets::*;
pub use providers::*;
pub use rights::*;
pub use security_events::*;

use crate::{DecisionInput, PurposeDraft, Store};

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
            a_purposes_location_use_and_a_location_category_are_kept,
            a_location_deletion_owed_is_confirmed_once_with_its_log_entry,
            a_counter_consent_keeps_its_staff_member_and_form,
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
            security_events_wait_until_acknowledged_and_pushes_are_leased_and_retried,
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
            a_locator_batch_sent_twice_changes_nothing_the_second_time,
            a_provider_cannot_write_locators_for_categories_it_is_not_registered_for,
            a_provider_names_and_reads_only_its_own_residents_and_locators,
            a_locator_batch_is_one_log_entry_of_counts_that_verifies,
            a_client_assertion_is_spent_once_and_forgotten_after_it_expires,
            a_provider_registration_reads_back_with_its_keys_contact_and_connection,
            a_providers_status_moves_and_an_unknown_provider_is_not_found,
            a_granted_request_names_no_provider_that_is_not_approved,
            a_declaration_step_is_written_with_its_log_entry_over_the_revision_it_came_from,
            a_responder_without_consent_is_granted_only_inside_a_confirmed_declarations_window,
            a_dual_mode_purpose_is_granted_only_while_a_declaration_is_in_force,
            a_declarations_notices_are_written_once_from_the_records_under_it,
            an_early_end_makes_the_notices_due_before_the_end_time,
            a_residents_notice_channels_are_added_once_and_removed,
            an_area_list_records_one_entry_per_resident_its_provider_names_and_nothing_else,
            a_routed_request_is_filed_with_its_recipients_messages_and_log_entry,
            a_providers_deletion_removes_its_locators_and_the_answers_complete_the_request,
            an_extension_moves_the_due_date_with_its_reason_and_an_operator_entry,
            a_disclosure_is_an_access_record_of_the_data_subject_in_their_log,
            an_operators_search_naming_a_resident_is_in_their_log_with_its_reason,
            a_counter_session_is_kept_with_its_log_entry_and_staff_keep_their_role,
            residents_are_found_by_the_exact_name_they_enrolled_with,
            a_representative_is_registered_and_ended_by_operators_with_log_entries,
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

fn service_id_of(id: &str) -> ServiceId {
    ServiceId::new(id).unwrap_or_else(|e| unreachable!("{e}"))
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
        emergency_only: false,
        location: None,
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
                location: false,
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
            connection: renkei_domain::ProviderConnection::Inbound {
                endpoint: "http://127.0.0.1:9".into(),
            },
            categories: [cat("health.checkup"), cat("payment.history")].into(),
            max_answer_bytes: None,
            signing_keys: Default::default(),
            contact: None,
            status: renkei_domain::ProviderStatus::Approved,
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
        form_reference: None,
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
