//! The consent receipt (同意記録) a resident keeps: a compact JWS (EdDSA, `typ`
//! `renkei-receipt+jwt`) whose claims use the field names of the Kantara Initiative Consent
//! Receipt Specification v1.1, plus a few Renkei extensions (`iss`, `iat`, `consentId`,
//! `serviceId`, `purposeId`, `purposeVersion`, `categories`, `legalBasis`, `expires`).
//!
//! Anyone holding the hub's published JWK Set can check a receipt ([`verify_receipt`]). A
//! receipt records what was agreed when it was given; it does not expire with the consent
//! and says nothing about whether the consent has been revoked since.

use chrono::{DateTime, FixedOffset, Utc};
use renkei_domain::{
    CategoryId, Consent, ConsentId, ControllerContact, DataCategory, LegalBasis, Purpose,
    PurposeId, Service, ServiceId,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub mod counter;

use crate::jws::{self, JwsError, SignError};
use crate::keys::{Jwks, SigningKey};

/// The JWS `typ` of a receipt.
pub const RECEIPT_TYP: &str = "renkei-receipt+jwt";
/// The Kantara Consent Receipt version these receipts follow.
pub const KANTARA_VERSION: &str = "KI-CR-v1.1.0";
/// Japan Standard Time, which has no daylight saving.
const JST_OFFSET_SECS: i32 = 9 * 3600;

/// A consent receipt's claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsentReceipt {
    /// Always [`KANTARA_VERSION`].
    pub version: String,
    /// `JP`.
    pub jurisdiction: String,
    /// When the consent was given (unix seconds).
    pub consent_timestamp: i64,
    /// How the consent was given: `portal`, `sign_in_screen`, `proxy`, `counter` or `demo`.
    pub collection_method: String,
    #[serde(rename = "consentReceiptID")]
    pub consent_receipt_id: String,
    /// `ja`: the language of the human-readable fields.
    pub language: String,
    /// The resident (their id inside the hub).
    pub pii_principal_id: String,
    pub pii_controllers: Vec<PiiController>,
    pub policy_url: String,
    pub services: Vec<ReceiptService>,
    /// Whether any category is special-care data (要配慮個人情報).
    pub sensitive: bool,
    /// The names of the special-care categories.
    pub spi_cat: Vec<String>,

    // Renkei extensions.
    /// The hub's URL.
    pub iss: String,
    /// When the receipt was signed (unix seconds).
    pub iat: i64,
    pub consent_id: ConsentId,
    pub service_id: ServiceId,
    pub purpose_id: PurposeId,
    pub purpose_version: u32,
    /// The consented category ids (the names are in `piiCategory`).
    pub categories: Vec<CategoryId>,
    pub legal_basis: LegalBasis,
    /// When the consent expires by itself (unix seconds), if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
}

/// A PII controller (Kantara `piiControllers[]`): who receives the data, and how to reach
/// them. The schema requires `contact`, `address`, `email` and `phone`; they are empty (and
/// the address `{}`) only for a service registered before the hub asked for them, and
/// receipts signed before they were carried read back with them empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PiiController {
    pub pii_controller: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf: Option<bool>,
    #[serde(default)]
    pub contact: String,
    #[serde(default)]
    pub address: ReceiptAddress,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub phone: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pii_controller_url: Option<String>,
}

/// A postal address with schema.org `PostalAddress` names, as Kantara's own example writes
/// `address`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptAddress {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_locality: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_country: Option<String>,
}

impl PiiController {
    /// The controller `name`, reached as `contact` says (`None`: nothing registered).
    pub fn new(name: &str, contact: Option<&ControllerContact>) -> Self {
        let Some(c) = contact else {
            return Self {
                pii_controller: name.to_owned(),
                on_behalf: Some(false),
                contact: String::new(),
                address: ReceiptAddress::default(),
                email: String::new(),
                phone: String::new(),
                pii_controller_url: None,
            };
        };
        let a = &c.address;
        Self {
            pii_controller: name.to_owned(),
            on_behalf: Some(false),
            contact: c.contact.clone(),
            address: ReceiptAddress {
                street_address: Some(a.street_address.clone()),
                address_locality: Some(a.locality.clone()),
                address_region: Some(a.region.clone()),
                postal_code: Some(a.postal_code.clone()),
                address_country: Some(a.country.clone()),
            },
            email: c.email.clone(),
            phone: c.phone.clone(),
            pii_controller_url: None,
        }
    }
}

