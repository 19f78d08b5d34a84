//! The webhook a service receives when a consent changes (DESIGN.md flow 2): a signed
//! Security Event Token (RFC 8417).
use crate::common::*;
use renkei_domain::{ConsentId, PurposeId, ServiceId, ServiceSubject};
use renkei_protocol::event::{CONSENT_REVOKED, EVENT_TYP};
use renkei_protocol::{
    ConsentChange, ConsentEventClaims, ConsentEventToken, EventError, SigningKey, sign_event,
    verify_event,
};
use uuid::Uuid;

fn revocation() -> ConsentEventToken {
    ConsentEventToken::new(
        HUB,
        service(),
        ConsentChange::Revoked,
        ConsentEventClaims {
            consent: ConsentId::from_uuid(Uuid::new_v4()),
            subject: ServiceSubject::new("Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0").unwrap(),
            purpose: PurposeId::new("advice").unwrap(),
            purpose_version: 3,
            at: NOW,
        },
        now(),
    )
}

#[test]
fn a_revocation_event_verifies_for_its_service() {
    let hub = hub();
    let event = revocation();
    let token = sign_event(&hub.key, &event).unwrap();
    let header = json_of(&parts(&token).0);
    assert_eq!(header["typ"], EVENT_TYP);
    assert_eq!(header["alg"], "EdDSA");

    let checked = verify_event(&token, &hub.jwks, &service()).unwrap();
    assert_eq!(checked, event);
    let (change, claims) = checked.change().unwrap();
    assert_eq!(change, ConsentChange::Revoked);
    assert_eq!(claims.purpose_version, 3);
    assert!(json_of(&parts(&token).1)["events"][CONSENT_REVOKED].is_object());
}

#[test]
fn a_grant_event_says_granted() {
    let hub = hub();
    let mut event = revocation();
    event.events.granted = event.events.revoked.take();
    let token = sign_event(&hub.key, &event).unwrap();
    let checked = verify_event(&token, &hub.jwks, &service()).unwrap();
    assert_eq!(checked.change().unwrap().0, ConsentChange::Granted);
    assert_eq!(
        ConsentChange::Granted.uri(),
        "urn:renkei:event:consent-granted"
    );
}

#[test]
fn an_event_for_another_service_is_rejected() {
    let hub = hub();
    let token = sign_event(&hub.key, &revocation()).unwrap();
    let err =
        verify_event(&token, &hub.jwks, &ServiceId::new("community-bus").unwrap()).unwrap_err();
    assert_eq!(err, EventError::WrongAudience);
    assert_eq!(err.code(), "event-wrong-audience");
}

#[test]
fn a_tampered_event_is_rejected() {
    let hub = hub();
    let token = sign_event(&hub.key, &revocation()).unwrap();
    let mut payload = json_of(&parts(&token).1);
    payload["events"][CONSENT_REVOKED]["purpose_version"] = serde_json::json!(4);
    assert_eq!(
        verify_event(&with_payload(&token, &payload), &hub.jwks, &service()).unwrap_err(),
        EventError::BadSignature
    );
}

#[test]
fn an_event_signed_by_another_key_is_rejected() {
    let hub = hub();
    let token = sign_event(&SigningKey::generate().unwrap(), &revocation()).unwrap();
    assert!(matches!(
        verify_event(&token, &hub.jwks, &service()),
        Err(EventError::UnknownKey(_))
    ));
}

#[test]
fn an_event_with_alg_none_is_rejected() {
    let hub = hub();
    let token = sign_event(&hub.key, &revocation()).unwrap();
    let (_, payload, _) = parts(&token);
    let header = b64(format!(
        r#"{{"alg":"none","typ":"secevent+jwt","kid":"{}"}}"#,
        hub.key.kid()
    ));
    assert_eq!(
        verify_event(&format!("{header}.{payload}."), &hub.jwks, &service()).unwrap_err(),
        EventError::BadSignature
    );
}

#[test]
fn an_event_token_without_a_known_event_or_with_a_bad_subject_is_malformed() {
    let hub = hub();
    let good = serde_json::to_value(revocation()).unwrap();

    let mut unknown = good.clone();
    unknown["events"] = serde_json::json!({"urn:example:other": {}});
    let mut bad_subject = good.clone();
    bad_subject["events"][CONSENT_REVOKED]["subject"] = serde_json::json!("short");
    for payload in [unknown, bad_subject] {
        let token = sign_raw(&hub.key, EVENT_TYP, &payload);
        assert!(matches!(
            verify_event(&token, &hub.jwks, &service()),
            Err(EventError::Malformed(_))
        ));
    }
}
