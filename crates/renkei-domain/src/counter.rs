//! Counter consents (窓口同意, 延岡's model): a resident gives consent at a data provider's
//! counter, on the provider's paper form, and the provider's staff record it at the hub. The
//! result is an ordinary consent (channel `counter`, the staff member as its actor, the
//! form's reference kept beside it), which the resident sees and revokes like any other.
//!
//! [`may_take_consent`] is the rule for which purposes a provider may take consent to:
//!
//! - **at least one of the purpose's categories is one the provider is registered for.**
//!   Consent is asked by whoever will hand the data over, so a provider that serves part of
//!   what a purpose draws on is a proper place to ask for the whole purpose (a consent is
//!   per purpose). Asking for every category would leave a purpose served by a clinic and a
//!   payment provider with no counter anywhere. A provider that serves none of it is a
//!   stranger to the purpose and takes nothing.
//! - **and every special-care (要配慮個人情報) category of the purpose.** Special-care data
//!   needs the resident's prior consent to its provision itself (APPI art. 20(2) and
//!   27(1)): that consent is taken by the one that holds the data and answers for handing
//!   it over, not by a counter that never held it. A category missing from the vocabulary
//!   counts as special care: the rule fails closed.
//!
//! The city's own counter, where staff verify a resident in person and act for them, is
//! [`session`].

pub mod session;

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::catalog::{DataCategory, Purpose};
use crate::consent::{Actor, Consent, ConsentChannel};
use crate::ids::{CategoryId, ProviderId, PurposeId, ServiceId};
use crate::provider::Provider;

/// The longest staff identifier, in characters.
pub const MAX_STAFF_ID_CHARS: usize = 64;
/// The longest form reference, in characters.
pub const MAX_FORM_REFERENCE_CHARS: usize = 128;

/// Why a counter identifier is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CounterFieldError {
    #[error(
        "a staff identifier is 1 to {MAX_STAFF_ID_CHARS} characters without control characters or surrounding spaces"
    )]
    BadStaffId,
    #[error(
        "a form reference is 1 to {MAX_FORM_REFERENCE_CHARS} characters without control characters or surrounding spaces"
    )]
    BadFormReference,
}

fn printable(s: &str, max: usize) -> bool {
    let chars = s.chars().count();
    (1..=max).contains(&chars) && !s.chars().any(char::is_control) && s.trim() == s
}

macro_rules! counter_text {
    ($(#[$doc:meta])* $name:ident, $max:expr, $err:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn new(s: impl Into<String>) -> Result<Self, CounterFieldError> {
                let s = s.into();
                if printable(&s, $max) {
                    Ok(Self(s))
                } else {
                    Err($err)
                }
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = CounterFieldError;
            fn try_from(s: String) -> Result<Self, CounterFieldError> {
                Self::new(s)
            }
        }
        impl std::str::FromStr for $name {
            type Err = CounterFieldError;
            fn from_str(s: &str) -> Result<Self, CounterFieldError> {
                Self::new(s)
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

counter_text!(
    /// A staff member as the provider names them (its own staff number or account): who took
    /// the consent, for the resident and the city to follow up. It identifies the provider's
    /// staff, never the resident.
    StaffId, MAX_STAFF_ID_CHARS, CounterFieldError::BadStaffId);
counter_text!(
    /// The reference of the paper form the resident signed, as the provider files it, so the
    /// form can be found again.
    FormReference, MAX_FORM_REFERENCE_CHARS, CounterFieldError::BadFormReference);

/// Why a provider may not take consent to a purpose at its counter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CounterConsentError {
    #[error(
        "provider `{provider}` serves none of the categories of purpose `{purpose}` of service `{service}`"
    )]
    NoCategoryServed {
        provider: ProviderId,
        service: ServiceId,
        purpose: PurposeId,
    },
    #[error(
        "provider `{provider}` does not serve special-care category `{category}`, so consent to it is not taken at its counter"
    )]
    SpecialCareNotServed {
        provider: ProviderId,
        category: CategoryId,
    },
}

impl CounterConsentError {
    /// A stable code for the problem type the API answers with.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoCategoryServed { .. } => "purpose-not-served",
            Self::SpecialCareNotServed { .. } => "special-care-not-served",
        }
    }
}

/// Whether `provider` may take consent to `purpose` at its counter (see the module's
/// documentation for the rule and why), given the category `vocabulary`.
pub fn may_take_consent(
    provider: &Provider,
    purpose: &Purpose,
    vocabulary: &[DataCategory],
) -> Result<(), CounterConsentError> {
    let served: &BTreeSet<CategoryId> = &provider.categories;
    if purpose.categories.is_disjoint(served) {
        return Err(CounterConsentError::NoCategoryServed {
            provider: provider.id.clone(),
            service: purpose.service.clone(),
            purpose: purpose.id.clone(),
        });
    }
    let special_care = |id: &CategoryId| {
        vocabulary
            .iter()
            .find(|c| &c.id == id)
            .is_none_or(|c| c.special_care)
    };
    match purpose
        .categories
        .iter()
        .find(|c| special_care(c) && !served.contains(*c))
    {
        Some(category) => Err(CounterConsentError::SpecialCareNotServed {
            provider: provider.id.clone(),
            category: category.clone(),
        }),
        None => Ok(()),
    }
}

