//! Every rule, in its order of precedence, over arbitrary facts: an independent model of
//! `decide`, emergencies included, and a property test per rule that it is the reason
//! whenever it is the first to fail.

use super::*;

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
    InEmergencyIfDualMode,
    ConsentGiven,
    SamePurposeVersion,
    ConsentNotRevoked,
    ConsentNotExpired,
    CategoriesCovered,
}

const RULES: [Rule; 13] = [
    Rule::TokenLive,
    Rule::ServiceRegistered,
    Rule::SubjectResolves,
    Rule::ServiceApproved,
    Rule::KeyWellFormed,
    Rule::PurposeDeclared,
    Rule::CategoriesDeclared,
    Rule::InEmergencyIfDualMode,
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
            Self::InEmergencyIfDualMode => "not-in-emergency",
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

/// Where a drawn declaration stands at the moment of the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Drawn {
    Pending,
    Scheduled,
    InForce,
    /// Its end is exactly now.
    Over,
    EndedEarly,
}

#[derive(Debug, Clone)]
struct DrawnDeclaration {
    state: Drawn,
    names_service: bool,
    categories: BTreeSet<&'static str>,
}

/// What the model says a case comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expected {
    Denied(DenialReason),
    ByConsent { during: Option<DeclarationId> },
    ByEmergency(DeclarationId),
}

impl Expected {
    fn of(decision: &Decision) -> Self {
        match decision {
            Decision::Denied(r) => Self::Denied(r.clone()),
            Decision::Granted(Grounds::Consent { during, .. }) => {
                Self::ByConsent { during: *during }
            }
            Decision::Granted(Grounds::Emergency { declaration }) => {
                Self::ByEmergency(*declaration)
            }
        }
    }

    fn denial(self) -> Option<DenialReason> {
        match self {
            Self::Denied(r) => Some(r),
            _ => None,
        }
    }
}

/// The id of the `i`th drawn declaration.
fn declaration_id(i: usize) -> DeclarationId {
    DeclarationId::from_uuid(Uuid::from_u128(i as u128 + 1))
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
    /// Whether the purpose applies only during an emergency.
    dual_mode: bool,
    consent: Option<DrawnConsent>,
    declarations: Vec<DrawnDeclaration>,
}

fn set<'a>(s: impl Iterator<Item = &'a &'static str>) -> BTreeSet<CategoryId> {
    s.map(|c| cat(c)).collect()
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
    let state = prop_oneof![
        Just(Drawn::Pending),
        Just(Drawn::Scheduled),
        Just(Drawn::InForce),
        Just(Drawn::Over),
        Just(Drawn::EndedEarly),
    ];
    let declaration =
        (state, any::<bool>(), categories()).prop_map(|(state, names_service, categories)| {
            DrawnDeclaration {
                state,
                names_service,
                categories,
            }
        });
    (
        (
            categories(),
            any::<bool>(),
            proptest::option::weighted(0.8, (status, any::<bool>())),
            unapproved,
            any::<bool>(),
        ),
        (
            proptest::option::weighted(0.8, (1..=3u32, categories())),
            proptest::bool::weighted(0.3),
            proptest::option::weighted(0.8, consent),
            proptest::collection::vec(declaration, 0..4),
        ),
    )
        .prop_map(
            |(
                (asked, token_revoked, service, unapproved, resident),
                (purpose, dual_mode, consent, declarations),
            )| Case {
                asked,
                token_revoked,
                service,
                unapproved,
                resident,
                purpose,
                dual_mode,
                consent,
                declarations,
            },
        )
}

impl DrawnDeclaration {
    fn build(&self, i: usize, now: DateTime<Utc>) -> Declaration {
        let mut d = super::declaration(i as u128 + 1, now);
        d.categories = self.categories.iter().map(|c| cat(c)).collect();
        if !self.names_service {
            d.services = [ServiceId::new("fire-dept").unwrap()].into();
        }
        match self.state {
            Drawn::Pending => d.confirmed = None,
            Drawn::Scheduled => d.starts_at = now + TimeDelta::minutes(30),
            Drawn::InForce => {}
            Drawn::Over => d.ends_at = now,
            Drawn::EndedEarly => d.ended = d.confirmed.clone(),
        }
        d
    }

