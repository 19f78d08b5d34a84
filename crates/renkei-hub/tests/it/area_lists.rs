//! Area lists over real HTTP: a responder asks under a declaration in force for everyone on
//! the evacuation-support register inside an area; a welfare provider selects the entries by
//! mesh code and seals each one; the hub relays only those it can map to a resident, each
//! after that resident's access record, which their verified history then shows. Requests
//! outside the declaration's scope or window are denied with stable reasons.

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use renkei_domain::locator_sync::provider_sector;
use renkei_domain::{
    DataCategory, LocalizedText, OperatorId, ProviderConnection, ProviderId, ProviderStatus,
    PurposeId, ResidentId,
};
use renkei_hub::area_lists::AreaListResponse;
use renkei_protocol::envelope::{EnvelopeContext, SealedPayload};
use renkei_protocol::keys::{Jwks, SigningKey};
use renkei_provider::area::MemoryRegister;
use serde_json::{Map, Value, json};

use crate::common::{HEALTH_CHECKUP, Server, Town, advice_draft, cat, expect_problem};
use crate::transparency_log::{everything_signed, my_log, published_key, verify_entry};

const SUPPORT: &str = "disaster.support";

/// The welfare office's register, a provider listing by area.
struct Welfare {
    id: ProviderId,
    key: SigningKey,
    _server: Server,
}

fn text(ja: &str, en: &str) -> LocalizedText {
    LocalizedText {
        ja: ja.into(),
        en: en.into(),
    }
}

fn needs(what: &str) -> Map<String, Value> {
    let mut data = Map::new();
    data.insert(SUPPORT.into(), json!({ "needs": what }));
    data
}

/// The register: Alice inside the area asked for, Bob inside the declaration but outside the
/// area asked for, an entry whose code the hub never issued, and Carol named by her code at
/// another provider (which names no one here).
async fn welfare(town: &Town) -> Welfare {
    town.store
        .put_category(&DataCategory {
            id: cat(SUPPORT),
            name: text("避難行動要支援者名簿", "Evacuation support register"),
            special_care: true,
        })
        .await
        .unwrap();
    town.store
        .publish_purpose(
            &renkei_store::PurposeDraft {
                id: PurposeId::new("evacuation").unwrap(),
                categories: [cat(SUPPORT)].into(),
                ..advice_draft()
            },
            Utc::now(),
        )
        .await
        .unwrap();
    let id = ProviderId::new("welfare").unwrap();
    let code = |resident| async move {
        town.hub
            .provider_subject(&ProviderId::new("welfare").unwrap(), resident)
            .await
            .unwrap()
            .to_string()
    };
    let stranger = ResidentId::from_uuid(uuid::Uuid::new_v4());
    let unissued = town
        .hub
        .keys()
        .subject(&provider_sector(&id), stranger)
        .to_string();
    let carol_at_clinic = town
        .hub
        .provider_subject(&ProviderId::new("clinic").unwrap(), town.carol)
        .await
        .unwrap()
        .to_string();
    let register = MemoryRegister {
        categories: vec![cat(SUPPORT)],
        entries: vec![
            (code(town.alice).await, "533945261".into(), needs("車椅子")),
            (code(town.bob).await, "53394527".into(), needs("視覚")),
            (unissued, "53394526".into(), needs("聴覚")),
            (carol_at_clinic, "53394526".into(), needs("酸素")),
        ],
    };
    let key = SigningKey::generate().unwrap();
    let provider = renkei_provider::Provider::new(
        id.clone(),
        town.hub.keys().jwks(),
        key.clone(),
        Arc::new(register),
    );
    let server = Server::start(renkei_provider::router(provider)).await;
    town.store
        .put_provider(&renkei_domain::Provider {
            id: id.clone(),
            name: text("福祉課", "Welfare office"),
            connection: ProviderConnection::Inbound {
                endpoint: server.url.clone(),
            },
            categories: [cat(SUPPORT)].into(),
            max_answer_bytes: None,
            signing_keys: renkei_domain::ProviderKeys::parse(&json!({
                "keys": [serde_json::to_value(key.public_jwk()).unwrap()]
            }))
            .unwrap(),
            contact: None,
            status: ProviderStatus::Approved,
        })
        .await
        .unwrap();
    Welfare {
        id,
        key,
        _server: server,
    }
}

