//! How the hub decides whether an enrolment proves a resident's identity (DESIGN.md flow 6):
//! a certificate chain to a configured root, valid now, not revoked, allowed to sign, and a
//! signature over the hub's challenge by the certificate's key.
use crate::common::*;
use chrono::{Duration, NaiveDate};
use rcgen::{ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose, SigningKey};
use renkei_identity::{
    DevCa, EnrolmentError, KeyAlgorithm, KeyHash, TrustAnchors, Validity, sign_challenge,
    verify_enrolment,
};
use x509_cert::Certificate;
use x509_cert::der::{Decode, Encode};

fn spki_hash(cert_der: &[u8]) -> KeyHash {
    let cert = Certificate::from_der(cert_der).unwrap();
    let spki = cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .unwrap();
    KeyHash::of_spki(&spki)
}

#[test]
fn an_rsa_resident_with_a_valid_signature_is_accepted_with_their_attributes() {
    let ca = DevCa::generate(KeyAlgorithm::Rsa2048).unwrap();
    let validity = a_year();
    let resident = ca
        .issue_resident(&hanako(), validity, KeyAlgorithm::Rsa2048)
        .unwrap();
    let identity = enrol(&anchors_with_crl(&ca), &resident).unwrap();
    assert_eq!(identity.attributes, hanako());
    assert_eq!(identity.attributes.name, "山田 花子");
    assert_eq!(
        identity.attributes.date_of_birth,
        NaiveDate::from_ymd_opt(1988, 4, 1)
    );
    assert_eq!(identity.key_hash, spki_hash(&resident.cert_der));
    assert_eq!(
        identity.not_after.timestamp(),
        validity.not_after.timestamp()
    );
}

#[test]
fn an_ecdsa_p256_resident_with_a_valid_signature_is_accepted() {
    let ca = DevCa::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let resident = resident(&ca, KeyAlgorithm::EcdsaP256);
    let identity = enrol(&anchors_with_crl(&ca), &resident).unwrap();
    assert_eq!(identity.attributes, hanako());
    assert_eq!(identity.key_hash, spki_hash(&resident.cert_der));
}

#[test]
fn residents_and_roots_of_different_key_types_mix() {
    let rsa_root = DevCa::generate(KeyAlgorithm::Rsa2048).unwrap();
    let ec_root = DevCa::generate(KeyAlgorithm::EcdsaP256).unwrap();
    enrol(
        &anchors(&rsa_root),
        &resident(&rsa_root, KeyAlgorithm::EcdsaP256),
    )
    .unwrap();
    enrol(
        &anchors(&ec_root),
        &resident(&ec_root, KeyAlgorithm::Rsa2048),
    )
    .unwrap();
}

#[test]
fn a_resident_with_only_a_name_has_no_other_attributes() {
    let ca = DevCa::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let resident = ca
        .issue_resident(
            &renkei_identity::IdentityAttributes::new("鈴木 次郎"),
            a_year(),
            KeyAlgorithm::EcdsaP256,
        )
        .unwrap();
    let identity = enrol(&anchors(&ca), &resident).unwrap();
    assert_eq!(identity.attributes.name, "鈴木 次郎");
    assert_eq!(identity.attributes.serial_number, None);
    assert_eq!(identity.attributes.address, None);
    assert_eq!(identity.attributes.date_of_birth, None);
}

#[test]
fn the_same_key_gives_the_same_key_hash_and_another_key_another() {
    let ca = DevCa::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let anchors = anchors(&ca);
    let first = resident(&ca, KeyAlgorithm::EcdsaP256);
    let second = resident(&ca, KeyAlgorithm::EcdsaP256);
    let a = enrol(&anchors, &first).unwrap().key_hash;
    assert_eq!(a, enrol(&anchors, &first).unwrap().key_hash);
    assert_ne!(a, enrol(&anchors, &second).unwrap().key_hash);
}

#[test]
fn a_certificate_from_another_root_is_refused_as_unknown_issuer() {
    let trusted = DevCa::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let other = DevCa::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let resident = resident(&other, KeyAlgorithm::EcdsaP256);
    assert_eq!(
        enrol(&anchors(&trusted), &resident),
        Err(EnrolmentError::UnknownIssuer)
    );
    // Trusting both roots accepts it.
    let both = TrustAnchors::new(&[trusted.root_pem(), other.root_pem()]).unwrap();
    enrol(&both, &resident).unwrap();
}

