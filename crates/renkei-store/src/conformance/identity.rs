//! Conformance checks for [`crate::IdentityStore`]: single-use challenges, ceremonies and
//! codes, enrolment recovery, proxies, operators and resident requests.

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use renkei_domain::{
    Actor, ConsentId, Operator, OperatorId, ProxyAppointment, ProxyId, ProxyScope, ResidentId,
    ResidentRequest, ResidentRequestId, ResidentRequestKind, ResidentRequestStatus, ServiceClient,
    SigningAlg,
};
use uuid::Uuid;

use super::{service_id, town};
use crate::identity::{
    AuthorizationCodeRecord, Ceremony, CodeMismatch, CodePresentation, CodeRedemption, KeyCustody,
    StoredPasskey, StoredSigningKey, TokenKeyRef,
};
use crate::{Store, StoreError};

pub async fn an_enrolment_challenge_can_be_taken_once_and_not_after_it_expires(
    store: Arc<dyn Store>,
) {
    let now = Utc::now();
    let fresh = Uuid::new_v4();
    store
        .put_enrolment_challenge(fresh, b"fresh", now + TimeDelta::minutes(5))
        .await
        .unwrap();
    let stale = Uuid::new_v4();
    store
        .put_enrolment_challenge(stale, b"stale", now - TimeDelta::seconds(1))
        .await
        .unwrap();
    assert_eq!(
        store.take_enrolment_challenge(fresh, now).await.unwrap(),
        Some(b"fresh".to_vec())
    );
    assert_eq!(
        store.take_enrolment_challenge(fresh, now).await.unwrap(),
        None
    );
    assert_eq!(
        store.take_enrolment_challenge(stale, now).await.unwrap(),
        None
    );
}

pub async fn enrolling_the_same_key_again_finds_the_same_resident(store: Arc<dyn Store>) {
    let now = Utc::now();
    let until = now + TimeDelta::days(365);
    let first = store
        .enrol(
            "ab12",
            &serde_json::json!({"name": "山田 花子"}),
            until,
            ResidentId::from_uuid(Uuid::new_v4()),
            now,
        )
        .await
        .unwrap();
    assert!(first.new_resident);
    assert!(
        store
            .resident_exists(first.enrolment.resident)
            .await
            .unwrap()
    );
    let again = store
        .enrol(
            "ab12",
            &serde_json::json!({"name": "山田 花子"}),
            until,
            ResidentId::from_uuid(Uuid::new_v4()),
            now,
        )
        .await
        .unwrap();
    assert!(!again.new_resident);
    assert_eq!(again.enrolment.resident, first.enrolment.resident);
    let other = store
        .enrol(
            "cd34",
            &serde_json::json!({"name": "佐藤 一郎"}),
            until,
            ResidentId::from_uuid(Uuid::new_v4()),
            now,
        )
        .await
        .unwrap();
    assert_ne!(other.enrolment.resident, first.enrolment.resident);
    let kept = store
        .enrolment_of(first.enrolment.resident)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.key_hash, "ab12");
    assert_eq!(kept.attributes["name"], "山田 花子");
    assert_eq!(
        store
            .enrolment_by_key("cd34")
            .await
            .unwrap()
            .unwrap()
            .resident,
        other.enrolment.resident
    );
}

pub async fn a_webauthn_ceremony_can_be_finished_once_and_only_as_its_kind(store: Arc<dyn Store>) {
    let now = Utc::now();
    let resident = town(store.as_ref(), 1).await[0].0;
    let id = Uuid::new_v4();
    let ceremony = Ceremony {
        resident: Some(resident),
        state: serde_json::json!({"challenge": "x"}),
    };
    store
        .put_ceremony(id, "register", &ceremony, now + TimeDelta::minutes(5))
        .await
        .unwrap();
    assert_eq!(store.take_ceremony(id, "sign-in", now).await.unwrap(), None);
    assert_eq!(
        store.take_ceremony(id, "register", now).await.unwrap(),
        Some(ceremony)
    );
    assert_eq!(
        store.take_ceremony(id, "register", now).await.unwrap(),
        None
    );
}

