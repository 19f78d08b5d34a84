//! Who a resident is to the hub once proven (enrolment), who may act for them (proxies),
//! who runs the platform (operators), and what residents may ask of it (requests).

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::consent::Actor;
use crate::ids::{CategoryId, OperatorId, ProxyId, ResidentId, ResidentRequestId, ServiceId};
use crate::representative::Representation;

/// A proven identity: what the hub keeps of the certificate a resident enrolled with.
/// Never the certificate itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrolment {
    pub resident: ResidentId,
    /// SHA-256 of the certificate's public key (hex): how a later enrolment with the same
    /// card finds the same resident.
    pub key_hash: String,
    /// The verified attributes the city needs (name, and what else the certificate proves).
    pub attributes: serde_json::Value,
    pub enrolled_at: DateTime<Utc>,
    pub certificate_not_after: DateTime<Utc>,
}

/// What a proxy may do for the resident who appointed them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyScope {
    /// The services the proxy may act on; empty means all.
    #[serde(default)]
    pub services: BTreeSet<ServiceId>,
    /// May grant and revoke consents.
    pub manage_consents: bool,
    /// May read the resident's access history.
    pub view_history: bool,
    /// May file disclosure, correction, deletion or suspension requests.
    pub file_requests: bool,
    /// May sign in to services as the resident (OpenID Connect), which releases whatever the
    /// resident's consents to those services and the shared name release. Off unless granted;
    /// scopes stored before it existed read as off.
    #[serde(default)]
    pub sign_in_to_services: bool,
}

impl ProxyScope {
    /// Whether the scope covers acting on `service` (consents for it, requests about it).
    pub fn covers_service(&self, service: &ServiceId) -> bool {
        self.services.is_empty() || self.services.contains(service)
    }

    /// Whether the scope covers what concerns `service`, or the hub itself (`None`): that
    /// concerns every service, so only a scope over all services covers it.
    pub fn covers(&self, service: Option<&ServiceId>) -> bool {
        match service {
            Some(s) => self.covers_service(s),
            None => self.services.is_empty(),
        }
    }

    /// Whether the proxy may read the resident's consents (within the services covered):
    /// managing them means seeing them, and the history shows every change to them anyway.
    pub fn may_view_consents(&self) -> bool {
        self.manage_consents || self.view_history
    }
}

/// A resident's appointment of a proxy (代理人): a family member or counter staff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyAppointment {
    pub id: ProxyId,
    pub resident: ResidentId,
    pub proxy: ResidentId,
    /// What the resident calls them ("娘", "窓口 田中").
    pub label: String,
    pub scope: ProxyScope,
    pub appointed_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    /// Set for a statutory representative (親権者, 成年後見人) an operator registered; `None`
    /// for a proxy the resident appointed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub representation: Option<Representation>,
}

impl ProxyAppointment {
    /// Whether the appointment was not ended. A representative's authority may also have
    /// ended with time: see [`Self::holds_at`].
    pub fn is_active(&self) -> bool {
        self.ended_at.is_none()
    }

    /// Whether whoever holds the appointment may act under it at `now`: not ended, and for a
    /// statutory representative while their authority holds over a ward born on
    /// `ward_birth` ([`Representation::holds_at`]).
    pub fn holds_at(&self, ward_birth: Option<NaiveDate>, now: DateTime<Utc>) -> bool {
        self.is_active()
            && self
                .representation
                .as_ref()
                .is_none_or(|r| r.holds_at(ward_birth, now))
    }
}

/// A city operator (自治体職員), an enrolled person given the operator role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operator {
    pub id: OperatorId,
    pub name: String,
    /// The enrolled identity the operator signs in with.
    pub identity: ResidentId,
    pub added_at: DateTime<Utc>,
    /// What the account may do; accounts from before roles are operators.
    #[serde(default)]
    pub role: OperatorRole,
}

/// What an operator account may do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperatorRole {
    /// Everything operators do, counter work included.
    #[default]
    Operator,
    /// Counter work (窓口) and nothing else: verifying residents in person and acting for
    /// them in a counter session.
    CounterStaff,
}

impl OperatorRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::CounterStaff => "counter_staff",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Operator, Self::CounterStaff]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// The rights a resident exercises under the APPI (開示・訂正・削除・利用停止).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResidentRequestKind {
    Disclosure,
    Correction,
    Deletion,
    Suspension,
}

impl ResidentRequestKind {
    pub const ALL: [Self; 4] = [
        Self::Disclosure,
        Self::Correction,
        Self::Deletion,
        Self::Suspension,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disclosure => "disclosure",
            Self::Correction => "correction",
            Self::Deletion => "deletion",
            Self::Suspension => "suspension",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether the request goes on to whoever holds the data (訂正・削除・利用停止): a
    /// disclosure is the hub's to answer.
    pub fn is_routed(self) -> bool {
        !matches!(self, Self::Disclosure)
    }
}

/// Where a resident request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResidentRequestStatus {
    Received,
    InProgress,
    Completed,
    Rejected,
}

