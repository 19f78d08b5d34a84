//! Enrolment verification (身元確認): a certificate chain to a configured root plus a
//! signature over the hub's challenge by the end-entity's key, as a My Number card's signing
//! certificate (JPKI) provides.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use aws_lc_rs::digest;
use chrono::{DateTime, Utc};
use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, UnixTime};
use webpki::aws_lc_rs as algs;
use webpki::{
    CertRevocationList, EndEntityCert, ExpirationPolicy, KeyUsage, RevocationCheckDepth,
    RevocationOptionsBuilder, UnknownStatusPolicy,
};
use x509_cert::Certificate;
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::ext::pkix::KeyUsage as KeyUsageExt;
use x509_cert::time::Time;

use crate::anchors::TrustAnchors;
use crate::attributes::{self, IdentityAttributes};
use crate::chain::{check_chain_len, parse_certificate};

/// Why an enrolment was refused. Each variant is a distinct problem for the caller (one HTTP
/// problem type each); messages carry no personal data.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum EnrolmentError {
    /// The chain leads to no configured root (another CA, or a forged issuer).
    #[error("the certificate chain does not lead to a configured trust anchor")]
    UnknownIssuer,
    #[error("a certificate in the chain expired at {not_after}")]
    Expired { not_after: DateTime<Utc> },
    #[error("a certificate in the chain is not valid before {not_before}")]
    NotYetValid { not_before: DateTime<Utc> },
    #[error("a certificate in the chain is revoked")]
    Revoked,
    /// The CRL covering a certificate is past its nextUpdate: the operator must load a new one.
    #[error("the revocation list expired at {next_update}")]
    CrlExpired { next_update: DateTime<Utc> },
    /// The CRL covering a certificate is not signed by its issuer, or uses a feature not
    /// supported (delta or indirect CRLs, ...).
    #[error("the revocation list is not valid: {0}")]
    CrlInvalid(String),
    /// CRLs are configured but none covers a certificate of the chain.
    #[error("no configured revocation list covers the certificate chain")]
    RevocationUnknown,
    /// The end-entity may not sign (no digitalSignature, an EKU for something else, or a CA).
    #[error("the certificate may not be used to sign in: {0}")]
    BadKeyUsage(String),
    /// The challenge signature does not verify with the end-entity's key.
    #[error("the challenge signature does not verify with the certificate's key")]
    BadSignature,
    /// Something could not be parsed.
    #[error("malformed input: {0}")]
    Malformed(String),
    #[error("unsupported algorithm: {0}")]
    UnsupportedAlgorithm(String),
    /// The chain breaks another path rule (path length, name constraints, an unknown
    /// critical extension, ...).
    #[error("the certificate chain is not acceptable: {0}")]
    InvalidChain(String),
}

/// SHA-256 of the end-entity's SubjectPublicKeyInfo (DER): what the hub keeps to recognise the
/// same card again without keeping the certificate. Displays as lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyHash([u8; 32]);

impl KeyHash {
    /// The hash of a SubjectPublicKeyInfo.
    pub fn of_spki(spki_der: &[u8]) -> Self {
        let d = digest::digest(&digest::SHA256, spki_der);
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        Self(out)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl From<[u8; 32]> for KeyHash {
    fn from(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl fmt::Display for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyHash({self})")
    }
}

/// [`KeyHash`] from its hex form failed: not 64 hex digits.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a key hash is 64 hexadecimal digits")]
pub struct KeyHashParseError;

impl FromStr for KeyHash {
    type Err = KeyHashParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.as_bytes();
        if s.len() != 64 {
            return Err(KeyHashParseError);
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
            let text = std::str::from_utf8(pair).map_err(|_| KeyHashParseError)?;
            *byte = u8::from_str_radix(text, 16).map_err(|_| KeyHashParseError)?;
        }
        Ok(Self(out))
    }
}

/// What the hub keeps of a successful enrolment: never the certificate itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedIdentity {
    /// SHA-256 of the end-entity's public key (SubjectPublicKeyInfo).
    pub key_hash: KeyHash,
    /// What the certificate vouches for.
    pub attributes: IdentityAttributes,
    /// The earliest notAfter of the verified chain (end-entity and intermediates): the identity
    /// is proven until then at best.
    pub not_after: DateTime<Utc>,
}

/// Algorithms accepted for certificate and CRL signatures in the chain.
static CHAIN_ALGS: &[&dyn SignatureVerificationAlgorithm] = &[
    algs::RSA_PKCS1_2048_8192_SHA256,
    algs::RSA_PKCS1_2048_8192_SHA384,
    algs::RSA_PKCS1_2048_8192_SHA512,
    algs::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    algs::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
    algs::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
    algs::ECDSA_P256_SHA256,
    algs::ECDSA_P384_SHA384,
    algs::ECDSA_P256_SHA384,
    algs::ECDSA_P384_SHA256,
    algs::ED25519,
];

const OID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

/// The most bytes of challenge accepted; the hub's are 32 or so.
pub const MAX_CHALLENGE_LEN: usize = 4096;

