//! The consent check's tests: examples of each denial and of emergencies; `model.rs` holds
//! the property tests that every rule is applied, and in its documented order of precedence,
//! over arbitrary facts.

mod model;

use super::*;
use crate::catalog::{LegalBasis, LocalizedText};
use crate::consent::{Actor, ConsentChannel};
use crate::emergency::{Area, EmergencyLegalBasis, Step};
use crate::ids::{ConsentId, OperatorId, ResidentId};
use chrono::TimeDelta;
use proptest::prelude::*;
use uuid::Uuid;

fn cat(s: &str) -> CategoryId {
    CategoryId::new(s).unwrap()
}

fn service(status: ServiceStatus) -> Service {
    Service {
        id: ServiceId::new("health-advice").unwrap(),
        name: LocalizedText::new("健康", "Health"),
        sector: "health".into(),
        hpke_public_key: "A".repeat(43),
        webhook_url: None,
        status,
    }
}

fn purpose(version: u32) -> Purpose {
    Purpose {
        service: ServiceId::new("health-advice").unwrap(),
        id: PurposeId::new("advice").unwrap(),
        version,
        title: LocalizedText::new("t", "t"),
        description: LocalizedText::new("d", "d"),
        categories: [cat("health.checkup"), cat("payment.history")].into(),
        retention_days: 30,
        legal_basis: LegalBasis::Consent,
        emergency_only: false,
        location: None,
    }
}

fn consent(version: u32, cats: &[&str], now: DateTime<Utc>) -> Consent {
    Consent {
        id: ConsentId::from_uuid(Uuid::nil()),
        resident: ResidentId::from_uuid(Uuid::nil()),
        purpose: purpose(version).reference(),
        categories: cats.iter().map(|c| cat(c)).collect(),
        legal_basis: LegalBasis::Consent,
        granted_at: now,
        expires_at: Some(now + TimeDelta::days(1)),
        given_via: ConsentChannel::Portal,
        given_by: Actor::Resident,
        form_reference: None,
        revoked_at: None,
    }
}

fn request(cats: &[&str]) -> DataRequest {
    DataRequest {
        id: RequestId::from_uuid(Uuid::nil()),
        service: ServiceId::new("health-advice").unwrap(),
        purpose: PurposeId::new("advice").unwrap(),
        categories: cats.iter().map(|c| cat(c)).collect(),
    }
}

fn resident() -> ResidentId {
    ResidentId::from_uuid(Uuid::nil())
}

/// Decides for a registered service asking under a live token, about a subject that
/// names a resident: what the store-side rules let through to the rest of the check.
fn decide_for(
    request: &DataRequest,
    service: &Service,
    purpose: Option<&Purpose>,
    consent: Option<Consent>,
    now: DateTime<Utc>,
) -> Decision {
    let facts = DecisionFacts {
        token_revoked: false,
        service: Some(service),
        resident: Some(resident()),
        purpose,
        consent: consent.as_ref(),
        declarations: &[],
    };
    decide(request, facts, now)
}

fn reason(d: Decision) -> Option<&'static str> {
    match d {
        Decision::Granted(_) => None,
        Decision::Denied(r) => Some(r.code()),
    }
}

#[test]
fn a_matching_active_consent_grants_the_request() {
    let now = Utc::now();
    let d = decide_for(
        &request(&["health.checkup"]),
        &service(ServiceStatus::Approved),
        Some(&purpose(1)),
        Some(consent(1, &["health.checkup", "payment.history"], now)),
        now,
    );
    assert_eq!(reason(d), None);
}

#[test]
fn a_category_outside_the_consent_is_denied() {
    let now = Utc::now();
    let d = decide_for(
        &request(&["health.checkup", "payment.history"]),
        &service(ServiceStatus::Approved),
        Some(&purpose(1)),
        Some(consent(1, &["health.checkup"], now)),
        now,
    );
    assert_eq!(reason(d), Some("category-not-covered"));
}

