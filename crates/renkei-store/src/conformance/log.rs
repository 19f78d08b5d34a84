//! Conformance checks for the transparency log's positions, leaves, node hashes and
//! checkpoints.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::Utc;

use super::{leaf_of, mixed_log};
use crate::{Store, StoreError};

pub async fn log_positions_are_shared_and_gap_free_across_access_records_and_consent_events(
    store: Arc<dyn Store>,
) {
    let (expected, _, _) = mixed_log(store.as_ref()).await;
    assert_eq!(store.log_size().await.unwrap(), expected.len() as u64);
    let range = store.log_range(0, 100).await.unwrap();
    assert_eq!(
        range.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (0..expected.len() as u64).collect::<Vec<_>>(),
        "each position exactly once"
    );
    let mut salts = BTreeSet::new();
    for (stored, want) in range.iter().zip(&expected) {
        let leaf = stored.leaf.as_ref().unwrap();
        let entry = stored.entry.clone().unwrap().unwrap();
        assert_eq!((leaf.seq, entry.seq()), (stored.seq, stored.seq));
        assert_eq!(leaf.kind, want.kind, "position {}", stored.seq);
        assert_eq!(entry.kind(), want.kind, "position {}", stored.seq);
        assert_eq!(entry.resident(), want.resident, "position {}", stored.seq);
        assert_eq!(
            leaf.leaf_hash,
            leaf_of(&entry, &leaf.salt),
            "leaf {} commits to its entry",
            stored.seq
        );
        assert!(
            salts.insert(leaf.salt.clone()),
            "every leaf has a fresh salt"
        );
    }
    // Windows of the log, including past its end.
    let window = store.log_range(3, 4).await.unwrap();
    assert_eq!(
        window.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![3, 4, 5, 6]
    );
    assert_eq!(window, range[3..7].to_vec());
    let tail = store.log_range(8, 100).await.unwrap();
    assert_eq!(tail.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![8, 9]);
    assert!(store.log_range(10, 5).await.unwrap().is_empty());
    // The leaf hashes the integrator folds are the same leaves, in log order.
    let leaves: Vec<Vec<u8>> = range
        .iter()
        .map(|e| e.leaf.as_ref().unwrap().leaf_hash.clone())
        .collect();
    let hashes =
        |v: Vec<renkei_log::Hash>| v.iter().map(|h| h.as_bytes().to_vec()).collect::<Vec<_>>();
    assert_eq!(hashes(store.log_leaf_hashes(0, 100).await.unwrap()), leaves);
    assert_eq!(
        hashes(store.log_leaf_hashes(4, 3).await.unwrap()),
        leaves[4..7].to_vec()
    );
    assert!(store.log_leaf_hashes(10, 3).await.unwrap().is_empty());
}

