//! The city's counter (市役所の窓口): counter staff (an operator of role
//! [`crate::OperatorRole::CounterStaff`], or any operator) serve a resident in person, for
//! those who would rather not, or cannot, use the portal.
//!
//! Staff first verify who the resident is, in one of two ways
//! ([`CounterVerification`]): the resident's card certificate, read at the counter's kiosk
//! and checked as enrolment checks it, or an in-person check of an identity document, where
//! staff attest which kind of document they saw (never its number). Either opens a
//! [`CounterSession`] for that resident, short-lived and the staff member's own, within
//! which they enter consents, revocations and requests for the resident (channel `counter`,
//! the staff member as actor).

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{CounterSessionId, OperatorId, ResidentId};

/// How long a counter session lasts: one visit at the counter.
pub const COUNTER_SESSION_MINUTES: i64 = 30;

/// An identity document staff may see at the counter (本人確認書類), by kind only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityDocument {
    /// マイナンバーカード, shown (not read at the kiosk).
    MyNumberCard,
    /// 運転免許証.
    DriversLicence,
    /// 旅券.
    Passport,
    /// 在留カード.
    ResidenceCard,
    /// 身体障害者手帳 and the other 手帳 with a photograph.
    DisabilityCertificate,
}

impl IdentityDocument {
    pub const ALL: [Self; 5] = [
        Self::MyNumberCard,
        Self::DriversLicence,
        Self::Passport,
        Self::ResidenceCard,
        Self::DisabilityCertificate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::MyNumberCard => "my_number_card",
            Self::DriversLicence => "drivers_licence",
            Self::Passport => "passport",
            Self::ResidenceCard => "residence_card",
            Self::DisabilityCertificate => "disability_certificate",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

/// How staff verified the resident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum CounterVerification {
    /// The card certificate, read at the kiosk and checked like an enrolment.
    Card,
    /// Staff saw this document and attest that it shows the resident.
    InPerson { document: IdentityDocument },
}

impl CounterVerification {
    /// `card`, or `in_person:<document>`.
    pub fn label(self) -> String {
        match self {
            Self::Card => "card".to_owned(),
            Self::InPerson { document } => format!("in_person:{}", document.as_str()),
        }
    }
}

/// A counter session: one staff member serving one resident they verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterSession {
    pub id: CounterSessionId,
    pub operator: OperatorId,
    pub resident: ResidentId,
    pub verification: CounterVerification,
    pub opened_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Why a counter session cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CounterSessionError {
    #[error("the counter session is over: verify the resident again")]
    Over,
    #[error("the counter session is another staff member's")]
    NotYours,
}

impl CounterSession {
    /// A session `operator` opens at `now` for `resident`, verified as `verification`.
    pub fn open(
        id: CounterSessionId,
        operator: OperatorId,
        resident: ResidentId,
        verification: CounterVerification,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            operator,
            resident,
            verification,
            opened_at: now,
            expires_at: now + TimeDelta::minutes(COUNTER_SESSION_MINUTES),
        }
    }

    /// Whether `operator` may act in this session at `now`: only the staff member who
    /// verified the resident, and only until it is over.
    pub fn usable_by(
        &self,
        operator: &OperatorId,
        now: DateTime<Utc>,
    ) -> Result<(), CounterSessionError> {
        if &self.operator != operator {
            return Err(CounterSessionError::NotYours);
        }
        if now >= self.expires_at {
            return Err(CounterSessionError::Over);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(now: DateTime<Utc>) -> CounterSession {
        CounterSession::open(
            CounterSessionId::from_uuid(uuid::Uuid::nil()),
            OperatorId::new("sato").unwrap(),
            ResidentId::from_uuid(uuid::Uuid::nil()),
            CounterVerification::InPerson {
                document: IdentityDocument::DriversLicence,
            },
            now,
        )
    }

    #[test]
    fn a_counter_session_is_its_staff_members_until_it_is_over() {
        let now = Utc::now();
        let s = session(now);
        let sato = OperatorId::new("sato").unwrap();
        assert_eq!(s.usable_by(&sato, now), Ok(()));
        assert_eq!(
            s.usable_by(&OperatorId::new("suzuki").unwrap(), now),
            Err(CounterSessionError::NotYours)
        );
        let end = now + TimeDelta::minutes(COUNTER_SESSION_MINUTES);
        assert_eq!(s.usable_by(&sato, end - TimeDelta::seconds(1)), Ok(()));
        assert_eq!(s.usable_by(&sato, end), Err(CounterSessionError::Over));
    }

    #[test]
    fn verifications_name_the_kind_of_document_only() {
        let seen = CounterVerification::InPerson {
            document: IdentityDocument::Passport,
        };
        assert_eq!(seen.label(), "in_person:passport");
        assert_eq!(
            serde_json::to_value(seen).unwrap(),
            serde_json::json!({"method": "in_person", "document": "passport"})
        );
        assert_eq!(CounterVerification::Card.label(), "card");
        for d in IdentityDocument::ALL {
            assert_eq!(IdentityDocument::parse(d.as_str()), Some(d));
        }
    }
}
