//! Whatever a caller sends, every parser and the verifier answer with an error instead of
//! panicking, and tampering never turns a refusal into an acceptance (the contract "bad input
//! gets a clear error, never a panic").
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails loudly"
)]

mod common;

use std::sync::OnceLock;

use common::*;
use proptest::prelude::*;
use renkei_identity::{
    DevCa, EnrolmentError, IssuedCertificate, KeyAlgorithm, TrustAnchors, VerifiedIdentity,
    parse_chain, parse_chain_base64, sign_challenge, verify_enrolment,
};

struct Fixture {
    anchors: TrustAnchors,
    root_der: Vec<u8>,
    crl_der: Vec<u8>,
    resident: IssuedCertificate,
    signature: Vec<u8>,
    identity: VerifiedIdentity,
    revoked: IssuedCertificate,
    revoked_signature: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut ca = DevCa::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let resident = resident(&ca, KeyAlgorithm::EcdsaP256);
        let revoked = resident_of(&ca);
        ca.revoke(&revoked.serial);
        let crl_der = ca.crl_der().unwrap();
        let anchors = anchors(&ca).with_crls(&[&crl_der]).unwrap();
        let identity = enrol(&anchors, &resident).unwrap();
        Fixture {
            signature: sign_challenge(&resident.key_pem, CHALLENGE).unwrap(),
            revoked_signature: sign_challenge(&revoked.key_pem, CHALLENGE).unwrap(),
            anchors,
            root_der: ca.root_der().to_vec(),
            crl_der,
            resident,
            identity,
            revoked,
        }
    })
}

fn resident_of(ca: &DevCa) -> IssuedCertificate {
    resident(ca, KeyAlgorithm::EcdsaP256)
}

fn verify(chain: &[Vec<u8>], signature: &[u8]) -> Result<VerifiedIdentity, EnrolmentError> {
    verify_enrolment(&fixture().anchors, chain, CHALLENGE, signature, now())
}

/// Valid input with one byte replaced.
fn mutated(valid: &[u8], index: usize, byte: u8) -> Vec<u8> {
    let mut out = valid.to_vec();
    let i = index % out.len();
    if out[i] == byte {
        out[i] ^= 0x01;
    } else {
        out[i] = byte;
    }
    out
}

proptest! {
    #[test]
    fn any_text_as_a_chain_is_read_or_malformed(text in ".*") {
        if let Err(e) = parse_chain(&text) {
            prop_assert!(matches!(e, EnrolmentError::Malformed(_)), "{e:?}");
        }
    }

    #[test]
    fn any_text_inside_pem_markers_is_read_or_malformed(
        body in "[A-Za-z0-9+/=\r\n -]{0,400}",
        end in proptest::bool::ANY,
    ) {
        let text = format!(
            "-----BEGIN CERTIFICATE-----\n{body}{}",
            if end { "\n-----END CERTIFICATE-----\n" } else { "" }
        );
        prop_assert!(matches!(parse_chain(&text), Err(EnrolmentError::Malformed(_))));
    }

    #[test]
    fn any_base64_strings_as_a_chain_are_read_or_malformed(
        items in proptest::collection::vec("[A-Za-z0-9+/=_-]{0,200}", 0..4),
    ) {
        if let Err(e) = parse_chain_base64(&items) {
            prop_assert!(matches!(e, EnrolmentError::Malformed(_)), "{e:?}");
        }
    }

    #[test]
    fn a_truncated_pem_chain_is_malformed_unless_nothing_that_matters_was_cut(cut in 0usize..2000) {
        let pem = &fixture().resident.cert_pem;
        let cut = cut.min(pem.len());
        match parse_chain(&pem[..cut]) {
            Ok(chain) => prop_assert_eq!(chain, vec![fixture().resident.cert_der.clone()]),
            Err(e) => prop_assert!(matches!(e, EnrolmentError::Malformed(_)), "{e:?}"),
        }
    }

    #[test]
    fn any_bytes_as_roots_or_crls_give_a_result_not_a_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let _ = TrustAnchors::new(&[&bytes]);
        let root = &fixture().root_der;
        let _ = TrustAnchors::new(&[root]).unwrap().with_crls(&[&bytes]);
    }

    #[test]
    fn a_mutated_root_or_crl_gives_a_result_not_a_panic(index in any::<usize>(), byte in any::<u8>()) {
        let f = fixture();
        let _ = TrustAnchors::new(&[mutated(&f.root_der, index, byte)]);
        let _ = TrustAnchors::new(&[&f.root_der]).unwrap().with_crls(&[mutated(&f.crl_der, index, byte)]);
    }

    #[test]
    fn any_bytes_as_a_chain_are_refused(
        chain in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..400), 0..3),
        signature in proptest::collection::vec(any::<u8>(), 0..100),
    ) {
        prop_assert!(verify(&chain, &signature).is_err());
    }

    #[test]
    fn a_truncated_certificate_is_malformed(cut in 0usize..10_000) {
        let der = &fixture().resident.cert_der;
        let cut = cut % der.len();
        let result = verify(&[der[..cut].to_vec()], &fixture().signature);
        prop_assert!(matches!(result, Err(EnrolmentError::Malformed(_))), "{result:?}");
    }

    #[test]
    fn a_mutated_certificate_is_refused_or_still_the_same_identity(
        index in any::<usize>(),
        byte in any::<u8>(),
    ) {
        let f = fixture();
        let chain = [mutated(&f.resident.cert_der, index, byte)];
        if let Ok(identity) = verify(&chain, &f.signature) {
            prop_assert_eq!(identity, f.identity.clone());
        }
    }

    #[test]
    fn a_mutated_signature_is_refused(index in any::<usize>(), byte in any::<u8>()) {
        let f = fixture();
        let chain = [f.resident.cert_der.clone()];
        let result = verify(&chain, &mutated(&f.signature, index, byte));
        prop_assert_eq!(result, Err(EnrolmentError::BadSignature));
    }

    #[test]
    fn tampering_with_the_crl_never_unrevokes_a_certificate(index in any::<usize>(), byte in any::<u8>()) {
        let f = fixture();
        if let Ok(anchors) = TrustAnchors::new(&[&f.root_der])
            .unwrap()
            .with_crls(&[mutated(&f.crl_der, index, byte)])
        {
            let result = verify_enrolment(
                &anchors,
                std::slice::from_ref(&f.revoked.cert_der),
                CHALLENGE,
                &f.revoked_signature,
                now(),
            );
            prop_assert!(result.is_err(), "{result:?}");
        }
    }
}
