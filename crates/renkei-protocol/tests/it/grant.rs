//! How a provider treats the grants it receives (DESIGN.md flow 3 and the contract "the hub
//! and providers authenticate each other on every call").
use std::sync::Arc;

use crate::common::*;
use renkei_protocol::grant::{CLOCK_SKEW_SECS, GRANT_TYP, MAX_GRANT_LIFETIME_SECS};
use renkei_protocol::{
    GrantError, GrantVerifier, Jwks, ServiceKeyPair, SignError, SigningKey, sign_grant,
    sign_receipt,
};

fn setup() -> (Hub, GrantVerifier, ServiceKeyPair) {
    let hub = hub();
    let verifier = GrantVerifier::new(hospital(), hub.jwks.clone());
    (hub, verifier, ServiceKeyPair::generate().unwrap())
}

#[test]
fn a_valid_grant_is_accepted_with_its_claims() {
    let (hub, verifier, service_key) = setup();
    let claims = grant_claims(&service_key);
    let token = sign_grant(&hub.key, &claims).unwrap();
    assert_eq!(verifier.verify(&token, now()).unwrap(), claims);
}

#[test]
fn the_grant_header_says_eddsa_its_type_and_its_key() {
    let (hub, _, service_key) = setup();
    let token = sign_grant(&hub.key, &grant_claims(&service_key)).unwrap();
    let header = json_of(&parts(&token).0);
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["typ"], GRANT_TYP);
    assert_eq!(header["kid"], hub.key.kid());
}

#[test]
fn a_replayed_grant_is_rejected() {
    let (hub, verifier, service_key) = setup();
    let token = sign_grant(&hub.key, &grant_claims(&service_key)).unwrap();
    verifier.verify(&token, now()).unwrap();
    let err = verifier.verify(&token, at(NOW + 1)).unwrap_err();
    assert_eq!(err, GrantError::Replayed);
    assert_eq!(err.code(), "grant-replayed");
}

#[test]
fn a_grant_raced_from_many_threads_is_accepted_exactly_once() {
    let (hub, verifier, service_key) = setup();
    let token = Arc::new(sign_grant(&hub.key, &grant_claims(&service_key)).unwrap());
    let verifier = Arc::new(verifier);
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (token, verifier) = (Arc::clone(&token), Arc::clone(&verifier));
            std::thread::spawn(move || verifier.verify(&token, now()).is_ok())
        })
        .collect();
    let accepted = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|ok| *ok)
        .count();
    assert_eq!(accepted, 1);
}

#[test]
fn a_grant_for_another_provider_is_rejected() {
    let (hub, _, service_key) = setup();
    let bank_verifier = GrantVerifier::new(bank(), hub.jwks.clone());
    let token = sign_grant(&hub.key, &grant_claims(&service_key)).unwrap();
    let err = bank_verifier.verify(&token, now()).unwrap_err();
    assert_eq!(err, GrantError::WrongAudience);
    assert_eq!(err.code(), "grant-wrong-audience");
}

#[test]
fn a_grant_for_several_providers_is_rejected_even_by_one_of_them() {
    let (hub, verifier, service_key) = setup();
    let mut payload = serde_json::to_value(grant_claims(&service_key)).unwrap();
    payload["aud"] = serde_json::json!(["city-hospital", "city-bank"]);
    let token = sign_raw(&hub.key, GRANT_TYP, &payload);
    assert_eq!(
        verifier.verify(&token, now()).unwrap_err(),
        GrantError::WrongAudience
    );
    payload["aud"] = serde_json::json!(["city-hospital"]);
    let token = sign_raw(&hub.key, GRANT_TYP, &payload);
    assert_eq!(
        verifier.verify(&token, now()).unwrap_err(),
        GrantError::WrongAudience
    );
}