/// A service and the purposes consented to (Kantara `services[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptService {
    pub service: String,
    pub purposes: Vec<ReceiptPurpose>,
}

/// One purpose (Kantara `services[].purposes[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptPurpose {
    pub purpose: String,
    pub purpose_category: Vec<String>,
    /// `EXPLICIT`: Renkei only ever records opt-in consent.
    pub consent_type: String,
    pub pii_category: Vec<String>,
    pub primary_purpose: bool,
    pub termination: String,
    pub third_party_disclosure: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub third_party_name: Option<String>,
}

/// What a receipt is made from.
#[derive(Debug, Clone, Copy)]
pub struct ReceiptInput<'a> {
    /// The hub's URL.
    pub issuer: &'a str,
    /// Where the service's privacy policy is.
    pub policy_url: &'a str,
    pub consent: &'a Consent,
    pub service: &'a Service,
    /// The purpose version the consent names.
    pub purpose: &'a Purpose,
    /// How to reach the service about the data, as registered (`None` if it never was).
    pub controller: Option<&'a ControllerContact>,
    /// Vocabulary entries covering (at least) the consented categories.
    pub vocabulary: &'a [DataCategory],
    pub issued_at: DateTime<Utc>,
}

/// Why a receipt could not be made or was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    #[error("the receipt does not match its consent: {0}")]
    Inconsistent(&'static str),
    #[error("data category `{0}` is missing from the vocabulary given")]
    MissingCategory(CategoryId),
    #[error("the receipt is malformed: {0}")]
    Malformed(&'static str),
    #[error("the receipt's signature does not verify")]
    BadSignature,
    #[error("the receipt is signed with unknown key `{0}`")]
    UnknownKey(String),
    #[error("unsupported receipt version `{0}`")]
    UnsupportedVersion(String),
}

impl ReceiptError {
    /// A stable identifier of the kind of error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Inconsistent(_) => "receipt-inconsistent",
            Self::MissingCategory(_) => "receipt-missing-category",
            Self::Malformed(_) => "receipt-malformed",
            Self::BadSignature => "receipt-bad-signature",
            Self::UnknownKey(_) => "receipt-unknown-key",
            Self::UnsupportedVersion(_) => "receipt-unsupported-version",
        }
    }
}

impl From<JwsError> for ReceiptError {
    fn from(e: JwsError) -> Self {
        match e {
            JwsError::Malformed(why) => Self::Malformed(why),
            JwsError::BadSignature => Self::BadSignature,
            JwsError::UnknownKey(kid) => Self::UnknownKey(kid),
        }
    }
}

