//! The catalogue the city keeps: data categories, services and their purposes, and locators
//! (where a resident's data lives — never the data itself). Providers are in
//! [`crate::provider`].

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::ids::{CategoryId, ProviderId, PurposeId, ResidentId, ServiceId};
use crate::location::LocationUse;

/// Text shown to people, in Japanese (the default) and English.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalizedText {
    pub ja: String,
    pub en: String,
}

impl LocalizedText {
    pub fn new(ja: impl Into<String>, en: impl Into<String>) -> Self {
        Self {
            ja: ja.into(),
            en: en.into(),
        }
    }
}

/// An entry of the data-category vocabulary (データ項目).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataCategory {
    pub id: CategoryId,
    pub name: LocalizedText,
    /// 要配慮個人情報 (APPI art. 2(3)): medical history, disability and the like. Such data
    /// needs explicit opt-in consent; opt-out provision to third parties is forbidden.
    pub special_care: bool,
    /// The category holds a location (a point or a trace, see [`crate::location`]):
    /// released only at the precision the purpose declared, coarsened by the provider.
    #[serde(default)]
    pub location: bool,
}

/// Whether the city lets a service ask for data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceStatus {
    /// Registered, waiting for an operator's review.
    Pending,
    Approved,
    /// Stopped by an operator: every request is denied at once.
    Suspended,
}

impl ServiceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Suspended => "suspended",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "approved" => Some(Self::Approved),
            "suspended" => Some(Self::Suspended),
            _ => None,
        }
    }
}

/// A registered app that consumes resident data (サービス事業者).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub id: ServiceId,
    pub name: LocalizedText,
    /// Services of one sector share pairwise subjects; different sectors never do.
    pub sector: String,
    /// The X25519 public key (base64url, 32 bytes) providers encrypt payloads to (HPKE).
    /// Kept as registered: a row from before registration checked keys may hold anything,
    /// and [`crate::decide`] denies such a service's requests (`service-key-invalid`).
    pub hpke_public_key: String,
    /// Where consent events are sent (signed Security Event Tokens).
    pub webhook_url: Option<String>,
    pub status: ServiceStatus,
}

impl Service {
    /// Whether the service's key has the shape grants carry (see [`is_x25519_public_key`]).
    pub fn has_well_formed_key(&self) -> bool {
        is_x25519_public_key(&self.hpke_public_key)
    }
}

/// Whether `b64` is an X25519 public key as the API documents it: 32 bytes in base64url
/// without padding. (Whether the point is of small order is for the HPKE code to say.)
pub fn is_x25519_public_key(b64: &str) -> bool {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(b64)
        .is_ok_and(|k| k.len() == 32)
}

/// The legal ground a purpose relies on (APPI art. 27(1) and its exceptions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegalBasis {
    /// 本人の同意: the resident opted in.
    Consent,
    /// 法令に基づく場合.
    Law,
    /// 人の生命、身体又は財産の保護のために必要がある場合 (emergencies).
    VitalInterest,
    /// 公衆衛生の向上.
    PublicHealth,
}

impl LegalBasis {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Consent => "consent",
            Self::Law => "law",
            Self::VitalInterest => "vital_interest",
            Self::PublicHealth => "public_health",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "consent" => Some(Self::Consent),
            "law" => Some(Self::Law),
            "vital_interest" => Some(Self::VitalInterest),
            "public_health" => Some(Self::PublicHealth),
            _ => None,
        }
    }
}

/// Names one version of one purpose of one service.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PurposeRef {
    pub service: ServiceId,
    pub purpose: PurposeId,
    pub version: u32,
}

/// A purpose (利用目的) a service declared. Versions are immutable: any change to what the
/// resident is asked makes a new version ([`Purpose::revise`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purpose {
    pub service: ServiceId,
    pub id: PurposeId,
    pub version: u32,
    pub title: LocalizedText,
    pub description: LocalizedText,
    pub categories: BTreeSet<CategoryId>,
    /// How long the service keeps what it receives.
    pub retention_days: u32,
    pub legal_basis: LegalBasis,
    /// Applies only while a declared emergency is in force (幸田町's dual mode: "share my
    /// support needs with the 自主防災組織 only in a disaster"); in normal times its requests
    /// are denied `not-in-emergency`, consent or not.
    #[serde(default)]
    pub emergency_only: bool,
    /// The precision of location data it needs and how long the service may keep it;
    /// `None`: it declared none, and location categories go to it at the coarsest
    /// ([`crate::location::grant_precision`]).
    #[serde(default)]
    pub location: Option<LocationUse>,
}

