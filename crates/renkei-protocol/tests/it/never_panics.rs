//! Whatever arrives on the wire, verifying and opening return an error instead of
//! panicking (the contract "bad input gets a clear error, never a panic"); a signed token
//! with any byte changed, cut short or extended is refused; and what is signed verifies to
//! exactly what was signed.
//!
//! These are property tests (proptest) run by `cargo test`: cargo-fuzz needs a nightly
//! toolchain, which the project does not use, so the fuzzing of these parsers lives here.
use std::sync::OnceLock;

use crate::common::*;
use proptest::prelude::*;
use renkei_domain::{CategoryId, ConsentId, PurposeId, RequestId, ServiceId, ServiceSubject};
use renkei_protocol::envelope::SUITE;
use renkei_protocol::grant::GRANT_TYP;
use renkei_protocol::{
    ConsentChange, ConsentEventClaims, ConsentEventToken, EnvelopeContext, GrantClaims, GrantError,
    GrantVerifier, SealedPayload, ServiceKeyPair, open, seal, sign_event, sign_grant, verify_event,
    verify_receipt,
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

// ------------------------------------------------ round trips and tampering

/// An identifier of the shape operators choose (service, purpose, category, provider).
fn slug() -> impl Strategy<Value = String> {
    "[a-z0-9][a-z0-9._-]{0,24}"
}

fn uuid() -> impl Strategy<Value = Uuid> {
    any::<u128>().prop_map(Uuid::from_u128)
}

/// Any grant the hub may sign: free text where the wire carries text, any ids, any valid
/// service key, a lifetime of one to sixty seconds.
fn grant_claims_any() -> impl Strategy<Value = GrantClaims> {
    (
        (
            any::<String>(),
            any::<String>().prop_filter("sub is not empty", |s| !s.is_empty()),
        ),
        (uuid(), uuid(), uuid()),
        (NOW - 100_000..NOW + 100_000, 1i64..=60),
        (slug(), slug(), any::<u32>()),
        proptest::collection::vec(slug(), 1..4),
        any::<[u8; 32]>(),
    )
        .prop_map(
            |(
                (iss, sub),
                (jti, request, consent),
                (iat, lifetime),
                (service, purpose, version),
                categories,
                key,
            )| {
                GrantClaims {
                    iss,
                    aud: hospital(),
                    sub,
                    jti,
                    iat,
                    exp: iat + lifetime,
                    request_id: RequestId::from_uuid(request),
                    service: ServiceId::new(service).unwrap(),
                    purpose: PurposeId::new(purpose).unwrap(),
                    purpose_version: version,
                    categories: categories
                        .into_iter()
                        .map(|c| CategoryId::new(c).unwrap())
                        .collect(),
                    service_hpke_key: b64(key),
                    consent: Some(ConsentId::from_uuid(consent)),
                    emergency: None,
                    basis: format!("consent:{consent}"),
                    location: Default::default(),
                }
            },
        )
}

/// A fresh verifier, so that a refusal can never be the replay memory's doing.
fn verifier() -> GrantVerifier {
    GrantVerifier::new(hospital(), fixture().hub.jwks.clone())
}

/// The token with one bit of one byte flipped; only the low seven bits, so it stays ASCII.
fn flipped(token: &str, index: prop::sample::Index, bit: u8) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let i = index.index(bytes.len());
    bytes[i] ^= 1 << (bit % 7);
    String::from_utf8(bytes).unwrap()
}

/// A compact JWS with `header` as given, over `claims`, really signed by the hub's key: only
/// the header can be at fault.
fn signed_with_header(header: &serde_json::Value, claims: &GrantClaims) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string()),
        b64(serde_json::to_vec(claims).unwrap())
    );
    let signature = fixture().hub.key.sign(input.as_bytes()).unwrap();
    format!("{input}.{}", b64(signature))
}

/// `renkei-grant+jwt` with each letter's case chosen by `mask`, maybe behind `application/`.
fn grant_typ_spelled(mask: u32, prefixed: bool) -> String {
    let typ: String = GRANT_TYP
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 32) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect();
    if prefixed {
        format!("Application/{typ}")
    } else {
        typ
    }
}

