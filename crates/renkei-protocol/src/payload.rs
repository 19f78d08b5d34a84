//! The provider's signed answer: what a provider puts inside the sealed envelope, so that
//! the service can tell that this provider produced exactly this answer for this request
//! (the security guideline's データの真正性).
//!
//! HPKE base mode alone lets anyone who knows the service's public key seal a payload to
//! it, the hub included: the envelope hides the answer from the hub but does not say who
//! wrote it. The provider therefore signs its answer as a compact JWS (EdDSA, `typ`
//! `renkei-data+jwt`) with the key it registered with the city, naming itself, the service,
//! the request and the categories, and seals that JWS. The service opens the envelope,
//! verifies the signature against the provider's registered keys and checks that every
//! name matches the request it made. A hub that substitutes, replays or moves an answer
//! is caught, and the service keeps a statement the provider cannot later deny.
//!
//! A signature inside rather than HPKE's Auth mode: the standards-track HPKE revision drops
//! the authenticated modes, Auth mode proves nothing to a third party, and a service whose
//! private key leaked could forge Auth-mode answers from any provider to itself. One
//! Ed25519 key also serves the provider's other signatures, kept apart by `typ`.

use chrono::{DateTime, Utc};
use renkei_domain::{CategoryId, ProviderId, RequestId, ServiceId};
use serde::{Deserialize, Serialize};

use crate::envelope::{EnvelopeContext, EnvelopeError, SealedPayload, ServiceKeyPair};
use crate::jws::{self, JwsError, SignError};
use crate::keys::{Jwks, SigningKey};

/// The JWS `typ` of a provider's signed answer.
pub const PAYLOAD_TYP: &str = "renkei-data+jwt";

/// What a provider's signed answer says: this provider released this data for this request
/// of this service.
///
/// Its `Debug` output leaves out `data`, so that logging an answer never logs personal data.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayloadClaims {
    /// The provider that produced the answer.
    pub iss: ProviderId,
    /// The service it was released to.
    pub aud: ServiceId,
    pub request_id: RequestId,
    /// The categories released, as the grant named them.
    pub categories: Vec<CategoryId>,
    /// When the provider signed (unix seconds).
    pub iat: i64,
    /// The records themselves, as the provider keeps them.
    pub data: serde_json::Value,
}

impl std::fmt::Debug for PayloadClaims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayloadClaims")
            .field("iss", &self.iss)
            .field("aud", &self.aud)
            .field("request_id", &self.request_id)
            .field("categories", &self.categories)
            .field("iat", &self.iat)
            .field("data", &"[redacted]")
            .finish()
    }
}

/// Why an answer could not be accepted as the provider's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error("the answer is not utf-8")]
    NotUtf8,
    #[error("the answer is malformed: {0}")]
    Malformed(&'static str),
    #[error("the answer's signature does not verify with the provider's keys")]
    BadSignature,
    #[error("the answer is signed with key `{0}`, which the provider has not registered")]
    UnknownKey(String),
    #[error("the answer names provider `{found}`, not `{expected}`")]
    WrongProvider { expected: String, found: String },
    #[error("the answer was released to another service")]
    WrongService,
    #[error("the answer belongs to another request")]
    WrongRequest,
}

impl From<JwsError> for PayloadError {
    fn from(e: JwsError) -> Self {
        match e {
            JwsError::Malformed(why) => Self::Malformed(why),
            JwsError::BadSignature => Self::BadSignature,
            JwsError::UnknownKey(kid) => Self::UnknownKey(kid),
        }
    }
}

/// Signs the provider's answer with its registered key.
pub fn sign_payload(key: &SigningKey, claims: &PayloadClaims) -> Result<String, SignError> {
    jws::sign(key, PAYLOAD_TYP, claims)
}