impl ResidentRequestStatus {
    pub const ALL: [Self; 4] = [
        Self::Received,
        Self::InProgress,
        Self::Completed,
        Self::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether it still waits for an answer.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Received | Self::InProgress)
    }
}

/// A disclosure, correction, deletion or suspension request and its status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResidentRequest {
    pub id: ResidentRequestId,
    pub resident: ResidentId,
    pub kind: ResidentRequestKind,
    /// The service it concerns; `None` for the hub itself.
    pub service: Option<ServiceId>,
    /// The resident's own words.
    pub details: String,
    pub status: ResidentRequestStatus,
    /// Who filed it: the resident or their proxy.
    pub filed_by: Actor,
    pub filed_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The city's answer, once there is one.
    pub response: Option<String>,
    /// The data category it concerns, if it names one (at every service and provider).
    pub category: Option<CategoryId>,
    /// When a first answer is due: the filing day plus the city's setting, or later once
    /// extended.
    pub due_at: DateTime<Utc>,
    /// Why the due date was moved, as the resident reads it; `None` unless extended.
    pub extension_reason: Option<String>,
}

impl ResidentRequest {
    /// Whether it is past its due date and still waits for an answer.
    pub fn is_overdue(&self, now: DateTime<Utc>) -> bool {
        self.status.is_open() && now > self.due_at
    }
}

/// A service's OpenID Connect registration and its privacy-impact answers, kept beside the
/// catalogue entry ([`crate::Service`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceClient {
    pub service: ServiceId,
    /// Exact redirect URIs; an authorization request must name one of them.
    pub redirect_uris: Vec<String>,
    /// The service's answers to the privacy-impact questions, question id → answer.
    pub privacy_impact: std::collections::BTreeMap<String, String>,
    pub registered_at: DateTime<Utc>,
    /// How the service's ID tokens are signed (OIDC Dynamic Client Registration's
    /// `id_token_signed_response_alg`).
    #[serde(default)]
    pub id_token_signed_response_alg: SigningAlg,
    /// Whom residents contact about their data at the service; `None` for services
    /// registered before the hub asked for it.
    #[serde(default)]
    pub controller: Option<ControllerContact>,
}

/// How to reach the PII controller (ISO/IEC 29100), the service that receives residents'
/// data: part of its registration, checked by the operator at review, and carried into
/// every consent receipt (Kantara CR v1.1 `piiControllers[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerContact {
    /// A person or office to contact ("個人情報保護窓口").
    pub contact: String,
    pub address: PostalAddress,
    pub email: String,
    pub phone: String,
}

/// A postal address in schema.org `PostalAddress`'s parts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostalAddress {
    /// ISO 3166-1 alpha-2 (`JP`).
    pub country: String,
    /// 郵便番号 (`150-0001`).
    pub postal_code: String,
    /// 都道府県.
    pub region: String,
    /// 市区町村.
    pub locality: String,
    /// 町名・番地・建物名.
    pub street_address: String,
}

/// Why contact details were refused; the field is named, never its value echoed beyond it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactError {
    #[error("`{0}` must be 1 to 200 characters")]
    Length(&'static str),
    #[error("`email` must be an address like `privacy@example.jp`")]
    Email,
    #[error("`phone` must be digits with `+`, `-`, spaces or parentheses")]
    Phone,
    #[error("`address.country` must be an ISO 3166-1 alpha-2 code such as `JP`")]
    Country,
}

impl ContactError {
    /// The field refused, as the registration names it (`address.country`).
    pub fn field(&self) -> &'static str {
        match self {
            Self::Length(field) => field,
            Self::Email => "email",
            Self::Phone => "phone",
            Self::Country => "address.country",
        }
    }
}

impl ControllerContact {
    /// The contact details if each field is usable: every field given (trimmed) and at most
    /// 200 characters, an email address with one `@` between a local part and a dotted
    /// domain, a phone number of digits, and a two-letter country code.
    pub fn checked(self) -> Result<Self, ContactError> {
        fn text(value: String, field: &'static str) -> Result<String, ContactError> {
            let value = value.trim().to_owned();
            if value.is_empty() || value.chars().count() > 200 {
                return Err(ContactError::Length(field));
            }
            Ok(value)
        }
        let email = text(self.email, "email")?;
        match email.split_once('@') {
            Some((local, domain))
                if !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !email.chars().any(char::is_whitespace) => {}
            _ => return Err(ContactError::Email),
        }
        let phone = text(self.phone, "phone")?;
        if !phone.chars().any(|c| c.is_ascii_digit())
            || !phone
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' ' | '(' | ')'))
        {
            return Err(ContactError::Phone);
        }
        let a = self.address;
        let country = text(a.country, "address.country")?;
        if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(ContactError::Country);
        }
        Ok(Self {
            contact: text(self.contact, "contact")?,
            address: PostalAddress {
                country,
                postal_code: text(a.postal_code, "address.postal_code")?,
                region: text(a.region, "address.region")?,
                locality: text(a.locality, "address.locality")?,
                street_address: text(a.street_address, "address.street_address")?,
            },
            email,
            phone,
        })
    }
}

