//! The consent receipt a resident keeps (DESIGN.md flow 1): anyone with the hub's published
//! keys can check it, and nobody can change it unnoticed.
use std::collections::BTreeSet;

use crate::common::*;
use chrono::TimeDelta;
use renkei_domain::{
    Actor, CategoryId, Consent, ConsentChannel, ConsentId, ControllerContact, DataCategory,
    LegalBasis, LocalizedText, PostalAddress, Purpose, PurposeId, ResidentId, Service,
    ServiceStatus,
};
use renkei_protocol::{
    ConsentReceipt, GrantVerifier, Jwks, ReceiptError, ReceiptInput, ServiceKeyPair, SigningKey,
    sign_grant, sign_receipt, verify_receipt,
};
use uuid::Uuid;

struct World {
    service: Service,
    controller: ControllerContact,
    purpose: Purpose,
    vocabulary: Vec<DataCategory>,
    consent: Consent,
}

fn world() -> World {
    let categories: BTreeSet<CategoryId> = [
        CategoryId::new("health.checkup").unwrap(),
        CategoryId::new("payment.history").unwrap(),
    ]
    .into();
    let purpose = Purpose {
        service: service(),
        id: PurposeId::new("advice").unwrap(),
        version: 1,
        title: LocalizedText::new("健康アドバイス", "Health advice"),
        description: LocalizedText::new(
            "健診結果と決済データから生活習慣の助言をします",
            "Lifestyle advice from checkups and payments",
        ),
        categories: categories.clone(),
        retention_days: 365,
        legal_basis: LegalBasis::Consent,
        emergency_only: false,
        location: None,
    };
    World {
        controller: ControllerContact {
            contact: "けんこう相談 個人情報保護窓口".into(),
            address: PostalAddress {
                country: "JP".into(),
                postal_code: "999-0001".into(),
                region: "ひかり県".into(),
                locality: "ひかり台市".into(),
                street_address: "中央1-1".into(),
            },
            email: "privacy@health.example.jp".into(),
            phone: "+81-3-0000-0000".into(),
        },
        service: Service {
            id: service(),
            name: LocalizedText::new("けんこう相談", "Health advice"),
            sector: "health".into(),
            hpke_public_key: ServiceKeyPair::generate().unwrap().public_b64(),
            webhook_url: Some("https://health.example.jp/renkei/events".into()),
            status: ServiceStatus::Approved,
        },
        consent: Consent {
            id: ConsentId::from_uuid(Uuid::new_v4()),
            resident: ResidentId::from_uuid(Uuid::new_v4()),
            purpose: purpose.reference(),
            categories,
            legal_basis: LegalBasis::Consent,
            granted_at: now(),
            expires_at: Some(now() + TimeDelta::days(365)),
            given_via: ConsentChannel::SignInScreen,
            given_by: Actor::Resident,
            form_reference: None,
            revoked_at: None,
        },
        purpose,
        vocabulary: vec![
            DataCategory {
                id: CategoryId::new("health.checkup").unwrap(),
                name: LocalizedText::new("健診結果", "Checkup results"),
                special_care: true,
                location: false,
            },
            DataCategory {
                id: CategoryId::new("payment.history").unwrap(),
                name: LocalizedText::new("決済履歴", "Payment history"),
                special_care: false,
                location: false,
            },
        ],
    }
}

fn receipt(w: &World) -> ConsentReceipt {
    ConsentReceipt::build(&ReceiptInput {
        issuer: HUB,
        policy_url: "https://health.example.jp/privacy",
        consent: &w.consent,
        service: &w.service,
        purpose: &w.purpose,
        controller: Some(&w.controller),
        vocabulary: &w.vocabulary,
        issued_at: now(),
    })
    .unwrap()
}

#[test]
fn a_receipt_verifies_with_nothing_but_the_published_key_set() {
    let hub = hub();
    let w = world();
    let token = sign_receipt(&hub.key, &receipt(&w)).unwrap();
    let published: Jwks = serde_json::from_str(&serde_json::to_string(&hub.jwks).unwrap()).unwrap();
    let checked = verify_receipt(&token, &published).unwrap();
    assert_eq!(checked.consent_id, w.consent.id);
    assert_eq!(checked.purpose_version, 1);
    assert_eq!(checked.collection_method, "sign_in_screen");
    assert_eq!(checked.pii_principal_id, w.consent.resident.to_string());
    assert_eq!(checked.consent_timestamp, NOW);
    assert_eq!(checked.expires, Some(NOW + 365 * 86_400));
    assert!(checked.sensitive);
}

#[test]
fn a_tampered_receipt_is_rejected() {
    let hub = hub();
    let token = sign_receipt(&hub.key, &receipt(&world())).unwrap();
    let mut payload = json_of(&parts(&token).1);
    payload["services"][0]["purposes"][0]["thirdPartyDisclosure"] = serde_json::json!(true);
    let err = verify_receipt(&with_payload(&token, &payload), &hub.jwks).unwrap_err();
    assert_eq!(err, ReceiptError::BadSignature);
    assert_eq!(err.code(), "receipt-bad-signature");

    // Dropping a category is tampering too.
    let mut payload = json_of(&parts(&token).1);
    payload["categories"] = serde_json::json!(["payment.history"]);
    assert_eq!(
        verify_receipt(&with_payload(&token, &payload), &hub.jwks).unwrap_err(),
        ReceiptError::BadSignature
    );
}

#[test]
fn a_receipt_signed_by_another_key_is_rejected() {
    let hub = hub();
    let forger = SigningKey::generate().unwrap();
    let token = sign_receipt(&forger, &receipt(&world())).unwrap();
    assert!(matches!(
        verify_receipt(&token, &hub.jwks),
        Err(ReceiptError::UnknownKey(_))
    ));
}

