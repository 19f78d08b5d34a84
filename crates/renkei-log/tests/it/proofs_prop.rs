//! Property tests: for random trees, every generated inclusion and consistency proof equals
//! the RFC 9162 definition and verifies, and changing one leaf (or one proof hash) makes
//! verification fail.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use crate::common::{ref_consistency, ref_inclusion, ref_root, stored};
use proptest::prelude::*;
use renkei_log::Hash;
use renkei_log::merkle::{
    consistency_proof, consistency_proof_indexes, inclusion_proof, inclusion_proof_indexes,
    leaf_hash, root_hash, stored_hash_count, stored_hashes_for_append, tree_hash,
    tree_hash_indexes, verify_consistency, verify_inclusion,
};

fn leaves(n: u64) -> Vec<Hash> {
    (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
}

/// A tree with one leaf replaced.
fn tampered(leaves: &[Hash], j: u64, salt: u8) -> Vec<Hash> {
    let mut out = leaves.to_vec();
    out[j as usize] = leaf_hash(&[b'x', salt]);
    out
}

const BIG: u64 = 5_000;

fn big_tree() -> &'static (Vec<Hash>, Vec<Hash>) {
    static TREE: OnceLock<(Vec<Hash>, Vec<Hash>)> = OnceLock::new();
    TREE.get_or_init(|| {
        let leaves = leaves(BIG);
        let stored = stored(&leaves);
        (leaves, stored)
    })
}

/// (n, m, index, j): a tree size, an older size m <= n, a leaf index and a leaf to tamper.
fn sizes(max: u64) -> impl Strategy<Value = (u64, u64, u64, u64)> {
    (1..=max).prop_flat_map(|n| (Just(n), 1..=n, 0..n, 0..n))
}

