//! Identities as newtypes, so a resident id can never be passed where a service id belongs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error(
        "`{0}` is not a valid {1}: use 1 to 64 characters from a-z, 0-9, `.`, `_` and `-`, starting with a letter or digit"
    )]
    BadSlug(String, &'static str),
    #[error(
        "`{0}` is not a valid subject: use 16 to 128 characters from A-Z, a-z, 0-9, `-` and `_`"
    )]
    BadSubject(String),
    #[error("`{0}` is not a valid {1}: expected a UUID")]
    BadUuid(String, &'static str),
}

/// The shape `check_slug` accepts, as a regular expression (for the API document).
pub const SLUG_PATTERN: &str = "^[a-z0-9][a-z0-9._-]{0,63}$";

/// The shape [`ServiceSubject::new`] accepts, as a regular expression.
pub const SUBJECT_PATTERN: &str = "^[A-Za-z0-9_-]{16,128}$";

/// Checks the shape shared by operator-chosen identifiers (service, purpose, category, provider).
fn check_slug(s: &str, what: &'static str) -> Result<(), IdError> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(IdError::BadSlug(s.to_owned(), what))
    }
}

/// The conversions every string identifier has, each through its checked `new`.
macro_rules! string_id_conversions {
    ($name:ident) => {
        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::new(s)
            }
        }
        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

macro_rules! slug_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps an identifier.
            pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                check_slug(&s, $what)?;
                Ok(Self(s))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        string_id_conversions!($name);
    };
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            pub fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }
        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Uuid::parse_str(s).map(Self).map_err(|_| IdError::BadUuid(s.to_owned(), $what))
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

slug_id!(
    /// A registered service (data consumer), e.g. `health-advice`.
    ServiceId, "service id");
slug_id!(
    /// A purpose declared by a service, e.g. `health-advice`; versions are numbered apart.
    PurposeId, "purpose id");
slug_id!(
    /// An entry of the data-category vocabulary, e.g. `health.checkup`.
    CategoryId, "data category");
slug_id!(
    /// A data provider (data holder), e.g. `city-registry`.
    ProviderId, "provider id");

impl ServiceId {
    /// The recipient a disclosure's access record names: the data subject (本人) itself,
    /// never a registered service (registration refuses this id).
    pub fn data_subject() -> Self {
        Self(DATA_SUBJECT.to_owned())
    }

    /// Whether this is [`ServiceId::data_subject`], which no service may register as.
    pub fn is_data_subject(&self) -> bool {
        self.0 == DATA_SUBJECT
    }
}

impl PurposeId {
    /// The purpose a disclosure's access record and grants name: the data subject's access
    /// (開示請求) to what is held about them.
    pub fn data_subject_access() -> Self {
        Self(DATA_SUBJECT_ACCESS.to_owned())
    }
}

/// The reserved service id of [`ServiceId::data_subject`].
pub const DATA_SUBJECT: &str = "data-subject";
/// The purpose id of [`PurposeId::data_subject_access`], and the basis grants of a
/// disclosure state.
pub const DATA_SUBJECT_ACCESS: &str = "data-subject-access";

uuid_id!(
    /// A resident (data subject) inside the hub. Never shown to services: they see a
    /// [`ServiceSubject`] instead.
    ResidentId, "resident id");
uuid_id!(
    /// One consent record.
    ConsentId, "consent id");
uuid_id!(
    /// One data request, shared by its access record, its grants and its response.
    RequestId, "request id");
uuid_id!(
    /// One proxy appointment (代理人の選任).
    ProxyId, "proxy appointment id");
uuid_id!(
    /// One disclosure, correction, deletion or suspension request (開示・訂正・削除・利用停止請求).
    ResidentRequestId, "resident request id");
slug_id!(
    /// A city operator's account, e.g. `tanaka`.
    OperatorId, "operator id");
uuid_id!(
    /// One declared emergency (非常時宣言).
    DeclarationId, "declaration id");
slug_id!(
    /// A district the city defines for emergency areas, e.g. `hikari-1`.
    DistrictId, "district id");

uuid_id!(
    /// One counter session (窓口): a staff member serving one resident they verified in
    /// person.
    CounterSessionId, "counter session id");

uuid_id!(
    /// One batch of a provider's locator changes, named by the provider: sending the same
    /// batch again (a retry) changes nothing.
    LocatorBatchId, "locator batch id");

/// Checks the shape of a pairwise subject: the base64url form the hub hands out (43
/// characters for 32 bytes), within bounds that leave room for other lengths.
fn check_subject(s: String) -> Result<String, IdError> {
    let ok = (16..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(s)
    } else {
        Err(IdError::BadSubject(s))
    }
}

macro_rules! subject_id {
    ($(#[$meta:meta])* $name:ident) => {
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        $(#[$meta])*
        pub struct $name(String);

        impl $name {
            /// Accepts the base64url form the hub hands out.
            pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
                check_subject(s.into()).map(Self)
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        string_id_conversions!($name);
    };
}

subject_id!(
    /// The pseudonymous identifier a service knows a resident by (サービス別仮名ID). It is
    /// different for every service sector, so two services cannot join their records on it.
    #[serde(transparent)]
    ServiceSubject);
subject_id!(
    /// The pseudonymous identifier one data provider knows a resident by: the hub's pairwise
    /// subject for the provider's own sector (`provider:<id>`, which no service sector can
    /// be). Two providers never share one for the same resident, so neither they nor anyone
    /// holding both lists can join them on it (名寄せ), and a provider can name no resident
    /// it was not given the subject of.
    #[serde(try_from = "String", into = "String")]
    ProviderSubject);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn slugs_accept_the_vocabulary_style() {
        assert!(CategoryId::new("health.checkup").is_ok());
        assert!(ServiceId::new("community-bus").is_ok());
    }

    #[test]
    fn slugs_reject_upper_case_spaces_and_empty() {
        for bad in ["", "Health", "a b", "-x", "x/y", &"a".repeat(65)] {
            assert!(ServiceId::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn slug_errors_quote_the_input() {
        let err = PurposeId::new("Bad Id").unwrap_err().to_string();
        assert!(err.contains("`Bad Id`"), "{err}");
    }

    proptest! {
        #[test]
        fn slug_parsing_never_panics_and_round_trips(s in ".{0,80}") {
            if let Ok(id) = CategoryId::new(s.clone()) {
                prop_assert_eq!(id.as_str(), s.as_str());
                let json = serde_json::to_string(&id).unwrap();
                let back: CategoryId = serde_json::from_str(&json).unwrap();
                prop_assert_eq!(back, id);
            }
        }

        #[test]
        fn the_published_patterns_accept_exactly_what_parsing_accepts(
            s in prop_oneof![".{0,130}", "[a-z0-9][a-z0-9._-]{0,70}", "[A-Za-z0-9_-]{10,140}"],
        ) {
            let slug = regex::Regex::new(SLUG_PATTERN).unwrap();
            prop_assert_eq!(ServiceId::new(s.clone()).is_ok(), slug.is_match(&s));
            let subject = regex::Regex::new(SUBJECT_PATTERN).unwrap();
            prop_assert_eq!(ServiceSubject::new(s.clone()).is_ok(), subject.is_match(&s));
            prop_assert_eq!(ProviderSubject::new(s.clone()).is_ok(), subject.is_match(&s));
        }

        #[test]
        fn uuid_ids_parse_only_uuids(s in ".{0,40}") {
            let parsed = s.parse::<ConsentId>();
            prop_assert_eq!(parsed.is_ok(), Uuid::parse_str(&s).is_ok());
        }
    }
}