impl ConsentReceipt {
    /// Builds the receipt of a consent. The consent, service and purpose must agree with
    /// each other, and `vocabulary` must name every consented category.
    pub fn build(input: &ReceiptInput<'_>) -> Result<Self, ReceiptError> {
        let ReceiptInput {
            issuer,
            policy_url,
            consent,
            service,
            purpose,
            controller,
            vocabulary,
            issued_at,
        } = *input;
        if consent.purpose != purpose.reference() {
            return Err(ReceiptError::Inconsistent(
                "the purpose is not the version consented to",
            ));
        }
        if service.id != purpose.service {
            return Err(ReceiptError::Inconsistent(
                "the purpose belongs to another service",
            ));
        }
        let mut entries = Vec::with_capacity(consent.categories.len());
        for id in &consent.categories {
            let entry = vocabulary
                .iter()
                .find(|c| &c.id == id)
                .ok_or_else(|| ReceiptError::MissingCategory(id.clone()))?;
            entries.push(entry);
        }
        let spi_cat: Vec<String> = entries
            .iter()
            .filter(|c| c.special_care)
            .map(|c| c.name.ja.clone())
            .collect();

        let mut termination =
            String::from("住民ポータル等からいつでも撤回できます。撤回は直ちに効力を生じます。");
        if let Some(expires) = consent.expires_at
            && let Some(jst) = FixedOffset::east_opt(JST_OFFSET_SECS)
        {
            termination.push_str(&format!(
                "有効期限: {}",
                expires.with_timezone(&jst).format("%Y-%m-%d %H:%M (JST)")
            ));
        }
        let purpose_text = if purpose.description.ja.trim().is_empty() {
            purpose.title.ja.clone()
        } else {
            purpose.description.ja.clone()
        };

        Ok(Self {
            version: KANTARA_VERSION.to_owned(),
            jurisdiction: "JP".to_owned(),
            consent_timestamp: consent.granted_at.timestamp(),
            collection_method: consent.given_via.as_str().to_owned(),
            consent_receipt_id: Uuid::new_v4().to_string(),
            language: "ja".to_owned(),
            pii_principal_id: consent.resident.to_string(),
            pii_controllers: vec![PiiController::new(&service.name.ja, controller)],
            policy_url: policy_url.to_owned(),
            services: vec![ReceiptService {
                service: service.name.ja.clone(),
                purposes: vec![ReceiptPurpose {
                    purpose: purpose_text,
                    purpose_category: vec![purpose.title.ja.clone()],
                    consent_type: "EXPLICIT".to_owned(),
                    pii_category: entries.iter().map(|c| c.name.ja.clone()).collect(),
                    primary_purpose: true,
                    termination,
                    third_party_disclosure: false,
                    third_party_name: None,
                }],
            }],
            sensitive: !spi_cat.is_empty(),
            spi_cat,
            iss: issuer.to_owned(),
            iat: issued_at.timestamp(),
            consent_id: consent.id,
            service_id: service.id.clone(),
            purpose_id: purpose.id.clone(),
            purpose_version: purpose.version,
            categories: consent.categories.iter().cloned().collect(),
            legal_basis: consent.legal_basis,
            expires: consent.expires_at.map(|e| e.timestamp()),
        })
    }
}

/// Signs a receipt with the hub's key.
pub fn sign_receipt(key: &SigningKey, receipt: &ConsentReceipt) -> Result<String, SignError> {
    if receipt.version != KANTARA_VERSION {
        return Err(SignError::InvalidClaims(
            "the receipt version is not KI-CR-v1.1.0",
        ));
    }
    jws::sign(key, RECEIPT_TYP, receipt)
}

