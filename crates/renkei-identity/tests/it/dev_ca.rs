//! What the development CA makes: certificates shaped like a My Number card's signing
//! certificate, a CRL, and a CA that survives being saved and loaded between CLI calls.
use crate::common::*;
use chrono::Duration;
use renkei_identity::dev_ca::{CRL_FILE, ROOT_CERT_FILE, ROOT_KEY_FILE};
use renkei_identity::{
    DevCa, DevCaError, EnrolmentError, IdentityAttributes, KeyAlgorithm, TrustAnchors, Validity,
    sign_challenge,
};
use x509_cert::Certificate;
use x509_cert::certificate::Rfc5280;
use x509_cert::crl::CertificateList;
use x509_cert::der::Decode;
use x509_cert::ext::pkix::name::DirectoryString;
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage};

#[test]
fn a_residents_certificate_is_a_signing_certificate_with_a_utf8_japanese_name() {
    let ca = DevCa::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let resident = resident(&ca, KeyAlgorithm::Rsa2048);
    let cert = Certificate::from_der(&resident.cert_der).unwrap();
    let tbs = cert.tbs_certificate();
    let (critical, ku) = tbs.get_extension::<KeyUsage>().unwrap().unwrap();
    assert!(critical);
    assert!(ku.digital_signature() && ku.non_repudiation());
    assert!(!ku.key_cert_sign());
    assert!(tbs.get_extension::<ExtendedKeyUsage>().unwrap().is_none());
    let (_, bc) = tbs.get_extension::<BasicConstraints>().unwrap().unwrap();
    assert!(!bc.ca);
    let cn = tbs.subject().common_name().unwrap().unwrap();
    assert_eq!(cn, DirectoryString::Utf8String("山田 花子".into()));
    assert_eq!(tbs.serial_number().as_bytes(), resident.serial.as_slice());
    assert!(
        tbs.issuer()
            == Certificate::from_der(ca.root_der())
                .unwrap()
                .tbs_certificate()
                .subject()
    );
}

#[test]
fn the_root_is_a_ca_that_may_sign_certificates_and_crls() {
    let ca = DevCa::generate(KeyAlgorithm::Rsa2048).unwrap();
    let root =
        Certificate::from_der(&renkei_identity::parse_chain(ca.root_pem()).unwrap()[0]).unwrap();
    let tbs = root.tbs_certificate();
    assert_eq!(tbs.subject(), tbs.issuer());
    let (_, bc) = tbs.get_extension::<BasicConstraints>().unwrap().unwrap();
    assert!(bc.ca);
    let (_, ku) = tbs.get_extension::<KeyUsage>().unwrap().unwrap();
    assert!(ku.key_cert_sign() && ku.crl_sign());
}

#[test]
fn the_crl_lists_revoked_serials_and_is_fresh_for_thirty_days() {
    let mut ca = DevCa::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let first = resident(&ca, KeyAlgorithm::EcdsaP256);
    let second = resident(&ca, KeyAlgorithm::EcdsaP256);
    ca.revoke(&first.serial);
    ca.revoke(&first.serial);
    assert_eq!(
        ca.revoke_certificate(second.cert_pem.as_bytes()).unwrap(),
        second.serial
    );
    let crl = CertificateList::<Rfc5280>::from_der(&ca.crl_der().unwrap()).unwrap();
    let serials: Vec<_> = crl
        .tbs_cert_list
        .revoked_certificates
        .unwrap()
        .iter()
        .map(|r| r.serial_number.as_bytes().to_vec())
        .collect();
    assert_eq!(serials, [first.serial, second.serial]);
    let next = crl
        .tbs_cert_list
        .next_update
        .unwrap()
        .to_unix_duration()
        .as_secs() as i64;
    let in_thirty_days = (now() + Duration::days(30)).timestamp();
    assert!(
        (next - in_thirty_days).abs() < 60,
        "{next} vs {in_thirty_days}"
    );
}

#[test]
fn a_saved_ca_loads_with_its_revocations_and_keeps_issuing_under_the_same_root() {
    let dir = tempfile::tempdir().unwrap();
    let mut ca = DevCa::generate(KeyAlgorithm::Rsa2048).unwrap();
    let revoked = resident(&ca, KeyAlgorithm::EcdsaP256);
    ca.revoke(&revoked.serial);
    let [cert, key, crl] = ca.save(dir.path()).unwrap();
    assert_eq!(cert, dir.path().join(ROOT_CERT_FILE));
    assert_eq!(key, dir.path().join(ROOT_KEY_FILE));
    assert_eq!(crl, dir.path().join(CRL_FILE));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the root key is readable by others: {mode:o}"
        );
    }

    let loaded = DevCa::load(dir.path()).unwrap();
    assert_eq!(loaded.root_der(), ca.root_der());
    assert_eq!(loaded.algorithm(), KeyAlgorithm::Rsa2048);
    assert!(loaded.is_revoked(&revoked.serial));
    let later = resident(&loaded, KeyAlgorithm::Rsa2048);

    // The operator's view: the files on disk.
    let anchors = TrustAnchors::new(&[std::fs::read(&cert).unwrap()])
        .unwrap()
        .with_crls(&[std::fs::read(&crl).unwrap()])
        .unwrap();
    enrol(&anchors, &later).unwrap();
    assert_eq!(enrol(&anchors, &revoked), Err(EnrolmentError::Revoked));
}

