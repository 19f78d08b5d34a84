//! Ed25519 signing keys, their key ids (RFC 7638 thumbprints) and the JWK Set (RFC 7517)
//! the hub publishes at `/.well-known/jwks.json`.

use std::fmt;

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, KeyAlgorithm, OctetKeyPairParameters,
    OctetKeyPairType, PublicKeyUse,
};
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// A public JSON Web Key, as `jsonwebtoken` models it.
pub use jsonwebtoken::jwk::Jwk;

/// Why a key could not be made, loaded or found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("could not generate an ed25519 key")]
    Generate,
    #[error("the bytes are not an unencrypted pkcs#8 ed25519 private key")]
    BadPkcs8,
    #[error("no key with id `{0}` in the key set")]
    UnknownKey(String),
    #[error("key `{0}` in the key set is not an ed25519 signature key")]
    UnsupportedKey(String),
}

/// Makes `jsonwebtoken` use aws-lc-rs for its cryptography.
///
/// `jsonwebtoken` 11 picks its crypto provider from its crate features; if the features of
/// a build ever select more than one backend it needs an explicit choice, or it panics on
/// first use. Every signing and verifying function of this crate calls this first, so
/// callers need not; calling it again, or after another provider was installed, does
/// nothing.
pub fn install_crypto_provider() {
    // An error only means a provider is already in place, which is what we want.
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
}

/// The RFC 7638 JWK thumbprint (SHA-256, base64url) of an Ed25519 public key: the key id.
pub fn ed25519_thumbprint(public_key: &[u8; 32]) -> String {
    // The required members of an OKP key, in lexicographic order, without whitespace.
    let canonical = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(public_key)
    );
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()))
}

/// An Ed25519 signing key of the hub, with its key id.
#[derive(Clone)]
pub struct SigningKey {
    pkcs8: Zeroizing<Vec<u8>>,
    public: [u8; 32],
    kid: String,
    encoding: EncodingKey,
}

impl SigningKey {
    /// Generates a fresh key (aws-lc-rs, PKCS#8 v2).
    pub fn generate() -> Result<Self, KeyError> {
        let document =
            Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| KeyError::Generate)?;
        Self::from_pkcs8_der(document.as_ref())
    }

    /// Loads a key from the PKCS#8 (v1 or v2) DER bytes the hub stores.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        let pair = Ed25519KeyPair::from_pkcs8(der).map_err(|_| KeyError::BadPkcs8)?;
        let public: [u8; 32] = pair
            .public_key()
            .as_ref()
            .try_into()
            .map_err(|_| KeyError::BadPkcs8)?;
        Ok(Self {
            pkcs8: Zeroizing::new(der.to_vec()),
            public,
            kid: ed25519_thumbprint(&public),
            encoding: EncodingKey::from_ed_der(der),
        })
    }

    /// The PKCS#8 DER bytes, for storage. Secret.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The key id: the RFC 7638 thumbprint of the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The raw 32-byte Ed25519 public key.
    pub fn public_key(&self) -> &[u8; 32] {
        &self.public
    }

    /// The key as `jsonwebtoken` signs with it.
    pub fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }

    /// The public JWK: `kty` OKP, `crv` Ed25519, `x`, `kid`, `alg` EdDSA, `use` sig.
    pub fn public_jwk(&self) -> Jwk {
        Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(KeyAlgorithm::EdDSA),
                key_id: Some(self.kid.clone()),
                ..CommonParameters::default()
            },
            algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                key_type: OctetKeyPairType::OctetKeyPair,
                curve: EllipticCurve::Ed25519,
                x: URL_SAFE_NO_PAD.encode(self.public),
            }),
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// A JWK Set: the public keys the hub signs with, current and recently retired.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

impl Jwks {
    pub fn new(keys: Vec<Jwk>) -> Self {
        Self { keys }
    }

