//! The operator's approval checklist: the risks a service's declared purposes carry, which an
//! operator must each confirm before the service is approved (審査チェックリスト).
//!
//! [`review`] looks at every purpose against the category vocabulary and raises a
//! [`RiskFlag`] for:
//!
//! - **Special-care data** (要配慮個人情報, APPI art. 2(3)): any category with
//!   [`DataCategory::special_care`]. Such data needs explicit opt-in consent and may never be
//!   provided to third parties by opt-out.
//! - **Location data for advertising or marketing**: a location category (see
//!   [`is_location_category`]) in a purpose whose declared text reads as advertising,
//!   marketing, promotion or targeting (see [`is_marketing_purpose`]). Continuous location
//!   reveals home, work, school and visits to hospitals or places of worship; for ad targeting
//!   a clear, explicit consent is needed (seed 003, 位置情報とプライバシー). Purposes carry no
//!   machine-readable "use" field yet, so the declared id, title and description (both
//!   languages) are matched against a keyword list; a false alarm costs the operator one tick,
//!   a miss costs a resident's privacy, so the list errs wide.
//! - **Retention longer than the purpose needs**: `retention_days` above
//!   [`retention_limit_days`] for the purpose's legal basis: 365 days under consent (consents
//!   last a year by default, and data kept past the consent it came under needs a reason) and
//!   under public health; 90 days under vital interest (emergency use is short-lived); 1,825
//!   days (five years, the common statutory period such as medical records) under law.
//! - **Location data kept long**: a location category (declared, or by the words above) in a
//!   purpose whose service may keep it longer than its precision justifies
//!   ([`LocationPrecision::retention_limit_days`]: a week exact, a month at 100 m, a year
//!   coarser; a purpose that declared no precision gets the coarsest).
//! - **A category outside the vocabulary**: the operator cannot judge what it is.
//! - **A sector shared with another service** ([`shared_sector`]): pairwise subjects are an
//!   HMAC of sector and resident, so services of one sector know each resident by the same
//!   subject and can join their records (名寄せ). Sharing must be a decision the operator
//!   takes knowing which services it links, never a side effect of a registration form.
//!
//! Each flag has a stable [`RiskFlag::key`] (`<kind>:<purpose id>`, or `shared-sector:<sector>`)
//! that the console's checkbox carries; [`unacknowledged`] says which flags still lack a
//! tick, and approval is refused while any does.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::catalog::{DataCategory, LegalBasis, Purpose, Service};
use crate::ids::{CategoryId, PurposeId, ServiceId};
use crate::location::{LocationPrecision, grant_precision};

/// One risk an operator must confirm before approving a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RiskFlag {
    /// The purpose receives special-care categories (要配慮個人情報).
    SpecialCare {
        purpose: PurposeId,
        categories: BTreeSet<CategoryId>,
    },
    /// The purpose sends location data to advertising or marketing.
    LocationForMarketing {
        purpose: PurposeId,
        categories: BTreeSet<CategoryId>,
        /// The words in the purpose's text that read as advertising or marketing.
        matched: BTreeSet<String>,
    },
    /// The service may keep location data longer than its precision justifies
    /// ([`LocationPrecision::retention_limit_days`]).
    LocationRetention {
        purpose: PurposeId,
        categories: BTreeSet<CategoryId>,
        precision: LocationPrecision,
        retention_days: u32,
        limit_days: u32,
    },
    /// The service keeps what it receives longer than the purpose's legal basis needs.
    LongRetention {
        purpose: PurposeId,
        retention_days: u32,
        limit_days: u32,
        legal_basis: LegalBasis,
    },
    /// The purpose names categories the vocabulary does not have.
    UnknownCategory {
        purpose: PurposeId,
        categories: BTreeSet<CategoryId>,
    },
    /// The service's sector is already another service's: they would share pairwise
    /// subjects (名寄せ).
    SharedSector {
        sector: String,
        /// The other services of that sector, whatever their status.
        services: BTreeSet<ServiceId>,
    },
}

