//! The hub's signing keys (Ed25519, and RSA-2048 for RS256 ID tokens), their key ids
//! (RFC 7638 thumbprints) and the JWK Set (RFC 7517) the hub publishes at
//! `/.well-known/jwks.json`.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, KeyAlgorithm, OctetKeyPairParameters,
    OctetKeyPairType, PublicKeyUse, RSAKeyParameters, RSAKeyType,
};
use jsonwebtoken::{DecodingKey, EncodingKey};
pub use renkei_domain::SigningAlg;
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
    #[error("could not generate an rsa key")]
    GenerateRsa,
    #[error("the bytes are not an unencrypted pkcs#8 rsa private key of at least 2048 bits")]
    BadRsaPkcs8,
    #[error("signing with key `{0}` failed")]
    Sign(String),
    #[error("key `{kid}`: {why}")]
    External { kid: String, why: String },
}

/// Signs with a private key kept outside this process, in a PKCS#11 token for instance: the
/// process holds only the public half and a way to ask for signatures.
pub trait ExternalSigner: Send + Sync {
    /// The signature of `message` under the key: Ed25519 (RFC 8032) for an Ed25519 key,
    /// RSASSA-PKCS1-v1_5 with SHA-256 for an RSA key. May block (a call into a device).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String>;
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

/// The RFC 7638 JWK thumbprint (SHA-256, base64url) of an RSA public key, given its modulus
/// and exponent as unsigned big-endian bytes without leading zeros: the key id.
pub fn rsa_thumbprint(n: &[u8], e: &[u8]) -> String {
    // The required members of an RSA key, in lexicographic order, without whitespace.
    let canonical = format!(
        r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(e),
        URL_SAFE_NO_PAD.encode(n)
    );
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, canonical.as_bytes()))
}

/// An RSA signing key of the hub, for RS256 (RSASSA-PKCS1-v1_5 with SHA-256) ID tokens:
/// what OpenID Connect relying parties accept by default.
pub struct RsaSigningKey {
    private: RsaPrivate,
    /// The public modulus and exponent, big-endian without leading zeros.
    n: Vec<u8>,
    e: Vec<u8>,
    kid: String,
}

/// Where an RSA key's private half is.
enum RsaPrivate {
    InProcess {
        pkcs8: Zeroizing<Vec<u8>>,
        pair: RsaKeyPair,
    },
    External(Arc<dyn ExternalSigner>),
}

impl RsaSigningKey {
    /// The smallest modulus accepted, in bytes (RSA-2048).
    const MIN_MODULUS_LEN: usize = 256;