#[test]
fn loading_refuses_a_key_that_does_not_belong_to_the_root() {
    let dir = tempfile::tempdir().unwrap();
    DevCa::generate(KeyAlgorithm::EcdsaP256)
        .unwrap()
        .save(dir.path())
        .unwrap();
    let other = tempfile::tempdir().unwrap();
    DevCa::generate(KeyAlgorithm::EcdsaP256)
        .unwrap()
        .save(other.path())
        .unwrap();
    std::fs::copy(
        other.path().join(ROOT_KEY_FILE),
        dir.path().join(ROOT_KEY_FILE),
    )
    .unwrap();
    assert!(matches!(
        DevCa::load(dir.path()),
        Err(DevCaError::Corrupt { .. })
    ));
}

#[test]
fn loading_an_empty_directory_says_which_file_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let err = DevCa::load(dir.path()).unwrap_err();
    assert!(matches!(err, DevCaError::Io { .. }));
    assert!(err.to_string().contains(ROOT_CERT_FILE), "{err}");
}

#[test]
fn challenge_signatures_are_pkcs1_for_rsa_and_der_ecdsa_for_p256() {
    let ca = DevCa::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let rsa = sign_challenge(&resident(&ca, KeyAlgorithm::Rsa2048).key_pem, CHALLENGE).unwrap();
    assert_eq!(rsa.len(), 256);
    // PKCS#1 v1.5 is deterministic, ECDSA is not.
    let rsa_key = resident(&ca, KeyAlgorithm::Rsa2048).key_pem;
    assert_eq!(
        sign_challenge(&rsa_key, CHALLENGE).unwrap(),
        sign_challenge(&rsa_key, CHALLENGE).unwrap()
    );
    let ec = sign_challenge(&resident(&ca, KeyAlgorithm::EcdsaP256).key_pem, CHALLENGE).unwrap();
    assert_eq!(ec[0], 0x30, "a DER SEQUENCE");
    assert!((8..=72).contains(&ec.len()));
}

#[test]
fn signing_with_something_that_is_not_a_key_fails_cleanly() {
    assert!(matches!(
        sign_challenge("not a key", CHALLENGE),
        Err(DevCaError::UnsupportedKey)
    ));
    let ca = DevCa::generate(KeyAlgorithm::EcdsaP256).unwrap();
    assert!(sign_challenge(ca.root_pem(), CHALLENGE).is_err());
}

#[test]
fn issuing_refuses_an_empty_name_an_unprintable_serial_and_an_empty_validity() {
    let ca = DevCa::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let issue = |attributes: &IdentityAttributes, validity| {
        ca.issue_resident(attributes, validity, KeyAlgorithm::EcdsaP256)
    };
    assert!(matches!(
        issue(&IdentityAttributes::new("  "), a_year()),
        Err(DevCaError::Attributes(_))
    ));
    let mut bad_serial = hanako();
    bad_serial.serial_number = Some("番号".into());
    assert!(matches!(
        issue(&bad_serial, a_year()),
        Err(DevCaError::Attributes(_))
    ));
    let backwards = Validity {
        not_before: now(),
        not_after: now() - Duration::days(1),
    };
    assert!(matches!(
        issue(&hanako(), backwards),
        Err(DevCaError::Validity)
    ));
}

#[test]
fn key_algorithms_read_from_their_cli_names() {
    assert_eq!(
        "rsa".parse::<KeyAlgorithm>().unwrap(),
        KeyAlgorithm::Rsa2048
    );
    assert_eq!(
        "ECDSA".parse::<KeyAlgorithm>().unwrap(),
        KeyAlgorithm::EcdsaP256
    );
    assert_eq!(KeyAlgorithm::EcdsaP256.to_string(), "ecdsa");
    let err = "dsa".parse::<KeyAlgorithm>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown key algorithm `dsa` (use `rsa` or `ecdsa`)"
    );
}

#[test]
fn revoking_a_certificate_another_ca_issued_is_refused() {
    let mut ca = DevCa::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let other = DevCa::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let foreign = resident(&other, KeyAlgorithm::EcdsaP256);
    assert!(matches!(
        ca.revoke_certificate(foreign.cert_pem.as_bytes()),
        Err(DevCaError::NotIssuedHere)
    ));
    assert!(matches!(
        ca.revoke_certificate(b"not a certificate"),
        Err(DevCaError::Certificate(_))
    ));
    assert_eq!(ca.revoked_serials().count(), 0);
}
