//! The consent check's tests: examples of each denial, and property tests that every rule
//! is applied, and in its documented order of precedence, over arbitrary facts.

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
        if let Decision::Granted(active) = d {
            prop_assert!(!revoked);
            for a in &asked {
                prop_assert!(active.consent().categories.contains(&cat(a)));
            }
        }
    }
}

// --- every rule, in its order of precedence, over arbitrary facts ---

const UNIVERSE: [&str; 3] = ["health.checkup", "payment.history", "location.home"];

/// The rules `decide` applies, in its order of precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rule {
    TokenLive,
    ServiceRegistered,
    SubjectResolves,
    ServiceApproved,
    KeyWellFormed,
    PurposeDeclared,
    CategoriesDeclared,
    ConsentGiven,
    SamePurposeVersion,
    ConsentNotRevoked,
    ConsentNotExpired,
    CategoriesCovered,
}

const RULES: [Rule; 12] = [
    Rule::TokenLive,
    Rule::ServiceRegistered,
    Rule::SubjectResolves,
    Rule::ServiceApproved,
    Rule::KeyWellFormed,
    Rule::PurposeDeclared,
    Rule::CategoriesDeclared,
    Rule::ConsentGiven,
    Rule::SamePurposeVersion,
    Rule::ConsentNotRevoked,
    Rule::ConsentNotExpired,
    Rule::CategoriesCovered,
];

impl Rule {
    /// The denial's code when this rule is the first to fail.
    fn code(self) -> &'static str {
        match self {
            Self::TokenLive => "token-revoked",
            Self::ServiceRegistered | Self::ServiceApproved => "service-not-approved",
            Self::SubjectResolves => "unknown-subject",
            Self::KeyWellFormed => "service-key-invalid",
            Self::PurposeDeclared => "unknown-purpose",
            Self::CategoriesDeclared => "category-not-in-purpose",
            Self::ConsentGiven => "consent-missing",
            Self::SamePurposeVersion => "consent-wrong-purpose-version",
            Self::ConsentNotRevoked => "consent-revoked",
            Self::ConsentNotExpired => "consent-expired",
            Self::CategoriesCovered => "category-not-covered",
        }
    }
}

#[derive(Debug, Clone)]
struct DrawnConsent {
    version: u32,
    categories: BTreeSet<&'static str>,
    revoked: bool,
    expired: bool,
}

/// Everything a decision may be given, drawn at random.
#[derive(Debug, Clone)]
struct Case {
    asked: BTreeSet<&'static str>,
    token_revoked: bool,
    /// The service's status and whether its key is well formed, if it is registered.
    service: Option<(ServiceStatus, bool)>,
    /// A status other than approved, for when a case must have one.
    unapproved: ServiceStatus,
    resident: bool,
    /// The current purpose version and the categories it declares, if declared.
    purpose: Option<(u32, BTreeSet<&'static str>)>,
    consent: Option<DrawnConsent>,
}

fn categories() -> impl Strategy<Value = BTreeSet<&'static str>> {
    proptest::sample::subsequence(UNIVERSE.to_vec(), 0..=3).prop_map(|c| c.into_iter().collect())
}

fn cases() -> impl Strategy<Value = Case> {
    let status = prop_oneof![
        Just(ServiceStatus::Approved),
        Just(ServiceStatus::Pending),
        Just(ServiceStatus::Suspended),
    ];
    let unapproved = prop_oneof![Just(ServiceStatus::Pending), Just(ServiceStatus::Suspended)];
    let consent = (1..=3u32, categories(), any::<bool>(), any::<bool>()).prop_map(
        |(version, categories, revoked, expired)| DrawnConsent {
            version,
            categories,
            revoked,
            expired,
        },
    );
    (
        categories(),
        any::<bool>(),
        proptest::option::weighted(0.8, (status, any::<bool>())),
        unapproved,
        any::<bool>(),
        proptest::option::weighted(0.8, (1..=3u32, categories())),
        proptest::option::weighted(0.8, consent),
    )
        .prop_map(
            |(asked, token_revoked, service, unapproved, resident, purpose, consent)| Case {
                asked,
                token_revoked,
                service,
                unapproved,
                resident,
                purpose,
                consent,
            },
        )
}

impl Case {
    fn decide(&self, now: DateTime<Utc>) -> Decision {
        let service = self.service.map(|(status, well_formed)| {
            let mut s = service(status);
            if !well_formed {
                s.hpke_public_key = "not-a-key".into();
            }
            s
        });
        let purpose = self.purpose.as_ref().map(|(version, declared)| Purpose {
            categories: declared.iter().map(|c| cat(c)).collect(),
            ..purpose(*version)
        });
        let consent = self.consent.as_ref().map(|drawn| {
            let given: Vec<&str> = drawn.categories.iter().copied().collect();
            let mut c = consent(drawn.version, &given, now);
            if drawn.revoked {
                c.revoked_at = Some(now);
            }
            if drawn.expired {
                c.expires_at = Some(now);
            }
            c
        });
        let asked: Vec<&str> = self.asked.iter().copied().collect();
        let facts = DecisionFacts {
            token_revoked: self.token_revoked,
            service: service.as_ref(),
            resident: self.resident.then(resident),
            purpose: purpose.as_ref(),
            consent: consent.as_ref(),
        };
        decide(&request(&asked), facts, now)
    }