#[test]
fn a_consent_to_an_older_purpose_version_does_not_stretch_to_the_new_one() {
    let now = Utc::now();
    let d = decide_for(
        &request(&["health.checkup"]),
        &service(ServiceStatus::Approved),
        Some(&purpose(2)),
        Some(consent(1, &["health.checkup"], now)),
        now,
    );
    assert_eq!(reason(d), Some("consent-wrong-purpose-version"));
}

#[test]
fn a_suspended_service_is_denied_even_with_consent() {
    let now = Utc::now();
    let d = decide_for(
        &request(&["health.checkup"]),
        &service(ServiceStatus::Suspended),
        Some(&purpose(1)),
        Some(consent(1, &["health.checkup"], now)),
        now,
    );
    assert_eq!(reason(d), Some("service-not-approved"));
}

#[test]
fn a_service_whose_key_is_not_an_x25519_key_is_denied_even_with_consent() {
    let now = Utc::now();
    for bad in ["not-a-key", "", "AAAA", &"A".repeat(44), &"+".repeat(43)] {
        let mut service = service(ServiceStatus::Approved);
        service.hpke_public_key = bad.to_owned();
        let d = decide_for(
            &request(&["health.checkup"]),
            &service,
            Some(&purpose(1)),
            Some(consent(1, &["health.checkup"], now)),
            now,
        );
        assert_eq!(reason(d), Some("service-key-invalid"), "{bad:?}");
    }
}

#[test]
fn revoked_expired_and_missing_consents_are_denied_with_their_own_reason() {
    let now = Utc::now();
    let mut revoked = consent(1, &["health.checkup"], now);
    revoked.revoked_at = Some(now);
    let mut expired = consent(1, &["health.checkup"], now);
    expired.expires_at = Some(now);
    let s = service(ServiceStatus::Approved);
    let p = purpose(1);
    let r = request(&["health.checkup"]);
    assert_eq!(
        reason(decide_for(&r, &s, Some(&p), Some(revoked), now)),
        Some("consent-revoked")
    );
    assert_eq!(
        reason(decide_for(&r, &s, Some(&p), Some(expired), now)),
        Some("consent-expired")
    );
    assert_eq!(
        reason(decide_for(&r, &s, Some(&p), None, now)),
        Some("consent-missing")
    );
    assert_eq!(
        reason(decide_for(&r, &s, None, None, now)),
        Some("unknown-purpose")
    );
}

proptest! {
    /// Whatever is asked, a grant only ever covers categories the consent lists.
    #[test]
    fn a_grant_never_exceeds_the_consent(
        asked in proptest::sample::subsequence(vec!["health.checkup", "payment.history"], 0..=2),
        given in proptest::sample::subsequence(vec!["health.checkup", "payment.history"], 0..=2),
        revoked in any::<bool>(),
    ) {
        let now = Utc::now();
        let mut c = consent(1, &given, now);
        if revoked { c.revoked_at = Some(now); }
        let d = decide_for(&request(&asked), &service(ServiceStatus::Approved), Some(&purpose(1)), Some(c), now);
        if let Decision::Granted(grounds) = d {
            prop_assert!(!revoked);
            let active = grounds.consent().unwrap();
            for a in &asked {
                prop_assert!(active.consent().categories.contains(&cat(a)));
            }
        }
    }
}

// --- emergencies ---

/// A declaration naming `health-advice` for `health.checkup`, confirmed by a second
/// operator, in force from an hour before `now` to an hour after.
fn declaration(n: u128, now: DateTime<Utc>) -> Declaration {
    let step = |by: &str| Step {
        by: OperatorId::new(by).unwrap(),
        at: now - TimeDelta::hours(1),
    };
    Declaration {
        id: DeclarationId::from_uuid(Uuid::from_u128(n)),
        reason: "地震".into(),
        legal_basis: EmergencyLegalBasis::DisasterAct49_11,
        categories: [cat("health.checkup")].into(),
        services: [ServiceId::new("health-advice").unwrap()].into(),
        area: Area::parse(["5339"]).unwrap(),
        starts_at: now - TimeDelta::hours(1),
        ends_at: now + TimeDelta::hours(1),
        declared: step("sato"),
        confirmed: Some(step("suzuki")),
        renewal: None,
        ended: None,
        revision: 1,
    }
}

