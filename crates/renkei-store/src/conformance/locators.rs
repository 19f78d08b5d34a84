//! Conformance checks for providers' locator syncs: idempotent batches, registered
//! categories only, each provider's own subjects and locators only, one log entry per batch.

use std::sync::Arc;

use chrono::Utc;
use renkei_domain::{
    LocatorBatch, LocatorBatchError, LocatorBatchId, LocatorRemoval, LocatorSyncCounts,
    LocatorUpsert, LogEntry, Provider, ProviderId, ProviderLocator, ProviderSubject, ResidentId,
};
use uuid::Uuid;

use super::{cat, leaf_of, town};
use crate::{LocatorCursor, Store, StoreError};

fn provider(id: &str) -> ProviderId {
    ProviderId::new(id).unwrap()
}

fn batch_id() -> LocatorBatchId {
    LocatorBatchId::from_uuid(Uuid::new_v4())
}

/// A fresh subject, as the hub would issue one.
fn subject() -> ProviderSubject {
    ProviderSubject::new(format!("ps-{}", Uuid::new_v4().simple())).unwrap()
}

fn upsert(subject: &ProviderSubject, category: &str, reference: &str) -> LocatorUpsert {
    LocatorUpsert {
        subject: subject.clone(),
        category: cat(category),
        reference: reference.into(),
    }
}

fn removal(subject: &ProviderSubject, category: &str) -> LocatorRemoval {
    LocatorRemoval {
        subject: subject.clone(),
        category: cat(category),
    }
}

fn batch(
    by: &str,
    id: LocatorBatchId,
    upserts: Vec<LocatorUpsert>,
    removals: Vec<LocatorRemoval>,
) -> LocatorBatch {
    LocatorBatch::new(provider(by), id, upserts, removals).unwrap()
}

/// The town of [`town`] (its provider `clinic` holds both categories of every resident) and a
/// second provider, `pharmacy`, registered for `payment.history` only. Returns each
/// resident with their subject at `clinic` and at `pharmacy`.
async fn two_providers(
    store: &dyn Store,
    residents: usize,
) -> Vec<(ResidentId, ProviderSubject, ProviderSubject)> {
    let people = town(store, residents).await;
    store
        .put_provider(&Provider {
            id: provider("pharmacy"),
            name: renkei_domain::LocalizedText::new("薬局", "Pharmacy"),
            connection: renkei_domain::ProviderConnection::Inbound {
                endpoint: "http://127.0.0.1:9".into(),
            },
            categories: [cat("payment.history")].into(),
            max_answer_bytes: None,
            signing_keys: Default::default(),
            contact: None,
            status: renkei_domain::ProviderStatus::Approved,
        })
        .await
        .unwrap();
    let mut out = Vec::new();
    for (resident, _) in people {
        let (at_clinic, at_pharmacy) = (subject(), subject());
        store
            .link_provider_subject(&provider("clinic"), &at_clinic, resident)
            .await
            .unwrap();
        store
            .link_provider_subject(&provider("pharmacy"), &at_pharmacy, resident)
            .await
            .unwrap();
        out.push((resident, at_clinic, at_pharmacy));
    }
    out
}

fn reference_at(locators: &[renkei_domain::Locator], category: &str) -> Option<(String, String)> {
    locators
        .iter()
        .find(|l| l.category == cat(category))
        .map(|l| (l.provider.to_string(), l.reference.clone()))
}

