//! The consent check: may this service receive these categories of this resident for this
//! purpose now? A pure function, so it is fast, testable and the same on every replica.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog::{Purpose, Service, ServiceStatus};
use crate::consent::{ActiveConsent, Consent, ConsentState};
use crate::ids::{CategoryId, PurposeId, RequestId, ServiceId};

/// What a service asked for (the resident is resolved by the caller).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataRequest {
    pub id: RequestId,
    pub service: ServiceId,
    pub purpose: PurposeId,
    pub categories: BTreeSet<CategoryId>,
}

/// Why a request was refused. Stable codes: they are shown to residents and services.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum DenialReason {
    ServiceNotApproved,
    UnknownPurpose,
    UnknownSubject,
    /// The purpose does not declare these categories at all.
    CategoryNotInPurpose {
        categories: BTreeSet<CategoryId>,
    },
    NoConsent,
    ConsentRevoked,
    ConsentExpired,
    /// The resident consented to an older version of the purpose; the new one needs a new yes.
    PurposeChanged {
        consented_version: u32,
        current_version: u32,
    },
    /// The consent does not cover these categories.
    CategoryNotCovered {
        categories: BTreeSet<CategoryId>,
    },
    /// The service revoked the bearer token it asked with (RFC 7009).
    TokenRevoked,
    /// The service's registered HPKE key is not an X25519 public key: no provider could
    /// seal to it and no grant could carry it, so nothing is released.
    ServiceKeyInvalid,
}

impl DenialReason {
    /// The stable short code stored in access records and used in problem `type` URIs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::ServiceNotApproved => "service-not-approved",
            Self::UnknownPurpose => "unknown-purpose",
            Self::UnknownSubject => "unknown-subject",
            Self::CategoryNotInPurpose { .. } => "category-not-in-purpose",
            Self::NoConsent => "consent-missing",
            Self::ConsentRevoked => "consent-revoked",
            Self::ConsentExpired => "consent-expired",
            Self::PurposeChanged { .. } => "consent-wrong-purpose-version",
            Self::CategoryNotCovered { .. } => "category-not-covered",
            Self::TokenRevoked => "token-revoked",
            Self::ServiceKeyInvalid => "service-key-invalid",
        }
    }
}

/// The outcome of the consent check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Granted(ActiveConsent),
    Denied(DenialReason),
}

/// Decides a data request.
///
/// `purpose` is the *current* version of the requested purpose; `consent` is the resident's
/// most recent consent to that purpose of that service, whatever its state.
pub fn decide(
    request: &DataRequest,
    service: &Service,
    purpose: Option<&Purpose>,
    consent: Option<Consent>,
    now: DateTime<Utc>,
) -> Decision {
    use DenialReason as D;
    if service.status != ServiceStatus::Approved {
        return Decision::Denied(D::ServiceNotApproved);
    }
    // INVARIANT: a granted decision can always be served: whatever the hub needs from the
    // service to sign its grants is checked here, inside the deciding transaction, so a
    // request the hub cannot carry out is recorded as denied, never as granted.
    if !service.has_well_formed_key() {
        return Decision::Denied(D::ServiceKeyInvalid);
    }
    let Some(purpose) = purpose else {
        return Decision::Denied(D::UnknownPurpose);
    };
    let undeclared = difference(&request.categories, &purpose.categories);
    if !undeclared.is_empty() {
        return Decision::Denied(D::CategoryNotInPurpose {
            categories: undeclared,
        });
    }
    let Some(consent) = consent else {
        return Decision::Denied(D::NoConsent);
    };
    // INVARIANT: a consent only ever speaks for the exact purpose version it was given for.
    if consent.purpose.version != purpose.version {
        return Decision::Denied(D::PurposeChanged {
            consented_version: consent.purpose.version,
            current_version: purpose.version,
        });
    }
    let uncovered = difference(&request.categories, &consent.categories);
    let active = match consent.active_at(now) {
        Ok(active) => active,
        Err(ConsentState::Revoked) => return Decision::Denied(D::ConsentRevoked),
        Err(_) => return Decision::Denied(D::ConsentExpired),
    };
    if !uncovered.is_empty() {
        return Decision::Denied(D::CategoryNotCovered {
            categories: uncovered,
        });
    }
    Decision::Granted(active)
}

fn difference(
    wanted: &BTreeSet<CategoryId>,
    allowed: &BTreeSet<CategoryId>,
) -> BTreeSet<CategoryId> {
    wanted.difference(allowed).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{LegalBasis, LocalizedText};
    use crate::consent::{Actor, ConsentChannel};
    use crate::ids::{ConsentId, ResidentId};
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

    fn reason(d: Decision) -> Option<&'static str> {
        match d {
            Decision::Granted(_) => None,
            Decision::Denied(r) => Some(r.code()),
        }
    }

    #[test]
    fn a_matching_active_consent_grants_the_request() {
        let now = Utc::now();
        let d = decide(
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
        let d = decide(
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
        let d = decide(
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
        let d = decide(
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
            let d = decide(
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
            reason(decide(&r, &s, Some(&p), Some(revoked), now)),
            Some("consent-revoked")
        );
        assert_eq!(
            reason(decide(&r, &s, Some(&p), Some(expired), now)),
            Some("consent-expired")
        );
        assert_eq!(
            reason(decide(&r, &s, Some(&p), None, now)),
            Some("consent-missing")
        );
        assert_eq!(
            reason(decide(&r, &s, None, None, now)),
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
            let d = decide(&request(&asked), &service(ServiceStatus::Approved), Some(&purpose(1)), Some(c), now);
            if let Decision::Granted(active) = d {
                prop_assert!(!revoked);
                for a in &asked {
                    prop_assert!(active.consent().categories.contains(&cat(a)));
                }
            }
        }
    }
}