proptest! {
    #[test]
    fn generated_proofs_match_the_rfc_and_verify((n, m, index, _j) in sizes(160)) {
        let leaves = leaves(n);
        let stored = stored(&leaves);
        let root = ref_root(&leaves);
        prop_assert_eq!(root_hash(&leaves), root);
        prop_assert_eq!(tree_hash(n, &stored).unwrap(), root);

        let proof = inclusion_proof(index, n, &stored).unwrap();
        prop_assert_eq!(&proof, &ref_inclusion(index as usize, &leaves));
        prop_assert!(verify_inclusion(index, n, &leaves[index as usize], &proof, &root).is_ok());

        let root1 = tree_hash(m, &stored).unwrap();
        let proof = consistency_proof(m, n, &stored).unwrap();
        prop_assert_eq!(&proof, &ref_consistency(m as usize, &leaves));
        prop_assert!(verify_consistency(m, n, &proof, &root1, &root).is_ok());
    }

    #[test]
    fn changing_any_one_leaf_makes_verification_fail((n, m, index, j) in sizes(160), salt in any::<u8>()) {
        let leaves = leaves(n);
        let stored = stored(&leaves);
        let root = tree_hash(n, &stored).unwrap();
        let root1 = tree_hash(m, &stored).unwrap();
        let forged = tampered(&leaves, j, salt);
        let forged_stored = crate::common::stored(&forged);
        let forged_root = tree_hash(n, &forged_stored).unwrap();
        prop_assert_ne!(forged_root, root);

        // An honest proof does not hold against the forged tree's root.
        let proof = inclusion_proof(index, n, &stored).unwrap();
        prop_assert!(verify_inclusion(index, n, &leaves[index as usize], &proof, &forged_root).is_err());
        // The forged tree cannot prove its changed leaf into the honest root.
        let forged_proof = inclusion_proof(j, n, &forged_stored).unwrap();
        prop_assert!(verify_inclusion(j, n, &forged[j as usize], &forged_proof, &root).is_err());

        // A consistency proof does not connect the honest older root to the forged tree
        // when the change is inside the older tree (history rewritten) ...
        if j < m {
            let forged_proof = consistency_proof(m, n, &forged_stored).unwrap();
            prop_assert!(verify_consistency(m, n, &forged_proof, &root1, &forged_root).is_err());
        }
        // ... and an honest proof never leads to the forged root.
        let proof = consistency_proof(m, n, &stored).unwrap();
        prop_assert!(verify_consistency(m, n, &proof, &root1, &forged_root).is_err());
    }

    #[test]
    fn changing_any_one_proof_hash_makes_verification_fail(
        (n, m, index, _j) in sizes(160),
        pick in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let leaves = leaves(n);
        let stored = stored(&leaves);
        let root = tree_hash(n, &stored).unwrap();
        let mut proof = inclusion_proof(index, n, &stored).unwrap();
        if !proof.is_empty() {
            let k = pick.index(proof.len());
            proof[k].0[0] ^= 1 << bit;
            prop_assert!(verify_inclusion(index, n, &leaves[index as usize], &proof, &root).is_err());
        }
        let root1 = tree_hash(m, &stored).unwrap();
        let mut proof = consistency_proof(m, n, &stored).unwrap();
        if !proof.is_empty() {
            let k = pick.index(proof.len());
            proof[k].0[31] ^= 1 << bit;
            prop_assert!(verify_consistency(m, n, &proof, &root1, &root).is_err());
        }
    }

    #[test]
    fn proofs_in_a_deep_tree_verify(index in 0..BIG, m in 1..=BIG, n in 1..=BIG) {
        let (leaves, stored) = big_tree();
        let (m, n) = (m.min(n), m.max(n));
        let index = index % n;
        let root = tree_hash(n, stored).unwrap();
        prop_assert_eq!(root, root_hash(&leaves[..n as usize]));
        let proof = inclusion_proof(index, n, stored).unwrap();
        prop_assert!(proof.len() <= 13);
        prop_assert!(verify_inclusion(index, n, &leaves[index as usize], &proof, &root).is_ok());
        let root1 = tree_hash(m, stored).unwrap();
        let proof = consistency_proof(m, n, stored).unwrap();
        prop_assert!(verify_consistency(m, n, &proof, &root1, &root).is_ok());
        prop_assert!(verify_consistency(m, n, &proof, &root, &root1).is_err() || m == n);
    }

    #[test]
    fn prefetched_hashes_give_the_same_answers_as_the_whole_store(index in 0..BIG, m in 1..=BIG, n in 1..=BIG) {
        let (_, stored) = big_tree();
        let (m, n) = (m.min(n), m.max(n));
        let index = index % n;
        let fetch = |indexes: Vec<u64>| -> BTreeMap<u64, Hash> {
            indexes.into_iter().map(|i| (i, stored[i as usize])).collect()
        };
        let map = fetch(inclusion_proof_indexes(index, n).unwrap());
        prop_assert_eq!(inclusion_proof(index, n, &map).unwrap(), inclusion_proof(index, n, stored).unwrap());
        let map = fetch(consistency_proof_indexes(m, n).unwrap());
        prop_assert_eq!(consistency_proof(m, n, &map).unwrap(), consistency_proof(m, n, stored).unwrap());
        let map = fetch(tree_hash_indexes(n).unwrap());
        prop_assert_eq!(tree_hash(n, &map).unwrap(), tree_hash(n, stored).unwrap());
    }

    #[test]
    fn a_batch_append_needs_only_the_right_edge_of_the_old_tree(n in 0u64..600, k in 1u64..300) {
        let all = leaves(n + k);
        let expected = stored(&all);
        // Prefetch only what tree_hash would read for size n, then append k leaves.
        let mut map: BTreeMap<u64, Hash> = tree_hash_indexes(n)
            .unwrap()
            .into_iter()
            .map(|i| (i, expected[i as usize]))
            .collect();
        let mut next = stored_hash_count(n).unwrap();
        for (i, leaf) in all.iter().enumerate().skip(n as usize) {
            for hash in stored_hashes_for_append(i as u64, *leaf, &map).unwrap() {
                prop_assert_eq!(hash, expected[next as usize]);
                map.insert(next, hash);
                next += 1;
            }
        }
        prop_assert_eq!(next, expected.len() as u64);
    }
}