pub async fn a_locator_batch_sent_twice_changes_nothing_the_second_time(store: Arc<dyn Store>) {
    let people = two_providers(store.as_ref(), 3).await;
    let (p0, c0, _) = &people[0];
    let (p1, c1, _) = &people[1];
    let id = batch_id();
    let first = batch(
        "clinic",
        id,
        vec![
            upsert(c0, "health.checkup", "NEW-0"),
            // What `town` wrote already: unchanged.
            upsert(c1, "health.checkup", "P-1-health.checkup"),
        ],
        vec![removal(c1, "payment.history")],
    );
    let applied = store.sync_locators(&first, Utc::now()).await.unwrap();
    let want = LocatorSyncCounts {
        upserted: 1,
        removed: 1,
        unchanged: 1,
        not_applied: 0,
    };
    assert_eq!(applied.counts, want);
    assert_eq!(
        reference_at(&store.locators_of(*p0).await.unwrap(), "health.checkup"),
        Some(("clinic".into(), "NEW-0".into()))
    );
    assert_eq!(
        reference_at(&store.locators_of(*p1).await.unwrap(), "payment.history"),
        None
    );
    let size = store.log_size().await.unwrap();

    // The same batch again, its items in another order, is answered from the first.
    let again = batch(
        "clinic",
        id,
        vec![
            upsert(c1, "health.checkup", "P-1-health.checkup"),
            upsert(c0, "health.checkup", "NEW-0"),
        ],
        vec![removal(c1, "payment.history")],
    );
    let replay = store.sync_locators(&again, Utc::now()).await.unwrap();
    assert_eq!(replay, applied, "the same entry, position and counts");
    assert_eq!(store.log_size().await.unwrap(), size, "no new log entry");
    // The same id with other items is refused, not answered as if they were applied.
    let other_items = batch(
        "clinic",
        id,
        vec![upsert(c0, "health.checkup", "OTHER")],
        vec![],
    );
    let refused = store.sync_locators(&other_items, Utc::now()).await;
    assert!(
        matches!(
            refused,
            Err(StoreError::LocatorsRefused(
                LocatorBatchError::IdReused { .. }
            ))
        ),
        "{refused:?}"
    );
    assert_eq!(store.log_size().await.unwrap(), size, "no new log entry");
    assert_eq!(
        reference_at(&store.locators_of(*p0).await.unwrap(), "health.checkup"),
        Some(("clinic".into(), "NEW-0".into())),
        "nothing changed"
    );

    // Another provider's batch of the same id is its own.
    let theirs = batch("pharmacy", id, vec![], vec![]);
    let other = store.sync_locators(&theirs, Utc::now()).await.unwrap();
    assert_ne!(other.seq, applied.seq);
}