/// A JWS algorithm the hub signs with (RFC 7518 names). Every hub key has one; a service's
/// ID tokens use the one it registered.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub enum SigningAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256 and an RSA-2048 key: what OpenID Connect requires
    /// every provider to offer and relying parties accept by default, so the default for
    /// ID tokens (OIDC Dynamic Client Registration §2).
    #[default]
    #[serde(rename = "RS256")]
    Rs256,
    /// Ed25519: what the hub signs receipts, grants and events with.
    #[serde(rename = "EdDSA")]
    EdDsa,
}

impl SigningAlg {
    /// Every algorithm, RS256 first (the order discovery lists them in).
    pub const ALL: [Self; 2] = [Self::Rs256, Self::EdDsa];

    /// The JWS `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::EdDsa => "EdDSA",
        }
    }

    /// The algorithm of a JWS `alg` name (exact, case-sensitive as RFC 7515 asks).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl std::fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod proxy_scope_tests {
    use super::{ProxyScope, ServiceId};

    #[test]
    fn a_scope_stored_before_signing_in_was_a_permission_reads_as_without_it() {
        let stored = r#"{"services":["health-advice"],"manage_consents":true,"view_history":false,"file_requests":false}"#;
        let scope: ProxyScope = serde_json::from_str(stored).unwrap();
        assert!(scope.manage_consents);
        assert!(!scope.sign_in_to_services);
    }

    #[test]
    fn only_a_scope_over_every_service_covers_the_hub_itself() {
        let health = ServiceId::new("health-advice").unwrap();
        let bus = ServiceId::new("bus").unwrap();
        let all = ProxyScope::default();
        assert!(all.covers(None) && all.covers(Some(&bus)));
        let one = ProxyScope {
            services: [health.clone()].into(),
            ..ProxyScope::default()
        };
        assert!(one.covers(Some(&health)));
        assert!(!one.covers(Some(&bus)));
        assert!(!one.covers(None));
    }
}

#[cfg(test)]
mod signing_alg_tests {
    use super::SigningAlg;

    #[test]
    fn algorithm_names_round_trip_and_serde_uses_the_jws_names() {
        for alg in SigningAlg::ALL {
            assert_eq!(SigningAlg::parse(alg.as_str()), Some(alg));
            assert_eq!(
                serde_json::to_value(alg).ok(),
                Some(serde_json::Value::String(alg.as_str().to_owned()))
            );
        }
        assert_eq!(SigningAlg::parse("rs256"), None);
        assert_eq!(SigningAlg::default(), SigningAlg::Rs256);
    }
}

#[cfg(test)]
mod contact_tests {
    use super::*;
    use proptest::prelude::*;

    fn contact() -> ControllerContact {
        ControllerContact {
            contact: " 個人情報保護窓口 ".into(),
            address: PostalAddress {
                country: "JP".into(),
                postal_code: "999-0001".into(),
                region: "ひかり県".into(),
                locality: "ひかり台市".into(),
                street_address: "中央1-1".into(),
            },
            email: "privacy@example.jp".into(),
            phone: "+81 3-0000-0000".into(),
        }
    }

    #[test]
    fn contact_details_are_kept_trimmed_when_every_field_is_usable() {
        let checked = contact().checked().unwrap();
        assert_eq!(checked.contact, "個人情報保護窓口");
        assert_eq!(checked.address.locality, "ひかり台市");
    }

    #[test]
    fn unusable_contact_details_name_the_field() {
        type Spoil = fn(&mut ControllerContact);
        let cases: [(Spoil, ContactError); 6] = [
            (|c| c.contact = "  ".into(), ContactError::Length("contact")),
            (
                |c| c.email = "privacy.example.jp".into(),
                ContactError::Email,
            ),
            (|c| c.email = "a@b@example.jp".into(), ContactError::Email),
            (|c| c.phone = "call us".into(), ContactError::Phone),
            (
                |c| c.address.country = "Japan".into(),
                ContactError::Country,
            ),
            (
                |c| c.address.street_address = String::new(),
                ContactError::Length("address.street_address"),
            ),
        ];
        for (spoil, expected) in cases {
            let mut c = contact();
            spoil(&mut c);
            assert_eq!(c.checked().unwrap_err(), expected);
        }
    }

    proptest! {
        /// Whatever is sent, the check answers without panicking, and what it keeps holds
        /// its promises.
        #[test]
        fn any_contact_details_are_checked_or_refused(
            contact in ".{0,40}", email in ".{0,40}", phone in ".{0,20}", country in ".{0,4}",
        ) {
            let mut c = super::contact_tests::contact();
            c.contact = contact;
            c.email = email;
            c.phone = phone;
            c.address.country = country;
            if let Ok(kept) = c.checked() {
                prop_assert!(kept.email.contains('@'));
                prop_assert!(kept.phone.chars().any(|d| d.is_ascii_digit()));
                prop_assert_eq!(kept.address.country.len(), 2);
                prop_assert!(!kept.contact.is_empty());
            }
        }
    }
}