    /// The reason the documented order of precedence gives, worked out independently of
    /// `decide`; `None` for a grant.
    fn expected(&self) -> Option<DenialReason> {
        use DenialReason as D;
        let set = |s: BTreeSet<&&str>| s.into_iter().map(|c| cat(c)).collect();
        if self.token_revoked {
            return Some(D::TokenRevoked);
        }
        let Some((status, well_formed)) = self.service else {
            return Some(D::ServiceNotApproved);
        };
        if !self.resident {
            return Some(D::UnknownSubject);
        }
        if status != ServiceStatus::Approved {
            return Some(D::ServiceNotApproved);
        }
        if !well_formed {
            return Some(D::ServiceKeyInvalid);
        }
        let Some((version, declared)) = &self.purpose else {
            return Some(D::UnknownPurpose);
        };
        if !self.asked.is_subset(declared) {
            return Some(D::CategoryNotInPurpose {
                categories: set(self.asked.difference(declared).collect()),
            });
        }
        let Some(c) = &self.consent else {
            return Some(D::NoConsent);
        };
        if c.version != *version {
            return Some(D::PurposeChanged {
                consented_version: c.version,
                current_version: *version,
            });
        }
        if c.revoked {
            return Some(D::ConsentRevoked);
        }
        if c.expired {
            return Some(D::ConsentExpired);
        }
        if !self.asked.is_subset(&c.categories) {
            return Some(D::CategoryNotCovered {
                categories: set(self.asked.difference(&c.categories).collect()),
            });
        }
        None
    }

    /// Makes `rule` hold, leaving everything else as drawn.
    fn satisfy(&mut self, rule: Rule) {
        match rule {
            Rule::TokenLive => self.token_revoked = false,
            Rule::ServiceRegistered => {
                self.service.get_or_insert((ServiceStatus::Approved, true));
            }
            Rule::SubjectResolves => self.resident = true,
            Rule::ServiceApproved => {
                self.service
                    .get_or_insert((ServiceStatus::Approved, true))
                    .0 = ServiceStatus::Approved;
            }
            Rule::KeyWellFormed => {
                self.service
                    .get_or_insert((ServiceStatus::Approved, true))
                    .1 = true;
            }
            Rule::PurposeDeclared => {
                self.purpose.get_or_insert((1, BTreeSet::new()));
            }
            Rule::CategoriesDeclared => {
                let asked = self.asked.clone();
                self.purpose
                    .get_or_insert((1, BTreeSet::new()))
                    .1
                    .extend(asked);
            }
            Rule::ConsentGiven => {
                self.consent.get_or_insert(DrawnConsent {
                    version: 1,
                    categories: BTreeSet::new(),
                    revoked: false,
                    expired: false,
                });
            }
            Rule::SamePurposeVersion => {
                let version = self.purpose.as_ref().map_or(1, |p| p.0);
                if let Some(c) = &mut self.consent {
                    c.version = version;
                }
            }
            Rule::ConsentNotRevoked => {
                if let Some(c) = &mut self.consent {
                    c.revoked = false;
                }
            }
            Rule::ConsentNotExpired => {
                if let Some(c) = &mut self.consent {
                    c.expired = false;
                }
            }
            Rule::CategoriesCovered => {
                let asked = self.asked.clone();
                if let Some(c) = &mut self.consent {
                    c.categories.extend(asked);
                }
            }
        }
    }

    /// Makes `rule` fail. Every rule before it must hold already.
    fn break_rule(&mut self, rule: Rule) {
        match rule {
            Rule::TokenLive => self.token_revoked = true,
            Rule::ServiceRegistered => self.service = None,
            Rule::SubjectResolves => self.resident = false,
            Rule::ServiceApproved => {
                if let Some(s) = &mut self.service {
                    s.0 = self.unapproved;
                }
            }
            Rule::KeyWellFormed => {
                if let Some(s) = &mut self.service {
                    s.1 = false;
                }
            }
            Rule::PurposeDeclared => self.purpose = None,
            Rule::CategoriesDeclared => {
                let missing = self.ask_for_one();
                if let Some(p) = &mut self.purpose {
                    p.1.remove(missing);
                }
            }
            Rule::ConsentGiven => self.consent = None,
            Rule::SamePurposeVersion => {
                let version = self.purpose.as_ref().map_or(1, |p| p.0);
                if let Some(c) = &mut self.consent {
                    c.version = version % 3 + 1;
                }
            }
            Rule::ConsentNotRevoked => {
                if let Some(c) = &mut self.consent {
                    c.revoked = true;
                }
            }
            Rule::ConsentNotExpired => {
                if let Some(c) = &mut self.consent {
                    c.expired = true;
                }
            }
            Rule::CategoriesCovered => {
                let missing = self.ask_for_one();
                // Still declared by the purpose, so the earlier rule keeps holding.
                if let Some(p) = &mut self.purpose {
                    p.1.insert(missing);
                }
                if let Some(c) = &mut self.consent {
                    c.categories.remove(missing);
                }
            }
        }
    }