fn decide_in(
    request: &DataRequest,
    purpose: &Purpose,
    consent: Option<Consent>,
    declarations: &[Declaration],
    now: DateTime<Utc>,
) -> Decision {
    let service = service(ServiceStatus::Approved);
    let facts = DecisionFacts {
        token_revoked: false,
        service: Some(&service),
        resident: Some(resident()),
        purpose: Some(purpose),
        consent: consent.as_ref(),
        declarations,
    };
    decide(request, facts, now)
}

#[test]
fn without_consent_a_responder_is_granted_only_inside_a_confirmed_declarations_window() {
    let now = Utc::now();
    let r = request(&["health.checkup"]);
    let p = purpose(1);
    let d = declaration(1, now);
    let mut pending = d.clone();
    pending.confirmed = None;
    assert_eq!(
        reason(decide_in(&r, &p, None, &[pending], now)),
        Some("emergency-not-in-force")
    );
    assert_eq!(
        decide_in(&r, &p, None, std::slice::from_ref(&d), now),
        Decision::Granted(Grounds::Emergency { declaration: d.id })
    );
    let end = d.ends_at;
    assert!(matches!(
        decide_in(
            &r,
            &p,
            None,
            std::slice::from_ref(&d),
            end - TimeDelta::milliseconds(1)
        ),
        Decision::Granted(_)
    ));
    // One millisecond after the end it is as if there had never been one.
    assert_eq!(
        reason(decide_in(
            &r,
            &p,
            None,
            &[d],
            end + TimeDelta::milliseconds(1)
        )),
        Some("consent-missing")
    );
}

#[test]
fn a_service_or_category_outside_the_declaration_is_denied() {
    let now = Utc::now();
    let p = purpose(1);
    let mut other = declaration(1, now);
    other.services = [ServiceId::new("fire-dept").unwrap()].into();
    assert_eq!(
        reason(decide_in(
            &request(&["health.checkup"]),
            &p,
            None,
            &[other],
            now
        )),
        Some("consent-missing")
    );
    let d = declaration(1, now);
    assert_eq!(
        decide_in(&request(&["payment.history"]), &p, None, &[d], now),
        Decision::Denied(DenialReason::CategoryNotInEmergency {
            categories: [cat("payment.history")].into()
        })
    );
}

#[test]
fn a_consent_that_covers_the_request_is_still_the_basis_during_an_emergency() {
    let now = Utc::now();
    let c = consent(1, &["health.checkup"], now);
    let d = decide_in(
        &request(&["health.checkup"]),
        &purpose(1),
        Some(c.clone()),
        &[declaration(1, now)],
        now,
    );
    let Decision::Granted(grounds) = d else {
        panic!("{d:?}")
    };
    assert_eq!(
        grounds.basis(),
        AccessBasis::Consent {
            consent: c.id,
            during: None
        }
    );
}

#[test]
fn a_dual_mode_purpose_is_denied_in_normal_times_and_granted_during_a_declaration() {
    let now = Utc::now();
    let p = Purpose {
        emergency_only: true,
        ..purpose(1)
    };
    let c = consent(1, &["health.checkup"], now);
    let r = request(&["health.checkup"]);
    assert_eq!(
        reason(decide_in(&r, &p, Some(c.clone()), &[], now)),
        Some("not-in-emergency")
    );
    // Any declaration in force will do: the consent is the basis, the emergency its condition.
    let mut elsewhere = declaration(7, now);
    elsewhere.services = [ServiceId::new("fire-dept").unwrap()].into();
    let granted = decide_in(&r, &p, Some(c.clone()), &[elsewhere.clone()], now);
    let Decision::Granted(grounds) = granted else {
        panic!("{granted:?}")
    };
    assert_eq!(grounds.basis().to_string(), format!("consent:{}", c.id));
    assert_eq!(grounds.declaration(), Some(elsewhere.id));
}