    /// The set of the public halves of `keys`.
    pub fn from_signing_keys<'a>(keys: impl IntoIterator<Item = &'a SigningKey>) -> Self {
        Self {
            keys: keys.into_iter().map(SigningKey::public_jwk).collect(),
        }
    }

    /// The key with this id, whatever its type.
    pub fn find(&self, kid: &str) -> Option<&Jwk> {
        self.keys
            .iter()
            .find(|jwk| jwk.common.key_id.as_deref() == Some(kid))
    }

    /// The Ed25519 verification key with this id. Keys of any other type, curve, algorithm
    /// or use are refused, so a published key can never be used with another algorithm.
    pub fn decoding_key(&self, kid: &str) -> Result<DecodingKey, KeyError> {
        let jwk = self
            .find(kid)
            .ok_or_else(|| KeyError::UnknownKey(kid.to_owned()))?;
        let unsupported = || KeyError::UnsupportedKey(kid.to_owned());
        if !matches!(jwk.common.key_algorithm, None | Some(KeyAlgorithm::EdDSA))
            || !matches!(
                jwk.common.public_key_use,
                None | Some(PublicKeyUse::Signature)
            )
        {
            return Err(unsupported());
        }
        let AlgorithmParameters::OctetKeyPair(okp) = &jwk.algorithm else {
            return Err(unsupported());
        };
        if okp.curve != EllipticCurve::Ed25519 {
            return Err(unsupported());
        }
        let x = URL_SAFE_NO_PAD.decode(&okp.x).map_err(|_| unsupported())?;
        if x.len() != 32 {
            return Err(unsupported());
        }
        DecodingKey::from_ed_components(&okp.x).map_err(|_| unsupported())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8037 appendix A.1: the example Ed25519 key.
    const RFC8037_D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
    const RFC8037_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    fn rfc8037_key() -> SigningKey {
        let seed = URL_SAFE_NO_PAD.decode(RFC8037_D).unwrap();
        let public = URL_SAFE_NO_PAD.decode(RFC8037_X).unwrap();
        let pair = Ed25519KeyPair::from_seed_and_public_key(&seed, &public).unwrap();
        SigningKey::from_pkcs8_der(pair.to_pkcs8().unwrap().as_ref()).unwrap()
    }

    #[test]
    fn the_kid_is_the_rfc8037_thumbprint() {
        // RFC 8037 appendix A.3.
        assert_eq!(
            rfc8037_key().kid(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn signing_matches_the_rfc8037_example() {
        // RFC 8037 appendix A.4: Ed25519 is deterministic, so the signature is fixed.
        install_crypto_provider();
        let key = rfc8037_key();
        let signature = jsonwebtoken::crypto::sign(
            b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc",
            key.encoding_key(),
            jsonwebtoken::Algorithm::EdDSA,
        )
        .unwrap();
        assert_eq!(
            signature,
            "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
        );
    }

    #[test]
    fn a_key_survives_a_round_trip_through_pkcs8() {
        let key = SigningKey::generate().unwrap();
        let again = SigningKey::from_pkcs8_der(key.pkcs8_der()).unwrap();
        assert_eq!(key.kid(), again.kid());
        assert_eq!(key.public_key(), again.public_key());
    }

    #[test]
    fn garbage_is_not_a_key() {
        assert_eq!(
            SigningKey::from_pkcs8_der(b"not a key").unwrap_err(),
            KeyError::BadPkcs8
        );
    }

    #[test]
    fn the_public_jwk_has_the_published_shape() {
        let key = rfc8037_key();
        let json = serde_json::to_value(key.public_jwk()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": RFC8037_X,
                "kid": "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k",
                "alg": "EdDSA",
                "use": "sig",
            })
        );
    }

    #[test]
    fn a_jwks_round_trips_through_json_and_finds_keys_by_kid() {
        let a = SigningKey::generate().unwrap();
        let b = SigningKey::generate().unwrap();
        let jwks = Jwks::from_signing_keys([&a, &b]);
        let json = serde_json::to_string(&jwks).unwrap();
        let back: Jwks = serde_json::from_str(&json).unwrap();
        assert_eq!(back, jwks);
        assert!(back.decoding_key(b.kid()).is_ok());
        assert_eq!(
            back.decoding_key("nope").unwrap_err(),
            KeyError::UnknownKey("nope".into())
        );
    }

    #[test]
    fn a_symmetric_or_foreign_key_in_the_set_is_refused() {
        let jwks: Jwks = serde_json::from_value(serde_json::json!({
            "keys": [
                {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac", "alg": "HS256"},
                {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X, "kid": "enc", "use": "enc"},
                {"kty": "OKP", "crv": "Ed25519", "x": "AAAA", "kid": "short"},
            ]
        }))
        .unwrap();
        for kid in ["hmac", "enc", "short"] {
            assert_eq!(
                jwks.decoding_key(kid).unwrap_err(),
                KeyError::UnsupportedKey(kid.into()),
                "{kid}"
            );
        }
    }

    #[test]
    fn debug_output_hides_the_private_key() {
        let key = rfc8037_key();
        let shown = format!("{key:?}");
        assert!(shown.contains("kPrK_"), "{shown}");
        assert!(!shown.contains("pkcs8"), "{shown}");
    }
}