impl RiskFlag {
    /// The flag's kind, stable: `special-care`, `location-marketing`, `location-retention`,
    /// `long-retention`,
    /// `unknown-category`, `shared-sector`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::SpecialCare { .. } => "special-care",
            Self::LocationForMarketing { .. } => "location-marketing",
            Self::LocationRetention { .. } => "location-retention",
            Self::LongRetention { .. } => "long-retention",
            Self::UnknownCategory { .. } => "unknown-category",
            Self::SharedSector { .. } => "shared-sector",
        }
    }

    /// The purpose the flag is about; none for a flag about the whole service.
    pub fn purpose(&self) -> Option<&PurposeId> {
        match self {
            Self::SpecialCare { purpose, .. }
            | Self::LocationForMarketing { purpose, .. }
            | Self::LocationRetention { purpose, .. }
            | Self::LongRetention { purpose, .. }
            | Self::UnknownCategory { purpose, .. } => Some(purpose),
            Self::SharedSector { .. } => None,
        }
    }

    /// What an operator's acknowledgement names, unique per review: `<kind>:<purpose id>`,
    /// or `shared-sector:<sector>`.
    pub fn key(&self) -> String {
        match self {
            Self::SharedSector { sector, .. } => format!("{}:{sector}", self.kind()),
            _ => format!(
                "{}:{}",
                self.kind(),
                self.purpose().map(PurposeId::as_str).unwrap_or_default()
            ),
        }
    }
}

/// The flag for a service whose sector other services already have, naming them; `None`
/// when its sector is its own. `services` may include `service` itself (it is skipped).
pub fn shared_sector(service: &Service, services: &[Service]) -> Option<RiskFlag> {
    let others: BTreeSet<ServiceId> = services
        .iter()
        .filter(|s| s.id != service.id && s.sector == service.sector)
        .map(|s| s.id.clone())
        .collect();
    (!others.is_empty()).then(|| RiskFlag::SharedSector {
        sector: service.sector.clone(),
        services: others,
    })
}

/// The most days each legal basis justifies keeping received data (see the module docs).
pub fn retention_limit_days(basis: LegalBasis) -> u32 {
    match basis {
        LegalBasis::Consent | LegalBasis::PublicHealth => 365,
        LegalBasis::VitalInterest => 90,
        LegalBasis::Law => 5 * 365,
    }
}

/// Words that make a category location data, matched against the dot-separated segments of
/// its id (`location.gps`, `mobility.location`, `geo.trace`).
const LOCATION_SEGMENTS: &[&str] = &["location", "geo", "gps", "geolocation", "position"];
/// Words in a category's name that make it location data.
const LOCATION_NAMES: &[&str] = &["位置情報", "位置データ", "移動履歴", "location", "gps"];

/// Whether a category is location data: declared so ([`DataCategory::location`]), or, for
/// a category that did not say, an id segment from `LOCATION_SEGMENTS` or a name containing
/// 位置情報, 位置データ, 移動履歴, "location" or "GPS". A postal address is not location data
/// in this sense (it is where one lives, not where one goes).
pub fn is_location_category(category: &CategoryId, known: Option<&DataCategory>) -> bool {
    if known.is_some_and(|c| c.location) {
        return true;
    }
    let by_id = category
        .as_str()
        .split(['.', '_', '-'])
        .any(|segment| LOCATION_SEGMENTS.contains(&segment));
    let by_name = known.is_some_and(|c| {
        let ja = &c.name.ja;
        let en = c.name.en.to_lowercase();
        LOCATION_NAMES
            .iter()
            .any(|word| ja.contains(word) || en.contains(word))
    });
    by_id || by_name
}

/// Words that make a purpose advertising or marketing, in Japanese and English (lower case).
const MARKETING_WORDS: &[&str] = &[
    "広告",
    "宣伝",
    "販促",
    "販売促進",
    "マーケティング",
    "プロモーション",
    "ターゲティング",
    "クーポン配信",
    "レコメンド",
    "advertis",
    "marketing",
    "promotion",
    "promotional",
    "targeting",
    "targeted",
    "ads",
    "coupon",
    "recommendation",
];