/// Whether `consent` is the one `provider` recorded from the paper form `form`: asked to
/// record that form again (a retry after a lost answer), the hub answers with this consent
/// instead of refusing a second one.
pub fn records_form(consent: &Consent, provider: &ProviderId, form: &FormReference) -> bool {
    consent.given_via == ConsentChannel::Counter
        && matches!(&consent.given_by, Actor::ProviderStaff { provider: p, .. } if p == provider)
        && consent.form_reference.as_ref() == Some(form)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{LegalBasis, LocalizedText};
    use crate::provider::{ProviderConnection, ProviderStatus};

    fn cat(id: &str) -> CategoryId {
        CategoryId::new(id).unwrap()
    }

    fn vocabulary() -> Vec<DataCategory> {
        [
            ("health.checkup", true),
            ("payment.history", false),
            ("resident.address", false),
        ]
        .into_iter()
        .map(|(id, special_care)| DataCategory {
            id: cat(id),
            name: LocalizedText::new(id, id),
            special_care,
            location: false,
        })
        .collect()
    }

    fn provider(categories: &[&str]) -> Provider {
        Provider {
            id: ProviderId::new("clinic").unwrap(),
            name: LocalizedText::new("診療所", "Clinic"),
            connection: ProviderConnection::Outbound,
            categories: categories.iter().map(|c| cat(c)).collect(),
            max_answer_bytes: None,
            signing_keys: Default::default(),
            contact: None,
            status: ProviderStatus::Approved,
        }
    }

    fn purpose(categories: &[&str]) -> Purpose {
        Purpose {
            service: ServiceId::new("health-advice").unwrap(),
            id: PurposeId::new("advice").unwrap(),
            version: 1,
            title: LocalizedText::new("t", "t"),
            description: LocalizedText::new("d", "d"),
            categories: categories.iter().map(|c| cat(c)).collect(),
            retention_days: 30,
            legal_basis: LegalBasis::Consent,
            emergency_only: false,
            location: None,
        }
    }

    #[test]
    fn a_provider_serving_part_of_a_purpose_takes_consent_to_all_of_it() {
        let both = purpose(&["health.checkup", "payment.history"]);
        assert_eq!(
            may_take_consent(&provider(&["health.checkup"]), &both, &vocabulary()),
            Ok(())
        );
    }

    #[test]
    fn a_provider_serving_none_of_a_purpose_takes_no_consent_to_it() {
        let rides = purpose(&["resident.address", "payment.history"]);
        let err = may_take_consent(&provider(&["health.checkup"]), &rides, &vocabulary());
        assert_eq!(err.unwrap_err().code(), "purpose-not-served");
    }

    #[test]
    fn special_care_data_is_consented_only_where_it_is_held() {
        let both = purpose(&["health.checkup", "payment.history"]);
        let err = may_take_consent(&provider(&["payment.history"]), &both, &vocabulary());
        assert_eq!(
            err,
            Err(CounterConsentError::SpecialCareNotServed {
                provider: ProviderId::new("clinic").unwrap(),
                category: cat("health.checkup"),
            })
        );
    }

    #[test]
    fn a_category_missing_from_the_vocabulary_counts_as_special_care() {
        let odd = purpose(&["payment.history", "genome.sequence"]);
        let err = may_take_consent(&provider(&["payment.history"]), &odd, &vocabulary());
        assert_eq!(err.unwrap_err().code(), "special-care-not-served");
    }

    #[test]
    fn staff_ids_and_form_references_are_bounded_printable_text() {
        assert!(StaffId::new("N-0042").is_ok());
        assert!(
            StaffId::new("窓口-03").is_ok(),
            "the provider's own numbering"
        );
        assert!(FormReference::new("2026-申込-000123").is_ok());
        for bad in ["", " x", "x\n", &"a".repeat(MAX_STAFF_ID_CHARS + 1)] {
            assert!(StaffId::new(bad).is_err(), "{bad:?}");
        }
        assert!(FormReference::new("a".repeat(MAX_FORM_REFERENCE_CHARS)).is_ok());
        assert!(FormReference::new("a".repeat(MAX_FORM_REFERENCE_CHARS + 1)).is_err());
        let json = serde_json::to_string(&StaffId::new("N-1").unwrap()).unwrap();
        assert_eq!(json, "\"N-1\"");
        assert!(serde_json::from_str::<StaffId>("\"\"").is_err());
    }
}