fn event_any() -> impl Strategy<Value = ConsentEventToken> {
    (
        (any::<String>(), slug(), any::<bool>()),
        (
            uuid(),
            "[A-Za-z0-9_-]{16,128}",
            slug(),
            any::<u32>(),
            any::<i64>(),
        ),
        0i64..4_000_000_000,
    )
        .prop_map(
            |((iss, aud, granted), (consent, subject, purpose, version, changed_at), iat)| {
                ConsentEventToken::new(
                    iss,
                    ServiceId::new(aud).unwrap(),
                    if granted {
                        ConsentChange::Granted
                    } else {
                        ConsentChange::Revoked
                    },
                    ConsentEventClaims {
                        consent: ConsentId::from_uuid(consent),
                        subject: ServiceSubject::new(subject).unwrap(),
                        purpose: PurposeId::new(purpose).unwrap(),
                        purpose_version: version,
                        at: changed_at,
                    },
                    at(iat),
                )
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn a_signed_grant_verifies_to_exactly_the_claims_signed(
        claims in grant_claims_any(),
        into_life in 0i64..60,
    ) {
        let token = sign_grant(&fixture().hub.key, &claims).unwrap();
        let now = at(claims.iat + into_life.min(claims.exp - claims.iat - 1));
        prop_assert_eq!(verifier().verify(&token, now), Ok(claims));
    }

    #[test]
    fn a_grant_with_any_bit_flipped_is_refused(index in any::<prop::sample::Index>(), bit in 0u8..7) {
        let token = flipped(&fixture().grant, index, bit);
        let result = verifier().verify(&token, now());
        prop_assert!(result.is_err(), "{token} was accepted");
    }

    #[test]
    fn a_grant_cut_short_anywhere_is_refused(cut in any::<prop::sample::Index>()) {
        let grant = &fixture().grant;
        let token = &grant[..cut.index(grant.len())];
        prop_assert!(verifier().verify(token, now()).is_err());
    }

    #[test]
    fn a_grant_with_anything_appended_is_refused(tail in ".{1,40}") {
        let token = format!("{}{tail}", fixture().grant);
        prop_assert!(verifier().verify(&token, now()).is_err(), "{} was accepted", token);
    }

    #[test]
    fn a_grant_is_accepted_under_its_own_type_in_any_case_and_under_no_other(
        typ in prop_oneof![
            ".{0,40}",
            (any::<u32>(), any::<bool>()).prop_map(|(mask, prefixed)| grant_typ_spelled(mask, prefixed)),
            Just("JWT".to_owned()),
            Just("secevent+jwt".to_owned()),
            Just("renkei-grant+jwt ".to_owned()),
            Just("application/application/renkei-grant+jwt".to_owned()),
        ],
    ) {
        let f = fixture();
        let claims = grant_claims(&f.service_key);
        let header = serde_json::json!({"alg": "EdDSA", "typ": typ, "kid": f.hub.key.kid()});
        let result = verifier().verify(&signed_with_header(&header, &claims), now());
        let lower = typ.to_ascii_lowercase();
        let own = lower == GRANT_TYP || lower == format!("application/{GRANT_TYP}");
        if own {
            prop_assert_eq!(result, Ok(claims));
        } else {
            prop_assert!(matches!(result, Err(GrantError::Malformed(_))), "{:?}", result);
        }
    }

    #[test]
    fn a_grant_naming_any_algorithm_but_eddsa_is_refused_even_with_a_good_signature(
        alg in prop_oneof![
            ".{0,12}",
            Just("none".to_owned()),
            Just("HS256".to_owned()),
            Just("RS256".to_owned()),
            Just("ES256".to_owned()),
            Just("eddsa".to_owned()),
            Just("EDDSA".to_owned()),
            Just("EdDSA ".to_owned()),
            Just("Ed25519".to_owned()),
        ].prop_filter("not EdDSA", |a| a != "EdDSA"),
    ) {
        let f = fixture();
        let header = serde_json::json!({"alg": alg, "typ": GRANT_TYP, "kid": f.hub.key.kid()});
        let token = signed_with_header(&header, &grant_claims(&f.service_key));
        prop_assert_eq!(verifier().verify(&token, now()), Err(GrantError::BadSignature));
    }

    #[test]
    fn a_grant_with_any_critical_header_or_unknown_key_id_is_refused(
        crit in prop_oneof![
            Just(serde_json::json!(["exp"])),
            Just(serde_json::json!([])),
            ".{0,10}".prop_map(serde_json::Value::from),
        ],
        kid in ".{0,80}",
    ) {
        let f = fixture();
        let claims = grant_claims(&f.service_key);
        let header = serde_json::json!({"alg": "EdDSA", "typ": GRANT_TYP, "kid": f.hub.key.kid(), "crit": crit});
        let result = verifier().verify(&signed_with_header(&header, &claims), now());
        prop_assert!(matches!(result, Err(GrantError::Malformed(_))), "{:?}", result);
        if kid != f.hub.key.kid() {
            let header = serde_json::json!({"alg": "EdDSA", "typ": GRANT_TYP, "kid": kid});
            let result = verifier().verify(&signed_with_header(&header, &claims), now());
            prop_assert!(matches!(result, Err(GrantError::UnknownKey(_))), "{:?}", result);
            if let Err(e) = result {
                prop_assert!(e.to_string().chars().count() < 120, "{e}");
            }
        }
    }

    #[test]
    fn a_signed_event_verifies_to_exactly_the_event_signed(event in event_any()) {
        let token = sign_event(&fixture().hub.key, &event).unwrap();
        prop_assert_eq!(verify_event(&token, &fixture().hub.jwks, &event.aud), Ok(event));
    }

    #[test]
    fn an_event_with_any_bit_flipped_cut_or_extended_is_refused(
        event in event_any(),
        index in any::<prop::sample::Index>(),
        bit in 0u8..7,
        tail in ".{1,20}",
    ) {
        let f = fixture();
        let token = sign_event(&f.hub.key, &event).unwrap();
        for bad in [
            flipped(&token, index, bit),
            token[..index.index(token.len())].to_owned(),
            format!("{token}{tail}"),
        ] {
            let result = verify_event(&bad, &f.hub.jwks, &event.aud);
            prop_assert!(result.is_err(), "{} was accepted", bad);
        }
    }
}
