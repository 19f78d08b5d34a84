//! The consent check: may this service receive these categories of this resident for this
//! purpose now? A pure function, so it is fast, testable and the same on every replica.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog::{Purpose, Service, ServiceStatus};
use crate::consent::{ActiveConsent, Consent, ConsentState};
use crate::ids::{CategoryId, PurposeId, RequestId, ResidentId, ServiceId};

/// What a service asked for (the resident is resolved by the caller).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataRequest {
    pub id: RequestId,
    pub service: ServiceId,
    pub purpose: PurposeId,
    pub categories: BTreeSet<CategoryId>,
}

/// Why a request was refused. Stable codes: they are shown to residents and services.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum DenialReason {
    ServiceNotApproved,
    UnknownPurpose,
    UnknownSubject,
    /// The purpose does not declare these categories at all.
    CategoryNotInPurpose {
        categories: BTreeSet<CategoryId>,
    },
    NoConsent,
    ConsentRevoked,
    ConsentExpired,
    /// The resident consented to an older version of the purpose; the new one needs a new yes.
    PurposeChanged {
        consented_version: u32,
        current_version: u32,
    },
    /// The consent does not cover these categories.
    CategoryNotCovered {
        categories: BTreeSet<CategoryId>,
    },
    /// The service revoked the bearer token it asked with (RFC 7009).
    TokenRevoked,
    /// The service's registered HPKE key is not an X25519 public key: no provider could
    /// seal to it and no grant could carry it, so nothing is released.
    ServiceKeyInvalid,
}

impl DenialReason {
    /// The stable short code stored in access records and used in problem `type` URIs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::ServiceNotApproved => "service-not-approved",
            Self::UnknownPurpose => "unknown-purpose",
            Self::UnknownSubject => "unknown-subject",
            Self::CategoryNotInPurpose { .. } => "category-not-in-purpose",
            Self::NoConsent => "consent-missing",
            Self::ConsentRevoked => "consent-revoked",
            Self::ConsentExpired => "consent-expired",
            Self::PurposeChanged { .. } => "consent-wrong-purpose-version",
            Self::CategoryNotCovered { .. } => "category-not-covered",
            Self::TokenRevoked => "token-revoked",
            Self::ServiceKeyInvalid => "service-key-invalid",
        }
    }
}

/// The outcome of the consent check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Granted(ActiveConsent),
    Denied(DenialReason),
}

/// What storage holds about one data request, as the deciding transaction read it: every
/// fact the consent check rests on. Storage only reads them; [`decide`] alone judges them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecisionFacts<'a> {
    /// Whether the service revoked the bearer token it asked with (RFC 7009).
    pub token_revoked: bool,
    /// The requesting service, if it is registered (whatever its status).
    pub service: Option<&'a Service>,
    /// The resident the service's pairwise subject names, if it names one in the service's
    /// sector.
    pub resident: Option<ResidentId>,
    /// The *current* version of the requested purpose, if the service declared it.
    pub purpose: Option<&'a Purpose>,
    /// The resident's latest consent to that purpose of that service, whatever its state
    /// (see [`Consent::is_later_than`]).
    pub consent: Option<&'a Consent>,
}

/// Decides a data request from what storage read for it.
///
/// The first rule that fails is the reason, in this order: a revoked token; a service that
/// is not registered (`service-not-approved`); a subject that names no resident; a service
/// that is not approved; a service key that is not an X25519 key; a purpose the service did
/// not declare; categories the purpose does not declare; no consent; a consent to another
/// purpose version; a revoked, then an expired consent; categories the consent does not
/// cover. Only a request that passes every rule is granted.
pub fn decide(request: &DataRequest, facts: DecisionFacts<'_>, now: DateTime<Utc>) -> Decision {
    use DenialReason as D;
    // INVARIANT: a token the service revoked is refused before anything else is looked at,
    // whoever it names and whatever was consented.
    if facts.token_revoked {
        return Decision::Denied(D::TokenRevoked);
    }
    // An unregistered service learns nothing more than a suspended one would.
    let Some(service) = facts.service else {
        return Decision::Denied(D::ServiceNotApproved);
    };
    if facts.resident.is_none() {
        return Decision::Denied(D::UnknownSubject);
    }
    if service.status != ServiceStatus::Approved {
        return Decision::Denied(D::ServiceNotApproved);
    }
    // INVARIANT: a granted decision can always be served: whatever the hub needs from the
    // service to sign its grants is checked here, inside the deciding transaction, so a
    // request the hub cannot carry out is recorded as denied, never as granted.
    if !service.has_well_formed_key() {
        return Decision::Denied(D::ServiceKeyInvalid);
    }
    let Some(purpose) = facts.purpose else {
        return Decision::Denied(D::UnknownPurpose);
    };
    let undeclared = difference(&request.categories, &purpose.categories);
    if !undeclared.is_empty() {
        return Decision::Denied(D::CategoryNotInPurpose {
            categories: undeclared,
        });
    }
    let Some(consent) = facts.consent else {
        return Decision::Denied(D::NoConsent);
    };
    // INVARIANT: a consent only ever speaks for the exact purpose version it was given for.
    if consent.purpose.version != purpose.version {
        return Decision::Denied(D::PurposeChanged {
            consented_version: consent.purpose.version,
            current_version: purpose.version,
        });
    }
    let uncovered = difference(&request.categories, &consent.categories);
    let active = match consent.clone().active_at(now) {
        Ok(active) => active,
        Err(ConsentState::Revoked) => return Decision::Denied(D::ConsentRevoked),
        Err(_) => return Decision::Denied(D::ConsentExpired),
    };
    if !uncovered.is_empty() {
        return Decision::Denied(D::CategoryNotCovered {
            categories: uncovered,
        });
    }
    Decision::Granted(active)
}

fn difference(
    wanted: &BTreeSet<CategoryId>,
    allowed: &BTreeSet<CategoryId>,
) -> BTreeSet<CategoryId> {
    wanted.difference(allowed).cloned().collect()
}

#[cfg(test)]
mod tests;