#[test]
fn an_issuer_forged_with_the_trusted_roots_name_but_another_key_is_refused() {
    let trusted = TestCa::root("JPKI stand-in root", &rcgen::PKCS_ECDSA_P256_SHA256);
    let forger = TestCa::root("JPKI stand-in root", &rcgen::PKCS_ECDSA_P256_SHA256);
    let resident = forger.issue(&EndEntity::default());
    let anchors = TrustAnchors::new(&[&trusted.der]).unwrap();
    assert_eq!(
        enrol(&anchors, &resident),
        Err(EnrolmentError::UnknownIssuer)
    );
}

#[test]
fn an_expired_certificate_is_refused_with_its_expiry() {
    let ca = DevCa::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let validity = Validity {
        not_before: now() - Duration::days(400),
        not_after: now() - Duration::days(35),
    };
    let resident = ca
        .issue_resident(&hanako(), validity, KeyAlgorithm::EcdsaP256)
        .unwrap();
    match enrol(&anchors_with_crl(&ca), &resident) {
        Err(EnrolmentError::Expired { not_after }) => {
            assert_eq!(not_after.timestamp(), validity.not_after.timestamp());
        }
        other => panic!("expected Expired, got {other:?}"),
    }
}

#[test]
fn a_certificate_not_yet_valid_is_refused() {
    let ca = DevCa::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let validity = Validity {
        not_before: now() + Duration::days(2),
        not_after: now() + Duration::days(300),
    };
    let resident = ca
        .issue_resident(&hanako(), validity, KeyAlgorithm::EcdsaP256)
        .unwrap();
    assert!(matches!(
        enrol(&anchors(&ca), &resident),
        Err(EnrolmentError::NotYetValid { not_before }) if not_before.timestamp() == validity.not_before.timestamp()
    ));
}

#[test]
fn validity_is_judged_at_the_time_the_caller_passes() {
    let ca = DevCa::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let resident = resident(&ca, KeyAlgorithm::EcdsaP256);
    let signature = sign_challenge(&resident.key_pem, CHALLENGE).unwrap();
    let chain = [resident.cert_der.clone()];
    let at = |t| verify_enrolment(&anchors(&ca), &chain, CHALLENGE, &signature, t);
    assert!(at(now() + Duration::days(100)).is_ok());
    assert!(matches!(
        at(now() + Duration::days(400)),
        Err(EnrolmentError::Expired { .. })
    ));
    assert!(matches!(
        at(now() - Duration::days(1)),
        Err(EnrolmentError::NotYetValid { .. })
    ));
}

#[test]
fn a_revoked_certificate_is_refused_and_its_neighbours_are_not() {
    let mut ca = DevCa::generate(KeyAlgorithm::Rsa2048).unwrap();
    let revoked = resident(&ca, KeyAlgorithm::EcdsaP256);
    let kept = resident(&ca, KeyAlgorithm::EcdsaP256);
    ca.revoke(&revoked.serial);
    let anchors = anchors_with_crl(&ca);
    assert!(anchors.checks_revocation());
    assert_eq!(enrol(&anchors, &revoked), Err(EnrolmentError::Revoked));
    enrol(&anchors, &kept).unwrap();
}

#[test]
fn without_any_crl_revocation_is_not_checked() {
    let mut ca = DevCa::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let revoked = resident(&ca, KeyAlgorithm::EcdsaP256);
    ca.revoke(&revoked.serial);
    let anchors = anchors(&ca);
    assert!(!anchors.checks_revocation());
    enrol(&anchors, &revoked).unwrap();
}

#[test]
fn an_expired_crl_refuses_enrolment_until_a_fresh_one_is_loaded() {
    let ca = DevCa::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let resident = resident(&ca, KeyAlgorithm::EcdsaP256);
    let next_update = now() - Duration::hours(1);
    let stale = ca
        .crl_der_at(now() - Duration::days(8), next_update)
        .unwrap();
    let anchors = anchors(&ca).with_crls(&[&stale]).unwrap();
    match enrol(&anchors, &resident) {
        Err(EnrolmentError::CrlExpired { next_update: at }) => {
            assert_eq!(at.timestamp(), next_update.timestamp());
        }
        other => panic!("expected CrlExpired, got {other:?}"),
    }
    // A fresh CRL from the same issuer is newer, so it is the one that counts.
    let anchors = anchors.with_crls(&[ca.crl_der().unwrap()]).unwrap();
    enrol(&anchors, &resident).unwrap();
}