impl Purpose {
    pub fn reference(&self) -> PurposeRef {
        PurposeRef {
            service: self.service.clone(),
            purpose: self.id.clone(),
            version: self.version,
        }
    }

    /// Returns the next version if anything the resident is asked about changed, or `None`
    /// when the revision is identical (so re-publishing a purpose never voids consents).
    #[expect(
        clippy::too_many_arguments,
        reason = "each is one declared field of the purpose"
    )]
    pub fn revise(
        &self,
        title: LocalizedText,
        description: LocalizedText,
        categories: BTreeSet<CategoryId>,
        retention_days: u32,
        legal_basis: LegalBasis,
        emergency_only: bool,
        location: Option<LocationUse>,
    ) -> Option<Purpose> {
        let next = Purpose {
            service: self.service.clone(),
            id: self.id.clone(),
            version: self.version.saturating_add(1),
            title,
            description,
            categories,
            retention_days,
            legal_basis,
            emergency_only,
            location,
        };
        let unchanged = next.title == self.title
            && next.description == self.description
            && next.categories == self.categories
            && next.retention_days == self.retention_days
            && next.legal_basis == self.legal_basis
            && next.emergency_only == self.emergency_only
            && next.location == self.location;
        (!unchanged).then_some(next)
    }
}

/// Where one category of one resident's data lives: the provider and the resident's
/// reference there. The hub keeps this, never the data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Locator {
    pub resident: ResidentId,
    pub category: CategoryId,
    pub provider: ProviderId,
    /// The provider's own key for the resident (e.g. a patient number).
    pub reference: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn purpose() -> Purpose {
        Purpose {
            service: ServiceId::new("health-advice").unwrap(),
            id: PurposeId::new("advice").unwrap(),
            version: 1,
            title: LocalizedText::new("健康アドバイス", "Health advice"),
            description: LocalizedText::new("説明", "Description"),
            categories: [CategoryId::new("health.checkup").unwrap()].into(),
            retention_days: 365,
            legal_basis: LegalBasis::Consent,
            emergency_only: false,
            location: None,
        }
    }

    #[test]
    fn revising_a_purpose_with_new_categories_makes_a_new_version() {
        let p = purpose();
        let mut cats = p.categories.clone();
        cats.insert(CategoryId::new("payment.history").unwrap());
        let next = p
            .revise(
                p.title.clone(),
                p.description.clone(),
                cats,
                365,
                LegalBasis::Consent,
                false,
                None,
            )
            .unwrap();
        assert_eq!(next.version, 2);
    }

    #[test]
    fn republishing_an_identical_purpose_keeps_its_version() {
        let p = purpose();
        assert!(
            p.revise(
                p.title.clone(),
                p.description.clone(),
                p.categories.clone(),
                365,
                LegalBasis::Consent,
                false,
                None,
            )
            .is_none()
        );
    }

    #[test]
    fn turning_a_purpose_into_an_emergency_only_one_makes_a_new_version() {
        let p = purpose();
        let next = p.revise(
            p.title.clone(),
            p.description.clone(),
            p.categories.clone(),
            365,
            LegalBasis::Consent,
            true,
            None,
        );
        assert_eq!(next.map(|n| (n.version, n.emergency_only)), Some((2, true)));
    }

    #[test]
    fn changing_only_the_text_still_makes_a_new_version() {
        let p = purpose();
        let t = LocalizedText::new("健康助言", "Health advice");
        assert_eq!(
            p.revise(
                t,
                p.description.clone(),
                p.categories.clone(),
                365,
                LegalBasis::Consent,
                false,
                None,
            )
            .map(|n| n.version),
            Some(2)
        );
    }
}
