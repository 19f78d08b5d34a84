//! Fixtures shared by the behaviour tests: residents from the development CA, and hand-made
//! certificates (rcgen) for the shapes the development CA never makes.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails loudly"
)]

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, DnValue, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SerialNumber, SignatureAlgorithm,
};
use renkei_identity::{
    DevCa, EnrolmentError, IdentityAttributes, IssuedCertificate, KeyAlgorithm, TrustAnchors,
    Validity, VerifiedIdentity, sign_challenge, verify_enrolment,
};

pub const CHALLENGE: &[u8] = b"renkei enrolment challenge 7f3a9c";

pub fn now() -> DateTime<Utc> {
    Utc::now()
}

pub fn hanako() -> IdentityAttributes {
    IdentityAttributes {
        name: "山田 花子".into(),
        serial_number: Some("HK-000123".into()),
        address: Some("ひかり台市中央1-2-3".into()),
        date_of_birth: NaiveDate::from_ymd_opt(1988, 4, 1),
    }
}

pub fn a_year() -> Validity {
    Validity::days_from(now(), 365)
}

pub fn anchors(ca: &DevCa) -> TrustAnchors {
    TrustAnchors::new(&[ca.root_pem()]).unwrap()
}

pub fn anchors_with_crl(ca: &DevCa) -> TrustAnchors {
    anchors(ca).with_crls(&[ca.crl_pem().unwrap()]).unwrap()
}

/// A resident of `ca` signs [`CHALLENGE`] and the hub verifies it.
pub fn enrol(
    anchors: &TrustAnchors,
    resident: &IssuedCertificate,
) -> Result<VerifiedIdentity, EnrolmentError> {
    let signature = sign_challenge(&resident.key_pem, CHALLENGE).unwrap();
    verify_enrolment(
        anchors,
        std::slice::from_ref(&resident.cert_der),
        CHALLENGE,
        &signature,
        now(),
    )
}

pub fn resident(ca: &DevCa, algorithm: KeyAlgorithm) -> IssuedCertificate {
    ca.issue_resident(&hanako(), a_year(), algorithm).unwrap()
}

/// A hand-made CA (rcgen), for chains and certificates the development CA does not make.
pub struct TestCa {
    pub key: KeyPair,
    pub params: CertificateParams,
    pub der: Vec<u8>,
}

pub fn key_for(alg: &'static SignatureAlgorithm) -> KeyPair {
    if alg == &rcgen::PKCS_RSA_SHA256 {
        KeyPair::generate_rsa_for(alg, rcgen::RsaKeySize::_2048).unwrap()
    } else {
        KeyPair::generate_for(alg).unwrap()
    }
}

fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, DnValue::Utf8String(cn.into()));
    dn
}

fn ca_params(cn: &str, validity: Validity) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = name(cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = to_time(validity.not_before);
    params.not_after = to_time(validity.not_after);
    params.key_identifier_method = KeyIdMethod::Sha256;
    params
}

pub fn to_time(t: DateTime<Utc>) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(t.timestamp()).unwrap()
}

impl TestCa {
    pub fn root(cn: &str, alg: &'static SignatureAlgorithm) -> Self {
        let key = key_for(alg);
        let params = ca_params(cn, Validity::days_from(now(), 3650));
        let der = params.self_signed(&key).unwrap().der().to_vec();
        Self { key, params, der }
    }

    pub fn intermediate(&self, cn: &str, validity: Validity) -> Self {
        let key = key_for(&rcgen::PKCS_ECDSA_P256_SHA256);
        let mut params = ca_params(cn, validity);
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(SerialNumber::from_slice(&[0x42, 0x01]));
        let der = params
            .signed_by(&key, &Issuer::from_params(&self.params, &self.key))
            .unwrap()
            .der()
            .to_vec();
        Self { key, params, der }
    }

    pub fn issue(&self, spec: &EndEntity) -> IssuedCertificate {
        let key = key_for(spec.algorithm);
        let mut params = CertificateParams::default();
        params.distinguished_name = name(&spec.name);
        params.key_usages = spec.key_usages.clone();
        params.extended_key_usages = spec.extended_key_usages.clone();
        params.is_ca = spec.is_ca;
        params.not_before = to_time(spec.validity.not_before);
        params.not_after = to_time(spec.validity.not_after);
        params.serial_number = Some(SerialNumber::from_slice(&spec.serial));
        params.use_authority_key_identifier_extension = true;
        let cert = params
            .signed_by(&key, &Issuer::from_params(&self.params, &self.key))
            .unwrap();
        IssuedCertificate {
            serial: spec.serial.clone(),
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key_pem: key.serialize_pem(),
        }
    }

    pub fn crl(
        &self,
        revoked: &[&[u8]],
        this_update: DateTime<Utc>,
        next_update: DateTime<Utc>,
    ) -> Vec<u8> {
        CertificateRevocationListParams {
            this_update: to_time(this_update),
            next_update: to_time(next_update),
            crl_number: SerialNumber::from_slice(&[1]),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|s| RevokedCertParams {
                    serial_number: SerialNumber::from_slice(s),
                    revocation_time: to_time(this_update),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(&Issuer::from_params(&self.params, &self.key))
        .unwrap()
        .der()
        .to_vec()
    }

    pub fn fresh_crl(&self, revoked: &[&[u8]]) -> Vec<u8> {
        self.crl(
            revoked,
            now() - Duration::hours(1),
            now() + Duration::days(7),
        )
    }
}

/// What a hand-made end-entity certificate looks like; `Default` is a proper signing one.
pub struct EndEntity {
    pub name: String,
    pub algorithm: &'static SignatureAlgorithm,
    pub key_usages: Vec<KeyUsagePurpose>,
    pub extended_key_usages: Vec<ExtendedKeyUsagePurpose>,
    pub is_ca: IsCa,
    pub validity: Validity,
    pub serial: Vec<u8>,
}

impl Default for EndEntity {
    fn default() -> Self {
        Self {
            name: "佐藤 一郎".into(),
            algorithm: &rcgen::PKCS_ECDSA_P256_SHA256,
            key_usages: vec![KeyUsagePurpose::DigitalSignature],
            extended_key_usages: Vec::new(),
            is_ca: IsCa::ExplicitNoCa,
            validity: Validity::days_from(now(), 30),
            serial: vec![0x10, 0x20, 0x30],
        }
    }
}
