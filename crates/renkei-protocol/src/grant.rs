//! The access grant (アクセス許可) the hub signs for one provider: a compact JWS (EdDSA,
//! `typ` `renkei-grant+jwt`) that lives at most 60 seconds, names exactly one provider as
//! its audience, and is accepted once.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashSet};
use std::sync::{Mutex, PoisonError, RwLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use renkei_domain::ids::DATA_SUBJECT_ACCESS;
use renkei_domain::{
    CategoryId, ConsentId, DeclarationId, LocationPrecision, ProviderId, PurposeId, RequestId,
    ServiceId,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::jws::{self, JwsError, SignError};
use crate::keys::{Jwks, SigningKey};

pub mod area;

pub use area::{AREA_GRANT_TYP, AreaAnswer, AreaAnswerEntry, AreaGrantClaims, sign_area_grant};

/// The JWS `typ` of a grant.
pub const GRANT_TYP: &str = "renkei-grant+jwt";
/// The longest a grant may live, from `iat` to `exp`.
pub const MAX_GRANT_LIFETIME_SECS: i64 = 60;
/// How far the hub's and a provider's clocks may disagree.
pub const CLOCK_SKEW_SECS: i64 = 5;

/// What a grant says: this provider may hand these categories of this resident to this
/// service, for this purpose, under this consent or declared emergency, within this request,
/// encrypted to this key.
///
/// Its `Debug` output leaves out `sub`, the resident's reference, so that logging a grant
/// never logs personal data.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantClaims {
    /// The hub's URL.
    pub iss: String,
    /// The one provider the grant is for.
    pub aud: ProviderId,
    /// The resident's reference at that provider (e.g. a patient number).
    pub sub: String,
    /// The grant's id; a provider accepts each id once.
    pub jti: Uuid,
    /// Issued at (unix seconds).
    pub iat: i64,
    /// Expires at (unix seconds), at most [`MAX_GRANT_LIFETIME_SECS`] after `iat`.
    pub exp: i64,
    pub request_id: RequestId,
    pub service: ServiceId,
    pub purpose: PurposeId,
    pub purpose_version: u32,
    pub categories: Vec<CategoryId>,
    /// The requesting service's X25519 public key (base64url, 32 bytes): the provider seals
    /// its answer to it (see [`crate::envelope::seal`]).
    pub service_hpke_key: String,
    /// The consent the release rests on; absent when it rests on a declared emergency alone
    /// (a provider that requires it refuses such a grant, as it should: it does not know
    /// emergencies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<ConsentId>,
    /// The declared emergency the release rests on (without consent), or was made during
    /// (a purpose that applies only during one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emergency: Option<DeclarationId>,
    /// What the release rests on, as the hub's access record says: `consent:<consent id>`,
    /// `emergency:<declaration id>` (see [`GrantClaims::basis_of`]), or `data-subject-access`
    /// for a disclosure to the resident (its `service` then [`ServiceId::data_subject`], its
    /// `service_hpke_key` the resident's own).
    pub basis: String,
    /// The precision each location category of the grant is released at (the purpose's):
    /// the provider coarsens those values to it before sealing
    /// ([`renkei_domain::location::coarsen`]). Every key is one of `categories`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub location: BTreeMap<CategoryId, LocationPrecision>,
}

impl GrantClaims {
    /// Whether the grant is the data subject's own access (開示): the provider answers it
    /// with every category it holds of those the grant names, sealed to the resident's key.
    pub fn is_data_subject_access(&self) -> bool {
        self.basis == DATA_SUBJECT_ACCESS
    }

    /// The `basis` claim of a grant with these `consent` and `emergency` claims: the consent
    /// when there is one, else the declaration; `None` when there is neither.
    pub fn basis_of(
        consent: Option<ConsentId>,
        emergency: Option<DeclarationId>,
    ) -> Option<String> {
        match (consent, emergency) {
            (Some(c), _) => Some(format!("consent:{c}")),
            (None, Some(d)) => Some(format!("emergency:{d}")),
            (None, None) => None,
        }
    }
}

impl std::fmt::Debug for GrantClaims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrantClaims")
            .field("iss", &self.iss)
            .field("aud", &self.aud)
            .field("sub", &"[redacted]")
            .field("jti", &self.jti)
            .field("iat", &self.iat)
            .field("exp", &self.exp)
            .field("request_id", &self.request_id)
            .field("service", &self.service)
            .field("purpose", &self.purpose)
            .field("purpose_version", &self.purpose_version)
            .field("categories", &self.categories)
            .field("service_hpke_key", &self.service_hpke_key)
            .field("consent", &self.consent)
            .field("emergency", &self.emergency)
            .field("basis", &self.basis)
            .field("location", &self.location)
            .finish()
    }
}

