//! The area grant: what the hub signs for one provider when a responder asks, under a
//! declared emergency, for every entry of a list inside an area (issue 24's area lists).
//!
//! A compact JWS (EdDSA, `typ` `renkei-area-grant+jwt`), with the same audience, lifetime and
//! single use as a [`GrantClaims`](super::GrantClaims) grant and checked by the same
//! [`GrantVerifier`], but it names no resident: it carries the area, and the provider, which
//! holds the addresses, selects the entries inside it. Its own `typ` keeps a provider from
//! taking it for a grant about one resident, or the reverse.

use std::sync::PoisonError;

use renkei_domain::{Area, CategoryId, DeclarationId, ProviderId, PurposeId, RequestId, ServiceId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{CLOCK_SKEW_SECS, GrantError, GrantVerifier, MAX_GRANT_LIFETIME_SECS};
use crate::jws::{self, SignError};
use crate::keys::SigningKey;

/// The JWS `typ` of an area grant.
pub const AREA_GRANT_TYP: &str = "renkei-area-grant+jwt";

/// What an area grant says: this provider may hand the entries of these categories inside
/// this area to this service, for this purpose, under this declared emergency, within this
/// request, each sealed to this key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AreaGrantClaims {
    pub iss: String,
    /// The one provider the grant is for.
    pub aud: ProviderId,
    pub jti: Uuid,
    pub iat: i64,
    pub exp: i64,
    pub request_id: RequestId,
    pub service: ServiceId,
    pub purpose: PurposeId,
    pub purpose_version: u32,
    pub categories: Vec<CategoryId>,
    /// 地域メッシュ codes and `district:<id>` entries, each inside the declaration's area.
    pub area: Area,
    /// The requesting service's X25519 public key (base64url, 32 bytes).
    pub service_hpke_key: String,
    /// The declared emergency the release rests on.
    pub emergency: DeclarationId,
    /// `emergency:<declaration id>`, as each resident's access record says.
    pub basis: String,
}

/// A provider's answer to an area grant: every entry it selected, each sealed on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AreaAnswer {
    pub entries: Vec<AreaAnswerEntry>,
}

/// One entry of an area list: whose it is, as the provider names the resident, and the
/// provider's signed answer sealed to the service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AreaAnswerEntry {
    /// The resident's code at this provider (their pairwise subject in the provider's
    /// sector): the hub maps it back to the resident, whose history then shows the release.
    pub subject: String,
    /// The categories this entry holds (among the grant's).
    pub categories: Vec<CategoryId>,
    pub payload: crate::envelope::SealedPayload,
}

/// The claims as they arrive, before the audience is known to be a single provider.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireAreaGrant {
    iss: String,
    aud: serde_json::Value,
    jti: Uuid,
    iat: i64,
    exp: i64,
    request_id: RequestId,
    service: ServiceId,
    purpose: PurposeId,
    purpose_version: u32,
    categories: Vec<CategoryId>,
    area: Area,
    service_hpke_key: String,
    emergency: DeclarationId,
    basis: String,
}

fn check_shape(
    iat: i64,
    exp: i64,
    categories: &[CategoryId],
    service_hpke_key: &str,
    emergency: DeclarationId,
    basis: &str,
) -> Result<(), &'static str> {
    // The same checks as a grant's, with no resident to name.
    super::check_shape("area", iat, exp, categories, service_hpke_key)?;
    if basis != format!("emergency:{emergency}") {
        return Err("`basis` does not match `emergency`");
    }
    Ok(())
}

/// Signs an area grant; refuses what a provider would refuse (see [`super::sign_grant`]).
pub fn sign_area_grant(key: &SigningKey, claims: &AreaGrantClaims) -> Result<String, SignError> {
    check_shape(
        claims.iat,
        claims.exp,
        &claims.categories,
        &claims.service_hpke_key,
        claims.emergency,
        &claims.basis,
    )
    .map_err(SignError::InvalidClaims)?;
    if claims.exp.saturating_sub(claims.iat) > MAX_GRANT_LIFETIME_SECS {
        return Err(SignError::InvalidClaims(
            "the grant would live longer than 60 seconds",
        ));
    }
    jws::sign(key, AREA_GRANT_TYP, claims)
}

