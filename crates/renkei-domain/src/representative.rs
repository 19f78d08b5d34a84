//! Statutory representatives (法定代理人): a parent with parental authority (親権者) over a
//! minor, and a guardian of an adult (成年後見人). The law appoints them, not the resident, so
//! an operator registers them, naming the evidence they saw (the court decision's number,
//! the family register extract's reference: a reference, never the document). Once
//! registered, a representative acts like a proxy whose scope is everything
//! ([`Representation::scope`]).
//!
//! - **A parent's authority ends by itself** on the child's 18th birthday (民法第4条, the age
//!   of majority since 2022), judged in the city's time (JST) against the clock of whoever
//!   asks, at each use: nothing has to run for it to end. A child whose birth date the hub
//!   never verified cannot be shown to be a minor, so a parent's authority over them does not
//!   hold ([`Representation::holds_at`]).
//! - **A minor's consent to special-care data** (要配慮個人情報) is given by their
//!   representative, not by the minor alone ([`may_consent`]): what a purpose draws on from
//!   their health, creed or record is not for a child to release by themselves. A resident
//!   whose birth date is unknown is not known to be a minor, and consents alone.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog::{DataCategory, Purpose};
use crate::identity::ProxyScope;
use crate::ids::{CategoryId, OperatorId};

/// The age of majority (成年年齢), in years.
pub const AGE_OF_MAJORITY: i32 = 18;
/// The longest evidence reference, in characters.
pub const MAX_EVIDENCE_CHARS: usize = 128;

/// The city's clock face: Japan Standard Time, which has no daylight saving.
fn jst() -> FixedOffset {
    #[expect(
        clippy::expect_used,
        reason = "nine hours east is a valid UTC offset, a constant"
    )]
    FixedOffset::east_opt(9 * 3600).expect("UTC+09:00 is a valid offset")
}

/// The kind of statutory representative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RepresentativeKind {
    /// 親権者: a parent with parental authority over a minor, until the child comes of age.
    Parent,
    /// 成年後見人: a guardian appointed by the family court, until the court ends it.
    Guardian,
}

impl RepresentativeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Parent => "parent",
            Self::Guardian => "guardian",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Parent, Self::Guardian]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// Why an evidence reference is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "an evidence reference is 1 to {MAX_EVIDENCE_CHARS} characters without control characters or surrounding spaces"
)]
pub struct EvidenceError;

/// Where the operator saw the representative's authority: the court decision's number
/// (`令和6年(家)第123号`), or the reference of the family register extract shown. A reference
/// to find the document again, never the document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EvidenceReference(String);

impl EvidenceReference {
    pub fn new(s: impl Into<String>) -> Result<Self, EvidenceError> {
        let s = s.into();
        let chars = s.chars().count();
        if (1..=MAX_EVIDENCE_CHARS).contains(&chars)
            && !s.chars().any(char::is_control)
            && s.trim() == s
        {
            Ok(Self(s))
        } else {
            Err(EvidenceError)
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EvidenceReference {
    type Error = EvidenceError;
    fn try_from(s: String) -> Result<Self, EvidenceError> {
        Self::new(s)
    }
}

impl From<EvidenceReference> for String {
    fn from(v: EvidenceReference) -> String {
        v.0
    }
}

/// What makes a proxy appointment a statutory representation: its kind, the evidence, and
/// the operator who registered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Representation {
    pub kind: RepresentativeKind,
    pub evidence: EvidenceReference,
    pub registered_by: OperatorId,
}

impl Representation {
    /// A representative may do all a resident may through a proxy, for every service.
    pub fn scope() -> ProxyScope {
        ProxyScope {
            services: Default::default(),
            manage_consents: true,
            view_history: true,
            file_requests: true,
            sign_in_to_services: true,
        }
    }

    /// Whether the authority holds at `now` for a ward born on `ward_birth` (as their
    /// verified identity says): a guardian's until ended; a parent's while the child is a
    /// minor, and never for a child whose birth date is unknown.
    pub fn holds_at(&self, ward_birth: Option<NaiveDate>, now: DateTime<Utc>) -> bool {
        match self.kind {
            RepresentativeKind::Guardian => true,
            RepresentativeKind::Parent => ward_birth.is_some_and(|b| is_minor_at(b, now)),
        }
    }
}

/// The day someone born on `birth` comes of age: their 18th birthday, or 1 March for one
/// born on 29 February in a year without one (年齢計算ニ関スル法律: the age is reached as the
/// day before the birthday ends).
pub fn coming_of_age(birth: NaiveDate) -> NaiveDate {
    let year = birth.year() + AGE_OF_MAJORITY;
    birth
        .with_year(year)
        .or_else(|| NaiveDate::from_ymd_opt(year, 3, 1))
        .unwrap_or(NaiveDate::MAX)
}

/// Whether someone born on `birth` is a minor at `now`, by the date in Japan.
pub fn is_minor_at(birth: NaiveDate, now: DateTime<Utc>) -> bool {
    now.with_timezone(&jst()).date_naive() < coming_of_age(birth)
}

/// Who gives a consent, as far as the minor rule cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentGiver {
    /// The resident, or someone acting for them who is not their statutory representative
    /// (a proxy they appointed, counter staff).
    OnTheirOwn,
    /// Their statutory representative, whose authority holds.
    Representative,
}

/// Why a consent may not be given as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapacityError {
    #[error(
        "a minor's consent to special-care category `{category}` is given by their statutory representative"
    )]
    MinorNeedsRepresentative { category: CategoryId },
}