/// The marketing words found in a purpose's id, title and description (both languages):
/// empty when the purpose does not read as advertising or marketing. English words match at
/// the start of a word ("ads" matches "ads" but not "roads").
pub fn is_marketing_purpose(purpose: &Purpose) -> BTreeSet<String> {
    let text = format!(
        "{} {} {} {} {}",
        purpose.id.as_str().replace(['-', '_', '.'], " "),
        purpose.title.ja,
        purpose.title.en,
        purpose.description.ja,
        purpose.description.en
    )
    .to_lowercase();
    MARKETING_WORDS
        .iter()
        .filter(|word| {
            if word.is_ascii() {
                text.match_indices(*word).any(|(at, _)| {
                    text[..at]
                        .chars()
                        .next_back()
                        .is_none_or(|c| !c.is_alphanumeric())
                })
            } else {
                text.contains(*word)
            }
        })
        .map(|w| (*w).to_owned())
        .collect()
}

/// Every risk flag of a service's purposes, in purpose order then kind order.
pub fn review(purposes: &[Purpose], vocabulary: &[DataCategory]) -> Vec<RiskFlag> {
    let mut flags = Vec::new();
    for purpose in purposes {
        let lookup = |id: &CategoryId| vocabulary.iter().find(|c| &c.id == id);
        let special: BTreeSet<CategoryId> = purpose
            .categories
            .iter()
            .filter(|id| lookup(id).is_some_and(|c| c.special_care))
            .cloned()
            .collect();
        if !special.is_empty() {
            flags.push(RiskFlag::SpecialCare {
                purpose: purpose.id.clone(),
                categories: special,
            });
        }
        let location: BTreeSet<CategoryId> = purpose
            .categories
            .iter()
            .filter(|id| is_location_category(id, lookup(id)))
            .cloned()
            .collect();
        if !location.is_empty() {
            let matched = is_marketing_purpose(purpose);
            if !matched.is_empty() {
                flags.push(RiskFlag::LocationForMarketing {
                    purpose: purpose.id.clone(),
                    categories: location.clone(),
                    matched,
                });
            }
        }
        let precision = grant_precision(purpose.location.as_ref());
        let kept = purpose
            .location
            .map_or(purpose.retention_days, |l| l.retention_days);
        if !location.is_empty() && kept > precision.retention_limit_days() {
            flags.push(RiskFlag::LocationRetention {
                purpose: purpose.id.clone(),
                categories: location,
                precision,
                retention_days: kept,
                limit_days: precision.retention_limit_days(),
            });
        }
        let limit = retention_limit_days(purpose.legal_basis);
        if purpose.retention_days > limit {
            flags.push(RiskFlag::LongRetention {
                purpose: purpose.id.clone(),
                retention_days: purpose.retention_days,
                limit_days: limit,
                legal_basis: purpose.legal_basis,
            });
        }
        let unknown: BTreeSet<CategoryId> = purpose
            .categories
            .iter()
            .filter(|id| lookup(id).is_none())
            .cloned()
            .collect();
        if !unknown.is_empty() {
            flags.push(RiskFlag::UnknownCategory {
                purpose: purpose.id.clone(),
                categories: unknown,
            });
        }
    }
    flags
}

