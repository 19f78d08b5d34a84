//! How certificate chains, roots and CRLs are read from what callers and operators hand over
//! (PEM text, DER, base64 strings), and how bad input is named.
use crate::common::*;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use renkei_identity::{
    DevCa, EnrolmentError, KeyAlgorithm, TrustAnchorError, TrustAnchors, parse_chain,
    parse_chain_base64,
};

fn two_certificates() -> (Vec<u8>, Vec<u8>, String) {
    let root = TestCa::root("root", &rcgen::PKCS_ECDSA_P256_SHA256);
    let intermediate = root.intermediate("signing CA", a_year());
    let resident = intermediate.issue(&EndEntity::default());
    let pem = format!(
        "{}{}",
        resident.cert_pem,
        renkei_identity_pem(&intermediate.der)
    );
    (resident.cert_der, intermediate.der, pem)
}

fn renkei_identity_pem(der: &[u8]) -> String {
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        STANDARD.encode(der)
    )
}

#[test]
fn a_pem_chain_reads_in_order() {
    let (ee, intermediate, pem) = two_certificates();
    assert_eq!(parse_chain(&pem).unwrap(), [ee, intermediate]);
}

#[test]
fn a_pem_chain_with_crlf_line_ends_and_text_around_it_reads() {
    let (ee, intermediate, pem) = two_certificates();
    let text = format!("subject=...\r\n{}\r\n", pem.replace('\n', "\r\n"));
    assert_eq!(parse_chain(&text).unwrap(), [ee, intermediate]);
}

#[test]
fn base64_chains_read_in_either_alphabet_with_or_without_padding() {
    let (ee, intermediate, _) = two_certificates();
    let expected = [ee.clone(), intermediate.clone()];
    let standard = [STANDARD.encode(&ee), STANDARD.encode(&intermediate)];
    assert_eq!(parse_chain_base64(&standard).unwrap(), expected);
    let url = [
        URL_SAFE_NO_PAD.encode(&ee),
        URL_SAFE_NO_PAD.encode(&intermediate),
    ];
    assert_eq!(parse_chain_base64(&url).unwrap(), expected);
    assert_eq!(parse_chain(&standard.join(", ")).unwrap(), expected);
    assert_eq!(parse_chain(&url.join("\n")).unwrap(), expected);
}

#[test]
fn a_private_key_in_a_chain_is_refused_by_name() {
    let ca = DevCa::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let resident = resident(&ca, KeyAlgorithm::EcdsaP256);
    let text = format!("{}{}", resident.cert_pem, resident.key_pem);
    match parse_chain(&text) {
        Err(EnrolmentError::Malformed(why)) => assert!(why.contains("`PRIVATE KEY`"), "{why}"),
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn text_that_is_neither_pem_nor_certificates_is_malformed() {
    for text in [
        "",
        "   ",
        "hello world",
        "AAAA",
        "-----BEGIN CERTIFICATE-----\nAAAA\n",
    ] {
        assert!(
            matches!(parse_chain(text), Err(EnrolmentError::Malformed(_))),
            "{text:?}"
        );
    }
    let items = ["not base64 !"];
    assert!(matches!(
        parse_chain_base64(&items),
        Err(EnrolmentError::Malformed(_))
    ));
}

#[test]
fn roots_read_from_pem_bundles_and_der() {
    let a = DevCa::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let b = DevCa::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let bundle = format!("{}{}", a.root_pem(), b.root_pem());
    let anchors = TrustAnchors::new(&[bundle.as_bytes(), a.root_der()]).unwrap();
    assert_eq!(anchors.root_count(), 3);
    assert_eq!(anchors.crl_count(), 0);
    let anchors = anchors
        .with_crls(&[a.crl_pem().unwrap().into_bytes(), b.crl_der().unwrap()])
        .unwrap();
    assert_eq!(anchors.crl_count(), 2);
}

#[test]
fn bad_roots_and_crls_are_named_by_position() {
    let ca = DevCa::generate(KeyAlgorithm::EcdsaP256).unwrap();
    assert_eq!(
        TrustAnchors::new::<&[u8]>(&[]).unwrap_err(),
        TrustAnchorError::NoRoots
    );
    let err = TrustAnchors::new(&[ca.root_der(), b"garbage"]).unwrap_err();
    assert!(
        matches!(err, TrustAnchorError::Root { position: 2, .. }),
        "{err}"
    );
    // A CRL where a root belongs, and a root where a CRL belongs.
    let crl_pem = ca.crl_pem().unwrap();
    let err = TrustAnchors::new(&[crl_pem.as_bytes()]).unwrap_err();
    assert!(err.to_string().contains("`X509 CRL`"), "{err}");
    let err = TrustAnchors::new(&[ca.root_der()])
        .unwrap()
        .with_crls(&[crl_pem.as_bytes(), ca.root_pem().as_bytes()])
        .unwrap_err();
    assert!(
        matches!(err, TrustAnchorError::Crl { position: 2, .. }),
        "{err}"
    );
    let err = TrustAnchors::new(&[ca.root_der()])
        .unwrap()
        .with_crls(&[ca.root_der()])
        .unwrap_err();
    assert!(
        matches!(err, TrustAnchorError::Crl { position: 1, .. }),
        "{err}"
    );
}