impl CapacityError {
    /// A stable code for the problem type the API answers with.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MinorNeedsRepresentative { .. } => "minor-needs-representative",
        }
    }
}

/// Whether a consent to `purpose` may be given by `giver` for a resident born on `birth`
/// (see the module's documentation): a minor's to a purpose drawing on a special-care
/// category needs their representative. A category missing from `vocabulary` counts as
/// special care.
pub fn may_consent(
    birth: Option<NaiveDate>,
    now: DateTime<Utc>,
    purpose: &Purpose,
    vocabulary: &[DataCategory],
    giver: ConsentGiver,
) -> Result<(), CapacityError> {
    if giver == ConsentGiver::Representative || !birth.is_some_and(|b| is_minor_at(b, now)) {
        return Ok(());
    }
    let special_care = |id: &CategoryId| {
        vocabulary
            .iter()
            .find(|c| &c.id == id)
            .is_none_or(|c| c.special_care)
    };
    match purpose.categories.iter().find(|c| special_care(c)) {
        Some(category) => Err(CapacityError::MinorNeedsRepresentative {
            category: category.clone(),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{LegalBasis, LocalizedText};
    use crate::ids::{PurposeId, ServiceId};
    use chrono::TimeZone;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// Midday in Japan on the given date.
    fn noon_jst(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        jst()
            .with_ymd_and_hms(y, m, d, 12, 0, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn parent() -> Representation {
        Representation {
            kind: RepresentativeKind::Parent,
            evidence: EvidenceReference::new("戸籍謄本 2026-000123").unwrap(),
            registered_by: OperatorId::new("tanaka").unwrap(),
        }
    }

    fn purpose(categories: &[&str]) -> Purpose {
        Purpose {
            service: ServiceId::new("school-health").unwrap(),
            id: PurposeId::new("checkup").unwrap(),
            version: 1,
            title: LocalizedText::new("t", "t"),
            description: LocalizedText::new("d", "d"),
            categories: categories
                .iter()
                .map(|c| CategoryId::new(*c).unwrap())
                .collect(),
            retention_days: 30,
            legal_basis: LegalBasis::Consent,
            emergency_only: false,
            location: None,
        }
    }

    fn vocabulary() -> Vec<DataCategory> {
        [("health.checkup", true), ("resident.address", false)]
            .into_iter()
            .map(|(id, special_care)| DataCategory {
                id: CategoryId::new(id).unwrap(),
                name: LocalizedText::new(id, id),
                special_care,
                location: false,
            })
            .collect()
    }

    #[test]
    fn a_parents_authority_holds_the_day_before_the_18th_birthday_and_ends_on_it() {
        let birth = Some(date(2008, 6, 15));
        assert!(parent().holds_at(birth, noon_jst(2026, 6, 14)));
        assert!(!parent().holds_at(birth, noon_jst(2026, 6, 15)));
        // Midnight in Japan is the turn, whatever the date in UTC says.
        let last_second = jst().with_ymd_and_hms(2026, 6, 14, 23, 59, 59).unwrap();
        let first_second = jst().with_ymd_and_hms(2026, 6, 15, 0, 0, 0).unwrap();
        assert!(parent().holds_at(birth, last_second.with_timezone(&Utc)));
        assert!(!parent().holds_at(birth, first_second.with_timezone(&Utc)));
    }

    #[test]
    fn a_parents_authority_over_a_child_of_unknown_age_does_not_hold() {
        assert!(!parent().holds_at(None, noon_jst(2026, 1, 1)));
    }

    #[test]
    fn a_guardians_authority_does_not_end_with_age() {
        let guardian = Representation {
            kind: RepresentativeKind::Guardian,
            ..parent()
        };
        assert!(guardian.holds_at(Some(date(1940, 1, 1)), noon_jst(2026, 1, 1)));
        assert!(guardian.holds_at(None, noon_jst(2026, 1, 1)));
    }

    #[test]
    fn one_born_on_29_february_comes_of_age_on_1_march_in_a_common_year() {
        assert_eq!(coming_of_age(date(2008, 2, 29)), date(2026, 3, 1));
        assert_eq!(coming_of_age(date(2006, 2, 28)), date(2024, 2, 28));
        assert!(is_minor_at(date(2008, 2, 29), noon_jst(2026, 2, 28)));
        assert!(!is_minor_at(date(2008, 2, 29), noon_jst(2026, 3, 1)));
    }

    #[test]
    fn a_minor_cannot_consent_alone_to_a_special_care_purpose() {
        let minor = Some(date(2012, 4, 1));
        let now = noon_jst(2026, 1, 1);
        let health = purpose(&["health.checkup", "resident.address"]);
        let err = may_consent(minor, now, &health, &vocabulary(), ConsentGiver::OnTheirOwn);
        assert_eq!(err.unwrap_err().code(), "minor-needs-representative");
        assert_eq!(
            may_consent(
                minor,
                now,
                &health,
                &vocabulary(),
                ConsentGiver::Representative
            ),
            Ok(())
        );
    }

    #[test]
    fn a_minor_consents_alone_to_what_draws_on_no_special_care() {
        let minor = Some(date(2012, 4, 1));
        let address = purpose(&["resident.address"]);
        let now = noon_jst(2026, 1, 1);
        assert_eq!(
            may_consent(
                minor,
                now,
                &address,
                &vocabulary(),
                ConsentGiver::OnTheirOwn
            ),
            Ok(())
        );
        let odd = purpose(&["genome.sequence"]);
        assert!(
            may_consent(minor, now, &odd, &vocabulary(), ConsentGiver::OnTheirOwn).is_err(),
            "a category missing from the vocabulary counts as special care"
        );
    }

    #[test]
    fn adults_and_residents_of_unknown_age_consent_alone_to_special_care() {
        let health = purpose(&["health.checkup"]);
        let now = noon_jst(2026, 1, 1);
        for birth in [Some(date(1990, 1, 1)), Some(date(2008, 1, 1)), None] {
            assert_eq!(
                may_consent(birth, now, &health, &vocabulary(), ConsentGiver::OnTheirOwn),
                Ok(()),
                "{birth:?}"
            );
        }
    }

    #[test]
    fn evidence_references_are_bounded_printable_text() {
        assert!(EvidenceReference::new("令和6年(家)第123号").is_ok());
        for bad in ["", " x", "x\n", &"a".repeat(MAX_EVIDENCE_CHARS + 1)] {
            assert!(EvidenceReference::new(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            RepresentativeKind::parse("guardian"),
            Some(RepresentativeKind::Guardian)
        );
        assert_eq!(RepresentativeKind::parse("uncle"), None);
    }
}