#[test]
fn a_receipt_with_alg_none_is_rejected() {
    let hub = hub();
    let token = sign_receipt(&hub.key, &receipt(&world())).unwrap();
    let (_, payload, _) = parts(&token);
    let header = b64(format!(
        r#"{{"alg":"none","typ":"renkei-receipt+jwt","kid":"{}"}}"#,
        hub.key.kid()
    ));
    assert_eq!(
        verify_receipt(&format!("{header}.{payload}."), &hub.jwks).unwrap_err(),
        ReceiptError::BadSignature
    );
}

#[test]
fn a_grant_is_not_a_receipt() {
    let hub = hub();
    let token = sign_grant(
        &hub.key,
        &grant_claims(&ServiceKeyPair::generate().unwrap()),
    )
    .unwrap();
    assert!(matches!(
        verify_receipt(&token, &hub.jwks),
        Err(ReceiptError::Malformed(_))
    ));
    // And a receipt is not a grant.
    let receipt_token = sign_receipt(&hub.key, &receipt(&world())).unwrap();
    assert!(
        GrantVerifier::new(hospital(), hub.jwks.clone())
            .verify(&receipt_token, now())
            .is_err()
    );
}

#[test]
fn a_receipt_of_another_version_is_refused() {
    let hub = hub();
    let mut payload = serde_json::to_value(receipt(&world())).unwrap();
    payload["version"] = serde_json::json!("KI-CR-v1.0.0");
    let token = sign_raw(&hub.key, "renkei-receipt+jwt", &payload);
    assert_eq!(
        verify_receipt(&token, &hub.jwks).unwrap_err(),
        ReceiptError::UnsupportedVersion("KI-CR-v1.0.0".into())
    );
}

#[test]
fn a_receipt_for_a_consent_to_another_purpose_is_not_built() {
    let mut w = world();
    w.consent.purpose.purpose = PurposeId::new("marketing").unwrap();
    let err = ConsentReceipt::build(&ReceiptInput {
        issuer: HUB,
        policy_url: "https://health.example.jp/privacy",
        consent: &w.consent,
        service: &w.service,
        purpose: &w.purpose,
        controller: Some(&w.controller),
        vocabulary: &w.vocabulary,
        issued_at: now(),
    })
    .unwrap_err();
    assert_eq!(err.code(), "receipt-inconsistent");
}

// ------------------------------------------- Kantara's Consent Receipt v1.1 JSON schema

/// The schema (Draft 4) as kept in `schemas/kantara-cr-v1.1`, with its `//` lines dropped.
fn kantara_schema() -> jsonschema::Validator {
    let schema: serde_json::Value = serde_json::from_str(include_str!(
        "../../schemas/kantara-cr-v1.1/kantara-consent-receipt-v1_1-schema.json"
    ))
    .unwrap();
    jsonschema::draft4::new(&schema).unwrap()
}

fn kantara_errors(receipt: &serde_json::Value) -> Vec<String> {
    kantara_schema()
        .iter_errors(receipt)
        .map(|e| format!("{} at `{}`", e, e.instance_path()))
        .collect()
}

#[test]
fn the_kantara_schemas_own_example_validates_and_a_spoiled_one_does_not() {
    let example: serde_json::Value = serde_json::from_str(include_str!(
        "../../schemas/kantara-cr-v1.1/kantara-consent-receipt-v1_1-example.json"
    ))
    .unwrap();
    assert_eq!(kantara_errors(&example), Vec::<String>::new());
    let mut spoiled = example;
    spoiled["piiControllers"][0]["address"] = serde_json::json!("a street");
    assert_eq!(kantara_errors(&spoiled).len(), 1);
}

#[test]
fn a_receipt_validates_against_the_kantara_schema_with_the_controllers_contact() {
    let w = world();
    let claims = serde_json::to_value(receipt(&w)).unwrap();
    assert_eq!(kantara_errors(&claims), Vec::<String>::new(), "{claims:#}");
    let controller = &claims["piiControllers"][0];
    assert_eq!(controller["email"], "privacy@health.example.jp");
    assert_eq!(controller["address"]["postalCode"], "999-0001");
    assert_eq!(controller["address"]["addressRegion"], "ひかり県");
}

#[test]
fn a_receipt_of_a_service_registered_without_contact_details_still_validates() {
    let w = world();
    let bare = ConsentReceipt::build(&ReceiptInput {
        issuer: HUB,
        policy_url: "https://health.example.jp/privacy",
        consent: &w.consent,
        service: &w.service,
        purpose: &w.purpose,
        controller: None,
        vocabulary: &w.vocabulary,
        issued_at: now(),
    })
    .unwrap();
    let claims = serde_json::to_value(&bare).unwrap();
    assert_eq!(kantara_errors(&claims), Vec::<String>::new(), "{claims:#}");
    assert_eq!(
        claims["piiControllers"][0]["address"],
        serde_json::json!({})
    );
}

#[test]
fn a_receipt_signed_before_contact_details_were_carried_still_reads() {
    let hub = hub();
    let token = sign_receipt(&hub.key, &receipt(&world())).unwrap();
    let mut payload = json_of(&parts(&token).1);
    let controller = payload["piiControllers"][0].as_object_mut().unwrap();
    for field in ["contact", "address", "email", "phone"] {
        controller.remove(field);
    }
    // The claims of an older receipt, without them, still read (with them empty).
    let read: ConsentReceipt = serde_json::from_value(payload).unwrap();
    assert_eq!(read.pii_controllers[0].email, "");
    assert_eq!(read.pii_controllers[0].address, Default::default());
}