/// Checks a receipt against the hub's published keys and returns its claims.
pub fn verify_receipt(token: &str, jwks: &Jwks) -> Result<ConsentReceipt, ReceiptError> {
    let receipt: ConsentReceipt = jws::verify(token, jwks, RECEIPT_TYP)?;
    if receipt.version != KANTARA_VERSION {
        return Err(ReceiptError::UnsupportedVersion(jws::shorten(
            &receipt.version,
        )));
    }
    Ok(receipt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use renkei_domain::{
        Actor, ConsentChannel, LocalizedText, PurposeRef, ResidentId, ServiceStatus,
    };

    fn service() -> Service {
        Service {
            id: ServiceId::new("health-advice").unwrap(),
            name: LocalizedText::new("けんこう相談", "Health advice"),
            sector: "health".into(),
            hpke_public_key: "AAAA".into(),
            webhook_url: None,
            status: ServiceStatus::Approved,
        }
    }

    fn purpose() -> Purpose {
        Purpose {
            service: ServiceId::new("health-advice").unwrap(),
            id: PurposeId::new("advice").unwrap(),
            version: 2,
            title: LocalizedText::new("健康アドバイス", "Health advice"),
            description: LocalizedText::new("健診結果から助言します", "Advice from checkups"),
            categories: [CategoryId::new("health.checkup").unwrap()].into(),
            retention_days: 365,
            legal_basis: LegalBasis::Consent,
            emergency_only: false,
            location: None,
        }
    }

    fn vocabulary() -> Vec<DataCategory> {
        vec![
            DataCategory {
                id: CategoryId::new("health.checkup").unwrap(),
                name: LocalizedText::new("健診結果", "Checkup results"),
                special_care: true,
                location: false,
            },
            DataCategory {
                id: CategoryId::new("payment.history").unwrap(),
                name: LocalizedText::new("決済履歴", "Payment history"),
                special_care: false,
                location: false,
            },
        ]
    }

    fn consent() -> Consent {
        let at = Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap();
        Consent {
            id: ConsentId::from_uuid(Uuid::from_u128(7)),
            resident: ResidentId::from_uuid(Uuid::from_u128(9)),
            purpose: PurposeRef {
                service: ServiceId::new("health-advice").unwrap(),
                purpose: PurposeId::new("advice").unwrap(),
                version: 2,
            },
            categories: [
                CategoryId::new("health.checkup").unwrap(),
                CategoryId::new("payment.history").unwrap(),
            ]
            .into(),
            legal_basis: LegalBasis::Consent,
            granted_at: at,
            expires_at: Some(at + chrono::TimeDelta::days(365)),
            given_via: ConsentChannel::Portal,
            given_by: Actor::Resident,
            form_reference: None,
            revoked_at: None,
        }
    }

    fn build(consent: &Consent, purpose: &Purpose) -> Result<ConsentReceipt, ReceiptError> {
        let service = service();
        let vocabulary = vocabulary();
        ConsentReceipt::build(&ReceiptInput {
            issuer: "https://hub.example.jp",
            policy_url: "https://health.example.jp/privacy",
            consent,
            service: &service,
            purpose,
            controller: None,
            vocabulary: &vocabulary,
            issued_at: consent.granted_at,
        })
    }

    #[test]
    fn the_receipt_uses_the_kantara_field_names() {
        let receipt = build(&consent(), &purpose()).unwrap();
        let json = serde_json::to_value(&receipt).unwrap();
        for field in [
            "version",
            "jurisdiction",
            "consentTimestamp",
            "collectionMethod",
            "consentReceiptID",
            "language",
            "piiPrincipalId",
            "piiControllers",
            "policyUrl",
            "services",
            "sensitive",
            "spiCat",
        ] {
            assert!(json.get(field).is_some(), "missing {field}: {json}");
        }
        assert_eq!(json["version"], "KI-CR-v1.1.0");
        assert_eq!(json["jurisdiction"], "JP");
        assert_eq!(json["language"], "ja");
        assert_eq!(json["piiControllers"][0]["piiController"], "けんこう相談");
        let purpose = &json["services"][0]["purposes"][0];
        assert_eq!(purpose["consentType"], "EXPLICIT");
        assert_eq!(purpose["primaryPurpose"], true);
        assert_eq!(purpose["thirdPartyDisclosure"], false);
        assert_eq!(
            purpose["piiCategory"],
            serde_json::json!(["健診結果", "決済履歴"])
        );
        assert!(
            purpose["termination"]
                .as_str()
                .unwrap()
                .contains("2027-04-01 09:00 (JST)")
        );
    }

    #[test]
    fn special_care_categories_make_the_receipt_sensitive() {
        let receipt = build(&consent(), &purpose()).unwrap();
        assert!(receipt.sensitive);
        assert_eq!(receipt.spi_cat, vec!["健診結果".to_owned()]);

        let mut only_payments = consent();
        only_payments.categories = [CategoryId::new("payment.history").unwrap()].into();
        let receipt = build(&only_payments, &purpose()).unwrap();
        assert!(!receipt.sensitive);
        assert!(receipt.spi_cat.is_empty());
    }

    #[test]
    fn a_receipt_for_another_purpose_version_is_refused() {
        let mut older = purpose();
        older.version = 1;
        assert!(matches!(
            build(&consent(), &older),
            Err(ReceiptError::Inconsistent(_))
        ));
    }

    #[test]
    fn a_category_missing_from_the_vocabulary_is_named() {
        let mut c = consent();
        c.categories
            .insert(CategoryId::new("school.grades").unwrap());
        assert_eq!(
            build(&c, &purpose()).unwrap_err().to_string(),
            "data category `school.grades` is missing from the vocabulary given"
        );
    }

    #[test]
    fn a_signed_receipt_verifies_with_the_published_keys() {
        let key = SigningKey::generate().unwrap();
        let receipt = build(&consent(), &purpose()).unwrap();
        let token = sign_receipt(&key, &receipt).unwrap();
        let back = verify_receipt(&token, &Jwks::from_signing_keys([&key])).unwrap();
        assert_eq!(back, receipt);
    }
}