/// The flags among `flags` whose key is not in `acknowledged`: approval waits for none.
pub fn unacknowledged<'a>(
    flags: &'a [RiskFlag],
    acknowledged: &BTreeSet<String>,
) -> Vec<&'a RiskFlag> {
    flags
        .iter()
        .filter(|f| !acknowledged.contains(&f.key()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::LocalizedText;
    use crate::ids::ServiceId;

    fn category(id: &str, ja: &str, en: &str, special_care: bool) -> DataCategory {
        DataCategory {
            id: CategoryId::new(id).unwrap(),
            name: LocalizedText::new(ja, en),
            special_care,
            location: false,
        }
    }

    fn vocabulary() -> Vec<DataCategory> {
        vec![
            category("resident.address", "住所", "Address", false),
            category(
                "health.checkup",
                "健康診断結果",
                "Health check results",
                true,
            ),
            category("payment.history", "決済履歴", "Payment history", false),
            category("mobility.trace", "移動履歴", "Movement history", false),
            category("location.gps", "GPS位置", "GPS position", false),
        ]
    }

    fn purpose(id: &str, title_en: &str, categories: &[&str], days: u32) -> Purpose {
        Purpose {
            service: ServiceId::new("svc").unwrap(),
            id: PurposeId::new(id).unwrap(),
            version: 1,
            title: LocalizedText::new("目的", title_en),
            description: LocalizedText::new("説明", "Description"),
            categories: categories
                .iter()
                .map(|c| CategoryId::new(*c).unwrap())
                .collect(),
            retention_days: days,
            legal_basis: LegalBasis::Consent,
            emergency_only: false,
            location: None,
        }
    }

    fn keys(flags: &[RiskFlag]) -> Vec<String> {
        flags.iter().map(RiskFlag::key).collect()
    }

    #[test]
    fn a_purpose_without_risks_raises_no_flag() {
        let p = purpose("bus-pickup", "Pick-up", &["resident.address"], 30);
        assert!(review(&[p], &vocabulary()).is_empty());
    }

    #[test]
    fn special_care_categories_are_flagged_with_the_categories_named() {
        let p = purpose(
            "advice",
            "Advice",
            &["health.checkup", "payment.history"],
            365,
        );
        let flags = review(&[p], &vocabulary());
        assert_eq!(keys(&flags), ["special-care:advice"]);
        let RiskFlag::SpecialCare { categories, .. } = &flags[0] else {
            panic!("{flags:?}")
        };
        assert_eq!(
            categories
                .iter()
                .map(CategoryId::as_str)
                .collect::<Vec<_>>(),
            ["health.checkup"]
        );
    }

    #[test]
    fn location_data_for_advertising_is_flagged() {
        let p = purpose(
            "shop-offers",
            "Targeted ads near you",
            &["location.gps"],
            30,
        );
        let flags = review(&[p], &vocabulary());
        assert_eq!(keys(&flags), ["location-marketing:shop-offers"]);
    }

    #[test]
    fn location_data_found_by_its_japanese_name_and_a_japanese_marketing_purpose_is_flagged() {
        let mut p = purpose("offers", "Offers", &["mobility.trace"], 30);
        p.description = LocalizedText::new("移動履歴に応じて周辺施設の広告を配信します。", "");
        assert_eq!(
            keys(&review(&[p], &vocabulary())),
            ["location-marketing:offers"]
        );
    }

    #[test]
    fn location_data_for_disaster_support_is_not_a_marketing_risk() {
        let p = purpose("evacuation", "Evacuation support", &["location.gps"], 30);
        assert!(review(&[p], &vocabulary()).is_empty());
    }

    #[test]
    fn advertising_without_location_data_is_not_a_location_risk() {
        let p = purpose("ads", "Advertising", &["payment.history"], 30);
        assert!(review(&[p], &vocabulary()).is_empty());
    }

    #[test]
    fn an_address_is_not_location_data() {
        let address = CategoryId::new("resident.address").unwrap();
        assert!(!is_location_category(&address, vocabulary().first()));
    }

    #[test]
    fn marketing_words_match_at_word_starts_only() {
        let p = purpose("roads", "Roads and bus stops", &[], 30);
        assert!(is_marketing_purpose(&p).is_empty());
        let p = purpose("x", "Personalised ads", &[], 30);
        assert!(is_marketing_purpose(&p).contains("ads"));
    }

    #[test]
    fn retention_over_a_year_under_consent_is_flagged_and_a_year_is_not() {
        let ok = purpose("a", "A", &["payment.history"], 365);
        let long = purpose("b", "B", &["payment.history"], 366);
        let flags = review(&[ok, long], &vocabulary());
        assert_eq!(keys(&flags), ["long-retention:b"]);
        assert!(matches!(
            flags[0],
            RiskFlag::LongRetention {
                retention_days: 366,
                limit_days: 365,
                ..
            }
        ));
    }

    #[test]
    fn the_retention_limit_depends_on_the_legal_basis() {
        let mut p = purpose("a", "A", &["payment.history"], 1000);
        p.legal_basis = LegalBasis::Law;
        assert!(review(std::slice::from_ref(&p), &vocabulary()).is_empty());
        p.legal_basis = LegalBasis::VitalInterest;
        p.retention_days = 91;
        assert_eq!(keys(&review(&[p], &vocabulary())), ["long-retention:a"]);
    }

    #[test]
    fn categories_outside_the_vocabulary_are_flagged() {
        let p = purpose("a", "A", &["mystery.data"], 30);
        assert_eq!(keys(&review(&[p], &vocabulary())), ["unknown-category:a"]);
    }

    #[test]
    fn several_risks_of_several_purposes_are_all_listed() {
        let a = purpose("a", "Ads", &["health.checkup", "location.gps"], 400);
        let b = purpose("b", "B", &["health.checkup"], 30);
        assert_eq!(
            keys(&review(&[a, b], &vocabulary())),
            [
                "special-care:a",
                "location-marketing:a",
                "location-retention:a",
                "long-retention:a",
                "special-care:b"
            ]
        );
    }

    #[test]
    fn approval_waits_until_every_flag_is_acknowledged() {
        let p = purpose("a", "Ads", &["health.checkup", "location.gps"], 30);
        let flags = review(&[p], &vocabulary());
        let mut acks: BTreeSet<String> = ["special-care:a".to_owned()].into();
        assert_eq!(unacknowledged(&flags, &acks).len(), 1);
        acks.insert("location-marketing:a".into());
        assert!(unacknowledged(&flags, &acks).is_empty());
    }

    fn service(id: &str, sector: &str) -> Service {
        Service {
            id: ServiceId::new(id).unwrap(),
            name: LocalizedText::new(id, id),
            sector: sector.into(),
            hpke_public_key: "A".repeat(43),
            webhook_url: None,
            status: crate::catalog::ServiceStatus::Approved,
        }
    }

    #[test]
    fn a_sector_shared_with_other_services_is_flagged_naming_them() {
        let newcomer = service("health-copy", "health");
        let all = [
            service("health-advice", "health"),
            service("checkup-reminder", "health"),
            service("town-mobility", "mobility"),
            newcomer.clone(),
        ];
        let flag = shared_sector(&newcomer, &all).expect("a shared sector is flagged");
        assert_eq!(flag.key(), "shared-sector:health");
        assert_eq!(flag.purpose(), None);
        let RiskFlag::SharedSector { services, .. } = &flag else {
            panic!("{flag:?}")
        };
        assert_eq!(
            services.iter().map(ServiceId::as_str).collect::<Vec<_>>(),
            ["checkup-reminder", "health-advice"]
        );
    }

    #[test]
    fn a_sector_of_its_own_raises_no_flag() {
        let alone = service("town-walk", "town-walk");
        let all = [service("health-advice", "health"), alone.clone()];
        assert_eq!(shared_sector(&alone, &all), None);
    }

    #[test]
    fn an_acknowledgement_of_another_purpose_does_not_count() {
        let p = purpose("a", "A", &["health.checkup"], 30);
        let flags = review(&[p], &vocabulary());
        let acks: BTreeSet<String> = ["special-care:b".to_owned()].into();
        assert_eq!(unacknowledged(&flags, &acks).len(), 1);
    }

    #[test]
    fn location_kept_longer_than_its_precision_justifies_is_flagged() {
        let mut vocabulary = vocabulary();
        vocabulary.push(DataCategory {
            id: CategoryId::new("bus.stop").unwrap(),
            name: LocalizedText::new("乗車地点", "Boarding point"),
            special_care: false,
            location: true,
        });
        let mut exact = purpose("rides", "Rides", &["bus.stop"], 30);
        exact.location = Some(crate::LocationUse {
            precision: LocationPrecision::Exact,
            retention_days: 30,
        });
        let flags = review(&[exact.clone()], &vocabulary);
        assert!(
            flags.iter().any(|f| f.key() == "location-retention:rides"),
            "a declared location category, exact, kept a month: {flags:?}"
        );
        exact.location = Some(crate::LocationUse {
            precision: LocationPrecision::Mesh1km,
            retention_days: 30,
        });
        assert!(
            review(&[exact], &vocabulary).is_empty(),
            "a 1 km mesh kept a month"
        );
    }
}