#[test]
fn of_several_crls_from_one_issuer_the_newest_counts_whatever_the_order() {
    let ca = TestCa::root("root", &rcgen::PKCS_ECDSA_P256_SHA256);
    let resident = ca.issue(&EndEntity::default());
    let older = ca.crl(&[], now() - Duration::days(2), now() + Duration::days(5));
    let newer = ca.crl(
        &[&resident.serial],
        now() - Duration::hours(1),
        now() + Duration::days(6),
    );
    for crls in [[&older, &newer], [&newer, &older]] {
        let anchors = TrustAnchors::new(&[&ca.der])
            .unwrap()
            .with_crls(&crls)
            .unwrap();
        assert_eq!(enrol(&anchors, &resident), Err(EnrolmentError::Revoked));
    }
}

#[test]
fn a_crl_signed_by_another_key_under_the_issuers_name_is_refused() {
    let ca = TestCa::root("root", &rcgen::PKCS_ECDSA_P256_SHA256);
    let impostor = TestCa::root("root", &rcgen::PKCS_ECDSA_P256_SHA256);
    let resident = ca.issue(&EndEntity::default());
    let anchors = TrustAnchors::new(&[&ca.der])
        .unwrap()
        .with_crls(&[impostor.fresh_crl(&[])])
        .unwrap();
    assert!(matches!(
        enrol(&anchors, &resident),
        Err(EnrolmentError::CrlInvalid(_))
    ));
}

#[test]
fn with_crls_configured_a_certificate_no_crl_covers_is_refused() {
    let covered = DevCa::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let uncovered = DevCa::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let anchors = TrustAnchors::new(&[covered.root_pem(), uncovered.root_pem()])
        .unwrap()
        .with_crls(&[covered.crl_pem().unwrap()])
        .unwrap();
    enrol(&anchors, &resident(&covered, KeyAlgorithm::EcdsaP256)).unwrap();
    assert_eq!(
        enrol(&anchors, &resident(&uncovered, KeyAlgorithm::EcdsaP256)),
        Err(EnrolmentError::RevocationUnknown)
    );
}

#[test]
fn a_signature_over_another_challenge_is_refused() {
    for algorithm in [KeyAlgorithm::Rsa2048, KeyAlgorithm::EcdsaP256] {
        let ca = DevCa::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let resident = resident(&ca, algorithm);
        let signature = sign_challenge(&resident.key_pem, b"an earlier challenge").unwrap();
        assert_eq!(
            verify_enrolment(
                &anchors(&ca),
                &[resident.cert_der],
                CHALLENGE,
                &signature,
                now()
            ),
            Err(EnrolmentError::BadSignature),
            "{algorithm}"
        );
    }
}

#[test]
fn a_signature_by_another_key_is_refused() {
    for algorithm in [KeyAlgorithm::Rsa2048, KeyAlgorithm::EcdsaP256] {
        let ca = DevCa::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let resident = resident(&ca, algorithm);
        let thief = ca.issue_resident(&hanako(), a_year(), algorithm).unwrap();
        let signature = sign_challenge(&thief.key_pem, CHALLENGE).unwrap();
        assert_eq!(
            verify_enrolment(
                &anchors(&ca),
                &[resident.cert_der],
                CHALLENGE,
                &signature,
                now()
            ),
            Err(EnrolmentError::BadSignature),
            "{algorithm}"
        );
    }
}

#[test]
fn an_ecdsa_signature_in_raw_r_s_form_is_refused_as_only_der_is_accepted() {
    let ca = DevCa::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let resident = resident(&ca, KeyAlgorithm::EcdsaP256);
    let der = sign_challenge(&resident.key_pem, CHALLENGE).unwrap();
    let raw = der_ecdsa_to_raw(&der);
    assert_eq!(raw.len(), 64);
    assert_eq!(
        verify_enrolment(&anchors(&ca), &[resident.cert_der], CHALLENGE, &raw, now()),
        Err(EnrolmentError::BadSignature)
    );
}

/// ECDSA DER `SEQUENCE { r INTEGER, s INTEGER }` to WebCrypto's fixed 32+32 bytes.
fn der_ecdsa_to_raw(der: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = &der[2..];
    for _ in 0..2 {
        let len = rest[1] as usize;
        let int = &rest[2..2 + len];
        let int = &int[int.len().saturating_sub(32)..];
        out.extend(std::iter::repeat_n(0, 32 - int.len()));
        out.extend_from_slice(int);
        rest = &rest[2 + len..];
    }
    out
}