    /// Its start, as `build` sets it.
    fn starts_later(&self) -> bool {
        self.state == Drawn::Scheduled
    }
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
            emergency_only: self.dual_mode,
            ..purpose(*version)
        });
        let declarations: Vec<Declaration> = self
            .declarations
            .iter()
            .enumerate()
            .map(|(i, d)| d.build(i, now))
            .collect();
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
            declarations: &declarations,
        };
        decide(&request(&asked), facts, now)
    }

    /// What the documented order of precedence gives, worked out independently of `decide`.
    fn expected(&self) -> Expected {
        use DenialReason as D;
        let deny = Expected::Denied;
        if self.token_revoked {
            return deny(D::TokenRevoked);
        }
        let Some((status, well_formed)) = self.service else {
            return deny(D::ServiceNotApproved);
        };
        if !self.resident {
            return deny(D::UnknownSubject);
        }
        if status != ServiceStatus::Approved {
            return deny(D::ServiceNotApproved);
        }
        if !well_formed {
            return deny(D::ServiceKeyInvalid);
        }
        let Some((version, declared)) = &self.purpose else {
            return deny(D::UnknownPurpose);
        };
        if !self.asked.is_subset(declared) {
            return deny(D::CategoryNotInPurpose {
                categories: set(self.asked.difference(declared)),
            });
        }
        let mut live: Vec<(usize, &DrawnDeclaration)> = self
            .declarations
            .iter()
            .enumerate()
            .filter(|(_, d)| !matches!(d.state, Drawn::Over | Drawn::EndedEarly))
            .collect();
        live.sort_by_key(|(i, d)| (d.starts_later(), *i));
        let in_force = live
            .iter()
            .find(|(_, d)| d.state == Drawn::InForce)
            .map(|(i, _)| declaration_id(*i));
        if self.dual_mode && in_force.is_none() {
            return deny(D::NotInEmergency);
        }
        let Some(reason) = self.consent_reason(*version) else {
            return Expected::ByConsent {
                during: in_force.filter(|_| self.dual_mode),
            };
        };
        let naming: Vec<&(usize, &DrawnDeclaration)> =
            live.iter().filter(|(_, d)| d.names_service).collect();
        let mut naming_in_force = naming.iter().filter(|(_, d)| d.state == Drawn::InForce);
        if let Some((i, _)) = naming_in_force
            .clone()
            .find(|(_, d)| self.asked.is_subset(&d.categories))
        {
            return Expected::ByEmergency(declaration_id(*i));
        }
        if let Some((_, d)) = naming_in_force.next() {
            return deny(D::CategoryNotInEmergency {
                categories: set(self.asked.difference(&d.categories)),
            });
        }
        if !naming.is_empty() {
            return deny(D::EmergencyNotInForce);
        }
        deny(reason)
    }

    /// The first consent rule that fails, if any.
    fn consent_reason(&self, version: u32) -> Option<DenialReason> {
        use DenialReason as D;
        let Some(c) = &self.consent else {
            return Some(D::NoConsent);
        };
        if c.version != version {
            return Some(D::PurposeChanged {
                consented_version: c.version,
                current_version: version,
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
                categories: set(self.asked.difference(&c.categories)),
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
            Rule::InEmergencyIfDualMode => {
                if !self.declarations.iter().any(|d| d.state == Drawn::InForce) {
                    self.declarations.push(DrawnDeclaration {
                        state: Drawn::InForce,
                        names_service: false,
                        categories: BTreeSet::new(),
                    });
                }
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
        // A consent rule's reason stands only when no declaration names the service (one
        // in force for others still lets a dual-mode purpose through).
        if rule > Rule::InEmergencyIfDualMode {
            for d in &mut self.declarations {
                d.names_service = false;
            }
        }
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
            Rule::InEmergencyIfDualMode => {
                self.dual_mode = true;
                for d in &mut self.declarations {
                    if d.state == Drawn::InForce {
                        d.state = Drawn::Over;
                    }
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
    prop_assert_eq!(decided, Decision::Denied(case.expected().denial().unwrap()));
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
    fn a_dual_mode_purpose_is_refused_outside_an_emergency_whatever_the_consent(case in cases()) {
        first_failing_rule_is_the_reason(case, Rule::InEmergencyIfDualMode)?;
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

    /// Over arbitrary facts, the outcome is always the model's: the first rule that fails,
    /// or the emergency in force that covers what no consent does.
    #[test]
    fn the_first_rule_that_fails_is_the_reason(case in cases()) {
        let decided = case.decide(Utc::now());
        prop_assert_eq!(Expected::of(&decided), case.expected(), "{:?}", case);
    }

    /// Whichever consent rule fails, a declaration in force naming the service and every
    /// category asked for grants the request under it.
    #[test]
    fn a_declaration_in_force_covers_what_no_consent_does(
        case in cases(),
        at in 0..5usize,
    ) {
        let rules = [Rule::ConsentGiven, Rule::SamePurposeVersion, Rule::ConsentNotRevoked, Rule::ConsentNotExpired, Rule::CategoriesCovered];
        let mut case = case.failing_at(rules[at]);
        case.declarations.push(DrawnDeclaration {
            state: Drawn::InForce,
            names_service: true,
            categories: case.asked.clone(),
        });
        let decided = case.decide(Utc::now());
        let Decision::Granted(Grounds::Emergency { declaration }) = decided else {
            return Err(TestCaseError::fail(format!("{decided:?} for {case:?}")));
        };
        prop_assert_eq!(Expected::ByEmergency(declaration), case.expected());
    }

    /// Nothing is ever released without consent under a declaration that is not confirmed,
    /// not in its window, ended, or does not name the service and every category.
    #[test]
    fn no_release_without_consent_outside_a_declarations_scope(case in cases()) {
        if let Decision::Granted(Grounds::Emergency { declaration }) = case.decide(Utc::now()) {
            let i = case.declarations.iter().enumerate().position(|(i, _)| declaration_id(i) == declaration).unwrap();
            let d = &case.declarations[i];
            prop_assert_eq!(d.state, Drawn::InForce);
            prop_assert!(d.names_service && case.asked.is_subset(&d.categories));
        }
    }

    /// A request that passes every rule is granted, under the consent it was given.
    #[test]
    fn a_request_passing_every_rule_is_granted(mut case in cases()) {
        for rule in RULES {
            case.satisfy(rule);
        }
        let by_consent = matches!(case.expected(), Expected::ByConsent { .. });
        prop_assert!(by_consent, "{:?}", case);
        match case.decide(Utc::now()) {
            Decision::Granted(grounds) => {
                let given = &grounds.consent().unwrap().consent().categories;
                prop_assert!(case.asked.iter().all(|c| given.contains(&cat(c))));
            }
            denied => prop_assert!(false, "{:?} for {:?}", denied, case),
        }
    }
}