async fn operators(town: &Town) -> (String, String) {
    let first = town.operator_token().await;
    let suzuki = OperatorId::new("suzuki").unwrap();
    town.hub
        .add_operator(suzuki.clone(), "鈴木".into(), town.carol)
        .await
        .unwrap();
    let second = town
        .hub
        .keys()
        .issue_operator_token(&suzuki, Utc::now())
        .unwrap();
    (first, second)
}

async fn post(town: &Town, token: &str, path: &str, body: Value) -> reqwest::Response {
    town.post(path)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Declares an emergency releasing the register to health-advice over mesh 533945.
async fn declare(town: &Town, token: &str) -> String {
    let response = post(
        town,
        token,
        "/v1/operator/declarations",
        json!({
            "reason": "河川氾濫のおそれ", "legal_basis": "disaster_act49_11",
            "categories": [SUPPORT], "services": ["health-advice"],
            "area": ["533945", "district:hikari-1"],
            "ends_at": Utc::now() + TimeDelta::hours(1),
        }),
    )
    .await;
    assert_eq!(response.status(), 201);
    response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn step(town: &Town, token: &str, id: &str, what: &str) {
    let response = post(
        town,
        token,
        &format!("/v1/operator/declarations/{id}/{what}"),
        json!({}),
    )
    .await;
    assert_eq!(response.status(), 200, "{what}");
}

async fn ask(
    town: &Town,
    token: &str,
    declaration: &str,
    purpose: &str,
    categories: &[&str],
    area: &[&str],
) -> reqwest::Response {
    post(
        town,
        token,
        "/v1/area-lists",
        json!({
            "declaration": declaration, "purpose": purpose,
            "categories": categories, "area": area,
        }),
    )
    .await
}

/// The access records with an emergency basis in `resident`'s verified history.
async fn emergency_history(town: &Town, resident: ResidentId) -> Vec<Value> {
    let key = published_key(town).await;
    let (_, checkpoint) = everything_signed(town, &key).await;
    let token = town.sign_in(resident).await;
    let page = my_log(town, &token, "").await;
    page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| verify_entry(e, &checkpoint).1)
        .filter(|e| e["basis"]["kind"] == "emergency")
        .collect()
}

#[tokio::test]
async fn an_area_list_releases_each_mapped_entry_after_its_residents_record_and_no_other() {
    let town = Town::new().await;
    let welfare = welfare(&town).await;
    let (tanaka, suzuki) = operators(&town).await;
    let health = town.service_token(&town.health).await;
    let id = declare(&town, &tanaka).await;
    let before = ask(&town, &health, &id, "evacuation", &[SUPPORT], &["53394526"]).await;
    expect_problem(before, 403, "/problems/emergency-not-in-force").await;
    step(&town, &suzuki, &id, "confirm").await;

    let response = ask(&town, &health, &id, "evacuation", &[SUPPORT], &["53394526"]).await;
    assert_eq!(response.status(), 200);
    let list: AreaListResponse = response.json().await.unwrap();
    // The provider selected three entries inside the area; only Alice's maps to a resident
    // at this provider (Bob lives outside the area asked for).
    assert_eq!(list.providers.len(), 1);
    assert_eq!(
        (list.providers[0].status.as_str(), list.providers[0].entries),
        ("ok", 3)
    );
    assert_eq!(list.not_relayed, 2);
    assert_eq!(list.entries.len(), 1);
    let entry = &list.entries[0];
    assert_eq!(
        entry.subject,
        town.hub.keys().subject("health", town.alice).to_string()
    );
    // Sealed to the responder and signed by the provider: the hub could read neither.
    let sealed = SealedPayload {
        suite: entry.payload.suite.clone(),
        enc: entry.payload.enc.clone(),
        ciphertext: entry.payload.ciphertext.clone(),
    };
    let context = EnvelopeContext {
        provider: welfare.id.clone(),
        request: list.request_id.parse().unwrap(),
    };
    let claims = renkei_protocol::payload::open_verified(
        &town.health.keys,
        &town.health.id,
        &context,
        &Jwks::from_signing_keys([&welfare.key]),
        &sealed,
    )
    .unwrap();
    assert_eq!(claims.data["data"][SUPPORT]["needs"], "車椅子");

    // Alice's verified history holds the release under the declaration, at the position
    // the responder was told; Bob's and Carol's hold nothing.
    let alices = emergency_history(&town, town.alice).await;
    assert_eq!(alices.len(), 1, "{alices:?}");
    assert_eq!(alices[0]["basis"]["declaration"], id.as_str());
    assert_eq!(alices[0]["outcome"]["outcome"], "granted");
    assert_eq!(alices[0]["seq"], entry.log_position);
    assert_eq!(alices[0]["request"], list.request_id.as_str());
    assert_eq!(alices[0]["providers"], json!(["welfare"]));
    assert!(emergency_history(&town, town.bob).await.is_empty());
    assert!(emergency_history(&town, town.carol).await.is_empty());

    // Ended: nothing more is released.
    step(&town, &tanaka, &id, "end").await;
    let after = ask(&town, &health, &id, "evacuation", &[SUPPORT], &["53394526"]).await;
    expect_problem(after, 403, "/problems/emergency-not-in-force").await;
    assert_eq!(emergency_history(&town, town.alice).await.len(), 1);
}

#[tokio::test]
async fn an_area_list_outside_the_declarations_scope_is_denied_with_a_stable_reason() {
    let town = Town::new().await;
    let _welfare = welfare(&town).await;
    let (tanaka, suzuki) = operators(&town).await;
    let id = declare(&town, &tanaka).await;
    step(&town, &suzuki, &id, "confirm").await;
    let health = town.service_token(&town.health).await;

    // A service the declaration does not name.
    let mobility = town.service_token(&town.mobility).await;
    let other = ask(
        &town,
        &mobility,
        &id,
        "rides",
        &["payment.history"],
        &["53394526"],
    )
    .await;
    expect_problem(other, 403, "/problems/service-not-in-emergency").await;
    // A category it does not release.
    let category = ask(
        &town,
        &health,
        &id,
        "advice",
        &[HEALTH_CHECKUP],
        &["53394526"],
    )
    .await;
    let p = expect_problem(category, 403, "/problems/category-not-in-emergency").await;
    assert_eq!(p["categories"], json!([HEALTH_CHECKUP]));
    // An area wider than its own, or another district.
    let area = ask(
        &town,
        &health,
        &id,
        "evacuation",
        &[SUPPORT],
        &["5339", "district:hikari-2", "53394526"],
    )
    .await;
    let p = expect_problem(area, 403, "/problems/area-not-in-emergency").await;
    assert_eq!(p["codes"], json!(["5339", "district:hikari-2"]));
    // A declaration that does not exist names no service.
    let unknown = uuid::Uuid::new_v4().to_string();
    let none = ask(
        &town,
        &health,
        &unknown,
        "evacuation",
        &[SUPPORT],
        &["5339"],
    )
    .await;
    expect_problem(none, 403, "/problems/service-not-in-emergency").await;
    // A code that is not a mesh code is not a request at all.
    let bad = ask(&town, &health, &id, "evacuation", &[SUPPORT], &["5339-45"]).await;
    let p = expect_problem(bad, 400, "/problems/invalid-field").await;
    assert_eq!(p["field"], "area");

    // No resident saw anything released, and each denial is in the log (with no resident).
    for resident in [town.alice, town.bob, town.carol] {
        assert!(emergency_history(&town, resident).await.is_empty());
    }
    let denied = town
        .store
        .access_records(&renkei_store::AccessQuery {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.resident.is_none())
        .filter(|r| matches!(&r.outcome, renkei_domain::AccessOutcome::Denied { .. }))
        .count();
    assert_eq!(denied, 4);
}