    /// Generates a fresh RSA-2048 key (aws-lc-rs).
    pub fn generate() -> Result<Self, KeyError> {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError::GenerateRsa)?;
        let der = pair.as_der().map_err(|_| KeyError::GenerateRsa)?;
        Self::from_pkcs8_der(der.as_ref())
    }

    /// Loads a key from the PKCS#8 DER bytes the hub stores.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        let pair = RsaKeyPair::from_pkcs8(der).map_err(|_| KeyError::BadRsaPkcs8)?;
        if pair.public_modulus_len() < Self::MIN_MODULUS_LEN {
            return Err(KeyError::BadRsaPkcs8);
        }
        let PublicKeyComponents { n, e } = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
        Ok(Self {
            kid: rsa_thumbprint(&n, &e),
            private: RsaPrivate::InProcess {
                pkcs8: Zeroizing::new(der.to_vec()),
                pair,
            },
            n,
            e,
        })
    }

    /// A key whose private half is kept elsewhere and signs through `signer`, given its public
    /// modulus and exponent (big-endian; leading zeros are dropped).
    pub fn external(n: &[u8], e: &[u8], signer: Arc<dyn ExternalSigner>) -> Result<Self, KeyError> {
        let strip = |b: &[u8]| -> Vec<u8> { b.iter().copied().skip_while(|&x| x == 0).collect() };
        let (n, e) = (strip(n), strip(e));
        if n.len() < Self::MIN_MODULUS_LEN || e.is_empty() {
            return Err(KeyError::BadRsaPkcs8);
        }
        Ok(Self {
            kid: rsa_thumbprint(&n, &e),
            private: RsaPrivate::External(signer),
            n,
            e,
        })
    }

    /// The PKCS#8 DER bytes, for storage. Secret. `None` for a key kept elsewhere.
    pub fn pkcs8_der(&self) -> Option<&[u8]> {
        match &self.private {
            RsaPrivate::InProcess { pkcs8, .. } => Some(pkcs8),
            RsaPrivate::External(_) => None,
        }
    }

    /// Whether the private half is kept outside this process (signing may block).
    pub fn is_external(&self) -> bool {
        matches!(self.private, RsaPrivate::External(_))
    }

    /// The key id: the RFC 7638 thumbprint of the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The RS256 signature of `message` (RSASSA-PKCS1-v1_5, SHA-256).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.private {
            RsaPrivate::InProcess { pair, .. } => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    &mut signature,
                )
                .map_err(|_| KeyError::Sign(self.kid.clone()))?;
                Ok(signature)
            }
            RsaPrivate::External(signer) => {
                let signature = signer.sign(message).map_err(|why| KeyError::External {
                    kid: self.kid.clone(),
                    why,
                })?;
                // INVARIANT: an RS256 signature is as long as the modulus; anything else
                // from a device is refused rather than published.
                if signature.len() != self.n.len() {
                    return Err(KeyError::Sign(self.kid.clone()));
                }
                Ok(signature)
            }
        }
    }

    /// The public JWK: `kty` RSA, `n`, `e`, `kid`, `alg` RS256, `use` sig.
    pub fn public_jwk(&self) -> Jwk {
        Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(KeyAlgorithm::RS256),
                key_id: Some(self.kid.clone()),
                ..CommonParameters::default()
            },
            algorithm: AlgorithmParameters::RSA(RSAKeyParameters {
                key_type: RSAKeyType::RSA,
                n: URL_SAFE_NO_PAD.encode(&self.n),
                e: URL_SAFE_NO_PAD.encode(&self.e),
            }),
        }
    }
}

impl fmt::Debug for RsaSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RsaSigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// An Ed25519 signing key of the hub, with its key id.
#[derive(Clone)]
pub struct SigningKey {
    public: [u8; 32],
    kid: String,
    private: Ed25519Private,
}

