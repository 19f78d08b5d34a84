//! Whatever arrives on the wire, verifying and opening return an error instead of
//! panicking (the contract "bad input gets a clear error, never a panic").
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::OnceLock;

use common::*;
use proptest::prelude::*;
use renkei_domain::RequestId;
use renkei_protocol::envelope::SUITE;
use renkei_protocol::{
    EnvelopeContext, GrantVerifier, SealedPayload, ServiceKeyPair, open, seal, sign_grant,
    verify_event, verify_receipt,
};
use uuid::Uuid;

struct Fixture {
    hub: Hub,
    service_key: ServiceKeyPair,
    grant: String,
    sealed: SealedPayload,
    context: EnvelopeContext,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let hub = hub();
        let service_key = ServiceKeyPair::generate().unwrap();
        let grant = sign_grant(&hub.key, &grant_claims(&service_key)).unwrap();
        let context = EnvelopeContext {
            provider: hospital(),
            request: RequestId::from_uuid(Uuid::nil()),
        };
        let sealed = seal(&service_key.public_b64(), &context, b"record").unwrap();
        Fixture {
            hub,
            service_key,
            grant,
            sealed,
            context,
        }
    })
}

/// Arbitrary text, arbitrary JWS-shaped text, or a valid grant with some bytes changed.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,300}",
        (
            proptest::collection::vec(any::<u8>(), 0..200),
            proptest::collection::vec(any::<u8>(), 0..400),
            proptest::collection::vec(any::<u8>(), 0..80),
        )
            .prop_map(|(h, p, s)| format!("{}.{}.{}", b64(h), b64(p), b64(s))),
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4).prop_map(
            |edits| {
                let mut bytes = fixture().grant.clone().into_bytes();
                for (at, b) in edits {
                    let i = at.index(bytes.len());
                    bytes[i] = b'!' + (b % 90);
                }
                String::from_utf8(bytes).unwrap()
            }
        ),
        (
            "[a-zA-Z0-9_-]{0,60}",
            "[a-zA-Z0-9_-]{0,200}",
            "[a-zA-Z0-9_-]{0,90}"
        )
            .prop_map(|(h, p, s)| format!("{h}.{p}.{s}")),
    ]
}

fn b64ish() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,100}",
        proptest::collection::vec(any::<u8>(), 0..120).prop_map(b64),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn grant_verification_never_panics(token in token(), offset in -200i64..200) {
        let f = fixture();
        let verifier = GrantVerifier::new(hospital(), f.hub.jwks.clone());
        let result = verifier.verify(&token, at(NOW + offset));
        if token != f.grant {
            prop_assert!(result.is_err() || token.starts_with(&f.grant[..f.grant.len() - 1]));
        }
    }

    #[test]
    fn receipt_verification_never_panics(token in token()) {
        let _ = verify_receipt(&token, &fixture().hub.jwks);
    }

    #[test]
    fn event_verification_never_panics(token in token()) {
        let _ = verify_event(&token, &fixture().hub.jwks, &service());
    }

    #[test]
    fn opening_never_panics(
        suite in prop_oneof![Just(SUITE.to_owned()), ".{0,40}"],
        enc in prop_oneof![b64ish(), Just(fixture().sealed.enc.clone())],
        ciphertext in prop_oneof![b64ish(), Just(fixture().sealed.ciphertext.clone())],
    ) {
        let f = fixture();
        let sealed = SealedPayload { suite, enc, ciphertext };
        let result = open(&f.service_key, &f.context, &sealed);
        if sealed != f.sealed {
            prop_assert!(result.is_err());
        }
    }

    #[test]
    fn loading_a_service_key_never_panics(private in b64ish()) {
        let _ = ServiceKeyPair::from_private_b64(&private);
    }

    #[test]
    fn sealing_to_any_public_key_never_panics(public in b64ish()) {
        let _ = seal(&public, &fixture().context, b"x");
    }
}
