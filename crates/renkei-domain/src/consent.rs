//! Consent records (同意) and their history, modelled on ISO/IEC TS 27560 and the India
//! Account Aggregator consent artefact: one record per resident, service and purpose version.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog::{LegalBasis, PurposeRef};
use crate::counter::{FormReference, StaffId};
use crate::ids::{CategoryId, ConsentId, OperatorId, ProviderId, ResidentId};

/// How the answer was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentChannel {
    /// The resident portal.
    Portal,
    /// The consent screen shown while signing in to a service.
    SignInScreen,
    /// An appointed proxy (代理人) acting for the resident.
    Proxy,
    /// Counter staff, with the resident present: the city's, or a data provider's on the
    /// provider's paper form.
    Counter,
    /// The demo town's sign-in; never enabled outside demo mode.
    Demo,
}

impl ConsentChannel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Portal => "portal",
            Self::SignInScreen => "sign_in_screen",
            Self::Proxy => "proxy",
            Self::Counter => "counter",
            Self::Demo => "demo",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "portal" => Some(Self::Portal),
            "sign_in_screen" => Some(Self::SignInScreen),
            "proxy" => Some(Self::Proxy),
            "counter" => Some(Self::Counter),
            "demo" => Some(Self::Demo),
            _ => None,
        }
    }
}

/// Who acted: the resident, or someone on their behalf (kept apart so the resident can see it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    Resident,
    Proxy {
        proxy: ResidentId,
    },
    /// The city's counter staff (an operator account), with the resident present at the
    /// city's counter (see [`crate::counter::session`]).
    Staff {
        staff_id: OperatorId,
    },
    /// A data provider's staff member, at the provider's counter (see [`crate::counter`]).
    ProviderStaff {
        provider: ProviderId,
        staff_id: StaffId,
    },
    /// The hub itself (expiry).
    Hub,
}

/// Whether a consent is in force, as stored. Expiry is not stored: it follows from time
/// (see [`Consent::state_at`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentState {
    Active,
    Revoked,
    Expired,
}

impl ConsentState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
        }
    }
}

/// One consent record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    pub id: ConsentId,
    pub resident: ResidentId,
    pub purpose: PurposeRef,
    pub categories: BTreeSet<CategoryId>,
    pub legal_basis: LegalBasis,
    pub granted_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub given_via: ConsentChannel,
    pub given_by: Actor,
    /// The paper form the resident signed, for a consent taken at a counter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form_reference: Option<FormReference>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Consent {
    /// The state a reader sees at `now`: revocation wins over expiry.
    pub fn state_at(&self, now: DateTime<Utc>) -> ConsentState {
        if self.revoked_at.is_some() {
            ConsentState::Revoked
        } else if self.expires_at.is_some_and(|e| e <= now) {
            ConsentState::Expired
        } else {
            ConsentState::Active
        }
    }

    /// Whether this consent, rather than `other` (to the same purpose of the same service),
    /// is the one a decision reads: the later granted, and of two granted at the same instant
    /// the one to the newer purpose version.
    pub fn is_later_than(&self, other: &Consent) -> bool {
        (self.granted_at, self.purpose.version) > (other.granted_at, other.purpose.version)
    }

    /// Proof that this consent is in force at `now`; the only way to get an [`ActiveConsent`].
    pub fn active_at(self, now: DateTime<Utc>) -> Result<ActiveConsent, ConsentState> {
        match self.state_at(now) {
            ConsentState::Active => Ok(ActiveConsent(self)),
            other => Err(other),
        }
    }
}

/// A consent checked to be in force at the moment of a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveConsent(Consent);

impl ActiveConsent {
    pub fn consent(&self) -> &Consent {
        &self.0
    }
    pub fn into_inner(self) -> Consent {
        self.0
    }
}

/// What happened to a consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentEventKind {
    Granted,
    Revoked,
    /// Replaced by a consent to a newer version of the same purpose.
    Superseded,
    /// Reached its expiry time (recorded by the hub shortly after).
    Expired,
}

