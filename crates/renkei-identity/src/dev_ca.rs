//! A development certificate authority that plays JPKI's part in tests, demos and
//! `renkei dev-ca`: a self-signed root, resident signing certificates, a CRL, and the
//! challenge signature a card would make. Never a production CA: its key sits in a plain file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CustomExtension,
    DistinguishedName, DnType, DnValue, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    PublicKeyData, RsaKeySize, SerialNumber, SigningKey,
};
use rustls_pki_types::pem::SectionKind;
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::certificate::Rfc5280;
use x509_cert::crl::CertificateList;
use x509_cert::der::{Decode, Encode};

use crate::IdentityAttributes;
use crate::attributes::{OID_SERIAL_NUMBER, OID_STREET_ADDRESS, date_of_birth_extension};
use crate::chain::der_items;
use crate::enrolment::KeyHash;

/// File names inside a development CA's directory.
pub const ROOT_CERT_FILE: &str = "root.pem";
pub const ROOT_KEY_FILE: &str = "root-key.pem";
pub const CRL_FILE: &str = "crl.pem";

/// How long a CRL from [`DevCa::crl_pem`] stays fresh.
pub const CRL_LIFETIME_DAYS: i64 = 30;

/// The key types enrolment accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// RSA 2048 bits, signatures RSASSA-PKCS1-v1_5 with SHA-256 (as JPKI's cards).
    Rsa2048,
    /// ECDSA on P-256 with SHA-256, DER signatures.
    EcdsaP256,
}

impl KeyAlgorithm {
    fn generate(self) -> Result<KeyPair, DevCaError> {
        match self {
            Self::Rsa2048 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048),
            Self::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        }
        .map_err(|e| DevCaError::Crypto(e.to_string()))
    }

    fn of(key: &KeyPair) -> Option<Self> {
        let alg = key.algorithm();
        if alg == &rcgen::PKCS_RSA_SHA256 {
            Some(Self::Rsa2048)
        } else if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
            Some(Self::EcdsaP256)
        } else {
            None
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Rsa2048 => "rsa",
            Self::EcdsaP256 => "ecdsa",
        })
    }
}

impl FromStr for KeyAlgorithm {
    type Err = DevCaError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "rsa" | "rsa2048" | "rsa-2048" => Ok(Self::Rsa2048),
            "ecdsa" | "p256" | "p-256" | "ecdsa-p256" => Ok(Self::EcdsaP256),
            _ => Err(DevCaError::UnknownAlgorithm(s.to_owned())),
        }
    }
}

/// What went wrong in the development CA.
#[derive(Debug, thiserror::Error)]
pub enum DevCaError {
    #[error("unknown key algorithm `{0}` (use `rsa` or `ecdsa`)")]
    UnknownAlgorithm(String),
    #[error("the key is not an RSA or ECDSA P-256 private key in PEM")]
    UnsupportedKey,
    #[error("invalid resident attributes: {0}")]
    Attributes(String),
    #[error("invalid validity: not_after must be after not_before, both within years 1950–9999")]
    Validity,
    #[error("cryptography failed: {0}")]
    Crypto(String),
    #[error("not a certificate: {0}")]
    Certificate(String),
    #[error("the certificate was not issued by this development CA")]
    NotIssuedHere,
    #[error("`{}` does not hold a development CA: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("cannot access `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn crypto(e: rcgen::Error) -> DevCaError {
    DevCaError::Crypto(e.to_string())
}

/// A validity period for a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
}

impl Validity {
    /// From `start` (backdated a minute, for clocks slightly behind) for `days` days.
    pub fn days_from(start: DateTime<Utc>, days: i64) -> Self {
        Self {
            not_before: start - Duration::minutes(1),
            not_after: start + Duration::days(days),
        }
    }
}

/// A resident's certificate and private key, as a card would hold them.
#[derive(Clone)]
pub struct IssuedCertificate {
    /// The certificate's serial number (DER INTEGER content), for [`DevCa::revoke`].
    pub serial: Vec<u8>,
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
    /// PKCS#8 private key, PEM.
    pub key_pem: String,
}

impl fmt::Debug for IssuedCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCertificate")
            .field("serial", &hex(&self.serial))
            .field("key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// A revoked serial and when it was revoked.
type Revoked = (Vec<u8>, DateTime<Utc>);

/// A self-signed root with its key and revocation list.
pub struct DevCa {
    key: KeyPair,
    /// The root's parameters as needed to sign under it (name, key usages, key id method).
    params: CertificateParams,
    cert_pem: String,
    cert_der: Vec<u8>,
    /// In the order revoked.
    revoked: Vec<Revoked>,
}

impl fmt::Debug for DevCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevCa")
            .field("algorithm", &self.algorithm())
            .field("revoked", &self.revoked.len())
            .finish_non_exhaustive()
    }
}