/// The claims as they arrive, before the audience is known to be a single provider.
#[derive(Deserialize)]
struct WireGrant {
    iss: String,
    aud: serde_json::Value,
    sub: String,
    jti: Uuid,
    iat: i64,
    exp: i64,
    request_id: RequestId,
    service: ServiceId,
    purpose: PurposeId,
    purpose_version: u32,
    categories: Vec<CategoryId>,
    service_hpke_key: String,
    #[serde(default)]
    consent: Option<ConsentId>,
    #[serde(default)]
    emergency: Option<DeclarationId>,
    /// Absent from the grants of hubs from before emergencies: the consent's, then.
    #[serde(default)]
    basis: Option<String>,
    #[serde(default)]
    location: BTreeMap<CategoryId, LocationPrecision>,
}

/// Why a grant was refused. Each variant has a stable [`code`](GrantError::code) for
/// problem+json `type`s and logs; messages never carry the grant's personal data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    #[error("the grant is malformed: {0}")]
    Malformed(&'static str),
    #[error("the grant's signature does not verify")]
    BadSignature,
    #[error("the grant is signed with unknown key `{0}`")]
    UnknownKey(String),
    #[error("the grant is addressed to another provider")]
    WrongAudience,
    #[error("the grant has expired")]
    Expired,
    #[error("the grant is not valid yet")]
    NotYetValid,
    #[error("the grant lives longer than {MAX_GRANT_LIFETIME_SECS} seconds")]
    LifetimeTooLong,
    #[error("the grant has already been used")]
    Replayed,
}

impl GrantError {
    /// A stable identifier of the kind of refusal.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "grant-malformed",
            Self::BadSignature => "grant-bad-signature",
            Self::UnknownKey(_) => "grant-unknown-key",
            Self::WrongAudience => "grant-wrong-audience",
            Self::Expired => "grant-expired",
            Self::NotYetValid => "grant-not-yet-valid",
            Self::LifetimeTooLong => "grant-lifetime-too-long",
            Self::Replayed => "grant-replayed",
        }
    }
}

impl From<JwsError> for GrantError {
    fn from(e: JwsError) -> Self {
        match e {
            JwsError::Malformed(why) => Self::Malformed(why),
            JwsError::BadSignature => Self::BadSignature,
            JwsError::UnknownKey(kid) => Self::UnknownKey(kid),
        }
    }
}

/// Checks that a grant rests on something, and that its `basis` says what (when it has one).
/// A data subject's access ([`DATA_SUBJECT_ACCESS`]) rests on nothing else and goes to the
/// data subject alone: its `service` is [`ServiceId::data_subject`], its key theirs.
fn check_basis(
    service: &ServiceId,
    consent: Option<ConsentId>,
    emergency: Option<DeclarationId>,
    basis: Option<&str>,
) -> Result<String, &'static str> {
    if basis == Some(DATA_SUBJECT_ACCESS) || service.is_data_subject() {
        return match (consent, emergency, basis, service.is_data_subject()) {
            (None, None, Some(DATA_SUBJECT_ACCESS), true) => Ok(DATA_SUBJECT_ACCESS.to_owned()),
            _ => Err("a data subject's access goes to the data subject and rests on nothing else"),
        };
    }
    let expected = GrantClaims::basis_of(consent, emergency)
        .ok_or("neither a consent nor a declared emergency")?;
    match basis {
        Some(b) if b != expected => Err("`basis` does not match `consent` and `emergency`"),
        _ => Ok(expected),
    }
}

/// Checks that every precision a grant names is for one of its categories.
fn check_location(
    categories: &[CategoryId],
    location: &BTreeMap<CategoryId, LocationPrecision>,
) -> Result<(), &'static str> {
    if location.keys().all(|c| categories.contains(c)) {
        Ok(())
    } else {
        Err("`location` names a category the grant does not")
    }
}

/// Checks the parts of a grant that do not depend on who reads it or when.
fn check_shape(
    sub: &str,
    iat: i64,
    exp: i64,
    categories: &[CategoryId],
    service_hpke_key: &str,
) -> Result<(), &'static str> {
    if sub.is_empty() {
        return Err("`sub` is empty");
    }
    if exp <= iat {
        return Err("`exp` is not after `iat`");
    }
    if categories.is_empty() {
        return Err("no data categories");
    }
    let key_ok = URL_SAFE_NO_PAD
        .decode(service_hpke_key)
        .is_ok_and(|k| k.len() == 32);
    if !key_ok {
        return Err("`service_hpke_key` is not a base64url x25519 public key");
    }
    Ok(())
}

