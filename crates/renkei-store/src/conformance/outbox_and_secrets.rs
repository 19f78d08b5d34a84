//! Conformance checks for the webhook outbox and the hub's secrets.

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use uuid::Uuid;

use super::{consent, service_id, town};
use crate::{DeliveryOutcome, OutboxMessage, Store};

pub async fn webhook_messages_are_leased_once_and_retried_until_delivered(store: Arc<dyn Store>) {
    let people = town(store.as_ref(), 1).await;
    let c = consent(people[0].0, 1, &["health.checkup"], Utc::now());
    let m = OutboxMessage {
        id: Uuid::new_v4(),
        service: service_id(),
        event: serde_json::json!({"kind": "granted"}),
    };
    let before = store.webhook_backlog().await.unwrap();
    store.grant_consent(&c, Some(&m)).await.unwrap();
    assert_eq!(store.webhook_backlog().await.unwrap(), before + 1);
    let now = Utc::now() + TimeDelta::seconds(1);
    let first = store
        .take_due_messages(now, now + TimeDelta::seconds(30), 10)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    let again = store
        .take_due_messages(now, now + TimeDelta::seconds(30), 10)
        .await
        .unwrap();
    assert!(again.is_empty(), "a leased message is not handed out twice");
    store
        .record_delivery(
            m.id,
            DeliveryOutcome::RetryAt(now + TimeDelta::seconds(2)),
            Some("503"),
            now,
        )
        .await
        .unwrap();
    assert!(
        store
            .take_due_messages(
                now + TimeDelta::seconds(1),
                now + TimeDelta::seconds(30),
                10
            )
            .await
            .unwrap()
            .is_empty()
    );
    let retry = store
        .take_due_messages(
            now + TimeDelta::seconds(2),
            now + TimeDelta::seconds(30),
            10,
        )
        .await
        .unwrap();
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].attempts, 1);
    assert_eq!(
        store.webhook_backlog().await.unwrap(),
        before + 1,
        "a message being retried is still waiting"
    );
    store
        .record_delivery(m.id, DeliveryOutcome::Delivered, None, now)
        .await
        .unwrap();
    assert_eq!(store.webhook_backlog().await.unwrap(), before);
    assert!(
        store
            .take_due_messages(now + TimeDelta::days(1), now + TimeDelta::days(2), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn ensure_secret_keeps_the_first_value(store: Arc<dyn Store>) {
    let first = store
        .ensure_secret("pairwise", b"one", Utc::now())
        .await
        .unwrap();
    let second = store
        .ensure_secret("pairwise", b"two", Utc::now())
        .await
        .unwrap();
    assert_eq!(first, b"one");
    assert_eq!(second, b"one");
}

pub async fn secrets_are_listed_and_replaced_all_together_or_not_at_all(store: Arc<dyn Store>) {
    let now = Utc::now();
    store.ensure_secret("a", b"one", now).await.unwrap();
    store.ensure_secret("b", b"two", now).await.unwrap();
    store
        .add_signing_key(&crate::StoredSigningKey {
            kid: "k1".into(),
            alg: renkei_domain::SigningAlg::EdDsa,
            custody: crate::KeyCustody::Stored(b"private".to_vec()),
            created_at: now,
            active_from: now,
            retired_at: None,
        })
        .await
        .unwrap();
    let slot_a = crate::SecretSlot::Hub("a".into());
    let slot_b = crate::SecretSlot::Hub("b".into());
    let key = crate::SecretSlot::SigningKey("k1".into());
    let listed: Vec<(crate::SecretSlot, Vec<u8>)> = store
        .stored_secrets()
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.slot, s.value))
        .collect();
    assert_eq!(
        listed,
        vec![
            (slot_a.clone(), b"one".to_vec()),
            (slot_b.clone(), b"two".to_vec()),
            (key.clone(), b"private".to_vec()),
        ]
    );
    let replace =
        |slot: &crate::SecretSlot, expected: &[u8], value: &[u8]| crate::SecretReplacement {
            slot: slot.clone(),
            expected: expected.to_vec(),
            value: value.to_vec(),
        };
    // One stale expectation: nothing changes, not even the replacements before it.
    assert!(
        !store
            .replace_secrets(&[
                replace(&slot_a, b"one", b"ONE"),
                replace(&key, b"private", b"PRIVATE"),
                replace(&slot_b, b"stale", b"TWO"),
            ])
            .await
            .unwrap()
    );
    assert_eq!(store.ensure_secret("a", b"x", now).await.unwrap(), b"one");
    assert!(
        !store
            .replace_secrets(&[replace(&crate::SecretSlot::Hub("none".into()), b"", b"x")])
            .await
            .unwrap(),
        "a missing slot is not replaced"
    );
    assert!(
        store
            .replace_secrets(&[
                replace(&slot_a, b"one", b"ONE"),
                replace(&key, b"private", b"PRIVATE"),
                replace(&slot_b, b"two", b"TWO"),
            ])
            .await
            .unwrap()
    );
    assert_eq!(store.ensure_secret("a", b"x", now).await.unwrap(), b"ONE");
    assert_eq!(store.ensure_secret("b", b"x", now).await.unwrap(), b"TWO");
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(
        keys[0].custody,
        crate::KeyCustody::Stored(b"PRIVATE".to_vec())
    );
}
