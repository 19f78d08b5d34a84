//! Area lists: a responder asks, under one declaration in force, for everyone in an area who
//! is on a list (e.g. the 避難行動要支援者名簿 entries in these mesh codes), not for one
//! resident at a time.
//!
//! The hub holds no addresses, so it cannot say who lives in an area: the grant carries the
//! area, and each provider, which holds the addresses, selects and seals the entries inside
//! it, naming each by the resident's code at that provider. [`decide_area_list`] is the rule
//! the request must pass, before any provider is asked and again in the transaction that
//! records one access record per resident released; it looks at no resident, since every
//! entry released rests on the same declaration.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Area, AreaCode, Declaration};
use crate::catalog::{Purpose, Service, ServiceStatus};
use crate::decision::DenialReason;
use crate::ids::{CategoryId, DeclarationId, PurposeId, RequestId, ServiceId};

/// The most entries one provider may release for one area request.
pub const MAX_AREA_ENTRIES: usize = 50_000;

/// What a responder asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AreaListRequest {
    pub id: RequestId,
    pub service: ServiceId,
    /// The responder's purpose: its record names it, as a data request's does.
    pub purpose: PurposeId,
    /// The declaration the release rests on.
    pub declaration: DeclarationId,
    pub categories: BTreeSet<CategoryId>,
    /// Where: every code must lie inside the declaration's area.
    pub area: Area,
}

/// What the deciding transaction read for an area request. Storage only reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AreaListFacts<'a> {
    /// Whether the service revoked the bearer token it asked with.
    pub token_revoked: bool,
    pub service: Option<&'a Service>,
    /// The *current* version of the requested purpose, if the service declared it.
    pub purpose: Option<&'a Purpose>,
    /// The declaration the request names, if it exists.
    pub declaration: Option<&'a Declaration>,
}