#[test]
fn an_end_entity_without_digital_signature_is_refused() {
    let ca = TestCa::root("root", &rcgen::PKCS_ECDSA_P256_SHA256);
    let anchors = TrustAnchors::new(&[&ca.der]).unwrap();
    let encryption_only = ca.issue(&EndEntity {
        key_usages: vec![KeyUsagePurpose::KeyAgreement],
        ..EndEntity::default()
    });
    assert!(matches!(
        enrol(&anchors, &encryption_only),
        Err(EnrolmentError::BadKeyUsage(_))
    ));
    let non_repudiation_only = ca.issue(&EndEntity {
        key_usages: vec![KeyUsagePurpose::ContentCommitment],
        ..EndEntity::default()
    });
    assert!(matches!(
        enrol(&anchors, &non_repudiation_only),
        Err(EnrolmentError::BadKeyUsage(_))
    ));
}

#[test]
fn an_end_entity_without_any_key_usage_is_refused() {
    let ca = TestCa::root("root", &rcgen::PKCS_ECDSA_P256_SHA256);
    let resident = ca.issue(&EndEntity {
        key_usages: Vec::new(),
        ..EndEntity::default()
    });
    assert!(matches!(
        enrol(&TrustAnchors::new(&[&ca.der]).unwrap(), &resident),
        Err(EnrolmentError::BadKeyUsage(_))
    ));
}

#[test]
fn an_extended_key_usage_must_include_client_auth_when_present() {
    let ca = TestCa::root("root", &rcgen::PKCS_ECDSA_P256_SHA256);
    let anchors = TrustAnchors::new(&[&ca.der]).unwrap();
    let server = ca.issue(&EndEntity {
        extended_key_usages: vec![ExtendedKeyUsagePurpose::ServerAuth],
        ..EndEntity::default()
    });
    assert!(matches!(
        enrol(&anchors, &server),
        Err(EnrolmentError::BadKeyUsage(_))
    ));
    let client = ca.issue(&EndEntity {
        extended_key_usages: vec![ExtendedKeyUsagePurpose::ClientAuth],
        ..EndEntity::default()
    });
    enrol(&anchors, &client).unwrap();
}

#[test]
fn a_ca_certificate_is_refused_as_a_residents_certificate() {
    let ca = TestCa::root("root", &rcgen::PKCS_ECDSA_P256_SHA256);
    let sub_ca = ca.issue(&EndEntity {
        is_ca: IsCa::Ca(rcgen::BasicConstraints::Unconstrained),
        key_usages: vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
        ],
        ..EndEntity::default()
    });
    assert!(matches!(
        enrol(&TrustAnchors::new(&[&ca.der]).unwrap(), &sub_ca),
        Err(EnrolmentError::BadKeyUsage(_))
    ));
}

#[test]
fn a_chain_through_an_intermediate_is_accepted_until_its_shortest_lived_certificate_ends() {
    let root = TestCa::root("root", &rcgen::PKCS_RSA_SHA256);
    let intermediate_validity = Validity::days_from(now(), 10);
    let intermediate = root.intermediate("signing CA", intermediate_validity);
    let resident = intermediate.issue(&EndEntity {
        algorithm: &rcgen::PKCS_RSA_SHA256,
        validity: Validity::days_from(now(), 30),
        ..EndEntity::default()
    });
    let anchors = TrustAnchors::new(&[&root.der]).unwrap();
    let signature = sign_challenge(&resident.key_pem, CHALLENGE).unwrap();
    let chain = [resident.cert_der.clone(), intermediate.der.clone()];
    let identity = verify_enrolment(&anchors, &chain, CHALLENGE, &signature, now()).unwrap();
    assert_eq!(identity.attributes.name, "佐藤 一郎");
    assert_eq!(
        identity.not_after.timestamp(),
        intermediate_validity.not_after.timestamp()
    );
    // Without the intermediate the chain leads nowhere.
    assert_eq!(
        verify_enrolment(&anchors, &chain[..1], CHALLENGE, &signature, now()),
        Err(EnrolmentError::UnknownIssuer)
    );
}

