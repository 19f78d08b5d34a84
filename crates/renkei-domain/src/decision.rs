//! The consent check: may this service receive these categories of this resident for this
//! purpose now? A pure function, so it is fast, testable and the same on every replica.
//!
//! A consent is the usual ground; a declared emergency in force is the other (see
//! [`crate::emergency`]): it lets the responder services it names read the categories it
//! releases when no consent covers the request, and it is the condition of a purpose that
//! applies only during an emergency ([`Purpose::emergency_only`], 幸田町's dual mode).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::access::AccessBasis;
use crate::catalog::{Purpose, Service, ServiceStatus};
use crate::consent::{ActiveConsent, Consent, ConsentState};
use crate::emergency::{AreaCode, Declaration, DeclarationState};
use crate::ids::{CategoryId, DeclarationId, PurposeId, RequestId, ResidentId, ServiceId};

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
    /// The purpose applies only during a declared emergency, and none is in force.
    NotInEmergency,
    /// No consent covers the request, and the declarations naming the service are not in
    /// force (not confirmed yet, or before their start).
    EmergencyNotInForce,
    /// No consent covers the request, and the declaration in force naming the service does
    /// not release these categories.
    CategoryNotInEmergency {
        categories: BTreeSet<CategoryId>,
    },
    /// An area list named a declaration that does not name the service (or none that
    /// exists).
    ServiceNotInEmergency,
    /// An area list asked for codes outside the declaration's area.
    AreaNotInEmergency {
        codes: BTreeSet<AreaCode>,
    },
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
            Self::NotInEmergency => "not-in-emergency",
            Self::EmergencyNotInForce => "emergency-not-in-force",
            Self::CategoryNotInEmergency { .. } => "category-not-in-emergency",
            Self::ServiceNotInEmergency => "service-not-in-emergency",
            Self::AreaNotInEmergency { .. } => "area-not-in-emergency",
        }
    }
}

/// The outcome of the consent check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Granted(Grounds),
    Denied(DenialReason),
}

/// What a granted request rests on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grounds {
    /// The resident's consent, in force. `during` is the declaration in force that a
    /// purpose applying only during an emergency needed (`None` for any other purpose).
    Consent {
        consent: ActiveConsent,
        during: Option<DeclarationId>,
    },
    /// A declared emergency in force that names the service and releases every category
    /// asked for, when no consent covered the request.
    Emergency { declaration: DeclarationId },
}

impl Grounds {
    /// The consent, when the request rests on one.
    pub fn consent(&self) -> Option<&ActiveConsent> {
        match self {
            Self::Consent { consent, .. } => Some(consent),
            Self::Emergency { .. } => None,
        }
    }

    /// The declaration the release was made under or during, if any.
    pub fn declaration(&self) -> Option<DeclarationId> {
        match self {
            Self::Consent { during, .. } => *during,
            Self::Emergency { declaration } => Some(*declaration),
        }
    }

    /// The basis its access record states.
    pub fn basis(&self) -> AccessBasis {
        match self {
            Self::Consent { consent, during } => AccessBasis::Consent {
                consent: consent.consent().id,
                during: *during,
            },
            Self::Emergency { declaration } => AccessBasis::Emergency {
                declaration: *declaration,
            },
        }
    }
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
    /// Declarations that may be in force: storage may leave out those ended or past their
    /// end, never one that is pending, scheduled or in force. Judged against `now`, so a
    /// declaration's end takes effect without storage changing.
    pub declarations: &'a [Declaration],
}

/// Decides a data request from what storage read for it.
///
/// The first rule that fails is the reason, in this order: a revoked token; a service that
/// is not registered (`service-not-approved`); a subject that names no resident; a service
/// that is not approved; a service key that is not an X25519 key; a purpose the service did
/// not declare; categories the purpose does not declare; a purpose that applies only during
/// an emergency when none is in force (`not-in-emergency`); then the consent's rules: no
/// consent; a consent to another purpose version; a revoked, then an expired consent;
/// categories the consent does not cover. When a consent rule fails, a declaration in
/// force that names the service and releases every category asked for grants the request
/// under the emergency; failing that, a declaration in force naming the service gives
/// `category-not-in-emergency`, one naming it that is not in force yet
/// `emergency-not-in-force`, and with none the consent rule's own reason stands. Only a
/// request that passes every rule is granted.
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
    // The declarations not over at `now`, in a fixed order, so the one a grant names does
    // not depend on the order storage read them in.
    let mut live: Vec<&Declaration> = facts
        .declarations
        .iter()
        .filter(|d| d.state_at(now) != DeclarationState::Ended)
        .collect();
    live.sort_by_key(|d| (d.starts_at, d.id));
    let in_force = live.iter().find(|d| d.in_force_at(now)).map(|d| d.id);
    if purpose.emergency_only && in_force.is_none() {
        return Decision::Denied(D::NotInEmergency);
    }
    match consent_check(request, purpose, facts.consent, now) {
        Ok(consent) => Decision::Granted(Grounds::Consent {
            consent,
            // A dual-mode purpose's grant names the emergency it was made during.
            during: in_force.filter(|_| purpose.emergency_only),
        }),
        Err(reason) => Decision::Denied(reason).or_emergency(request, &live, now),
    }
}

/// The consent's rules, in their order.
fn consent_check(
    request: &DataRequest,
    purpose: &Purpose,
    consent: Option<&Consent>,
    now: DateTime<Utc>,
) -> Result<ActiveConsent, DenialReason> {
    use DenialReason as D;
    let Some(consent) = consent else {
        return Err(D::NoConsent);
    };
    // INVARIANT: a consent only ever speaks for the exact purpose version it was given for.
    if consent.purpose.version != purpose.version {
        return Err(D::PurposeChanged {
            consented_version: consent.purpose.version,
            current_version: purpose.version,
        });
    }
    let uncovered = difference(&request.categories, &consent.categories);
    let active = match consent.clone().active_at(now) {
        Ok(active) => active,
        Err(ConsentState::Revoked) => return Err(D::ConsentRevoked),
        Err(_) => return Err(D::ConsentExpired),
    };
    if !uncovered.is_empty() {
        return Err(D::CategoryNotCovered {
            categories: uncovered,
        });
    }
    Ok(active)
}

impl Decision {
    /// A request no consent covers, judged against the declarations not over (`live`,
    /// in order): granted under the first in force that covers it, or denied with the
    /// reason the most relevant one gives, or `self` when none names the service.
    fn or_emergency(
        self,
        request: &DataRequest,
        live: &[&Declaration],
        now: DateTime<Utc>,
    ) -> Decision {
        let naming: Vec<&&Declaration> = live
            .iter()
            .filter(|d| d.services.contains(&request.service))
            .collect();
        let in_force = || naming.iter().filter(|d| d.in_force_at(now));
        // INVARIANT: only a declaration a second operator confirmed, within its window,
        // naming this service and every category asked for, releases without consent.
        if let Some(d) = in_force().find(|d| d.covers(&request.service, &request.categories)) {
            return Decision::Granted(Grounds::Emergency { declaration: d.id });
        }
        if let Some(d) = in_force().next() {
            return Decision::Denied(DenialReason::CategoryNotInEmergency {
                categories: difference(&request.categories, &d.categories),
            });
        }
        if !naming.is_empty() {
            return Decision::Denied(DenialReason::EmergencyNotInForce);
        }
        self
    }
}

fn difference(
    wanted: &BTreeSet<CategoryId>,
    allowed: &BTreeSet<CategoryId>,
) -> BTreeSet<CategoryId> {
    wanted.difference(allowed).cloned().collect()
}

#[cfg(test)]
mod tests;