    /// A category the request asks for, adding one if it asks for none.
    fn ask_for_one(&mut self) -> &'static str {
        match self.asked.first() {
            Some(c) => c,
            None => {
                self.asked.insert(UNIVERSE[0]);
                UNIVERSE[0]
            }
        }
    }

    /// The case with every rule before `rule` holding and `rule` failing; the rules
    /// after it stay as drawn.
    fn failing_at(mut self, rule: Rule) -> Self {
        for earlier in RULES.into_iter().filter(|r| *r < rule) {
            self.satisfy(earlier);
        }
        self.break_rule(rule);
        self
    }
}

/// `rule` is the first to fail, whatever the later rules say: it is the reason given.
fn first_failing_rule_is_the_reason(case: Case, rule: Rule) -> Result<(), TestCaseError> {
    let case = case.failing_at(rule);
    let decided = case.decide(Utc::now());
    prop_assert_eq!(reason(decided.clone()), Some(rule.code()), "{:?}", case);
    prop_assert_eq!(decided, Decision::Denied(case.expected().unwrap()));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_revoked_token_is_refused_whatever_else_holds(case in cases()) {
        first_failing_rule_is_the_reason(case, Rule::TokenLive)?;
    }

    #[test]
    fn an_unregistered_service_is_refused_as_not_approved_whatever_else_holds(case in cases()) {
        first_failing_rule_is_the_reason(case, Rule::ServiceRegistered)?;
    }

    #[test]
    fn a_subject_naming_no_resident_is_unknown_whatever_the_service_s_status(case in cases()) {
        first_failing_rule_is_the_reason(case, Rule::SubjectResolves)?;
    }

    #[test]
    fn a_pending_or_suspended_service_is_refused_once_the_subject_resolves(case in cases()) {
        first_failing_rule_is_the_reason(case, Rule::ServiceApproved)?;
    }

    #[test]
    fn an_approved_service_with_a_malformed_key_is_refused(case in cases()) {
        first_failing_rule_is_the_reason(case, Rule::KeyWellFormed)?;
    }

    #[test]
    fn a_purpose_the_service_did_not_declare_is_refused(case in cases()) {
        first_failing_rule_is_the_reason(case, Rule::PurposeDeclared)?;
    }

    #[test]
    fn categories_the_purpose_does_not_declare_are_refused_and_named(case in cases()) {
        first_failing_rule_is_the_reason(case, Rule::CategoriesDeclared)?;
    }

    #[test]
    fn a_declared_purpose_without_consent_is_refused(case in cases()) {
        first_failing_rule_is_the_reason(case, Rule::ConsentGiven)?;
    }

    #[test]
    fn a_consent_to_another_purpose_version_is_refused(case in cases()) {
        first_failing_rule_is_the_reason(case, Rule::SamePurposeVersion)?;
    }

    #[test]
    fn a_revoked_consent_is_refused_expired_or_not(case in cases()) {
        first_failing_rule_is_the_reason(case, Rule::ConsentNotRevoked)?;
    }

    #[test]
    fn an_expired_consent_is_refused(case in cases()) {
        first_failing_rule_is_the_reason(case, Rule::ConsentNotExpired)?;
    }

    #[test]
    fn categories_the_consent_does_not_cover_are_refused_and_named(case in cases()) {
        first_failing_rule_is_the_reason(case, Rule::CategoriesCovered)?;
    }

    /// Over arbitrary facts, the reason is always the first rule that fails.
    #[test]
    fn the_first_rule_that_fails_is_the_reason(case in cases()) {
        let decided = case.decide(Utc::now());
        match case.expected() {
            Some(expected) => prop_assert_eq!(decided, Decision::Denied(expected)),
            None => prop_assert!(matches!(decided, Decision::Granted(_)), "{:?}", decided),
        }
    }

    /// A request that passes every rule is granted, under the consent it was given.
    #[test]
    fn a_request_passing_every_rule_is_granted(mut case in cases()) {
        for rule in RULES {
            case.satisfy(rule);
        }
        prop_assert_eq!(case.expected(), None);
        match case.decide(Utc::now()) {
            Decision::Granted(active) => {
                let given = &active.consent().categories;
                prop_assert!(case.asked.iter().all(|c| given.contains(&cat(c))));
            }
            denied => prop_assert!(false, "{:?} for {:?}", denied, case),
        }
    }
}
