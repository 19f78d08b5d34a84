//! How a provider's answer travels to the service through the hub without the hub reading
//! it (DESIGN.md flow 3, data-blind relay).
use crate::common::*;
use renkei_domain::RequestId;
use renkei_protocol::envelope::SUITE;
use renkei_protocol::{
    EnvelopeContext, EnvelopeError, GrantVerifier, SealedPayload, ServiceKeyPair, open, seal,
    sign_grant,
};
use uuid::Uuid;

const RECORD: &[u8] = "{\"health.checkup\":{\"bmi\":22.1,\"所見\":\"異常なし\"}}".as_bytes();

fn context() -> EnvelopeContext {
    EnvelopeContext {
        provider: hospital(),
        request: RequestId::from_uuid(Uuid::new_v4()),
    }
}

#[test]
fn a_payload_sealed_by_a_provider_opens_for_the_service_named_in_the_grant() {
    let hub = hub();
    let service_key = ServiceKeyPair::generate().unwrap();
    let claims = grant_claims(&service_key);
    let token = sign_grant(&hub.key, &claims).unwrap();

    // The provider checks the grant and seals to the key it names.
    let verified = GrantVerifier::new(hospital(), hub.jwks.clone())
        .verify(&token, now())
        .unwrap();
    let ctx = EnvelopeContext {
        provider: verified.aud.clone(),
        request: verified.request_id,
    };
    let sealed = seal(&verified.service_hpke_key, &ctx, RECORD).unwrap();

    // The hub relays JSON it cannot read; the service opens it.
    let relayed: SealedPayload =
        serde_json::from_str(&serde_json::to_string(&sealed).unwrap()).unwrap();
    assert!(!relayed.ciphertext.contains("bmi"));
    assert_eq!(open(&service_key, &ctx, &relayed).unwrap(), RECORD);
}

#[test]
fn the_sealed_payload_is_json_with_suite_enc_and_ciphertext() {
    let keys = ServiceKeyPair::generate().unwrap();
    let sealed = seal(&keys.public_b64(), &context(), RECORD).unwrap();
    let json = serde_json::to_value(&sealed).unwrap();
    let mut fields: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
    fields.sort();
    assert_eq!(fields, ["ciphertext", "enc", "suite"]);
    assert_eq!(json["suite"], SUITE);
}

#[test]
fn two_seals_of_the_same_record_differ() {
    let keys = ServiceKeyPair::generate().unwrap();
    let ctx = context();
    let a = seal(&keys.public_b64(), &ctx, RECORD).unwrap();
    let b = seal(&keys.public_b64(), &ctx, RECORD).unwrap();
    assert_ne!(a.enc, b.enc);
    assert_ne!(a.ciphertext, b.ciphertext);
}

#[test]
fn a_payload_moved_to_another_request_does_not_open() {
    let keys = ServiceKeyPair::generate().unwrap();
    let ctx = context();
    let sealed = seal(&keys.public_b64(), &ctx, RECORD).unwrap();
    let moved = EnvelopeContext {
        request: RequestId::from_uuid(Uuid::new_v4()),
        ..ctx
    };
    assert_eq!(open(&keys, &moved, &sealed), Err(EnvelopeError::Open));
}

#[test]
fn a_payload_attributed_to_another_provider_does_not_open() {
    let keys = ServiceKeyPair::generate().unwrap();
    let ctx = context();
    let sealed = seal(&keys.public_b64(), &ctx, RECORD).unwrap();
    let misattributed = EnvelopeContext {
        provider: bank(),
        ..ctx
    };
    assert_eq!(
        open(&keys, &misattributed, &sealed),
        Err(EnvelopeError::Open)
    );
}

#[test]
fn a_payload_sealed_to_another_service_does_not_open() {
    let intended = ServiceKeyPair::generate().unwrap();
    let other = ServiceKeyPair::generate().unwrap();
    let ctx = context();
    let sealed = seal(&intended.public_b64(), &ctx, RECORD).unwrap();
    assert_eq!(open(&other, &ctx, &sealed), Err(EnvelopeError::Open));
}

#[test]
fn a_tampered_ciphertext_or_enc_does_not_open() {
    let keys = ServiceKeyPair::generate().unwrap();
    let ctx = context();
    let sealed = seal(&keys.public_b64(), &ctx, RECORD).unwrap();

    let mut bytes = base64_decode(&sealed.ciphertext);
    bytes[3] ^= 1;
    let tampered = SealedPayload {
        ciphertext: b64(&bytes),
        ..sealed.clone()
    };
    assert_eq!(open(&keys, &ctx, &tampered), Err(EnvelopeError::Open));

    let other = seal(&keys.public_b64(), &ctx, RECORD).unwrap();
    let spliced = SealedPayload {
        enc: other.enc,
        ..sealed.clone()
    };
    assert_eq!(open(&keys, &ctx, &spliced), Err(EnvelopeError::Open));

    let truncated = SealedPayload {
        ciphertext: b64(&base64_decode(&sealed.ciphertext)[..10]),
        ..sealed
    };
    assert_eq!(open(&keys, &ctx, &truncated), Err(EnvelopeError::Open));
}

#[test]
fn an_unknown_suite_is_refused() {
    let keys = ServiceKeyPair::generate().unwrap();
    let ctx = context();
    let sealed = SealedPayload {
        suite: "HPKE-Base-P256-SHA256-AES128GCM".into(),
        ..seal(&keys.public_b64(), &ctx, RECORD).unwrap()
    };
    let err = open(&keys, &ctx, &sealed).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unsupported envelope suite `HPKE-Base-P256-SHA256-AES128GCM`"
    );
}

#[test]
fn an_empty_record_round_trips() {
    let keys = ServiceKeyPair::generate().unwrap();
    let ctx = context();
    let sealed = seal(&keys.public_b64(), &ctx, b"").unwrap();
    assert_eq!(open(&keys, &ctx, &sealed).unwrap(), b"");
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}