impl ConsentEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Granted => "granted",
            Self::Revoked => "revoked",
            Self::Superseded => "superseded",
            Self::Expired => "expired",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "granted" => Some(Self::Granted),
            "revoked" => Some(Self::Revoked),
            "superseded" => Some(Self::Superseded),
            "expired" => Some(Self::Expired),
            _ => None,
        }
    }
}

/// One line of a consent's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentEvent {
    pub consent: ConsentId,
    pub kind: ConsentEventKind,
    pub at: DateTime<Utc>,
    pub actor: Actor,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{PurposeId, ServiceId};
    use chrono::TimeDelta;
    use proptest::strategy::{Just, Strategy};
    use uuid::Uuid;

    fn consent(now: DateTime<Utc>) -> Consent {
        Consent {
            id: ConsentId::from_uuid(Uuid::nil()),
            resident: ResidentId::from_uuid(Uuid::nil()),
            purpose: PurposeRef {
                service: ServiceId::new("s").unwrap(),
                purpose: PurposeId::new("p").unwrap(),
                version: 1,
            },
            categories: BTreeSet::new(),
            legal_basis: LegalBasis::Consent,
            granted_at: now,
            expires_at: Some(now + TimeDelta::days(30)),
            given_via: ConsentChannel::Portal,
            given_by: Actor::Resident,
            form_reference: None,
            revoked_at: None,
        }
    }

    #[test]
    fn a_consent_expires_at_its_expiry_instant_not_after() {
        let now = Utc::now();
        let c = consent(now);
        assert_eq!(
            c.state_at(now + TimeDelta::days(30) - TimeDelta::milliseconds(1)),
            ConsentState::Active
        );
        assert_eq!(c.state_at(now + TimeDelta::days(30)), ConsentState::Expired);
    }

    #[test]
    fn the_later_grant_is_the_latest_and_a_tie_goes_to_the_newer_purpose_version() {
        let now = Utc::now();
        let first = consent(now);
        let mut later = consent(now + TimeDelta::milliseconds(1));
        assert!(later.is_later_than(&first) && !first.is_later_than(&later));
        later.granted_at = now;
        later.purpose.version = 2;
        assert!(later.is_later_than(&first) && !first.is_later_than(&later));
        assert!(
            !first.is_later_than(&first),
            "a consent is not later than itself"
        );
    }

    /// The consent a decision reads out of `consents`, read in the given order.
    fn latest(consents: &[Consent]) -> Option<&Consent> {
        consents.iter().fold(None, |best, c| match best {
            Some(b) if !c.is_later_than(b) => Some(b),
            _ => Some(c),
        })
    }

    proptest::proptest! {
        /// Whatever order storage reads a resident's consents in, the same one decides: the
        /// latest granted, and of those the one to the newest purpose version.
        #[test]
        fn the_latest_consent_does_not_depend_on_the_order_consents_are_read_in(
            (grants, shuffled) in proptest::collection::btree_set((0i64..4, 1u32..4), 1..8)
                .prop_flat_map(|s| {
                    let v: Vec<_> = s.into_iter().collect();
                    (Just(v.clone()), Just(v).prop_shuffle())
                })
        ) {
            let now = Utc::now();
            let read = |order: &[(i64, u32)]| -> Vec<Consent> {
                order
                    .iter()
                    .map(|&(ms, version)| {
                        let mut c = consent(now + TimeDelta::milliseconds(ms));
                        c.purpose.version = version;
                        c
                    })
                    .collect()
            };
            let (in_order, reordered) = (read(&grants), read(&shuffled));
            let expected = grants.iter().max().copied();
            let found = |c: Option<&Consent>| {
                c.map(|c| ((c.granted_at - now).num_milliseconds(), c.purpose.version))
            };
            proptest::prop_assert_eq!(found(latest(&in_order)), expected);
            proptest::prop_assert_eq!(found(latest(&reordered)), expected);
        }
    }

    #[test]
    fn revocation_wins_over_expiry() {
        let now = Utc::now();
        let mut c = consent(now);
        c.revoked_at = Some(now);
        assert_eq!(c.state_at(now + TimeDelta::days(60)), ConsentState::Revoked);
        assert_eq!(c.active_at(now).unwrap_err(), ConsentState::Revoked);
    }
}