#[test]
fn an_expired_grant_is_rejected() {
    let (hub, verifier, service_key) = setup();
    let claims = grant_claims(&service_key);
    let token = sign_grant(&hub.key, &claims).unwrap();
    let err = verifier
        .verify(&token, at(claims.exp + CLOCK_SKEW_SECS))
        .unwrap_err();
    assert_eq!(err, GrantError::Expired);
    assert_eq!(err.code(), "grant-expired");
}

#[test]
fn a_grant_just_past_its_expiry_is_accepted_within_the_clock_skew() {
    let (hub, verifier, service_key) = setup();
    let claims = grant_claims(&service_key);
    let token = sign_grant(&hub.key, &claims).unwrap();
    assert!(
        verifier
            .verify(&token, at(claims.exp + CLOCK_SKEW_SECS - 1))
            .is_ok()
    );
}

#[test]
fn a_grant_issued_in_the_future_is_rejected() {
    let (hub, verifier, service_key) = setup();
    let claims = grant_claims(&service_key);
    let token = sign_grant(&hub.key, &claims).unwrap();
    let err = verifier
        .verify(&token, at(claims.iat - CLOCK_SKEW_SECS - 1))
        .unwrap_err();
    assert_eq!(err, GrantError::NotYetValid);
    assert_eq!(err.code(), "grant-not-yet-valid");
    // A provider clock a little behind the hub's is tolerated.
    assert!(
        verifier
            .verify(&token, at(claims.iat - CLOCK_SKEW_SECS))
            .is_ok()
    );
}

#[test]
fn a_grant_living_longer_than_a_minute_is_rejected() {
    let (hub, verifier, service_key) = setup();
    let mut claims = grant_claims(&service_key);
    claims.exp = claims.iat + MAX_GRANT_LIFETIME_SECS + 1;
    // The hub's own signer refuses to make it…
    assert!(matches!(
        sign_grant(&hub.key, &claims),
        Err(SignError::InvalidClaims(_))
    ));
    // …and a provider refuses it if it is made anyway.
    let token = sign_raw(&hub.key, GRANT_TYP, &serde_json::to_value(&claims).unwrap());
    let err = verifier.verify(&token, now()).unwrap_err();
    assert_eq!(err, GrantError::LifetimeTooLong);
    assert_eq!(err.code(), "grant-lifetime-too-long");
}

#[test]
fn a_grant_living_exactly_a_minute_is_accepted() {
    let (hub, verifier, service_key) = setup();
    let mut claims = grant_claims(&service_key);
    claims.exp = claims.iat + MAX_GRANT_LIFETIME_SECS;
    let token = sign_grant(&hub.key, &claims).unwrap();
    assert!(verifier.verify(&token, now()).is_ok());
}

#[test]
fn a_grant_signed_by_another_key_is_rejected() {
    let (_, verifier, service_key) = setup();
    let intruder = SigningKey::generate().unwrap();
    let token = sign_grant(&intruder, &grant_claims(&service_key)).unwrap();
    let err = verifier.verify(&token, now()).unwrap_err();
    assert_eq!(err, GrantError::UnknownKey(intruder.kid().to_owned()));
    assert_eq!(err.code(), "grant-unknown-key");
}

#[test]
fn a_grant_signed_by_another_key_under_the_hubs_kid_is_rejected() {
    let (hub, verifier, service_key) = setup();
    let intruder = SigningKey::generate().unwrap();
    let token = sign_grant(&intruder, &grant_claims(&service_key)).unwrap();
    let (_, payload, signature) = parts(&token);
    let header = b64(format!(
        r#"{{"typ":"{GRANT_TYP}","alg":"EdDSA","kid":"{}"}}"#,
        hub.key.kid()
    ));
    let err = verifier
        .verify(&format!("{header}.{payload}.{signature}"), now())
        .unwrap_err();
    assert_eq!(err, GrantError::BadSignature);
    assert_eq!(err.code(), "grant-bad-signature");
}