pub async fn a_provider_cannot_write_locators_for_categories_it_is_not_registered_for(
    store: Arc<dyn Store>,
) {
    let people = two_providers(store.as_ref(), 1).await;
    let (resident, _, at_pharmacy) = &people[0];
    let before = store.locators_of(*resident).await.unwrap();
    let size = store.log_size().await.unwrap();
    let refused = batch(
        "pharmacy",
        batch_id(),
        vec![
            upsert(at_pharmacy, "payment.history", "M-1"),
            upsert(at_pharmacy, "health.checkup", "M-1"),
        ],
        vec![],
    );
    let err = store.sync_locators(&refused, Utc::now()).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::LocatorsRefused(LocatorBatchError::NotRegistered { ref category, .. })
                if *category == cat("health.checkup")
        ),
        "{err:?}"
    );
    assert_eq!(store.locators_of(*resident).await.unwrap(), before);
    assert_eq!(
        store.log_size().await.unwrap(),
        size,
        "a refused batch is no entry"
    );
    let unknown = batch("nobody", batch_id(), vec![], vec![]);
    assert!(matches!(
        store.sync_locators(&unknown, Utc::now()).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn a_provider_names_and_reads_only_its_own_residents_and_locators(store: Arc<dyn Store>) {
    let people = two_providers(store.as_ref(), 3).await;
    let (p0, at_clinic, at_pharmacy) = &people[0];
    // `town` put both categories of everyone at `clinic`: the pharmacy takes none of them,
    // and the clinic's subjects name no one for the pharmacy.
    let taken = batch(
        "pharmacy",
        batch_id(),
        vec![
            upsert(at_pharmacy, "payment.history", "M-0"),
            upsert(&people[1].1, "payment.history", "M-1"),
            upsert(&subject(), "payment.history", "M-x"),
        ],
        vec![removal(at_pharmacy, "health.checkup")],
    );
    let counts = store
        .sync_locators(&taken, Utc::now())
        .await
        .unwrap()
        .counts;
    assert_eq!(
        counts,
        LocatorSyncCounts {
            upserted: 0,
            removed: 0,
            unchanged: 1,
            not_applied: 3,
        }
    );
    assert_eq!(
        reference_at(&store.locators_of(*p0).await.unwrap(), "health.checkup"),
        Some(("clinic".into(), "P-0-health.checkup".into())),
        "another provider's locator is not removed"
    );
    assert!(
        store
            .provider_locators(&provider("pharmacy"), None, 100)
            .await
            .unwrap()
            .is_empty(),
        "the clinic's locators are not the pharmacy's to read"
    );

    // Once the clinic withdraws resident 0's payments, the pharmacy can take them.
    let withdraw = batch(
        "clinic",
        batch_id(),
        vec![],
        vec![removal(at_clinic, "payment.history")],
    );
    store.sync_locators(&withdraw, Utc::now()).await.unwrap();
    let take = batch(
        "pharmacy",
        batch_id(),
        vec![upsert(at_pharmacy, "payment.history", "M-0")],
        vec![],
    );
    assert_eq!(
        store
            .sync_locators(&take, Utc::now())
            .await
            .unwrap()
            .counts
            .upserted,
        1
    );
    assert_eq!(
        store
            .provider_locators(&provider("pharmacy"), None, 100)
            .await
            .unwrap(),
        vec![ProviderLocator {
            subject: at_pharmacy.clone(),
            category: cat("payment.history"),
            reference: "M-0".into(),
        }]
    );

    // The clinic reads its own, by its own subjects, a page at a time.
    let mut pages = Vec::new();
    let mut after: Option<LocatorCursor> = None;
    loop {
        let page = store
            .provider_locators(&provider("clinic"), after.as_ref(), 2)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some(LocatorCursor {
            subject: last.subject.clone(),
            category: last.category.clone(),
        });
        assert!(page.len() <= 2);
        pages.extend(page);
    }
    let mut want: Vec<(String, String)> = people
        .iter()
        .flat_map(|(_, c, _)| {
            ["health.checkup", "payment.history"].map(|k| (c.to_string(), k.to_owned()))
        })
        .filter(|(s, k)| !(*s == at_clinic.to_string() && k == "payment.history"))
        .collect();
    want.sort();
    let got: Vec<(String, String)> = pages
        .iter()
        .map(|l| (l.subject.to_string(), l.category.to_string()))
        .collect();
    assert_eq!(got, want, "every one of the clinic's, once, in order");
}

pub async fn a_locator_batch_is_one_log_entry_of_counts_that_verifies(store: Arc<dyn Store>) {
    let people = two_providers(store.as_ref(), 2).await;
    let (_, at_clinic, _) = &people[0];
    let entry = store
        .sync_locators(
            &batch(
                "clinic",
                batch_id(),
                vec![upsert(at_clinic, "health.checkup", "SECRET-REF")],
                vec![],
            ),
            Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(store.log_size().await.unwrap(), entry.seq + 1);
    let stored = store.log_range(entry.seq, 1).await.unwrap();
    let [stored] = stored.as_slice() else {
        panic!("one position: {stored:?}")
    };
    let read = stored.entry.clone().unwrap().unwrap();
    assert_eq!(read, LogEntry::LocatorSync(entry.clone()));
    let leaf = stored.leaf.as_ref().unwrap();
    assert_eq!(leaf.kind, "locator_sync");
    assert_eq!(leaf.leaf_hash, leaf_of(&read, &leaf.salt));
    let canonical = String::from_utf8(read.canonical()).unwrap();
    assert!(!canonical.contains("SECRET-REF"), "{canonical}");
    assert!(!canonical.contains(at_clinic.as_str()), "{canonical}");
}

pub async fn a_client_assertion_is_spent_once_and_forgotten_after_it_expires(
    store: Arc<dyn Store>,
) {
    let now = Utc::now();
    let soon = now + chrono::TimeDelta::seconds(60);
    assert!(
        store
            .spend_client_assertion("clinic", "j-1", soon, now)
            .await
            .unwrap()
    );
    assert!(
        !store
            .spend_client_assertion("clinic", "j-1", soon, now)
            .await
            .unwrap()
    );
    assert!(
        store
            .spend_client_assertion("pharmacy", "j-1", soon, now)
            .await
            .unwrap(),
        "another issuer's id is its own"
    );
    let later = soon + chrono::TimeDelta::seconds(1);
    assert!(
        store
            .spend_client_assertion(
                "clinic",
                "j-1",
                later + chrono::TimeDelta::seconds(60),
                later
            )
            .await
            .unwrap(),
        "forgotten once expired"
    );
}