impl DevCa {
    /// A new root with a fresh key, valid from a day ago for twenty years.
    pub fn generate(algorithm: KeyAlgorithm) -> Result<Self, DevCaError> {
        let key = algorithm.generate()?;
        let mut params = root_params(root_common_name(&key));
        let now = Utc::now();
        params.not_before = to_time(now - Duration::days(1))?;
        params.not_after = to_time(now + Duration::days(20 * 365))?;
        params.serial_number = Some(random_serial()?);
        let cert = params.self_signed(&key).map_err(crypto)?;
        Ok(Self {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key,
            params,
            revoked: Vec::new(),
        })
    }

    pub fn algorithm(&self) -> KeyAlgorithm {
        KeyAlgorithm::of(&self.key).unwrap_or(KeyAlgorithm::Rsa2048)
    }

    /// The root certificate (the trust anchor to configure), PEM.
    pub fn root_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The root certificate, DER.
    pub fn root_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// Issues a resident's signing certificate with a fresh key of `algorithm`: keyUsage
    /// digitalSignature and nonRepudiation (as JPKI's), no EKU, the name as a UTF8String
    /// commonName, the other attributes where [`crate::IdentityAttributes`] says.
    pub fn issue_resident(
        &self,
        attributes: &IdentityAttributes,
        validity: Validity,
        algorithm: KeyAlgorithm,
    ) -> Result<IssuedCertificate, DevCaError> {
        if attributes.name.trim().is_empty() {
            return Err(DevCaError::Attributes("the name is empty".into()));
        }
        let key = algorithm.generate()?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            DnValue::Utf8String(attributes.name.clone()),
        );
        if let Some(serial) = &attributes.serial_number {
            let printable = rcgen::string::PrintableString::try_from(serial.as_str())
                .map_err(|_| DevCaError::Attributes("the serial number is not printable".into()))?;
            dn.push(
                DnType::CustomDnType(oid_arcs(&OID_SERIAL_NUMBER)),
                DnValue::PrintableString(printable),
            );
        }
        if let Some(address) = &attributes.address {
            dn.push(
                DnType::CustomDnType(oid_arcs(&OID_STREET_ADDRESS)),
                DnValue::Utf8String(address.clone()),
            );
        }
        params.distinguished_name = dn;
        if let Some(date) = attributes.date_of_birth {
            let content = date_of_birth_extension(date).map_err(DevCaError::Attributes)?;
            // subjectDirectoryAttributes, 2.5.29.9; never critical (RFC 5280 4.2.1.8).
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(&[2, 5, 29, 9], content));
        }
        if validity.not_after <= validity.not_before {
            return Err(DevCaError::Validity);
        }
        params.not_before = to_time(validity.not_before)?;
        params.not_after = to_time(validity.not_after)?;
        params.serial_number = Some(random_serial()?);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::ContentCommitment,
        ];
        params.use_authority_key_identifier_extension = true;
        let serial = params
            .serial_number
            .as_ref()
            .map(SerialNumber::to_bytes)
            .unwrap_or_default();
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).map_err(crypto)?;
        Ok(IssuedCertificate {
            serial,
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Adds `serial` to the revocation list, revoked now. Revoking twice changes nothing.
    pub fn revoke(&mut self, serial: &[u8]) {
        if !self.is_revoked(serial) {
            self.revoked.push((serial.to_vec(), Utc::now()));
        }
    }

    /// Revokes the certificate `cert` (PEM or DER) if this CA issued it; returns its serial.
    pub fn revoke_certificate(&mut self, cert: &[u8]) -> Result<Vec<u8>, DevCaError> {
        let cert = first_certificate(cert)?;
        let root = Certificate::from_der(&self.cert_der)
            .map_err(|_| DevCaError::Certificate("the root is unreadable".into()))?;
        if cert.tbs_certificate().issuer() != root.tbs_certificate().subject() {
            return Err(DevCaError::NotIssuedHere);
        }
        let serial = cert.tbs_certificate().serial_number().as_bytes().to_vec();
        self.revoke(&serial);
        Ok(serial)
    }

    pub fn is_revoked(&self, serial: &[u8]) -> bool {
        self.revoked.iter().any(|(s, _)| s == serial)
    }

    /// The revoked serials, in the order revoked.
    pub fn revoked_serials(&self) -> impl Iterator<Item = &[u8]> {
        self.revoked.iter().map(|(s, _)| s.as_slice())
    }

    /// A CRL signed by the root, issued a minute ago and fresh for [`CRL_LIFETIME_DAYS`].
    pub fn crl_der(&self) -> Result<Vec<u8>, DevCaError> {
        let now = Utc::now();
        self.crl_der_at(
            now - Duration::minutes(1),
            now + Duration::days(CRL_LIFETIME_DAYS),
        )
    }

    /// [`DevCa::crl_der`] as PEM.
    pub fn crl_pem(&self) -> Result<String, DevCaError> {
        Ok(pem_encode("X509 CRL", &self.crl_der()?))
    }

    /// A CRL with the given thisUpdate and nextUpdate (tests make stale ones with it).
    pub fn crl_der_at(
        &self,
        this_update: DateTime<Utc>,
        next_update: DateTime<Utc>,
    ) -> Result<Vec<u8>, DevCaError> {
        if next_update <= this_update {
            return Err(DevCaError::Validity);
        }
        let revoked_certs = self
            .revoked
            .iter()
            .map(|(serial, at)| {
                Ok(rcgen::RevokedCertParams {
                    serial_number: SerialNumber::from_slice(serial),
                    revocation_time: to_time(*at)?,
                    reason_code: None,
                    invalidity_date: None,
                })
            })
            .collect::<Result<Vec<_>, DevCaError>>()?;
        // The CRL number must grow with each CRL; seconds since the epoch do, for a dev CA.
        let number = u64::try_from(this_update.timestamp()).unwrap_or(0).max(1);
        let params = CertificateRevocationListParams {
            this_update: to_time(this_update)?,
            next_update: to_time(next_update)?,
            crl_number: SerialNumber::from_slice(&minimal_be(number)),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let issuer = Issuer::from_params(&self.params, &self.key);
        let crl = params.signed_by(&issuer).map_err(crypto)?;
        Ok(crl.der().to_vec())
    }

    /// Writes `root.pem`, `root-key.pem` (owner-only on Unix) and a fresh `crl.pem` into
    /// `dir`, creating it if needed. Returns the three paths in that order.
    pub fn save(&self, dir: &Path) -> Result<[PathBuf; 3], DevCaError> {
        std::fs::create_dir_all(dir).map_err(|source| DevCaError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let cert = dir.join(ROOT_CERT_FILE);
        let key = dir.join(ROOT_KEY_FILE);
        let crl = dir.join(CRL_FILE);
        write_file(&cert, self.cert_pem.as_bytes(), false)?;
        write_file(&key, self.key.serialize_pem().as_bytes(), true)?;
        write_file(&crl, self.crl_pem()?.as_bytes(), false)?;
        Ok([cert, key, crl])
    }

    /// Reads a CA written by [`DevCa::save`]; the revoked serials come from `crl.pem` (a
    /// missing one means none).
    pub fn load(dir: &Path) -> Result<Self, DevCaError> {
        let cert_path = dir.join(ROOT_CERT_FILE);
        let key_path = dir.join(ROOT_KEY_FILE);
        let cert_pem = read_file(&cert_path)?;
        let key_pem = read_file(&key_path)?;
        let corrupt = |path: &Path, reason: &str| DevCaError::Corrupt {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        let key = KeyPair::from_pem(&key_pem).map_err(|_| corrupt(&key_path, "no private key"))?;
        if KeyAlgorithm::of(&key).is_none() {
            return Err(corrupt(&key_path, "not an RSA or ECDSA P-256 key"));
        }
        let cert_der = der_items(cert_pem.as_bytes(), SectionKind::Certificate, "CERTIFICATE")
            .ok()
            .and_then(|items| items.into_iter().next())
            .ok_or_else(|| corrupt(&cert_path, "no certificate"))?;
        let cert = Certificate::from_der(&cert_der)
            .map_err(|_| corrupt(&cert_path, "not an X.509 certificate"))?;
        let stored_spki = cert
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .map_err(|_| corrupt(&cert_path, "unreadable public key"))?;
        if stored_spki != key.subject_public_key_info() {
            return Err(corrupt(&key_path, "the key does not belong to the root"));
        }
        let common_name = cert
            .tbs_certificate()
            .subject()
            .common_name()
            .ok()
            .flatten()
            .map(String::from)
            .ok_or_else(|| corrupt(&cert_path, "the root has no commonName"))?;
        let params = root_params(common_name);
        // Certificates are issued under the rebuilt name, so it must be the stored one.
        let probe = params.self_signed(&key).map_err(crypto)?;
        let probe = Certificate::from_der(probe.der()).map_err(|_| corrupt(&cert_path, "?"))?;
        if probe.tbs_certificate().subject() != cert.tbs_certificate().subject() {
            return Err(corrupt(&cert_path, "the root was not made by this tool"));
        }
        let crl_path = dir.join(CRL_FILE);
        let revoked = match std::fs::read(&crl_path) {
            Ok(bytes) => read_revoked(&bytes).map_err(|r| corrupt(&crl_path, &r))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(DevCaError::Io {
                    path: crl_path,
                    source,
                });
            }
        };
        Ok(Self {
            key,
            params,
            cert_pem,
            cert_der,
            revoked,
        })
    }
}

/// Signs `challenge` with a resident's private key (PEM: PKCS#8, SEC1 or PKCS#1) the way
/// enrolment expects: RSASSA-PKCS1-v1_5 SHA-256 for RSA, DER ECDSA SHA-256 for P-256.
pub fn sign_challenge(key_pem: &str, challenge: &[u8]) -> Result<Vec<u8>, DevCaError> {
    let key = KeyPair::from_pem(key_pem).map_err(|_| DevCaError::UnsupportedKey)?;
    if KeyAlgorithm::of(&key).is_none() {
        return Err(DevCaError::UnsupportedKey);
    }
    key.sign(challenge).map_err(crypto)
}

/// The serial number of a certificate (PEM or DER), as [`DevCa::revoke`] takes it.
pub fn serial_of(cert: &[u8]) -> Result<Vec<u8>, DevCaError> {
    let cert = first_certificate(cert)?;
    Ok(cert.tbs_certificate().serial_number().as_bytes().to_vec())
}

fn first_certificate(cert: &[u8]) -> Result<Certificate, DevCaError> {
    let der = der_items(cert, SectionKind::Certificate, "CERTIFICATE")
        .map_err(DevCaError::Certificate)?
        .into_iter()
        .next()
        .ok_or_else(|| DevCaError::Certificate("it is empty".into()))?;
    Certificate::from_der(&der)
        .map_err(|_| DevCaError::Certificate("it is not a DER X.509 certificate".into()))
}

fn root_common_name(key: &KeyPair) -> String {
    let hash = KeyHash::of_spki(&key.subject_public_key_info()).to_string();
    // A per-key suffix keeps two development CAs apart by name as well as by key.
    format!("Renkei development CA {}", hash.get(..12).unwrap_or(&hash))
}

/// The root's parameters, rebuilt identically on load so certificates chain to the stored root.
fn root_params(common_name: String) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, DnValue::Utf8String(common_name));
    dn.push(
        DnType::OrganizationName,
        DnValue::Utf8String("Renkei development only".into()),
    );
    params.distinguished_name = dn;
    // Residents are issued directly under the root, as JPKI's signing CA does.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.key_identifier_method = KeyIdMethod::Sha256;
    params
}

fn read_revoked(crl: &[u8]) -> Result<Vec<Revoked>, String> {
    let der = der_items(crl, SectionKind::Crl, "X509 CRL")?
        .into_iter()
        .next()
        .ok_or("no CRL")?;
    let list = CertificateList::<Rfc5280>::from_der(&der).map_err(|_| "not an X.509 CRL")?;
    Ok(list
        .tbs_cert_list
        .revoked_certificates
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            let secs = i64::try_from(r.revocation_date.to_unix_duration().as_secs()).unwrap_or(0);
            (
                r.serial_number.as_bytes().to_vec(),
                DateTime::from_timestamp(secs, 0).unwrap_or_default(),
            )
        })
        .collect())
}