/// Signs a grant. Refuses claims a provider would refuse anyway: `exp` not after `iat`, a
/// lifetime over [`MAX_GRANT_LIFETIME_SECS`], an empty `sub`, no categories, or a malformed
/// service key.
pub fn sign_grant(key: &SigningKey, claims: &GrantClaims) -> Result<String, SignError> {
    check_shape(
        &claims.sub,
        claims.iat,
        claims.exp,
        &claims.categories,
        &claims.service_hpke_key,
    )
    .map_err(SignError::InvalidClaims)?;
    check_basis(
        &claims.service,
        claims.consent,
        claims.emergency,
        Some(&claims.basis),
    )
    .map_err(SignError::InvalidClaims)?;
    check_location(&claims.categories, &claims.location).map_err(SignError::InvalidClaims)?;
    if claims.exp.saturating_sub(claims.iat) > MAX_GRANT_LIFETIME_SECS {
        return Err(SignError::InvalidClaims(
            "the grant would live longer than 60 seconds",
        ));
    }
    jws::sign(key, GRANT_TYP, claims)
}

/// The grant ids accepted and not yet expired, with their expiry for pruning.
#[derive(Default)]
struct SeenGrants {
    ids: HashSet<Uuid>,
    by_expiry: BinaryHeap<Reverse<(i64, Uuid)>>,
}

impl SeenGrants {
    /// Forgets every id whose grant would be refused as expired at `now` anyway.
    fn prune(&mut self, now: i64) {
        while let Some(Reverse((exp, id))) = self.by_expiry.peek().copied() {
            if now < exp.saturating_add(CLOCK_SKEW_SECS) {
                break;
            }
            self.by_expiry.pop();
            self.ids.remove(&id);
        }
    }

    /// Records `id`; false if it was already there.
    fn first_use(&mut self, id: Uuid, exp: i64) -> bool {
        if !self.ids.insert(id) {
            return false;
        }
        self.by_expiry.push(Reverse((exp, id)));
        true
    }

    fn len(&self) -> usize {
        self.ids.len()
    }
}

/// What a provider runs on every grant it receives: checks the hub's signature, that the
/// grant is for this provider, that it is in its (short) lifetime, and that it has not
/// been used before.
///
/// Accepted grant ids are remembered until their grant expires, so memory is bounded by
/// the number of grants accepted in the last 65 seconds. Share one verifier between all
/// of a provider's request handlers (it is `Send + Sync`): single use only holds within
/// one verifier.
pub struct GrantVerifier {
    provider: ProviderId,
    jwks: RwLock<Jwks>,
    seen: Mutex<SeenGrants>,
}

impl GrantVerifier {
    /// A verifier for `provider`, trusting the hub keys in `jwks`.
    pub fn new(provider: ProviderId, jwks: Jwks) -> Self {
        Self {
            provider,
            jwks: RwLock::new(jwks),
            seen: Mutex::new(SeenGrants::default()),
        }
    }

    /// The provider this verifier accepts grants for.
    pub fn provider(&self) -> &ProviderId {
        &self.provider
    }

    /// Swaps in a newly fetched key set (key rotation); the ids already seen are kept.
    pub fn replace_jwks(&self, jwks: Jwks) {
        *self.jwks.write().unwrap_or_else(PoisonError::into_inner) = jwks;
    }

