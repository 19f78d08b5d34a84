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
        ed25519_jwk(&self.kid, &self.public)
    }

    /// Loads a key from a PKCS#8 PEM file's text (`-----BEGIN PRIVATE KEY-----`), as
    /// [`SigningKey::to_pkcs8_pem`] writes it: a provider's key file.
    pub fn from_pkcs8_pem(text: &str) -> Result<Self, KeyError> {
        use base64::engine::general_purpose::STANDARD;
        let body = text
            .trim()
            .strip_prefix(PEM_BEGIN)
            .and_then(|rest| rest.strip_suffix(PEM_END))
            .ok_or(KeyError::BadPkcs8)?;
        let b64: String = body.split_whitespace().collect();
        let der = Zeroizing::new(STANDARD.decode(b64).map_err(|_| KeyError::BadPkcs8)?);
        Self::from_pkcs8_der(&der)
    }

    /// The private key as PKCS#8 PEM, for a key made in this process (`None` for a key kept
    /// in a device).
    pub fn to_pkcs8_pem(&self) -> Option<Zeroizing<String>> {
        use base64::engine::general_purpose::STANDARD;
        let b64 = Zeroizing::new(STANDARD.encode(self.pkcs8_der()?));
        let mut pem = Zeroizing::new(format!("{PEM_BEGIN}\n"));
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str(PEM_END);
        pem.push('\n');
        Some(pem)
    }
}

const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PEM_END: &str = "-----END PRIVATE KEY-----";

/// The public JWK of an Ed25519 key.
fn ed25519_jwk(kid: &str, public: &[u8; 32]) -> Jwk {
    Jwk {
        common: CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_algorithm: Some(KeyAlgorithm::EdDSA),
            key_id: Some(kid.to_owned()),
            ..CommonParameters::default()
        },
        algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
            key_type: OctetKeyPairType::OctetKeyPair,
            curve: EllipticCurve::Ed25519,
            x: URL_SAFE_NO_PAD.encode(public),
        }),
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

    /// The public keys a provider registered, as the JWK Set its answers verify against.
    pub fn from_provider_keys(keys: &renkei_domain::ProviderKeys) -> Self {
        Self {
            keys: keys
                .keys()
                .iter()
                .map(|k| ed25519_jwk(k.kid(), k.public_key()))
                .collect(),
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
mod tests;