impl GrantVerifier {
    /// Verifies an area grant at `now` as [`GrantVerifier::verify`] does a grant (signature,
    /// audience, lifetime, single use: the ids of both kinds share one memory).
    pub fn verify_area(
        &self,
        token: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<AreaGrantClaims, GrantError> {
        let wire: WireAreaGrant = {
            let jwks = self.jwks.read().unwrap_or_else(PoisonError::into_inner);
            jws::verify(token, &jwks, AREA_GRANT_TYP)?
        };
        let aud = match wire.aud {
            serde_json::Value::String(aud) if aud == self.provider.as_str() => {
                self.provider.clone()
            }
            serde_json::Value::String(_) | serde_json::Value::Array(_) => {
                return Err(GrantError::WrongAudience);
            }
            _ => return Err(GrantError::Malformed("`aud` is not a provider id")),
        };
        check_shape(
            wire.iat,
            wire.exp,
            &wire.categories,
            &wire.service_hpke_key,
            wire.emergency,
            &wire.basis,
        )
        .map_err(GrantError::Malformed)?;
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
        Ok(AreaGrantClaims {
            iss: wire.iss,
            aud,
            jti: wire.jti,
            iat: wire.iat,
            exp: wire.exp,
            request_id: wire.request_id,
            service: wire.service,
            purpose: wire.purpose,
            purpose_version: wire.purpose_version,
            categories: wire.categories,
            area: wire.area,
            service_hpke_key: wire.service_hpke_key,
            emergency: wire.emergency,
            basis: wire.basis,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant::{GrantClaims, sign_grant};
    use crate::keys::Jwks;

    fn claims(now: i64) -> AreaGrantClaims {
        let emergency = DeclarationId::from_uuid(Uuid::from_u128(9));
        AreaGrantClaims {
            iss: "https://hub.example.jp".into(),
            aud: ProviderId::new("city-welfare").unwrap(),
            jti: Uuid::new_v4(),
            iat: now,
            exp: now + 30,
            request_id: RequestId::from_uuid(Uuid::from_u128(2)),
            service: ServiceId::new("fire-dept").unwrap(),
            purpose: PurposeId::new("evacuation").unwrap(),
            purpose_version: 1,
            categories: vec![CategoryId::new("disaster.support").unwrap()],
            area: Area::parse(["53394526"]).unwrap(),
            service_hpke_key: "A".repeat(43),
            emergency,
            basis: format!("emergency:{emergency}"),
        }
    }

    #[test]
    fn an_area_grant_verifies_once_for_its_provider_and_never_as_a_grant() {
        let hub = SigningKey::generate().unwrap();
        let jwks = Jwks::from_signing_keys([&hub]);
        let now = chrono::Utc::now();
        let token = sign_area_grant(&hub, &claims(now.timestamp())).unwrap();
        let verifier = GrantVerifier::new(ProviderId::new("city-welfare").unwrap(), jwks.clone());
        // The `typ` differs: a provider asked about one resident refuses it.
        assert!(matches!(
            verifier.verify(&token, now),
            Err(GrantError::Malformed(_))
        ));
        let got = verifier.verify_area(&token, now).unwrap();
        assert_eq!(got.area, Area::parse(["53394526"]).unwrap());
        assert_eq!(verifier.verify_area(&token, now), Err(GrantError::Replayed));
        let other = GrantVerifier::new(ProviderId::new("clinic").unwrap(), jwks);
        let token = sign_area_grant(&hub, &claims(now.timestamp())).unwrap();
        assert_eq!(
            other.verify_area(&token, now),
            Err(GrantError::WrongAudience)
        );
    }

    #[test]
    fn a_grant_about_one_resident_is_not_an_area_grant() {
        let hub = SigningKey::generate().unwrap();
        let jwks = Jwks::from_signing_keys([&hub]);
        let now = chrono::Utc::now();
        let c = claims(now.timestamp());
        let grant = GrantClaims {
            iss: c.iss,
            aud: c.aud.clone(),
            sub: "ref-1".into(),
            jti: c.jti,
            iat: c.iat,
            exp: c.exp,
            request_id: c.request_id,
            service: c.service,
            purpose: c.purpose,
            purpose_version: 1,
            categories: c.categories,
            service_hpke_key: c.service_hpke_key,
            consent: None,
            emergency: Some(c.emergency),
            basis: c.basis,
        };
        let token = sign_grant(&hub, &grant).unwrap();
        let verifier = GrantVerifier::new(c.aud, jwks);
        assert!(verifier.verify_area(&token, now).is_err());
    }

    #[test]
    fn a_basis_other_than_the_declaration_is_refused_at_signing() {
        let hub = SigningKey::generate().unwrap();
        let mut c = claims(0);
        c.basis = "consent:x".into();
        assert!(sign_area_grant(&hub, &c).is_err());
    }
}
