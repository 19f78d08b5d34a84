//! The outside proof vectors from transparency-dev/merkle (`tests/vectors/`, with their licence):
//! every inclusion and consistency file must be accepted or rejected exactly as it says.
//!
//! The verifier takes typed 32-byte hashes, so the JSON's base64 strings are turned into
//! [`Hash`]es first:
//! - a 32-byte value is that hash;
//! - an empty value is not a hash at all and the case is a rejection (the vectors' README:
//!   "an empty (0-byte) root or leaf hash is an error"; an empty proof element likewise);
//! - any other length is one of the vectors' opaque placeholders (`"don't care 1"`,
//!   `"WrongRoot"`, `"WrongLeaf"`), which stands for some hash that matches nothing else.
//!   It becomes `SHA-256(placeholder)`: equal placeholders give equal hashes and different
//!   ones different hashes, so the verifier itself must still reach the expected answer.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use renkei_log::Hash;
use renkei_log::merkle::{verify_consistency, verify_inclusion};
use serde::Deserialize;
use sha2::{Digest, Sha256};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Inclusion {
    leaf_idx: u64,
    tree_size: u64,
    root: String,
    leaf_hash: String,
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Consistency {
    size1: u64,
    size2: u64,
    root1: String,
    root2: String,
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/transparency-dev-merkle/testdata")
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    out.sort();
}

/// A JSON hash as a typed hash; `None` for an empty value (see the file comment).
fn hash(b64: &str) -> Option<Hash> {
    let bytes = BASE64.decode(b64).unwrap();
    match bytes.len() {
        0 => None,
        32 => Some(Hash::from_slice(&bytes).unwrap()),
        _ => Some(Hash(Sha256::digest(&bytes).into())),
    }
}

fn proof(elements: &Option<Vec<String>>) -> Option<Vec<Hash>> {
    elements.iter().flatten().map(|e| hash(e)).collect()
}

/// Runs one kind of vector; returns how many files were checked.
fn run<T: for<'de> Deserialize<'de>>(
    kind: &str,
    accepted: impl Fn(&T) -> (bool, String, bool),
) -> usize {
    let dir = vectors_dir().join(kind);
    if !dir.is_dir() {
        println!("skipped: vectors not found at {}", dir.display());
        return 0;
    }
    let mut files = Vec::new();
    json_files(&dir, &mut files);
    let mut wrong = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let vector: T =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let (ok, desc, want_err) = accepted(&vector);
        if ok == want_err {
            wrong.push(format!(
                "{} ({desc}): {}",
                file.display(),
                if ok {
                    "accepted, want rejected"
                } else {
                    "rejected, want accepted"
                }
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    println!("{kind}: {} files checked", files.len());
    files.len()
}

fn check_inclusion(v: &Inclusion) -> (bool, String, bool) {
    let ok = match (hash(&v.leaf_hash), hash(&v.root), proof(&v.proof)) {
        (Some(leaf), Some(root), Some(proof)) => {
            verify_inclusion(v.leaf_idx, v.tree_size, &leaf, &proof, &root).is_ok()
        }
        _ => false,
    };
    (ok, v.desc.clone(), v.want_err)
}

fn check_consistency(v: &Consistency) -> (bool, String, bool) {
    let ok = match (hash(&v.root1), hash(&v.root2), proof(&v.proof)) {
        (Some(root1), Some(root2), Some(proof)) => {
            verify_consistency(v.size1, v.size2, &proof, &root1, &root2).is_ok()
        }
        _ => false,
    };
    (ok, v.desc.clone(), v.want_err)
}

#[test]
fn every_outside_vector_is_accepted_or_rejected_as_it_says() {
    let inclusion = run("inclusion", check_inclusion);
    let consistency = run("consistency", check_consistency);
    if inclusion + consistency == 0 {
        return;
    }
    assert!(inclusion > 50, "only {inclusion} inclusion vectors");
    assert!(consistency > 50, "only {consistency} consistency vectors");
    assert!(
        inclusion + consistency > 100,
        "only {} vectors",
        inclusion + consistency
    );
}

#[test]
fn the_vectors_decide_through_the_verifier_not_the_hash_decoding() {
    // Only a handful of files are refused before the verifier runs (an empty hash); the rest
    // (including every placeholder case) reach verify_inclusion / verify_consistency.
    let dir = vectors_dir();
    if !dir.is_dir() {
        println!("skipped: vectors not found at {}", dir.display());
        return;
    }
    let mut files = Vec::new();
    json_files(&dir, &mut files);
    let mut refused_early = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let fields = ["root", "leafHash", "root1", "root2"];
        let empty_field = fields.iter().any(|f| v[f].as_str() == Some(""));
        let empty_proof_element = v["proof"]
            .as_array()
            .is_some_and(|p| p.iter().any(|e| e.as_str() == Some("")));
        if empty_field || empty_proof_element {
            assert_eq!(v["wantErr"], true, "{}", file.display());
            refused_early += 1;
        }
    }
    assert!(
        refused_early * 4 < files.len(),
        "{refused_early} of {}",
        files.len()
    );
}