/// A positive 16-byte serial with no leading zero byte, so its DER form is these bytes.
fn random_serial() -> Result<SerialNumber, DevCaError> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| DevCaError::Crypto("no randomness".into()))?;
    bytes[0] = (bytes[0] & 0x7f).max(1);
    Ok(SerialNumber::from_slice(&bytes))
}

fn minimal_be(n: u64) -> Vec<u8> {
    let bytes = n.to_be_bytes();
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(7);
    bytes.get(first..).map(<[u8]>::to_vec).unwrap_or_default()
}

fn to_time(t: DateTime<Utc>) -> Result<OffsetDateTime, DevCaError> {
    let t = OffsetDateTime::from_unix_timestamp(t.timestamp()).map_err(|_| DevCaError::Validity)?;
    // X.509 times end at 9999 and UTCTime starts at 1950.
    if !(1950..=9999).contains(&t.year()) {
        return Err(DevCaError::Validity);
    }
    Ok(t)
}

fn oid_arcs(oid: &x509_cert::der::asn1::ObjectIdentifier) -> Vec<u64> {
    oid.arcs().map(u64::from).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// PEM with 64-column base64 lines.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn read_file(path: &Path) -> Result<String, DevCaError> {
    std::fs::read_to_string(path).map_err(|source| DevCaError::Io {
        path: path.to_owned(),
        source,
    })
}

fn write_file(path: &Path, contents: &[u8], secret: bool) -> Result<(), DevCaError> {
    use std::io::Write;
    let io = |source| DevCaError::Io {
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(path).map_err(io)?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)
}
