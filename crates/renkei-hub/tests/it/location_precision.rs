//! Location data by purpose: a category that holds a location is released at the precision
//! the purpose declared, coarsened by the provider before it seals, and never finer.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use renkei_domain::location::coarsen;
use renkei_domain::{
    DataCategory, LegalBasis, LocalizedText, LocationPrecision, LocationUse, Locator, ProviderId,
    ProviderKey, ProviderKeys, PurposeId, ServiceId,
};
use renkei_protocol::keys::SigningKey;
use renkei_provider::{MemoryRecords, Provider};
use renkei_store::PurposeDraft;
use serde_json::{Value, json};

use crate::common::{Server, Town, cat};

const BOARDING: &str = "bus.boarding";

/// Where Alice boarded: 東京駅, as the transit provider holds it.
fn boarding_point() -> Value {
    json!({ "lat": 35.681236, "lon": 139.767125, "municipality": "131016",
            "at": "2026-12-01T08:12:00+09:00", "stop": "丸の内北口" })
}

/// A transit provider holding Alice's boarding point, registered and approved, and her
/// locator there; `town-mobility` publishes `boarding` at `precision`.
async fn transit(town: &Town, precision: LocationPrecision) -> Server {
    town.store
        .put_category(&DataCategory {
            id: cat(BOARDING),
            name: LocalizedText::new("乗車地点", "Boarding point"),
            special_care: false,
            location: true,
        })
        .await
        .unwrap();
    let id = ProviderId::new("transit").unwrap();
    let key = SigningKey::generate().unwrap();
    let records = MemoryRecords(HashMap::from([(
        "T-1".to_owned(),
        serde_json::Map::from_iter([(BOARDING.to_owned(), boarding_point())]),
    )]));
    let provider = Provider::new(
        id.clone(),
        town.hub.keys().jwks(),
        key.clone(),
        Arc::new(records),
    );
    let server = Server::start(renkei_provider::router(provider)).await;
    town.store
        .put_provider(&renkei_domain::Provider {
            id: id.clone(),
            name: LocalizedText::new("ひかり台バス", "Hikaridai Bus"),
            connection: renkei_domain::ProviderConnection::Inbound {
                endpoint: server.url.clone(),
            },
            categories: [cat(BOARDING)].into(),
            max_answer_bytes: None,
            signing_keys: ProviderKeys::new(vec![
                ProviderKey::new(key.kid(), *key.public_key()).unwrap(),
            ])
            .unwrap(),
            contact: None,
            status: renkei_domain::ProviderStatus::Approved,
        })
        .await
        .unwrap();
    town.store
        .put_locators(&[Locator {
            resident: town.alice,
            category: cat(BOARDING),
            provider: id,
            reference: "T-1".into(),
        }])
        .await
        .unwrap();
    town.store
        .publish_purpose(
            &PurposeDraft {
                service: ServiceId::new("town-mobility").unwrap(),
                id: PurposeId::new("boarding").unwrap(),
                title: LocalizedText::new("乗車状況", "Boarding statistics"),
                description: LocalizedText::new("路線計画に使います。", "For route planning."),
                categories: [cat(BOARDING)].into(),
                retention_days: 30,
                legal_basis: LegalBasis::Consent,
                emergency_only: false,
                location: Some(LocationUse {
                    precision,
                    retention_days: 30,
                }),
            },
            Utc::now(),
        )
        .await
        .unwrap();
    server
}

#[tokio::test]
async fn a_location_category_is_released_at_the_purposes_precision_and_no_finer() {
    let town = Town::new().await;
    let _transit = transit(&town, LocationPrecision::Mesh1km).await;
    let alice = town.sign_in(town.alice).await;
    let granted = town.grant(&alice, "town-mobility", "boarding").await;
    let service = town.service_token(&town.mobility).await;
    let answer = town
        .data(&service, &granted.subject, "boarding", &[BOARDING])
        .await;
    let opened = town.open_all(&town.mobility, &answer).await;
    let released = &opened["transit"]["data"][BOARDING];
    assert_eq!(
        released,
        &coarsen(&boarding_point(), LocationPrecision::Mesh1km),
        "released at the purpose's precision"
    );
    assert_eq!(released["mesh"], "53394611");
    assert!(
        released.get("stop").is_none(),
        "nothing else of the record: {released}"
    );
    let (lat, lon) = (
        released["lat"].as_f64().unwrap(),
        released["lon"].as_f64().unwrap(),
    );
    assert_ne!((lat, lon), (35.681236, 139.767125), "not the point itself");
    // No finer: the released point is the mesh's centre, the same for any point inside it.
    assert_eq!(
        coarsen(
            &json!({ "lat": 35.6800, "lon": 139.7700 }),
            LocationPrecision::Mesh1km
        )["lat"],
        released["lat"]
    );
}

#[tokio::test]
async fn a_service_that_ends_owes_the_deletion_of_its_location_data_until_confirmed() {
    use renkei_domain::{LogEntry, OperatorAction, OperatorId};
    let town = Town::new().await;
    let _transit = transit(&town, LocationPrecision::Exact).await;
    let operator = OperatorId::new("tanaka").unwrap();
    town.hub
        .suspend_service(&operator, &town.mobility.id)
        .await
        .unwrap();
    let owed = town.hub.location_deletions().await.unwrap();
    assert_eq!(
        owed.len(),
        1,
        "only `boarding` draws on a location: {owed:?}"
    );
    let d = &owed[0];
    assert_eq!(d.purpose.as_str(), "boarding");
    assert_eq!(d.due_at - d.ended_at, chrono::TimeDelta::days(30));
    assert!(!d.is_overdue(Utc::now()));
    assert!(d.is_overdue(d.due_at), "overdue once due, unconfirmed");

    town.hub
        .confirm_location_deletion(&operator, &d.service, &d.purpose, d.purpose_version)
        .await
        .unwrap();
    let confirmed = &town.hub.location_deletions().await.unwrap()[0];
    assert_eq!(confirmed.confirmed_by.as_ref(), Some(&operator));
    assert!(!confirmed.is_overdue(d.due_at));
    // The confirmation is an operator entry of the log; a second one finds nothing owed.
    let log = town.store.log_range(0, 10_000).await.unwrap();
    assert!(log.iter().any(|e| matches!(
        &e.entry,
        Some(Ok(LogEntry::Operator(o)))
            if matches!(o.action, OperatorAction::ConfirmLocationDeletion { .. })
    )));
    assert!(
        town.hub
            .confirm_location_deletion(&operator, &d.service, &d.purpose, d.purpose_version)
            .await
            .is_err()
    );
}