pub async fn passkeys_are_kept_per_resident_and_a_credential_registers_once(store: Arc<dyn Store>) {
    let now = Utc::now();
    let people = town(store.as_ref(), 2).await;
    let (alice, bob) = (people[0].0, people[1].0);
    let key = |id: &str, resident| StoredPasskey {
        credential_id: id.into(),
        resident,
        name: "phone".into(),
        passkey: serde_json::json!({"counter": 0}),
        created_at: now,
        last_used_at: None,
    };
    store.add_passkey(&key("cred-a", alice)).await.unwrap();
    store.add_passkey(&key("cred-b", alice)).await.unwrap();
    assert!(matches!(
        store.add_passkey(&key("cred-a", bob)).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(store.passkeys_of(alice).await.unwrap().len(), 2);
    assert!(store.passkeys_of(bob).await.unwrap().is_empty());
    store
        .update_passkey("cred-a", &serde_json::json!({"counter": 7}), now)
        .await
        .unwrap();
    let updated = store.passkey("cred-a").await.unwrap().unwrap();
    assert_eq!(updated.passkey["counter"], 7);
    assert!(updated.last_used_at.is_some());
    assert!(!store.remove_passkey(bob, "cred-a").await.unwrap());
    assert!(store.remove_passkey(alice, "cred-a").await.unwrap());
    assert_eq!(store.passkey("cred-a").await.unwrap(), None);
}

fn code(hash: &str, resident: ResidentId, expires_in: TimeDelta) -> AuthorizationCodeRecord {
    let now = Utc::now();
    AuthorizationCodeRecord {
        code_hash: hash.into(),
        service: service_id(),
        resident,
        redirect_uri: "https://app.example/cb".into(),
        code_challenge: "challenge".into(),
        nonce: Some("n-1".into()),
        scope: "openid".into(),
        consents: vec![ConsentId::from_uuid(Uuid::new_v4())],
        acting_proxy: None,
        acting_appointment: None,
        auth_time: now,
        expires_at: now + expires_in,
    }
}

/// What the rightful client presents with a code made by [`code`].
fn rightful() -> CodePresentation {
    CodePresentation {
        client: service_id(),
        redirect_uri: Some("https://app.example/cb".into()),
        code_challenge: Some("challenge".into()),
    }
}

pub async fn an_authorization_code_redeems_once_and_reuse_revokes_its_tokens(
    store: Arc<dyn Store>,
) {
    let resident = town(store.as_ref(), 1).await[0].0;
    let stored = code("h1", resident, TimeDelta::minutes(1));
    store.put_authorization_code(&stored).await.unwrap();
    let now = Utc::now();
    let first = store
        .redeem_authorization_code("h1", &rightful(), now)
        .await
        .unwrap();
    assert!(
        matches!(&first, CodeRedemption::Redeemed(c) if c.consents == stored.consents && c.nonce == stored.nonce)
    );
    assert!(!store.token_revoked("jti-1", Some("h1")).await.unwrap());
    assert_eq!(
        store
            .redeem_authorization_code("h1", &rightful(), now)
            .await
            .unwrap(),
        CodeRedemption::Reused
    );
    assert!(store.token_revoked("jti-1", Some("h1")).await.unwrap());
    assert_eq!(
        store
            .redeem_authorization_code("nope", &rightful(), now)
            .await
            .unwrap(),
        CodeRedemption::Unknown
    );
}

pub async fn an_expired_authorization_code_is_refused(store: Arc<dyn Store>) {
    let resident = town(store.as_ref(), 1).await[0].0;
    store
        .put_authorization_code(&code("h2", resident, TimeDelta::seconds(-1)))
        .await
        .unwrap();
    assert_eq!(
        store
            .redeem_authorization_code("h2", &rightful(), Utc::now())
            .await
            .unwrap(),
        CodeRedemption::Expired
    );
}

pub async fn a_code_presented_by_another_client_or_without_its_verifier_stays_redeemable(
    store: Arc<dyn Store>,
) {
    let resident = town(store.as_ref(), 1).await[0].0;
    store
        .put_authorization_code(&code("h5", resident, TimeDelta::minutes(1)))
        .await
        .unwrap();
    let now = Utc::now();
    let other_client = CodePresentation {
        client: renkei_domain::ServiceId::new("someone-else").unwrap(),
        ..rightful()
    };
    let other_redirect = CodePresentation {
        redirect_uri: Some("https://evil.example/cb".into()),
        ..rightful()
    };
    let no_redirect = CodePresentation {
        redirect_uri: None,
        ..rightful()
    };
    let no_verifier = CodePresentation {
        code_challenge: None,
        ..rightful()
    };
    let wrong_verifier = CodePresentation {
        code_challenge: Some("other".into()),
        ..rightful()
    };
    let attempts = [
        (other_client, CodeMismatch::Client),
        (other_redirect, CodeMismatch::RedirectUri),
        (no_redirect, CodeMismatch::RedirectUri),
        (no_verifier, CodeMismatch::Verifier),
        (wrong_verifier, CodeMismatch::Verifier),
    ];
    // Refused before the rightful client redeems it, and after: a stranger's attempt never
    // spends the code, nor (once spent) revokes its tokens.
    for rightful_redeems in [true, false] {
        for (presented, mismatch) in &attempts {
            assert_eq!(
                store
                    .redeem_authorization_code("h5", presented, now)
                    .await
                    .unwrap(),
                CodeRedemption::Mismatch(*mismatch),
                "{presented:?}"
            );
        }
        if rightful_redeems {
            let redeemed = store
                .redeem_authorization_code("h5", &rightful(), now)
                .await
                .unwrap();
            assert!(matches!(redeemed, CodeRedemption::Redeemed(_)));
        }
    }
    assert!(!store.token_revoked("jti-5", Some("h5")).await.unwrap());
}

pub async fn a_code_a_proxy_signed_in_for_keeps_the_appointment_they_acted_under(
    store: Arc<dyn Store>,
) {
    let town = town(store.as_ref(), 2).await;
    let stored = AuthorizationCodeRecord {
        acting_proxy: Some(town[1].0),
        acting_appointment: Some(ProxyId::from_uuid(Uuid::new_v4())),
        ..code("h4", town[0].0, TimeDelta::minutes(1))
    };
    store.put_authorization_code(&stored).await.unwrap();
    let acting = |c: &AuthorizationCodeRecord| (c.acting_proxy, c.acting_appointment);
    let read = store.authorization_code("h4").await.unwrap().unwrap();
    assert_eq!(acting(&read), acting(&stored));
    match store
        .redeem_authorization_code("h4", &rightful(), Utc::now())
        .await
        .unwrap()
    {
        CodeRedemption::Redeemed(redeemed) => assert_eq!(acting(&redeemed), acting(&stored)),
        other => panic!("the code redeems: {other:?}"),
    }
}

pub async fn purging_removes_only_what_expired_and_keeps_what_tokens_are_bound_to(
    store: Arc<dyn Store>,
) {
    let resident = town(store.as_ref(), 1).await[0].0;
    let now = Utc::now();
    let stale = now - TimeDelta::seconds(1);
    let fresh = now + TimeDelta::minutes(5);
    let ceremony = Ceremony {
        resident: None,
        state: serde_json::json!({"s": 1}),
    };
    let (old_challenge, new_challenge) = (Uuid::new_v4(), Uuid::new_v4());
    let (old_ceremony, new_ceremony) = (Uuid::new_v4(), Uuid::new_v4());
    store
        .put_enrolment_challenge(old_challenge, b"old", stale)
        .await
        .unwrap();
    store
        .put_enrolment_challenge(new_challenge, b"new", fresh)
        .await
        .unwrap();
    store
        .put_ceremony(old_ceremony, "sign-in", &ceremony, stale)
        .await
        .unwrap();
    store
        .put_ceremony(new_ceremony, "sign-in", &ceremony, fresh)
        .await
        .unwrap();
    store
        .put_authorization_code(&code("unused", resident, TimeDelta::seconds(-1)))
        .await
        .unwrap();
    // Redeemed before it expired: its tokens are bound to it, so it stays.
    store
        .put_authorization_code(&code("used", resident, TimeDelta::seconds(-1)))
        .await
        .unwrap();
    let redeemed = store
        .redeem_authorization_code("used", &rightful(), now - TimeDelta::seconds(2))
        .await
        .unwrap();
    assert!(matches!(redeemed, CodeRedemption::Redeemed(_)));
    store.revoke_token("jti-old", stale, now).await.unwrap();
    store.revoke_token("jti-new", fresh, now).await.unwrap();

    assert_eq!(store.purge_expired(now).await.unwrap(), 4);
    assert_eq!(store.purge_expired(now).await.unwrap(), 0);

    assert_eq!(store.authorization_code("unused").await.unwrap(), None);
    assert!(store.authorization_code("used").await.unwrap().is_some());
    assert!(store.token_revoked("jti-new", None).await.unwrap());
    assert!(!store.token_revoked("jti-old", None).await.unwrap());
    assert_eq!(
        store
            .take_enrolment_challenge(new_challenge, now)
            .await
            .unwrap(),
        Some(b"new".to_vec())
    );
    assert_eq!(
        store
            .take_ceremony(new_ceremony, "sign-in", now)
            .await
            .unwrap(),
        Some(ceremony)
    );
}

pub async fn a_revoked_token_reads_back_as_revoked(store: Arc<dyn Store>) {
    let now = Utc::now();
    assert!(!store.token_revoked("jti-9", None).await.unwrap());
    store
        .revoke_token("jti-9", now + TimeDelta::minutes(5), now)
        .await
        .unwrap();
    store
        .revoke_token("jti-9", now + TimeDelta::minutes(5), now)
        .await
        .unwrap();
    assert!(store.token_revoked("jti-9", None).await.unwrap());
    assert!(!store.token_revoked("jti-8", None).await.unwrap());
}

pub async fn a_service_client_registration_reads_back(store: Arc<dyn Store>) {
    town(store.as_ref(), 1).await;
    let mut client = ServiceClient {
        service: service_id(),
        redirect_uris: vec!["https://app.example/cb".into()],
        privacy_impact: [("retention".to_owned(), "90 days".to_owned())].into(),
        registered_at: chrono::DateTime::from_timestamp_millis(Utc::now().timestamp_millis())
            .unwrap(),
        id_token_signed_response_alg: SigningAlg::EdDsa,
        controller: None,
    };
    store.put_service_client(&client).await.unwrap();
    assert_eq!(
        store.service_client(&service_id()).await.unwrap(),
        Some(client.clone())
    );
    client.id_token_signed_response_alg = SigningAlg::Rs256;
    client.redirect_uris.push("https://app.example/cb2".into());
    client.controller = Some(renkei_domain::ControllerContact {
        contact: "個人情報保護窓口".into(),
        address: renkei_domain::PostalAddress {
            country: "JP".into(),
            postal_code: "999-0001".into(),
            region: "ひかり県".into(),
            locality: "ひかり台市".into(),
            street_address: "中央1-1".into(),
        },
        email: "privacy@app.example".into(),
        phone: "03-0000-0000".into(),
    });
    store.put_service_client(&client).await.unwrap();
    assert_eq!(
        store.service_client(&service_id()).await.unwrap(),
        Some(client),
        "a registration made again replaces the redirect URIs, the ID token algorithm and \
         the controller's contact details"
    );
}

pub async fn only_the_appointing_resident_ends_a_proxy_appointment(store: Arc<dyn Store>) {
    let now = chrono::DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
    let people = town(store.as_ref(), 3).await;
    let (resident, proxy, stranger) = (people[0].0, people[1].0, people[2].0);
    let appointment = ProxyAppointment {
        id: ProxyId::from_uuid(Uuid::new_v4()),
        resident,
        proxy,
        label: "娘".into(),
        scope: ProxyScope {
            manage_consents: true,
            ..ProxyScope::default()
        },
        appointed_at: now,
        ended_at: None,
        representation: None,
    };
    store.appoint_proxy(&appointment).await.unwrap();
    assert_eq!(
        store.proxy_for(proxy).await.unwrap(),
        vec![appointment.clone()]
    );
    assert!(matches!(
        store.end_proxy(stranger, appointment.id, now).await,
        Err(StoreError::NotFound(_))
    ));
    let ended = store
        .end_proxy(resident, appointment.id, now)
        .await
        .unwrap();
    assert_eq!(ended.ended_at, Some(now));
    assert!(store.proxy_for(proxy).await.unwrap().is_empty());
    assert_eq!(store.proxies_of(resident).await.unwrap(), vec![ended]);
    assert!(matches!(
        store.end_proxy(resident, appointment.id, now).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn an_operator_is_found_by_id_and_by_the_identity_they_sign_in_with(
    store: Arc<dyn Store>,
) {
    let people = town(store.as_ref(), 2).await;
    let operator = Operator {
        id: OperatorId::new("tanaka").unwrap(),
        name: "田中".into(),
        identity: people[0].0,
        added_at: chrono::DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap(),
        role: renkei_domain::OperatorRole::Operator,
    };
    store.put_operator(&operator).await.unwrap();
    assert_eq!(
        store.operator_by_identity(people[0].0).await.unwrap(),
        Some(operator.clone())
    );
    assert_eq!(store.operator_by_identity(people[1].0).await.unwrap(), None);
    assert_eq!(store.operator(&operator.id).await.unwrap(), Some(operator));
    assert_eq!(
        store
            .operator(&OperatorId::new("nobody").unwrap())
            .await
            .unwrap(),
        None
    );
}

pub async fn resident_requests_are_listed_and_their_status_updated(store: Arc<dyn Store>) {
    let now = chrono::DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
    let people = town(store.as_ref(), 2).await;
    let request = ResidentRequest {
        id: ResidentRequestId::from_uuid(Uuid::new_v4()),
        resident: people[0].0,
        kind: ResidentRequestKind::Correction,
        service: Some(service_id()),
        details: "住所が古い".into(),
        status: ResidentRequestStatus::Received,
        filed_by: Actor::Resident,
        filed_at: now,
        updated_at: now,
        response: None,
        category: None,
        due_at: now + TimeDelta::days(14),
        extension_reason: None,
    };
    store.file_request(&request).await.unwrap();
    assert_eq!(
        store.requests_of(people[0].0).await.unwrap(),
        vec![request.clone()]
    );
    assert!(store.requests_of(people[1].0).await.unwrap().is_empty());
    let later = now + TimeDelta::minutes(1);
    let done = store
        .update_request(
            request.id,
            ResidentRequestStatus::Completed,
            Some("更新しました"),
            later,
        )
        .await
        .unwrap();
    assert_eq!(done.status, ResidentRequestStatus::Completed);
    assert_eq!(done.response.as_deref(), Some("更新しました"));
    assert_eq!(done.updated_at, later);
    assert!(
        store
            .requests(Some(ResidentRequestStatus::Received))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.requests(None).await.unwrap(), vec![done]);
    assert!(matches!(
        store
            .update_request(
                ResidentRequestId::from_uuid(Uuid::new_v4()),
                ResidentRequestStatus::Completed,
                None,
                later
            )
            .await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn a_signing_key_in_a_token_reads_back_with_no_private_half_and_is_no_stored_secret(
    store: Arc<dyn Store>,
) {
    let now = Utc::now();
    let in_token = StoredSigningKey {
        kid: "in-token".to_owned(),
        alg: SigningAlg::Rs256,
        custody: KeyCustody::Token(TokenKeyRef {
            token: "city-hsm".to_owned(),
            object_id: vec![0, 1, 2, 0xff],
            public_jwk: r#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#.to_owned(),
        }),
        created_at: now,
        active_from: now,
        retired_at: None,
    };
    let stored = StoredSigningKey {
        kid: "stored".to_owned(),
        alg: SigningAlg::EdDsa,
        custody: KeyCustody::Stored(b"wrapped".to_vec()),
        ..in_token.clone()
    };
    assert!(store.add_signing_key(&in_token).await.unwrap());
    assert!(store.add_signing_key(&stored).await.unwrap());
    let listed = store.signing_keys().await.unwrap();
    let read = listed.iter().find(|k| k.kid == "in-token").unwrap();
    assert_eq!(read.custody, in_token.custody);
    assert_eq!(read.alg, SigningAlg::Rs256);
    let secrets = store.stored_secrets().await.unwrap();
    assert_eq!(
        secrets.iter().map(|s| s.slot.clone()).collect::<Vec<_>>(),
        [crate::SecretSlot::SigningKey("stored".into())],
        "only the stored private half is a secret"
    );
    assert!(
        !store
            .replace_secrets(&[crate::SecretReplacement {
                slot: crate::SecretSlot::SigningKey("in-token".into()),
                expected: Vec::new(),
                value: b"planted".to_vec(),
            }])
            .await
            .unwrap(),
        "no private half can be written into a key kept in a token"
    );
    assert_eq!(store.signing_keys().await.unwrap(), listed);
}

pub async fn signing_keys_are_added_once_listed_in_activation_order_and_retired_once(
    store: Arc<dyn Store>,
) {
    let now = Utc::now();
    let key = |kid: &str, alg, active_from| StoredSigningKey {
        kid: kid.to_owned(),
        alg,
        custody: KeyCustody::Stored(kid.as_bytes().to_vec()),
        created_at: now,
        active_from,
        retired_at: None,
    };
    let later = key("later", SigningAlg::Rs256, now + TimeDelta::hours(1));
    let first = key("first", SigningAlg::EdDsa, now - TimeDelta::days(30));
    assert!(store.add_signing_key(&later).await.unwrap());
    assert!(store.add_signing_key(&first).await.unwrap());
    let mut clash = key("first", SigningAlg::Rs256, now);
    clash.custody = KeyCustody::Stored(b"other".to_vec());
    assert!(
        !store.add_signing_key(&clash).await.unwrap(),
        "a second key under a known kid must not be stored"
    );
    let listed = store.signing_keys().await.unwrap();
    let kids: Vec<&str> = listed.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(kids, ["first", "later"]);
    assert_eq!(
        (&listed[0].custody, listed[0].alg),
        (&KeyCustody::Stored(b"first".to_vec()), SigningAlg::EdDsa),
        "the first key under a kid is kept"
    );
    assert_eq!(listed[1].alg, SigningAlg::Rs256);
    assert_eq!(
        listed[1].active_from.timestamp_millis(),
        later.active_from.timestamp_millis()
    );

    assert!(store.retire_signing_key("first", now).await.unwrap());
    assert!(!store.retire_signing_key("first", now).await.unwrap());
    assert!(!store.retire_signing_key("unknown", now).await.unwrap());
    let listed = store.signing_keys().await.unwrap();
    assert_eq!(
        listed[0].retired_at.map(|t| t.timestamp_millis()),
        Some(now.timestamp_millis())
    );
    assert_eq!(listed[1].retired_at, None);
}