/// Verifies an enrolment: `chain` (DER, end-entity first, then intermediates) must lead to one
/// of `anchors`' roots; every certificate must be valid at `now` and, when CRLs are configured,
/// covered by an unexpired CRL that does not list it; the end-entity must allow
/// digitalSignature (an EKU, if present, must include clientAuth; none, as on JPKI, is fine)
/// and must not be a CA; and `signature` must be the end-entity key's signature over
/// `challenge`:
/// - RSA keys (2048–8192 bits): RSASSA-PKCS1-v1_5 with SHA-256;
/// - ECDSA P-256 keys: ECDSA with SHA-256, the signature as an ASN.1 DER `Ecdsa-Sig-Value`
///   (what OpenSSL and `node:crypto` produce; WebCrypto's raw r‖s must be converted).
///
/// Checks run in that order, so an expired and revoked certificate reports `Expired`.
pub fn verify_enrolment(
    anchors: &TrustAnchors,
    chain: &[Vec<u8>],
    challenge: &[u8],
    signature: &[u8],
    now: DateTime<Utc>,
) -> Result<VerifiedIdentity, EnrolmentError> {
    check_chain_len(chain.len())?;
    if challenge.is_empty() || challenge.len() > MAX_CHALLENGE_LEN {
        return Err(EnrolmentError::Malformed(format!(
            "the challenge must be 1 to {MAX_CHALLENGE_LEN} bytes"
        )));
    }
    let parsed = chain
        .iter()
        .enumerate()
        .map(|(i, der)| parse_certificate(der, i))
        .collect::<Result<Vec<_>, _>>()?;
    let ders: Vec<CertificateDer<'_>> = chain
        .iter()
        .map(|d| CertificateDer::from(d.as_slice()))
        .collect();
    let (ee_der, intermediates) = ders
        .split_first()
        .ok_or_else(|| EnrolmentError::Malformed("the certificate chain is empty".into()))?;
    let ee_parsed = parsed
        .first()
        .ok_or_else(|| EnrolmentError::Malformed("the certificate chain is empty".into()))?;
    let ee = EndEntityCert::try_from(ee_der).map_err(|e| {
        EnrolmentError::Malformed(format!(
            "the end-entity certificate is not acceptable X.509 ({e:?})"
        ))
    })?;

    let crl_refs: Vec<&CertRevocationList<'static>> = anchors.crls.iter().map(|(_, c)| c).collect();
    let revocation = RevocationOptionsBuilder::new(&crl_refs).ok().map(|b| {
        b.with_depth(RevocationCheckDepth::Chain)
            .with_status_policy(UnknownStatusPolicy::Deny)
            .with_expiration_policy(ExpirationPolicy::Enforce)
            .build()
    });
    let time = UnixTime::since_unix_epoch(Duration::from_secs(
        u64::try_from(now.timestamp()).unwrap_or(0),
    ));
    let path = ee
        .verify_for_usage(
            CHAIN_ALGS,
            &anchors.anchors,
            intermediates,
            time,
            KeyUsage::client_auth(),
            revocation,
            None,
        )
        .map_err(chain_error)?;

    check_key_usage(ee_parsed)?;

    let algorithm = challenge_algorithm(ee_parsed)?;
    ee.verify_signature(algorithm, challenge, signature)
        .map_err(|e| match e {
            webpki::Error::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
                EnrolmentError::UnsupportedAlgorithm(
                    "the end-entity's key does not match its algorithm".into(),
                )
            }
            _ => EnrolmentError::BadSignature,
        })?;

    let attributes = attributes::read(ee_parsed).map_err(EnrolmentError::Malformed)?;
    // The identity holds no longer than the shortest-lived certificate of the path.
    let mut not_after = to_chrono(ee_parsed.tbs_certificate().validity().not_after)?;
    for intermediate in path.intermediate_certificates() {
        let used = ders
            .iter()
            .position(|d| d.as_ref() == intermediate.der().as_ref())
            .and_then(|i| parsed.get(i));
        if let Some(cert) = used {
            not_after = not_after.min(to_chrono(cert.tbs_certificate().validity().not_after)?);
        }
    }
    Ok(VerifiedIdentity {
        key_hash: KeyHash::of_spki(ee.subject_public_key_info().as_ref()),
        attributes,
        not_after,
    })
}

/// The key hash of a certificate (DER), as [`verify_enrolment`] records it: how an operator
/// account is tied to the identity its holder enrolled with. Checks nothing else.
pub fn key_hash_of_certificate(der: &[u8]) -> Result<KeyHash, EnrolmentError> {
    let der = CertificateDer::from(der);
    let cert = EndEntityCert::try_from(&der)
        .map_err(|e| EnrolmentError::Malformed(format!("certificate: {e}")))?;
    Ok(KeyHash::of_spki(cert.subject_public_key_info().as_ref()))
}

