//! renkei-log: the transparency-log math and formats behind the access log (アクセスログ,
//! DESIGN.md flow 4), with no storage and no I/O.
//!
//! It owns:
//! - [`merkle`]: RFC 9162 §2.1 hashing, roots, inclusion and consistency proofs (built from
//!   stored node hashes through [`merkle::HashReader`]) and their verification;
//! - [`note`]: C2SP signed notes with Ed25519 keys;
//! - [`checkpoint`]: C2SP tlog-checkpoint tree heads, signed as notes;
//! - [`promise`]: signed promises that an entry is in the log at a position (what a
//!   data-request answer carries before a checkpoint covers its entry);
//! - [`tile`]: C2SP tlog-tiles hash tile paths and the stored hashes each tile holds.
//!
//! It must not touch: databases, files, the network, clocks, or what a log entry means
//! (the caller hands in bytes or leaf hashes and keeps the entries). Entry bytes may carry
//! personal data, so they never appear in an error or a debug string here; signer keys are
//! secrets and never appear either. The one call that reaches outside is
//! [`note::generate_key`], which draws randomness from the operating system.

pub mod checkpoint;
pub mod merkle;
pub mod note;
pub mod promise;
pub mod tile;

pub use merkle::Hash;

/// User input for an error message, cut to a readable length.
fn excerpt(s: &str) -> String {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}