/// Signs the answer and seals it to the service's key, bound to `context`: what a provider
/// answers a grant with.
pub fn sign_and_seal(
    key: &SigningKey,
    service_public_b64: &str,
    context: &EnvelopeContext,
    service: &ServiceId,
    categories: &[CategoryId],
    data: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<SealedPayload, PayloadSealError> {
    let claims = PayloadClaims {
        iss: context.provider.clone(),
        aud: service.clone(),
        request_id: context.request,
        categories: categories.to_vec(),
        iat: now.timestamp(),
        data,
    };
    let token = sign_payload(key, &claims)?;
    Ok(crate::envelope::seal(
        service_public_b64,
        context,
        token.as_bytes(),
    )?)
}

/// Why a provider could not make its answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadSealError {
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error(transparent)]
    Seal(#[from] EnvelopeError),
}

/// Opens an answer with the service's key and accepts it only as `context.provider`'s
/// signed answer to `service`'s request `context.request`, verified against
/// `provider_keys`, the keys that provider registered with the city.
pub fn open_verified(
    keys: &ServiceKeyPair,
    service: &ServiceId,
    context: &EnvelopeContext,
    provider_keys: &Jwks,
    sealed: &SealedPayload,
) -> Result<PayloadClaims, PayloadError> {
    let plaintext = crate::envelope::open(keys, context, sealed)?;
    let token = std::str::from_utf8(&plaintext).map_err(|_| PayloadError::NotUtf8)?;
    let claims: PayloadClaims = jws::verify(token, provider_keys, PAYLOAD_TYP)?;
    if claims.iss != context.provider {
        return Err(PayloadError::WrongProvider {
            expected: context.provider.to_string(),
            found: jws::shorten(claims.iss.as_str()),
        });
    }
    if &claims.aud != service {
        return Err(PayloadError::WrongService);
    }
    if claims.request_id != context.request {
        return Err(PayloadError::WrongRequest);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;
    use uuid::Uuid;

    use super::*;
    use crate::envelope::seal;

    struct World {
        provider_key: SigningKey,
        provider_keys: Jwks,
        service_keys: ServiceKeyPair,
        service: ServiceId,
        context: EnvelopeContext,
    }

    fn world() -> World {
        let provider_key = SigningKey::generate().unwrap();
        let provider_keys = Jwks::from_signing_keys([&provider_key]);
        World {
            provider_key,
            provider_keys,
            service_keys: ServiceKeyPair::generate().unwrap(),
            service: ServiceId::new("health-advice").unwrap(),
            context: EnvelopeContext {
                provider: ProviderId::new("hikari-clinic").unwrap(),
                request: RequestId::from_uuid(Uuid::now_v7()),
            },
        }
    }

    fn answer(w: &World, data: serde_json::Value) -> SealedPayload {
        sign_and_seal(
            &w.provider_key,
            &w.service_keys.public_b64(),
            &w.context,
            &w.service,
            &[CategoryId::new("health.checkup").unwrap()],
            data,
            Utc::now(),
        )
        .unwrap()
    }

    fn open(w: &World, sealed: &SealedPayload) -> Result<PayloadClaims, PayloadError> {
        open_verified(
            &w.service_keys,
            &w.service,
            &w.context,
            &w.provider_keys,
            sealed,
        )
    }

    #[test]
    fn a_providers_answer_opens_verified_with_its_data() {
        let w = world();
        let claims = open(&w, &answer(&w, json!({"bmi": 22.1}))).unwrap();
        assert_eq!(claims.data, json!({"bmi": 22.1}));
        assert_eq!(claims.iss, w.context.provider);
        assert_eq!(claims.aud, w.service);
    }

    #[test]
    fn a_payload_the_hub_sealed_itself_is_refused() {
        // The hub knows the service's public key and the request: all base mode needs.
        let w = world();
        let forged = seal(
            &w.service_keys.public_b64(),
            &w.context,
            br#"{"bmi": 35.0}"#,
        )
        .unwrap();
        // The envelope alone accepts it: base mode says nothing about who sealed.
        let opened = crate::envelope::open(&w.service_keys, &w.context, &forged).unwrap();
        assert_eq!(opened, br#"{"bmi": 35.0}"#);
        assert!(matches!(open(&w, &forged), Err(PayloadError::Malformed(_))));
    }

    #[test]
    fn an_answer_signed_with_a_key_the_provider_never_registered_is_refused() {
        let w = world();
        let impostor = World {
            provider_key: SigningKey::generate().unwrap(),
            ..world()
        };
        let forged = sign_and_seal(
            &impostor.provider_key,
            &w.service_keys.public_b64(),
            &w.context,
            &w.service,
            &[],
            json!({"bmi": 35.0}),
            Utc::now(),
        )
        .unwrap();
        assert!(matches!(
            open(&w, &forged),
            Err(PayloadError::UnknownKey(_))
        ));
    }

    #[test]
    fn an_answer_moved_to_another_request_or_service_is_refused() {
        let w = world();
        let other_request = EnvelopeContext {
            request: RequestId::from_uuid(Uuid::now_v7()),
            ..w.context.clone()
        };
        // Signed for another request, sealed (by a hub that kept it) for this one.
        let claims = PayloadClaims {
            iss: w.context.provider.clone(),
            aud: w.service.clone(),
            request_id: other_request.request,
            categories: vec![],
            iat: 0,
            data: json!({}),
        };
        let token = sign_payload(&w.provider_key, &claims).unwrap();
        let replayed = seal(&w.service_keys.public_b64(), &w.context, token.as_bytes()).unwrap();
        assert_eq!(open(&w, &replayed), Err(PayloadError::WrongRequest));

        let for_another_service = PayloadClaims {
            aud: ServiceId::new("community-bus").unwrap(),
            request_id: w.context.request,
            ..claims
        };
        let token = sign_payload(&w.provider_key, &for_another_service).unwrap();
        let moved = seal(&w.service_keys.public_b64(), &w.context, token.as_bytes()).unwrap();
        assert_eq!(open(&w, &moved), Err(PayloadError::WrongService));
    }

    #[test]
    fn one_providers_answer_passed_off_as_anothers_is_refused() {
        // Both providers registered, the answer signed by the pay provider but presented as
        // the clinic's: the envelope is sealed for the clinic's context by whoever relays it.
        let w = world();
        let pay_key = SigningKey::generate().unwrap();
        let both = Jwks::from_signing_keys([&w.provider_key, &pay_key]);
        let claims = PayloadClaims {
            iss: ProviderId::new("hikari-pay").unwrap(),
            aud: w.service.clone(),
            request_id: w.context.request,
            categories: vec![],
            iat: 0,
            data: json!({}),
        };
        let token = sign_payload(&pay_key, &claims).unwrap();
        let sealed = seal(&w.service_keys.public_b64(), &w.context, token.as_bytes()).unwrap();
        let refused = open_verified(&w.service_keys, &w.service, &w.context, &both, &sealed);
        assert!(matches!(refused, Err(PayloadError::WrongProvider { .. })));
    }

    #[test]
    fn debug_output_leaves_the_data_out() {
        let w = world();
        let claims = open(&w, &answer(&w, json!({"name": "山田 花子"}))).unwrap();
        assert!(!format!("{claims:?}").contains("山田"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn any_plaintext_sealed_to_the_service_is_refused_without_a_panic(
            plaintext in proptest::collection::vec(any::<u8>(), 0..512)
        ) {
            let w = world();
            let sealed = seal(&w.service_keys.public_b64(), &w.context, &plaintext).unwrap();
            prop_assert!(open(&w, &sealed).is_err());
        }

        #[test]
        fn an_answer_with_any_byte_changed_is_refused(at in 0usize..4096, bit in 0u8..8) {
            let w = world();
            let claims = PayloadClaims {
                iss: w.context.provider.clone(),
                aud: w.service.clone(),
                request_id: w.context.request,
                categories: vec![],
                iat: 0,
                data: json!({"bmi": 22.1}),
            };
            let mut token = sign_payload(&w.provider_key, &claims).unwrap().into_bytes();
            let at = at % token.len();
            if let Some(byte) = token.get_mut(at) {
                *byte ^= 1 << bit;
            }
            let sealed = seal(&w.service_keys.public_b64(), &w.context, &token).unwrap();
            prop_assert!(open(&w, &sealed).is_err());
        }
    }
}