#[test]
fn a_grant_with_alg_none_or_hs256_is_rejected() {
    let (hub, verifier, service_key) = setup();
    let payload = b64(serde_json::to_string(&grant_claims(&service_key)).unwrap());
    let kid = hub.key.kid();

    let none = b64(format!(
        r#"{{"alg":"none","typ":"{GRANT_TYP}","kid":"{kid}"}}"#
    ));
    for token in [
        format!("{none}.{payload}."),
        format!("{none}.{payload}.AAAA"),
    ] {
        assert_eq!(
            verifier.verify(&token, now()).unwrap_err(),
            GrantError::BadSignature,
            "{token}"
        );
    }

    // The classic key-confusion attack: HMAC keyed with the hub's public key.
    let claims = grant_claims(&service_key);
    for secret in [
        hub.key.public_key().to_vec(),
        serde_json::to_vec(&hub.key.public_jwk()).unwrap(),
    ] {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.typ = Some(GRANT_TYP.into());
        header.kid = Some(kid.into());
        let token = jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(&secret),
        )
        .unwrap();
        assert_eq!(
            verifier.verify(&token, now()).unwrap_err(),
            GrantError::BadSignature
        );
    }

    for alg in ["HS384", "RS256", "ES256", "PS256", "eddsa", ""] {
        let header = b64(format!(
            r#"{{"alg":"{alg}","typ":"{GRANT_TYP}","kid":"{kid}"}}"#
        ));
        let token = format!("{header}.{payload}.AAAA");
        assert_eq!(
            verifier.verify(&token, now()).unwrap_err(),
            GrantError::BadSignature,
            "{alg}"
        );
    }
}

#[test]
fn a_grant_with_a_tampered_payload_is_rejected() {
    let (hub, verifier, service_key) = setup();
    let claims = grant_claims(&service_key);
    let token = sign_grant(&hub.key, &claims).unwrap();
    let mut payload = json_of(&parts(&token).1);
    payload["categories"] = serde_json::json!(["health.checkup", "payment.history"]);
    assert_eq!(
        verifier
            .verify(&with_payload(&token, &payload), now())
            .unwrap_err(),
        GrantError::BadSignature
    );
}

#[test]
fn a_rejected_grant_does_not_use_up_its_id() {
    let (hub, verifier, service_key) = setup();
    let token = sign_grant(&hub.key, &grant_claims(&service_key)).unwrap();
    let mut payload = json_of(&parts(&token).1);
    payload["sub"] = serde_json::json!("patient-999999");
    assert!(
        verifier
            .verify(&with_payload(&token, &payload), now())
            .is_err()
    );
    assert!(verifier.verify(&token, now()).is_ok());
}

#[test]
fn a_token_of_another_type_is_not_a_grant() {
    let (hub, verifier, service_key) = setup();
    let payload = serde_json::to_value(grant_claims(&service_key)).unwrap();
    for typ in ["JWT", "renkei-receipt+jwt", "secevent+jwt"] {
        let token = sign_raw(&hub.key, typ, &payload);
        assert!(
            matches!(
                verifier.verify(&token, now()),
                Err(GrantError::Malformed(_))
            ),
            "{typ}"
        );
    }
    // A real receipt, too.
    let receipt: renkei_protocol::ConsentReceipt = serde_json::from_value(serde_json::json!({
        "version": "KI-CR-v1.1.0", "jurisdiction": "JP", "consentTimestamp": NOW,
        "collectionMethod": "portal", "consentReceiptID": "r", "language": "ja",
        "piiPrincipalId": "p", "piiControllers": [], "policyUrl": "u", "services": [],
        "sensitive": false, "spiCat": [], "iss": HUB, "iat": NOW,
        "consentId": uuid::Uuid::nil(), "serviceId": "health-advice", "purposeId": "advice",
        "purposeVersion": 1, "categories": [], "legalBasis": "consent"
    }))
    .unwrap();
    let token = sign_receipt(&hub.key, &receipt).unwrap();
    assert!(matches!(
        verifier.verify(&token, now()),
        Err(GrantError::Malformed(_))
    ));
}