pub async fn integrated_node_hashes_read_back_as_stored_and_are_never_rewritten(
    store: Arc<dyn Store>,
) {
    use renkei_log::merkle;
    let (expected, _, _) = mixed_log(store.as_ref()).await;
    let size = expected.len() as u64;
    let leaves = store.log_leaf_hashes(0, 100).await.unwrap();
    // Fold the leaves as the integrator does.
    let mut known = std::collections::BTreeMap::new();
    let mut written = Vec::new();
    for (n, leaf) in (0..).zip(&leaves) {
        let first = merkle::stored_hash_index(0, n).unwrap();
        for (idx, hash) in
            (first..).zip(merkle::stored_hashes_for_append(n, *leaf, &known).unwrap())
        {
            known.insert(idx, hash);
            written.push((idx, hash));
        }
    }
    let root = merkle::root_hash(&leaves);
    let signed_at = crate::codec::time(crate::codec::millis(Utc::now())).unwrap();
    let checkpoint = crate::StoredCheckpoint {
        size,
        root,
        note: "example.org/log\n10\nroot\n\n— signature\n".into(),
        signed_at,
    };
    store.integrate(&written, &checkpoint).await.unwrap();

    // Read back in any order, repeats included.
    let mut asked: Vec<u64> = written.iter().map(|(i, _)| *i).rev().collect();
    asked.push(asked[0]);
    let want: Vec<_> = asked.iter().map(|i| known[i]).collect();
    assert_eq!(store.read_log_hashes(&asked).await.unwrap(), want);
    assert!(store.read_log_hashes(&[]).await.unwrap().is_empty());
    let beyond = merkle::stored_hash_count(size).unwrap();
    assert!(matches!(
        store.read_log_hashes(&[0, beyond]).await,
        Err(StoreError::NotFound(_))
    ));
    // The stored hashes give the tree's root back.
    let indexes = merkle::tree_hash_indexes(size).unwrap();
    let stored: std::collections::BTreeMap<u64, renkei_log::Hash> = indexes
        .iter()
        .copied()
        .zip(store.read_log_hashes(&indexes).await.unwrap())
        .collect();
    assert_eq!(merkle::tree_hash(size, &stored).unwrap(), root);
    assert_eq!(
        store.latest_checkpoint().await.unwrap(),
        Some(checkpoint.clone())
    );
    assert_eq!(
        store.checkpoint(size).await.unwrap(),
        Some(checkpoint.clone())
    );
    assert_eq!(store.checkpoint(size + 1).await.unwrap(), None);

    // Integrating again (another replica, the same leaves) changes nothing already stored.
    let other = renkei_log::Hash([7; 32]);
    store.integrate(&[(0, other)], &checkpoint).await.unwrap();
    assert_eq!(store.read_log_hashes(&[0]).await.unwrap(), vec![known[&0]]);

    // Many at once: more than one statement's worth of indexes.
    let many: Vec<(u64, renkei_log::Hash)> = (0..1_200u64)
        .map(|i| {
            let mut h = [0u8; 32];
            h[..8].copy_from_slice(&i.to_be_bytes());
            (1_000_000 + i * 3, renkei_log::Hash(h))
        })
        .collect();
    let later = crate::StoredCheckpoint {
        size: size + 1,
        ..checkpoint.clone()
    };
    store.integrate(&many, &later).await.unwrap();
    let asked: Vec<u64> = many.iter().map(|(i, _)| *i).rev().collect();
    let want: Vec<_> = many.iter().map(|(_, h)| *h).rev().collect();
    assert_eq!(store.read_log_hashes(&asked).await.unwrap(), want);
}

fn stored_checkpoint(size: u64) -> crate::StoredCheckpoint {
    let mut root = [0u8; 32];
    root[..8].copy_from_slice(&size.to_be_bytes());
    crate::StoredCheckpoint {
        size,
        root: renkei_log::Hash(root),
        note: format!("example.org/log\n{size}\n\n— example.org/log signature\n"),
        // Stored to the millisecond.
        signed_at: crate::codec::time(crate::codec::millis(Utc::now())).unwrap(),
    }
}

pub async fn checkpoints_are_listed_in_order_of_size_and_never_replaced(store: Arc<dyn Store>) {
    assert_eq!(store.latest_checkpoint().await.unwrap(), None);
    assert!(store.checkpoints().await.unwrap().is_empty());
    // Replicas may store theirs out of order.
    for size in [2, 7, 5, 0] {
        store
            .integrate(&[], &stored_checkpoint(size))
            .await
            .unwrap();
    }
    let listed = store.checkpoints().await.unwrap();
    assert_eq!(
        listed.iter().map(|c| c.size).collect::<Vec<_>>(),
        vec![0, 2, 5, 7]
    );
    assert_eq!(
        (listed[2].root, listed[2].note.as_str()),
        (
            stored_checkpoint(5).root,
            stored_checkpoint(5).note.as_str()
        )
    );
    assert_eq!(
        store.latest_checkpoint().await.unwrap().map(|c| c.size),
        Some(7)
    );
    // A second checkpoint of a size already signed does not replace the first.
    let first = store.checkpoint(5).await.unwrap().unwrap();
    let again = crate::StoredCheckpoint {
        note: "another note".into(),
        ..stored_checkpoint(5)
    };
    store.integrate(&[], &again).await.unwrap();
    assert_eq!(store.checkpoint(5).await.unwrap(), Some(first));
    assert_eq!(store.checkpoints().await.unwrap().len(), 4);
}