/// The end-entity must carry keyUsage with digitalSignature. An absent keyUsage means "any use"
/// under RFC 5280, but a signing certificate (JPKI's included) always states it, so its absence
/// is refused rather than guessed at.
fn check_key_usage(cert: &Certificate) -> Result<(), EnrolmentError> {
    match cert.tbs_certificate().get_extension::<KeyUsageExt>() {
        Ok(Some((_, ku))) if ku.digital_signature() => Ok(()),
        Ok(Some(_)) => Err(EnrolmentError::BadKeyUsage(
            "its keyUsage lacks digitalSignature".into(),
        )),
        Ok(None) => Err(EnrolmentError::BadKeyUsage(
            "it has no keyUsage extension".into(),
        )),
        Err(_) => Err(EnrolmentError::Malformed(
            "the end-entity's keyUsage extension is malformed".into(),
        )),
    }
}

fn challenge_algorithm(
    cert: &Certificate,
) -> Result<&'static dyn SignatureVerificationAlgorithm, EnrolmentError> {
    let spki = cert.tbs_certificate().subject_public_key_info();
    let oid = spki.algorithm.oid;
    if oid == OID_RSA_ENCRYPTION {
        return Ok(algs::RSA_PKCS1_2048_8192_SHA256);
    }
    if oid == OID_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
        return match curve {
            Some(c) if c == OID_P256 => Ok(algs::ECDSA_P256_SHA256),
            Some(c) => Err(EnrolmentError::UnsupportedAlgorithm(format!(
                "elliptic curve `{c}` (only P-256 is accepted)"
            ))),
            None => Err(EnrolmentError::Malformed(
                "the end-entity's EC key names no curve".into(),
            )),
        };
    }
    Err(EnrolmentError::UnsupportedAlgorithm(format!(
        "public key algorithm `{oid}` (RSA and ECDSA P-256 are accepted)"
    )))
}

fn to_chrono(time: Time) -> Result<DateTime<Utc>, EnrolmentError> {
    unix_to_chrono(time.to_unix_duration())
}

fn unix_to_chrono(d: Duration) -> Result<DateTime<Utc>, EnrolmentError> {
    i64::try_from(d.as_secs())
        .ok()
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .ok_or_else(|| EnrolmentError::Malformed("a date is out of range".into()))
}

fn webpki_time(t: UnixTime) -> DateTime<Utc> {
    unix_to_chrono(Duration::from_secs(t.as_secs())).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// webpki's verdict on the chain, as one of ours.
fn chain_error(e: webpki::Error) -> EnrolmentError {
    use webpki::Error as W;
    match e {
        // A matching issuer name whose signature does not verify is a forged or foreign issuer.
        W::UnknownIssuer | W::InvalidSignatureForPublicKey | W::CertDistrusted => {
            EnrolmentError::UnknownIssuer
        }
        W::CertExpired { not_after, .. } => EnrolmentError::Expired {
            not_after: webpki_time(not_after),
        },
        W::CertNotValidYet { not_before, .. } => EnrolmentError::NotYetValid {
            not_before: webpki_time(not_before),
        },
        W::CertRevoked => EnrolmentError::Revoked,
        W::CrlExpired { next_update, .. } => EnrolmentError::CrlExpired {
            next_update: webpki_time(next_update),
        },
        W::UnknownRevocationStatus => EnrolmentError::RevocationUnknown,
        W::InvalidCrlSignatureForPublicKey => {
            EnrolmentError::CrlInvalid("its signature does not verify with its issuer's key".into())
        }
        W::IssuerNotCrlSigner => {
            EnrolmentError::CrlInvalid("its issuer may not sign revocation lists".into())
        }
        W::UnsupportedCrlSignatureAlgorithmContext(_)
        | W::UnsupportedCrlSignatureAlgorithmForPublicKeyContext(_) => {
            EnrolmentError::CrlInvalid("its signature algorithm is not supported".into())
        }
        W::InvalidCrlNumber
        | W::UnsupportedCrlVersion
        | W::UnsupportedDeltaCrl
        | W::UnsupportedIndirectCrl
        | W::UnsupportedCrlIssuingDistributionPoint
        | W::UnsupportedRevocationReason
        | W::UnsupportedRevocationReasonsPartitioning => {
            EnrolmentError::CrlInvalid(format!("{e:?}"))
        }
        W::RequiredEkuNotFoundContext(_) | W::EmptyEkuExtension => {
            EnrolmentError::BadKeyUsage("its extended key usage does not include clientAuth".into())
        }
        W::CaUsedAsEndEntity => {
            EnrolmentError::BadKeyUsage("it is a CA certificate, not a resident's".into())
        }
        W::UnsupportedSignatureAlgorithmContext(_)
        | W::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
            EnrolmentError::UnsupportedAlgorithm("a certificate's signature algorithm".into())
        }
        W::BadDer
        | W::BadDerTime
        | W::TrailingData(_)
        | W::UnsupportedCertVersion
        | W::MalformedExtensions
        | W::ExtensionValueInvalid
        | W::InvalidSerialNumber
        | W::InvalidCertValidity
        | W::MalformedNameConstraint
        | W::MalformedDnsIdentifier => {
            EnrolmentError::Malformed(format!("a certificate of the chain is malformed ({e:?})"))
        }
        other => EnrolmentError::InvalidChain(format!("{other:?}")),
    }
}
