//! The integration tests of `renkei-log`: proofs against a reference tree and outside
//! vectors, checkpoints, notes and tiles.
//!
//! One test binary for the crate (a module per concern), so the tests link once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails loudly"
)]

mod checkpoint;
mod common;
mod note;
mod proofs_prop;
mod reference_tree;
mod tile;
mod vectors;
