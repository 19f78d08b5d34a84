//! Helpers shared by the behaviour tests: hex, building stored hashes, and a reference
//! implementation of RFC 9162 §2.1 written straight from its recursive definitions.
#![allow(dead_code)]

use renkei_log::Hash;
use renkei_log::merkle::{empty_root, node_hash, stored_hash_count, stored_hashes_for_append};

pub fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex {s:?}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

pub fn h(s: &str) -> Hash {
    Hash::from_slice(&hex(s)).unwrap()
}

/// The stored-hash sequence of a tree with these leaf hashes, appended one by one.
pub fn stored(leaves: &[Hash]) -> Vec<Hash> {
    let mut hashes = Vec::new();
    for (n, leaf) in leaves.iter().enumerate() {
        let n = n as u64;
        assert_eq!(hashes.len() as u64, stored_hash_count(n).unwrap());
        let new = stored_hashes_for_append(n, *leaf, &hashes).unwrap();
        hashes.extend(new);
    }
    hashes
}

/// The largest power of two strictly below `n` (n >= 2).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// MTH(D[n]) by RFC 9162 §2.1.1, over leaf hashes.
pub fn ref_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&ref_root(&leaves[..k]), &ref_root(&leaves[k..]))
        }
    }
}

/// PATH(m, D[n]) by RFC 9162 §2.1.3.1.
pub fn ref_inclusion(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    let n = leaves.len();
    if n <= 1 {
        return Vec::new();
    }
    let k = split(n);
    if m < k {
        let mut p = ref_inclusion(m, &leaves[..k]);
        p.push(ref_root(&leaves[k..]));
        p
    } else {
        let mut p = ref_inclusion(m - k, &leaves[k..]);
        p.push(ref_root(&leaves[..k]));
        p
    }
}

/// PROOF(m, D[n]) by RFC 9162 §2.1.4.1.
pub fn ref_consistency(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    fn subproof(m: usize, leaves: &[Hash], b: bool) -> Vec<Hash> {
        let n = leaves.len();
        if m == n {
            return if b {
                Vec::new()
            } else {
                vec![ref_root(leaves)]
            };
        }
        let k = split(n);
        if m <= k {
            let mut p = subproof(m, &leaves[..k], b);
            p.push(ref_root(&leaves[k..]));
            p
        } else {
            let mut p = subproof(m - k, &leaves[k..], false);
            p.push(ref_root(&leaves[..k]));
            p
        }
    }
    subproof(m, leaves, true)
}
