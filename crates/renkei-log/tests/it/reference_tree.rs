//! The RFC 6962 reference tree of eight leaves used by transparency-dev/merkle (`testonly`
//! constants, `proof/verify_test.go` and `testonly/reference_test.go`): its leaf and node
//! hashes, roots for sizes 0..=8, and inclusion and consistency proofs.

use crate::common::{h, hex, ref_consistency, ref_inclusion, ref_root, stored};
use renkei_log::Hash;
use renkei_log::merkle::{
    MerkleError, consistency_proof, empty_root, inclusion_proof, leaf_hash, root_hash,
    stored_hash_index, tree_hash, verify_consistency, verify_inclusion,
};

const LEAF_INPUTS: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// Node hashes of every perfect subtree, by level then index (testonly.NodeHashes).
const NODE_HASHES: [&[&str]; 4] = [
    &[
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    &[
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    &[
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    &["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
];

/// Roots by tree size 0..=8 (testonly.RootHashes).
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// (leaf index, tree size, proof) from verify_test.go and reference_test.go.
const INCLUSION: [(u64, u64, &[&str]); 7] = [
    (0, 1, &[]),
    (
        0,
        2,
        &["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"],
    ),
    (
        1,
        2,
        &["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"],
    ),
    (
        2,
        3,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        1,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        0,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

/// (size1, size2, proof) from verify_test.go and reference_test.go.
const CONSISTENCY: [(u64, u64, &[&str]); 5] = [
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

fn leaves() -> Vec<Hash> {
    LEAF_INPUTS.iter().map(|s| leaf_hash(&hex(s))).collect()
}

fn hashes(proof: &[&str]) -> Vec<Hash> {
    proof.iter().map(|s| h(s)).collect()
}

#[test]
fn the_leaf_inputs_hash_to_the_reference_leaf_hashes() {
    assert_eq!(leaves(), hashes(NODE_HASHES[0]));
}

#[test]
fn the_empty_tree_has_the_sha256_of_nothing_as_root() {
    assert_eq!(empty_root(), h(ROOTS[0]));
    assert_eq!(root_hash(&[]), h(ROOTS[0]));
    assert_eq!(tree_hash(0, &Vec::<Hash>::new()).unwrap(), h(ROOTS[0]));
}

#[test]
fn every_stored_node_hash_is_the_reference_node_hash() {
    let stored = stored(&leaves());
    assert_eq!(stored.len(), 15);
    for (level, row) in NODE_HASHES.iter().enumerate() {
        for (n, expected) in row.iter().enumerate() {
            let index = stored_hash_index(level as u8, n as u64).unwrap();
            assert_eq!(
                stored[index as usize],
                h(expected),
                "level {level} node {n}"
            );
        }
    }
}

#[test]
fn the_roots_of_sizes_zero_to_eight_are_the_reference_roots() {
    let leaves = leaves();
    let stored = stored(&leaves);
    for (size, expected) in ROOTS.iter().enumerate() {
        let expected = h(expected);
        assert_eq!(
            root_hash(&leaves[..size]),
            expected,
            "root_hash size {size}"
        );
        assert_eq!(ref_root(&leaves[..size]), expected, "reference size {size}");
        assert_eq!(
            tree_hash(size as u64, &stored).unwrap(),
            expected,
            "tree_hash size {size}"
        );
    }
    assert_eq!(
        h(ROOTS[8]).to_string(),
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    );
}

#[test]
fn the_reference_inclusion_proofs_are_generated_and_verify() {
    let leaves = leaves();
    let stored = stored(&leaves);
    for (index, size, proof) in INCLUSION {
        let proof = hashes(proof);
        assert_eq!(
            inclusion_proof(index, size, &stored).unwrap(),
            proof,
            "{index} in {size}"
        );
        let root = h(ROOTS[size as usize]);
        verify_inclusion(index, size, &leaves[index as usize], &proof, &root).unwrap();
    }
}

#[test]
fn the_reference_consistency_proofs_are_generated_and_verify() {
    let stored = stored(&leaves());
    for (size1, size2, proof) in CONSISTENCY {
        let proof = hashes(proof);
        assert_eq!(
            consistency_proof(size1, size2, &stored).unwrap(),
            proof,
            "{size1} to {size2}"
        );
        let (root1, root2) = (h(ROOTS[size1 as usize]), h(ROOTS[size2 as usize]));
        verify_consistency(size1, size2, &proof, &root1, &root2).unwrap();
    }
}

#[test]
fn every_proof_in_the_reference_tree_matches_the_rfc_definitions_and_verifies() {
    let leaves = leaves();
    let stored = stored(&leaves);
    for size in 1..=8usize {
        let root = h(ROOTS[size]);
        for index in 0..size {
            let proof = inclusion_proof(index as u64, size as u64, &stored).unwrap();
            assert_eq!(
                proof,
                ref_inclusion(index, &leaves[..size]),
                "{index} in {size}"
            );
            verify_inclusion(index as u64, size as u64, &leaves[index], &proof, &root).unwrap();
        }
        for (size1, root1) in ROOTS.iter().enumerate().take(size + 1).skip(1) {
            let proof = consistency_proof(size1 as u64, size as u64, &stored).unwrap();
            assert_eq!(
                proof,
                ref_consistency(size1, &leaves[..size]),
                "{size1} to {size}"
            );
            verify_consistency(size1 as u64, size as u64, &proof, &h(root1), &root).unwrap();
        }
    }
}

#[test]
fn proofs_are_refused_for_positions_outside_the_tree() {
    let stored = stored(&leaves());
    assert!(matches!(
        inclusion_proof(8, 8, &stored),
        Err(MerkleError::IndexOutOfRange { index: 8, size: 8 })
    ));
    assert!(matches!(
        consistency_proof(5, 4, &stored),
        Err(MerkleError::SizesOutOfOrder { .. })
    ));
    assert!(matches!(
        consistency_proof(0, 4, &stored),
        Err(MerkleError::EmptyTreeConsistency)
    ));
    // A reader holding only eight leaves knows nothing of a ninth.
    assert!(matches!(
        inclusion_proof(0, 9, &stored),
        Err(MerkleError::HashNotStored { index: 15 })
    ));
    assert!(matches!(
        tree_hash(9, &stored),
        Err(MerkleError::HashNotStored { index: 15 })
    ));
}

#[test]
fn a_wrong_leaf_index_or_size_fails_with_the_rfc_reasons() {
    let leaves = leaves();
    let stored = stored(&leaves);
    let proof = inclusion_proof(5, 8, &stored).unwrap();
    let root = h(ROOTS[8]);
    assert!(matches!(
        verify_inclusion(5, 16, &leaves[5], &proof, &root),
        Err(MerkleError::ProofTooShort)
    ));
    assert!(matches!(
        verify_inclusion(5, 6, &leaves[5], &proof, &root),
        Err(MerkleError::ProofTooLong)
    ));
    assert!(matches!(
        verify_inclusion(4, 8, &leaves[5], &proof, &root),
        Err(MerkleError::RootMismatch)
    ));
    let proof = consistency_proof(6, 8, &stored).unwrap();
    assert!(matches!(
        verify_consistency(6, 8, &proof, &h(ROOTS[5]), &root),
        Err(MerkleError::OldRootMismatch)
    ));
}