/// Decides an area request: `Ok` when it may be served under its declaration.
///
/// The first rule that fails is the reason, in this order: a revoked token; a service that
/// is not registered or not approved (`service-not-approved`); a service key that is not an
/// X25519 key; a purpose the service did not declare; categories the purpose does not
/// declare; then the declaration: one that does not exist or does not name the service
/// (`service-not-in-emergency`: a responder learns nothing more of a declaration that is not
/// for it), one not in force at `now` (pending, scheduled or over: `emergency-not-in-force`),
/// categories it does not release (`category-not-in-emergency`), codes outside its area
/// (`area-not-in-emergency`). No consent is looked at: an area list rests on the
/// declaration alone.
pub fn decide_area_list(
    request: &AreaListRequest,
    facts: AreaListFacts<'_>,
    now: DateTime<Utc>,
) -> Result<(), DenialReason> {
    use DenialReason as D;
    if facts.token_revoked {
        return Err(D::TokenRevoked);
    }
    let service = facts
        .service
        .filter(|s| s.status == ServiceStatus::Approved)
        .ok_or(D::ServiceNotApproved)?;
    if !service.has_well_formed_key() {
        return Err(D::ServiceKeyInvalid);
    }
    let purpose = facts.purpose.ok_or(D::UnknownPurpose)?;
    let undeclared: BTreeSet<CategoryId> = request
        .categories
        .difference(&purpose.categories)
        .cloned()
        .collect();
    if !undeclared.is_empty() {
        return Err(D::CategoryNotInPurpose {
            categories: undeclared,
        });
    }
    // INVARIANT: only a declaration naming this service, confirmed by a second operator,
    // within its window, releasing every category asked for, over an area holding every
    // code asked for, releases a list.
    let declaration = facts
        .declaration
        .filter(|d| d.id == request.declaration && d.services.contains(&request.service))
        .ok_or(D::ServiceNotInEmergency)?;
    if !declaration.in_force_at(now) {
        return Err(D::EmergencyNotInForce);
    }
    let unreleased: BTreeSet<CategoryId> = request
        .categories
        .difference(&declaration.categories)
        .cloned()
        .collect();
    if !unreleased.is_empty() {
        return Err(D::CategoryNotInEmergency {
            categories: unreleased,
        });
    }
    let outside: BTreeSet<AreaCode> = request
        .area
        .codes()
        .iter()
        .filter(|code| !declaration.area.covers(code))
        .cloned()
        .collect();
    if !outside.is_empty() {
        return Err(D::AreaNotInEmergency { codes: outside });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::catalog::{LegalBasis, LocalizedText};
    use crate::emergency::{DeclarationDraft, EmergencyLegalBasis};
    use crate::ids::OperatorId;

    fn t(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap() + TimeDelta::minutes(minutes)
    }

    fn cat(s: &str) -> CategoryId {
        CategoryId::new(s).unwrap()
    }

    fn service() -> Service {
        Service {
            id: ServiceId::new("fire-dept").unwrap(),
            name: LocalizedText {
                ja: "消防".into(),
                en: "Fire".into(),
            },
            sector: "fire".into(),
            hpke_public_key: "A".repeat(43),
            webhook_url: None,
            status: ServiceStatus::Approved,
        }
    }

    fn purpose() -> Purpose {
        Purpose {
            service: ServiceId::new("fire-dept").unwrap(),
            id: PurposeId::new("evacuation").unwrap(),
            version: 1,
            title: LocalizedText {
                ja: "避難支援".into(),
                en: "Evacuation".into(),
            },
            description: LocalizedText {
                ja: "d".into(),
                en: "d".into(),
            },
            categories: [cat("disaster.support"), cat("health.checkup")].into(),
            retention_days: 30,
            legal_basis: LegalBasis::Consent,
            emergency_only: false,
        }
    }

    fn declaration() -> Declaration {
        let draft = DeclarationDraft {
            reason: "大雨".into(),
            legal_basis: EmergencyLegalBasis::DisasterAct49_11,
            categories: [cat("disaster.support")].into(),
            services: [ServiceId::new("fire-dept").unwrap()].into(),
            area: Area::parse(["533945", "district:hikari-1"]).unwrap(),
            starts_at: t(0),
            ends_at: t(60),
        };
        let id = DeclarationId::from_uuid(uuid::Uuid::from_u128(7));
        Declaration::declare(id, draft, OperatorId::new("alice").unwrap(), t(0))
            .unwrap()
            .confirm(OperatorId::new("bob").unwrap(), t(1))
            .unwrap()
    }

    fn request(area: &[&str], categories: &[&str]) -> AreaListRequest {
        AreaListRequest {
            id: RequestId::from_uuid(uuid::Uuid::from_u128(1)),
            service: ServiceId::new("fire-dept").unwrap(),
            purpose: PurposeId::new("evacuation").unwrap(),
            declaration: DeclarationId::from_uuid(uuid::Uuid::from_u128(7)),
            categories: categories.iter().map(|c| cat(c)).collect(),
            area: Area::parse(area.iter().copied()).unwrap(),
        }
    }

    fn decide_at(
        request: &AreaListRequest,
        service: &Service,
        declaration: Option<&Declaration>,
        now: DateTime<Utc>,
    ) -> Result<(), DenialReason> {
        let purpose = purpose();
        let facts = AreaListFacts {
            token_revoked: false,
            service: Some(service),
            purpose: Some(&purpose),
            declaration,
        };
        decide_area_list(request, facts, now)
    }

    #[test]
    fn a_list_inside_the_declarations_scope_and_window_is_granted() {
        let d = declaration();
        let r = request(&["53394526", "district:hikari-1"], &["disaster.support"]);
        assert_eq!(decide_at(&r, &service(), Some(&d), t(5)), Ok(()));
    }

    #[test]
    fn outside_the_window_the_list_is_denied_emergency_not_in_force() {
        let d = declaration();
        let r = request(&["53394526"], &["disaster.support"]);
        let just_after = t(60);
        let denied = decide_at(&r, &service(), Some(&d), just_after).unwrap_err();
        assert_eq!(denied.code(), "emergency-not-in-force");
        let pending = Declaration {
            confirmed: None,
            ..d
        };
        let denied = decide_at(&r, &service(), Some(&pending), t(5)).unwrap_err();
        assert_eq!(denied.code(), "emergency-not-in-force");
    }

    #[test]
    fn another_service_or_an_unknown_declaration_is_denied_service_not_in_emergency() {
        let d = declaration();
        let r = AreaListRequest {
            service: ServiceId::new("other").unwrap(),
            ..request(&["53394526"], &["disaster.support"])
        };
        let other = Service {
            id: r.service.clone(),
            ..service()
        };
        let denied = decide_at(&r, &other, Some(&d), t(5)).unwrap_err();
        assert_eq!(denied.code(), "service-not-in-emergency");
        let r = request(&["53394526"], &["disaster.support"]);
        let denied = decide_at(&r, &service(), None, t(5)).unwrap_err();
        assert_eq!(denied.code(), "service-not-in-emergency");
    }

    #[test]
    fn a_category_the_declaration_does_not_release_is_denied_naming_it() {
        let d = declaration();
        let r = request(&["53394526"], &["disaster.support", "health.checkup"]);
        assert_eq!(
            decide_at(&r, &service(), Some(&d), t(5)),
            Err(DenialReason::CategoryNotInEmergency {
                categories: [cat("health.checkup")].into()
            })
        );
    }

    #[test]
    fn a_code_outside_the_declarations_area_is_denied_naming_it() {
        let d = declaration();
        // A wider mesh holding the declared one is outside it, as is another district.
        let r = request(
            &["5339", "53394526", "district:hikari-2"],
            &["disaster.support"],
        );
        let denied = decide_at(&r, &service(), Some(&d), t(5)).unwrap_err();
        assert_eq!(denied.code(), "area-not-in-emergency");
        assert_eq!(
            denied,
            DenialReason::AreaNotInEmergency {
                codes: [
                    "5339".parse().unwrap(),
                    "district:hikari-2".parse().unwrap()
                ]
                .into()
            }
        );
    }

    #[test]
    fn the_services_own_rules_come_before_the_declarations() {
        let d = declaration();
        let r = request(&["5339"], &["disaster.support"]);
        let suspended = Service {
            status: ServiceStatus::Suspended,
            ..service()
        };
        assert_eq!(
            decide_at(&r, &suspended, Some(&d), t(5)),
            Err(DenialReason::ServiceNotApproved)
        );
        let r = request(&["53394526"], &["tax.income"]);
        assert_eq!(
            decide_at(&r, &service(), Some(&d), t(5))
                .unwrap_err()
                .code(),
            "category-not-in-purpose"
        );
    }
}
