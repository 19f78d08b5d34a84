//! Checks of provider registrations: what a registration keeps, its review status, and that
//! only an approved provider's locators serve a granted request.

use std::sync::Arc;

use renkei_domain::{
    ControllerContact, LocalizedText, PostalAddress, Provider, ProviderConnection, ProviderId,
    ProviderKeys, ProviderStatus,
};
use serde_json::json;

use super::{cat, consent, decide_one, request, town};
use crate::{Store, StoreError};

fn registration(id: &str, connection: ProviderConnection) -> Provider {
    Provider {
        id: ProviderId::new(id).unwrap(),
        name: LocalizedText::new("ひかり台市 住民基本台帳", "Hikaridai City registry"),
        connection,
        categories: [cat("health.checkup")].into(),
        max_answer_bytes: Some(1 << 20),
        signing_keys: ProviderKeys::parse(&json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "kid": "2026-12", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "2027-06", "x": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"},
        ]}))
        .unwrap(),
        contact: Some(ControllerContact {
            contact: "市民課 システム担当".into(),
            address: PostalAddress {
                country: "JP".into(),
                postal_code: "999-0100".into(),
                region: "ひかり県".into(),
                locality: "ひかり台市".into(),
                street_address: "役所通り1番1号".into(),
            },
            email: "registry@city.example".into(),
            phone: "+81-3-0000-0100".into(),
        }),
        status: ProviderStatus::Pending,
    }
}

pub async fn a_provider_registration_reads_back_with_its_keys_contact_and_connection(
    store: Arc<dyn Store>,
) {
    super::town(store.as_ref(), 0).await;
    let inbound = registration(
        "city-registry",
        ProviderConnection::Inbound {
            endpoint: "https://registry.city.example".into(),
        },
    );
    let outbound = Provider {
        contact: None,
        signing_keys: ProviderKeys::default(),
        ..registration("lgwan-registry", ProviderConnection::Outbound)
    };
    store.put_provider(&inbound).await.unwrap();
    store.put_provider(&outbound).await.unwrap();
    assert_eq!(
        store.provider(&inbound.id).await.unwrap().as_ref(),
        Some(&inbound)
    );
    assert_eq!(
        store.provider(&outbound.id).await.unwrap().as_ref(),
        Some(&outbound)
    );
    let ids: Vec<String> = store
        .providers()
        .await
        .unwrap()
        .iter()
        .map(|p| p.id.to_string())
        .collect();
    assert_eq!(ids, ["city-registry", "clinic", "lgwan-registry"]);
    assert_eq!(
        store
            .provider(&ProviderId::new("nobody").unwrap())
            .await
            .unwrap(),
        None
    );
    // Registering again replaces the registration, keys and connection included.
    let moved = Provider {
        connection: ProviderConnection::Outbound,
        signing_keys: ProviderKeys::default(),
        ..inbound.clone()
    };
    store.put_provider(&moved).await.unwrap();
    assert_eq!(store.provider(&moved.id).await.unwrap(), Some(moved));
}

pub async fn a_providers_status_moves_and_an_unknown_provider_is_not_found(store: Arc<dyn Store>) {
    super::town(store.as_ref(), 0).await;
    let p = registration(
        "city-registry",
        ProviderConnection::Inbound {
            endpoint: "https://registry.city.example".into(),
        },
    );
    store.put_provider(&p).await.unwrap();
    for status in [
        ProviderStatus::Approved,
        ProviderStatus::Suspended,
        ProviderStatus::Approved,
    ] {
        store.set_provider_status(&p.id, status).await.unwrap();
        let read = store.provider(&p.id).await.unwrap().unwrap();
        assert_eq!(read.status, status);
        assert_eq!(read.signing_keys, p.signing_keys, "nothing else changes");
    }
    let unknown = store
        .set_provider_status(
            &ProviderId::new("nobody").unwrap(),
            ProviderStatus::Approved,
        )
        .await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound(_))),
        "{unknown:?}"
    );
}

pub async fn a_granted_request_names_no_provider_that_is_not_approved(store: Arc<dyn Store>) {
    let people = town(store.as_ref(), 1).await;
    let (resident, subject) = people[0].clone();
    store
        .grant_consent(
            &consent(resident, 1, &["health.checkup"], chrono::Utc::now()),
            None,
        )
        .await
        .unwrap();
    let clinic = ProviderId::new("clinic").unwrap();
    let served = decide_one(store.as_ref(), request(&subject, &["health.checkup"])).await;
    assert_eq!(served.record.providers, [clinic.clone()].into());
    for status in [ProviderStatus::Suspended, ProviderStatus::Pending] {
        // The decision read before is stale now: the status change must be seen at once.
        store.set_provider_status(&clinic, status).await.unwrap();
        let d = decide_one(store.as_ref(), request(&subject, &["health.checkup"])).await;
        assert!(
            matches!(d.decision, renkei_domain::Decision::Granted(_)),
            "the consent still holds"
        );
        assert!(d.locators.is_empty(), "{status:?}: {:?}", d.locators);
        assert!(d.record.providers.is_empty() && d.providers.is_empty());
    }
    store
        .set_provider_status(&clinic, ProviderStatus::Approved)
        .await
        .unwrap();
    let again = decide_one(store.as_ref(), request(&subject, &["health.checkup"])).await;
    assert_eq!(again.record.providers, [clinic].into());
}