/// Where an Ed25519 key's private half is.
#[derive(Clone)]
enum Ed25519Private {
    InProcess {
        pkcs8: Zeroizing<Vec<u8>>,
        /// Parsed once: parsing derives the public key, a scalar multiplication as costly as
        /// a signature, which `jsonwebtoken::encode` would repeat for every grant.
        pair: Arc<Ed25519KeyPair>,
        encoding: EncodingKey,
    },
    External(Arc<dyn ExternalSigner>),
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
            public,
            kid: ed25519_thumbprint(&public),
            private: Ed25519Private::InProcess {
                pkcs8: Zeroizing::new(der.to_vec()),
                pair: Arc::new(pair),
                encoding: EncodingKey::from_ed_der(der),
            },
        })
    }

    /// A key whose private half is kept elsewhere and signs through `signer`, given its raw
    /// 32-byte public key.
    pub fn external(public: [u8; 32], signer: Arc<dyn ExternalSigner>) -> Self {
        Self {
            kid: ed25519_thumbprint(&public),
            public,
            private: Ed25519Private::External(signer),
        }
    }

    /// The Ed25519 signature of `message` (RFC 8032; deterministic).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.private {
            Ed25519Private::InProcess { pair, .. } => Ok(pair.sign(message).as_ref().to_vec()),
            Ed25519Private::External(signer) => {
                let signature = signer.sign(message).map_err(|why| KeyError::External {
                    kid: self.kid.clone(),
                    why,
                })?;
                // INVARIANT: an Ed25519 signature is 64 bytes; anything else from a device is
                // refused rather than published.
                if signature.len() != 64 {
                    return Err(KeyError::Sign(self.kid.clone()));
                }
                Ok(signature)
            }
        }
    }

    /// The PKCS#8 DER bytes, for storage. Secret. `None` for a key kept elsewhere.
    pub fn pkcs8_der(&self) -> Option<&[u8]> {
        match &self.private {
            Ed25519Private::InProcess { pkcs8, .. } => Some(pkcs8),
            Ed25519Private::External(_) => None,
        }
    }

    /// Whether the private half is kept outside this process (signing may block).
    pub fn is_external(&self) -> bool {
        matches!(self.private, Ed25519Private::External(_))
    }

    /// The key id: the RFC 7638 thumbprint of the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The raw 32-byte Ed25519 public key.
    pub fn public_key(&self) -> &[u8; 32] {
        &self.public
    }

    /// The key as `jsonwebtoken` signs with it (slower than [`SigningKey::sign`]: it parses
    /// the key again each time); `None` for a key kept elsewhere.
    pub fn encoding_key(&self) -> Option<&EncodingKey> {
        match &self.private {
            Ed25519Private::InProcess { encoding, .. } => Some(encoding),
            Ed25519Private::External(_) => None,
        }
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

/// One of the hub's keys, of either algorithm: what an ID token is signed with.
#[derive(Debug, Clone, Copy)]
pub enum AnySigningKey<'a> {
    EdDsa(&'a SigningKey),
    Rs256(&'a RsaSigningKey),
}

impl<'a> AnySigningKey<'a> {
    pub fn alg(self) -> SigningAlg {
        match self {
            Self::EdDsa(_) => SigningAlg::EdDsa,
            Self::Rs256(_) => SigningAlg::Rs256,
        }
    }

    pub fn kid(self) -> &'a str {
        match self {
            Self::EdDsa(k) => k.kid(),
            Self::Rs256(k) => k.kid(),
        }
    }

    pub fn public_jwk(self) -> Jwk {
        match self {
            Self::EdDsa(k) => k.public_jwk(),
            Self::Rs256(k) => k.public_jwk(),
        }
    }

    /// Whether the private half is kept outside this process (signing may block).
    pub fn is_external(self) -> bool {
        match self {
            Self::EdDsa(k) => k.is_external(),
            Self::Rs256(k) => k.is_external(),
        }
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
            key.encoding_key().unwrap(),
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
        let again = SigningKey::from_pkcs8_der(key.pkcs8_der().unwrap()).unwrap();
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

    /// RFC 7638 §3.1: the example RSA key and its thumbprint.
    const RFC7638_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
    const RFC7638_E: &str = "AQAB";

    #[test]
    fn the_rsa_kid_is_the_rfc7638_thumbprint() {
        let n = URL_SAFE_NO_PAD.decode(RFC7638_N).unwrap();
        let e = URL_SAFE_NO_PAD.decode(RFC7638_E).unwrap();
        assert_eq!(
            rsa_thumbprint(&n, &e),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn an_rsa_key_survives_pkcs8_and_publishes_its_rs256_jwk() {
        let key = RsaSigningKey::generate().unwrap();
        let again = RsaSigningKey::from_pkcs8_der(key.pkcs8_der().unwrap()).unwrap();
        assert_eq!(key.kid(), again.kid());
        let json = serde_json::to_value(key.public_jwk()).unwrap();
        assert_eq!(json["kty"], "RSA");
        assert_eq!(json["alg"], "RS256");
        assert_eq!(json["use"], "sig");
        assert_eq!(json["e"], RFC7638_E);
        assert_eq!(json["kid"], key.kid());
        let n = URL_SAFE_NO_PAD.decode(json["n"].as_str().unwrap()).unwrap();
        assert_eq!(n.len(), 256, "a 2048-bit modulus");
        assert_eq!(
            rsa_thumbprint(&n, &URL_SAFE_NO_PAD.decode(RFC7638_E).unwrap()),
            key.kid()
        );
    }

    #[test]
    fn an_rs256_signature_verifies_with_the_published_modulus_and_exponent() {
        let key = RsaSigningKey::generate().unwrap();
        let signature = key.sign(b"signing input").unwrap();
        let public = PublicKeyComponents {
            n: key.n.as_slice(),
            e: key.e.as_slice(),
        };
        let verify = |message: &[u8]| {
            public.verify(
                &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
                message,
                &signature,
            )
        };
        assert!(verify(b"signing input").is_ok());
        assert!(verify(b"another input").is_err());
    }

    #[test]
    fn an_ed25519_key_is_not_an_rsa_key_nor_the_reverse() {
        let ed = SigningKey::generate().unwrap();
        assert_eq!(
            RsaSigningKey::from_pkcs8_der(ed.pkcs8_der().unwrap()).unwrap_err(),
            KeyError::BadRsaPkcs8
        );
        let rsa = RsaSigningKey::generate().unwrap();
        assert_eq!(
            SigningKey::from_pkcs8_der(rsa.pkcs8_der().unwrap()).unwrap_err(),
            KeyError::BadPkcs8
        );
    }

    #[test]
    fn an_rsa_key_in_the_set_never_verifies_eddsa_tokens() {
        let rsa = RsaSigningKey::generate().unwrap();
        let jwks = Jwks::new(vec![rsa.public_jwk()]);
        assert_eq!(
            jwks.decoding_key(rsa.kid()).unwrap_err(),
            KeyError::UnsupportedKey(rsa.kid().to_owned())
        );
    }

    #[test]
    fn debug_output_hides_the_private_key() {
        let key = rfc8037_key();
        let shown = format!("{key:?}");
        assert!(shown.contains("kPrK_"), "{shown}");
        assert!(!shown.contains("pkcs8"), "{shown}");
    }

    /// What a device answers when asked to sign.
    type Answer = dyn Fn(&[u8]) -> Result<Vec<u8>, String> + Send + Sync;

    /// Hands the signing to a key in this process, as a token would do it inside itself.
    struct Through(Arc<Answer>);

    impl ExternalSigner for Through {
        fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
            (self.0)(message)
        }
    }

    fn through(
        f: impl Fn(&[u8]) -> Result<Vec<u8>, String> + Send + Sync + 'static,
    ) -> Arc<Through> {
        Arc::new(Through(Arc::new(f)))
    }

    #[test]
    fn an_external_key_signs_through_its_signer_and_refuses_what_cannot_be_a_signature() {
        let inner = SigningKey::generate().unwrap();
        let same = inner.clone();
        let external = SigningKey::external(
            *inner.public_key(),
            through(move |m| Ok(same.sign(m).unwrap())),
        );
        assert_eq!(external.kid(), inner.kid());
        assert_eq!(external.public_jwk(), inner.public_jwk());
        assert!(external.is_external() && !inner.is_external());
        assert!(external.pkcs8_der().is_none() && external.encoding_key().is_none());
        assert_eq!(external.sign(b"m").unwrap(), inner.sign(b"m").unwrap());
        let short = SigningKey::external(*inner.public_key(), through(|_| Ok(vec![0; 63])));
        assert_eq!(
            short.sign(b"m"),
            Err(KeyError::Sign(inner.kid().to_owned()))
        );
        let failing = SigningKey::external(
            *inner.public_key(),
            through(|_| Err("device removed".into())),
        );
        assert!(
            matches!(failing.sign(b"m"), Err(KeyError::External { why, .. }) if why == "device removed")
        );

        let rsa = Arc::new(RsaSigningKey::generate().unwrap());
        let signer = rsa.clone();
        let mut padded_n = vec![0, 0];
        padded_n.extend_from_slice(&rsa.n);
        let external = RsaSigningKey::external(
            &padded_n,
            &rsa.e,
            through(move |m| signer.sign(m).map_err(|e| e.to_string())),
        )
        .unwrap();
        assert_eq!(
            external.kid(),
            rsa.kid(),
            "leading zeros do not change the key"
        );
        assert_eq!(external.public_jwk(), rsa.public_jwk());
        assert!(external.is_external() && external.pkcs8_der().is_none());
        assert_eq!(external.sign(b"m").unwrap(), rsa.sign(b"m").unwrap());
        let short = RsaSigningKey::external(&rsa.n, &rsa.e, through(|_| Ok(vec![1; 255]))).unwrap();
        assert_eq!(short.sign(b"m"), Err(KeyError::Sign(rsa.kid().to_owned())));
        assert!(
            RsaSigningKey::external(&rsa.n[..128], &rsa.e, through(|_| Ok(Vec::new()))).is_err(),
            "a 1024-bit modulus is refused"
        );
    }
}