#[test]
fn a_revoked_intermediate_refuses_the_residents_below_it() {
    let root = TestCa::root("root", &rcgen::PKCS_ECDSA_P256_SHA256);
    let intermediate = root.intermediate("signing CA", Validity::days_from(now(), 100));
    let resident = intermediate.issue(&EndEntity::default());
    let signature = sign_challenge(&resident.key_pem, CHALLENGE).unwrap();
    let chain = [resident.cert_der.clone(), intermediate.der.clone()];
    let with = |root_revokes: &[&[u8]]| {
        let anchors = TrustAnchors::new(&[&root.der])
            .unwrap()
            .with_crls(&[root.fresh_crl(root_revokes), intermediate.fresh_crl(&[])])
            .unwrap();
        verify_enrolment(&anchors, &chain, CHALLENGE, &signature, now())
    };
    with(&[]).unwrap();
    assert_eq!(with(&[&[0x42, 0x01]]), Err(EnrolmentError::Revoked));
}

#[test]
fn an_end_entity_key_other_than_rsa_or_p256_is_unsupported() {
    let ca = TestCa::root("root", &rcgen::PKCS_ECDSA_P256_SHA256);
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.not_before = to_time(now() - Duration::hours(1));
    params.not_after = to_time(now() + Duration::days(1));
    let cert = params
        .signed_by(&key, &rcgen::Issuer::from_params(&ca.params, &ca.key))
        .unwrap();
    let signature = key.sign(CHALLENGE).unwrap();
    // And the development tooling will not sign with such a key either.
    assert!(sign_challenge(&key.serialize_pem(), CHALLENGE).is_err());
    assert!(matches!(
        verify_enrolment(
            &TrustAnchors::new(&[&ca.der]).unwrap(),
            &[cert.der().to_vec()],
            CHALLENGE,
            &signature,
            now()
        ),
        Err(EnrolmentError::UnsupportedAlgorithm(_))
    ));
}

#[test]
fn an_empty_chain_or_challenge_and_an_overlong_chain_are_malformed() {
    let ca = DevCa::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let anchors = anchors(&ca);
    let resident = resident(&ca, KeyAlgorithm::EcdsaP256);
    let signature = sign_challenge(&resident.key_pem, CHALLENGE).unwrap();
    let malformed = |r| matches!(r, Err(EnrolmentError::Malformed(_)));
    assert!(malformed(verify_enrolment(
        &anchors,
        &[],
        CHALLENGE,
        &signature,
        now()
    )));
    let chain = [resident.cert_der.clone()];
    assert!(malformed(verify_enrolment(
        &anchors,
        &chain,
        b"",
        &signature,
        now()
    )));
    let long = vec![resident.cert_der.clone(); renkei_identity::MAX_CHAIN_LEN + 1];
    assert!(malformed(verify_enrolment(
        &anchors,
        &long,
        CHALLENGE,
        &signature,
        now()
    )));
}

#[test]
fn error_messages_are_lowercase_without_a_final_period_and_carry_no_personal_data() {
    let ca = DevCa::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let resident = resident(&ca, KeyAlgorithm::EcdsaP256);
    let other = DevCa::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let errors = [
        enrol(&anchors(&other), &resident).unwrap_err(),
        verify_enrolment(
            &anchors(&ca),
            std::slice::from_ref(&resident.cert_der),
            CHALLENGE,
            b"x",
            now(),
        )
        .unwrap_err(),
        verify_enrolment(&anchors(&ca), &[b"junk".to_vec()], CHALLENGE, b"x", now()).unwrap_err(),
        EnrolmentError::Expired { not_after: now() },
        EnrolmentError::Revoked,
        EnrolmentError::RevocationUnknown,
    ];
    for e in errors {
        let text = e.to_string();
        let first = text.chars().next().unwrap();
        assert!(!first.is_uppercase(), "{text}");
        assert!(!text.ends_with('.'), "{text}");
        assert!(
            !text.contains("山田") && !text.contains("ひかり台"),
            "{text}"
        );
    }
    // Formatting an identity for a log shows no attribute values either.
    let identity = enrol(&anchors(&ca), &resident).unwrap();
    let debug = format!("{identity:?}");
    assert!(
        !debug.contains("山田") && !debug.contains("1988"),
        "{debug}"
    );
}

#[test]
fn a_key_hash_is_64_hex_digits_and_reads_back() {
    let ca = DevCa::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let hash = enrol(&anchors(&ca), &resident(&ca, KeyAlgorithm::EcdsaP256))
        .unwrap()
        .key_hash;
    let text = hash.to_string();
    assert_eq!(text.len(), 64);
    assert!(
        text.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_uppercase())
    );
    assert_eq!(text.parse::<KeyHash>().unwrap(), hash);
    assert!("zz".parse::<KeyHash>().is_err());
    assert!(text[..63].parse::<KeyHash>().is_err());
}
