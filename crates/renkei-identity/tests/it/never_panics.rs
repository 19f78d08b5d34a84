//! Whatever a caller sends, every parser and the verifier answer with an error instead of
//! panicking, and tampering never turns a refusal into an acceptance (the contract "bad input
//! gets a clear error, never a panic").
//!
//! These are property tests (proptest) run by `cargo test`: cargo-fuzz needs a nightly
//! toolchain, which the project does not use, so the fuzzing of these parsers lives here.
use std::sync::OnceLock;

use crate::common::*;
use proptest::prelude::*;
use renkei_identity::{
    DevCa, EnrolmentError, IssuedCertificate, KeyAlgorithm, TrustAnchors, Validity,
    VerifiedIdentity, parse_chain, parse_chain_base64, sign_challenge, verify_enrolment,
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

// ------------------------------------------ RSA through an intermediate, signatures, challenges

/// A resident with an RSA key (as JPKI's cards), under an intermediate CA of an RSA root.
struct Chained {
    anchors: TrustAnchors,
    chain: Vec<Vec<u8>>,
    signature: Vec<u8>,
    identity: VerifiedIdentity,
}

fn chained() -> &'static Chained {
    static CHAINED: OnceLock<Chained> = OnceLock::new();
    CHAINED.get_or_init(|| {
        let root = TestCa::root("root", &rcgen::PKCS_RSA_SHA256);
        let intermediate = root.intermediate("signing CA", Validity::days_from(now(), 100));
        let resident = intermediate.issue(&EndEntity {
            algorithm: &rcgen::PKCS_RSA_SHA256,
            ..EndEntity::default()
        });
        let anchors = TrustAnchors::new(&[&root.der]).unwrap();
        let signature = sign_challenge(&resident.key_pem, CHALLENGE).unwrap();
        let chain = vec![resident.cert_der.clone(), intermediate.der.clone()];
        let identity = verify_enrolment(&anchors, &chain, CHALLENGE, &signature, now()).unwrap();
        Chained {
            anchors,
            chain,
            signature,
            identity,
        }
    })
}

fn verify_chained(chain: &[Vec<u8>], signature: &[u8]) -> Result<VerifiedIdentity, EnrolmentError> {
    verify_enrolment(&chained().anchors, chain, CHALLENGE, signature, now())
}

/// Base64 of `der` in 64-character lines, as PEM writes it.
fn pem_block(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn a_signature_cut_short_or_extended_is_refused(
        cut in any::<prop::sample::Index>(),
        tail in proptest::collection::vec(any::<u8>(), 1..16),
    ) {
        let f = fixture();
        let ecdsa_chain = [f.resident.cert_der.clone()];
        let c = chained();
        for (chain, signature, verify) in [
            (&ecdsa_chain[..], &f.signature, verify as fn(&[Vec<u8>], &[u8]) -> _),
            (&c.chain[..], &c.signature, verify_chained),
        ] {
            let short = &signature[..cut.index(signature.len())];
            prop_assert_eq!(verify(chain, short), Err(EnrolmentError::BadSignature));
            let long = [signature.as_slice(), &tail].concat();
            prop_assert_eq!(verify(chain, &long), Err(EnrolmentError::BadSignature));
        }
    }

    #[test]
    fn a_signature_over_any_other_challenge_is_refused(
        challenge in proptest::collection::vec(any::<u8>(), 1..64),
    ) {
        prop_assume!(challenge != CHALLENGE);
        let f = fixture();
        let result = verify_enrolment(
            &f.anchors,
            std::slice::from_ref(&f.resident.cert_der),
            &challenge,
            &f.signature,
            now(),
        );
        prop_assert_eq!(result, Err(EnrolmentError::BadSignature));
        let c = chained();
        let result = verify_enrolment(&c.anchors, &c.chain, &challenge, &c.signature, now());
        prop_assert_eq!(result, Err(EnrolmentError::BadSignature));
    }

    #[test]
    fn a_certificate_with_bytes_appended_is_malformed(
        tail in proptest::collection::vec(any::<u8>(), 1..32),
        which in 0usize..2,
    ) {
        let c = chained();
        let mut chain = c.chain.clone();
        chain[which].extend_from_slice(&tail);
        let result = verify_chained(&chain, &c.signature);
        prop_assert!(matches!(result, Err(EnrolmentError::Malformed(_))), "{:?}", result);
    }

    #[test]
    fn a_mutated_rsa_signature_is_refused(index in any::<usize>(), byte in any::<u8>()) {
        let c = chained();
        let result = verify_chained(&c.chain, &mutated(&c.signature, index, byte));
        prop_assert_eq!(result, Err(EnrolmentError::BadSignature));
    }

    #[test]
    fn a_mutated_intermediate_or_rsa_certificate_is_refused_or_still_the_same_identity(
        index in any::<usize>(),
        byte in any::<u8>(),
        which in 0usize..2,
    ) {
        let c = chained();
        let mut chain = c.chain.clone();
        chain[which] = mutated(&chain[which], index, byte);
        if let Ok(identity) = verify_chained(&chain, &c.signature) {
            prop_assert_eq!(identity, c.identity.clone());
        }
    }

    #[test]
    fn a_chain_reordered_or_with_repeats_is_refused_unless_the_resident_still_comes_first(
        order in proptest::collection::vec(0usize..2, 1..5),
    ) {
        let c = chained();
        let chain: Vec<Vec<u8>> = order.iter().map(|&i| c.chain[i].clone()).collect();
        match verify_chained(&chain, &c.signature) {
            Ok(identity) => {
                prop_assert_eq!(order[0], 0);
                prop_assert_eq!(identity, c.identity.clone());
            }
            Err(e) => prop_assert!(order[0] != 0 || !order.contains(&1), "{:?}: {:?}", order, e),
        }
    }

    #[test]
    fn text_around_and_between_pem_blocks_does_not_change_the_chain_read(
        around in proptest::collection::vec("[^-\r\n]{0,40}", 3),
    ) {
        let c = chained();
        let text = format!(
            "{}\n{}{}\n{}{}\n",
            around[0],
            pem_block(&c.chain[0]),
            around[1],
            pem_block(&c.chain[1]),
            around[2],
        );
        prop_assert_eq!(parse_chain(&text), Ok(c.chain.clone()));
    }
}