#[test]
fn a_grant_missing_a_claim_or_with_a_bad_service_key_is_malformed() {
    let (hub, verifier, service_key) = setup();
    let claims = serde_json::to_value(grant_claims(&service_key)).unwrap();
    for (field, value) in [
        ("jti", serde_json::Value::Null),
        ("sub", serde_json::json!("")),
        ("aud", serde_json::json!(42)),
        ("categories", serde_json::json!([])),
        ("service_hpke_key", serde_json::json!("AAAA")),
        ("exp", serde_json::json!(NOW - 1)),
        ("purpose", serde_json::json!("Not A Slug")),
    ] {
        let mut payload = claims.clone();
        payload[field] = value;
        let err = verifier
            .verify(&sign_raw(&hub.key, GRANT_TYP, &payload), now())
            .unwrap_err();
        assert!(matches!(err, GrantError::Malformed(_)), "{field}: {err}");
        assert_eq!(err.code(), "grant-malformed");
    }
}

#[test]
fn error_messages_never_echo_the_residents_reference() {
    let (hub, verifier, service_key) = setup();
    let mut payload = serde_json::to_value(grant_claims(&service_key)).unwrap();
    payload["purpose_version"] = serde_json::json!("patient-000123");
    let err = verifier
        .verify(&sign_raw(&hub.key, GRANT_TYP, &payload), now())
        .unwrap_err();
    assert!(!err.to_string().contains("patient-000123"), "{err}");
}

#[test]
fn expired_grant_ids_are_forgotten() {
    let (hub, verifier, service_key) = setup();
    for _ in 0..3 {
        let token = sign_grant(&hub.key, &grant_claims(&service_key)).unwrap();
        verifier.verify(&token, now()).unwrap();
    }
    assert_eq!(verifier.remembered(), 3);
    let mut later = grant_claims(&service_key);
    later.iat = NOW + 600;
    later.exp = NOW + 630;
    let token = sign_grant(&hub.key, &later).unwrap();
    verifier.verify(&token, at(NOW + 600)).unwrap();
    assert_eq!(verifier.remembered(), 1);
}

#[test]
fn a_grant_signed_with_a_rotated_key_is_accepted_after_the_key_set_is_refreshed() {
    let (hub, verifier, service_key) = setup();
    let next = SigningKey::generate().unwrap();
    let token = sign_grant(&next, &grant_claims(&service_key)).unwrap();
    assert!(matches!(
        verifier.verify(&token, now()),
        Err(GrantError::UnknownKey(_))
    ));
    verifier.replace_jwks(Jwks::from_signing_keys([&hub.key, &next]));
    assert!(verifier.verify(&token, now()).is_ok());
}

#[test]
fn a_grant_survives_the_published_jwks_json() {
    let (hub, _, service_key) = setup();
    let published = serde_json::to_string(&hub.jwks).unwrap();
    let fetched: Jwks = serde_json::from_str(&published).unwrap();
    let verifier = GrantVerifier::new(hospital(), fetched);
    let token = sign_grant(&hub.key, &grant_claims(&service_key)).unwrap();
    assert!(verifier.verify(&token, now()).is_ok());
}

#[test]
fn a_grant_under_a_declared_emergency_carries_its_basis_and_no_consent() {
    let (hub, verifier, service_key) = setup();
    let declaration = renkei_domain::DeclarationId::from_uuid(uuid::Uuid::new_v4());
    let claims = renkei_protocol::GrantClaims {
        consent: None,
        emergency: Some(declaration),
        basis: format!("emergency:{declaration}"),
        ..grant_claims(&service_key)
    };
    let token = sign_grant(&hub.key, &claims).unwrap();
    let accepted = verifier.verify(&token, now()).unwrap();
    assert_eq!(accepted.basis, format!("emergency:{declaration}"));
    assert_eq!(accepted, claims);
    let payload = json_of(&parts(&token).1);
    assert!(payload.get("consent").is_none(), "{payload}");
}