    /// Verifies `token` at `now` and, if it is accepted, records its id so that it is
    /// refused from then on.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<GrantClaims, GrantError> {
        let wire: WireGrant = {
            let jwks = self.jwks.read().unwrap_or_else(PoisonError::into_inner);
            jws::verify(token, &jwks, GRANT_TYP)?
        };
        let aud = match wire.aud {
            serde_json::Value::String(aud) if aud == self.provider.as_str() => {
                self.provider.clone()
            }
            // Another provider, or several: a grant is for exactly one.
            serde_json::Value::String(_) | serde_json::Value::Array(_) => {
                return Err(GrantError::WrongAudience);
            }
            _ => return Err(GrantError::Malformed("`aud` is not a provider id")),
        };
        check_shape(
            &wire.sub,
            wire.iat,
            wire.exp,
            &wire.categories,
            &wire.service_hpke_key,
        )
        .map_err(GrantError::Malformed)?;
        let basis = check_basis(
            &wire.service,
            wire.consent,
            wire.emergency,
            wire.basis.as_deref(),
        )
        .map_err(GrantError::Malformed)?;
        check_location(&wire.categories, &wire.location).map_err(GrantError::Malformed)?;
        if wire.exp.saturating_sub(wire.iat) > MAX_GRANT_LIFETIME_SECS {
            return Err(GrantError::LifetimeTooLong);
        }
        let now = now.timestamp();
        if wire.iat > now.saturating_add(CLOCK_SKEW_SECS) {
            return Err(GrantError::NotYetValid);
        }
        if now >= wire.exp.saturating_add(CLOCK_SKEW_SECS) {
            return Err(GrantError::Expired);
        }
        {
            let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            seen.prune(now);
            if !seen.first_use(wire.jti, wire.exp) {
                return Err(GrantError::Replayed);
            }
        }
        Ok(GrantClaims {
            iss: wire.iss,
            aud,
            sub: wire.sub,
            jti: wire.jti,
            iat: wire.iat,
            exp: wire.exp,
            request_id: wire.request_id,
            service: wire.service,
            purpose: wire.purpose,
            purpose_version: wire.purpose_version,
            categories: wire.categories,
            service_hpke_key: wire.service_hpke_key,
            consent: wire.consent,
            emergency: wire.emergency,
            basis,
            location: wire.location,
        })
    }

    /// How many grant ids are remembered (for metrics and tests).
    pub fn remembered(&self) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl std::fmt::Debug for GrantVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrantVerifier")
            .field("provider", &self.provider)
            .field("remembered", &self.remembered())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uuid(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn pruning_forgets_only_ids_that_would_be_refused_as_expired() {
        let mut seen = SeenGrants::default();
        assert!(seen.first_use(uuid(1), 100));
        assert!(seen.first_use(uuid(2), 200));
        assert!(!seen.first_use(uuid(1), 100));
        seen.prune(100 + CLOCK_SKEW_SECS - 1);
        assert_eq!(seen.len(), 2);
        seen.prune(100 + CLOCK_SKEW_SECS);
        assert_eq!(seen.len(), 1);
        assert!(!seen.first_use(uuid(2), 200));
        seen.prune(i64::MAX);
        assert_eq!(seen.len(), 0);
    }

    #[test]
    fn debug_output_leaves_out_the_residents_reference() {
        let claims = GrantClaims {
            iss: "https://hub.example.jp".into(),
            aud: ProviderId::new("city-hospital").unwrap(),
            sub: "patient-000123".into(),
            jti: uuid(1),
            iat: 0,
            exp: 30,
            request_id: RequestId::from_uuid(uuid(2)),
            service: ServiceId::new("health-advice").unwrap(),
            purpose: PurposeId::new("advice").unwrap(),
            purpose_version: 1,
            categories: vec![CategoryId::new("health.checkup").unwrap()],
            service_hpke_key: "AAAA".into(),
            consent: Some(ConsentId::from_uuid(uuid(3))),
            emergency: None,
            basis: format!("consent:{}", uuid(3)),
            location: Default::default(),
        };
        let shown = format!("{claims:?}");
        assert!(!shown.contains("patient-000123"), "{shown}");
        assert!(shown.contains("city-hospital"), "{shown}");
    }

    #[test]
    fn error_codes_are_distinct() {
        let all = [
            GrantError::Malformed("x"),
            GrantError::BadSignature,
            GrantError::UnknownKey("k".into()),
            GrantError::WrongAudience,
            GrantError::Expired,
            GrantError::NotYetValid,
            GrantError::LifetimeTooLong,
            GrantError::Replayed,
        ];
        let codes: HashSet<_> = all.iter().map(GrantError::code).collect();
        assert_eq!(codes.len(), all.len());
        assert!(codes.iter().all(|c| c.starts_with("grant-")));
    }

    #[test]
    fn messages_are_lowercase_without_final_period() {
        for e in [
            GrantError::Malformed("no data categories"),
            GrantError::UnknownKey("k1".into()),
            GrantError::LifetimeTooLong,
        ] {
            let m = e.to_string();
            assert!(m.starts_with(|c: char| c.is_lowercase()), "{m}");
            assert!(!m.ends_with('.'), "{m}");
        }
        assert_eq!(
            GrantError::UnknownKey("k1".into()).to_string(),
            "the grant is signed with unknown key `k1`"
        );
    }
}