#[test]
fn a_grant_whose_basis_contradicts_its_consent_or_rests_on_nothing_is_refused() {
    let (hub, verifier, service_key) = setup();
    let claims = grant_claims(&service_key);
    let declaration = renkei_domain::DeclarationId::from_uuid(uuid::Uuid::new_v4());
    let lying = renkei_protocol::GrantClaims {
        basis: format!("emergency:{declaration}"),
        ..claims.clone()
    };
    assert!(matches!(
        sign_grant(&hub.key, &lying),
        Err(SignError::InvalidClaims(_))
    ));
    let mut payload = serde_json::to_value(&lying).unwrap();
    let token = sign_raw(&hub.key, GRANT_TYP, &payload);
    assert!(matches!(
        verifier.verify(&token, now()),
        Err(GrantError::Malformed(_))
    ));
    payload["basis"] = serde_json::json!(claims.basis);
    payload.as_object_mut().unwrap().remove("consent");
    payload["jti"] = serde_json::json!(uuid::Uuid::new_v4());
    let token = sign_raw(&hub.key, GRANT_TYP, &payload);
    assert!(matches!(
        verifier.verify(&token, now()),
        Err(GrantError::Malformed(_))
    ));
}

#[test]
fn a_grant_from_a_hub_before_emergencies_verifies_with_its_consent_as_the_basis() {
    let (hub, verifier, service_key) = setup();
    let claims = grant_claims(&service_key);
    let mut payload = serde_json::to_value(&claims).unwrap();
    payload.as_object_mut().unwrap().remove("basis");
    let token = sign_raw(&hub.key, GRANT_TYP, &payload);
    assert_eq!(verifier.verify(&token, now()).unwrap(), claims);
}

/// A disclosure's grant: to the data subject, on the basis `data-subject-access` alone.
fn disclosure_claims(resident_key: &ServiceKeyPair) -> renkei_protocol::GrantClaims {
    renkei_protocol::GrantClaims {
        service: renkei_domain::ServiceId::data_subject(),
        purpose: renkei_domain::PurposeId::data_subject_access(),
        consent: None,
        emergency: None,
        basis: "data-subject-access".into(),
        ..grant_claims(resident_key)
    }
}

#[test]
fn a_data_subject_access_grant_goes_to_the_data_subject_and_rests_on_nothing_else() {
    let (hub, verifier, resident_key) = setup();
    let claims = disclosure_claims(&resident_key);
    let token = sign_grant(&hub.key, &claims).unwrap();
    let accepted = verifier.verify(&token, now()).unwrap();
    assert!(accepted.is_data_subject_access());
    assert_eq!(accepted, claims);
    assert!(!grant_claims(&resident_key).is_data_subject_access());

    // Such a grant to a service, with a consent beside it, or a data subject's grant on
    // another basis: each is refused, signing and verifying.
    let to_a_service = renkei_protocol::GrantClaims {
        service: service(),
        ..disclosure_claims(&resident_key)
    };
    let with_consent = renkei_protocol::GrantClaims {
        consent: grant_claims(&resident_key).consent,
        ..disclosure_claims(&resident_key)
    };
    let on_consent = renkei_protocol::GrantClaims {
        service: renkei_domain::ServiceId::data_subject(),
        ..grant_claims(&resident_key)
    };
    for claims in [to_a_service, with_consent, on_consent] {
        assert!(matches!(
            sign_grant(&hub.key, &claims),
            Err(SignError::InvalidClaims(_))
        ));
        let forged = sign_raw(&hub.key, GRANT_TYP, &serde_json::to_value(&claims).unwrap());
        assert!(matches!(
            verifier.verify(&forged, now()),
            Err(GrantError::Malformed(_))
        ));
    }
}
