//! The portal's integration tests, one binary: its pages over the router, in-process,
//! against a real hub on SQLite.

// Tests (and the helpers they share) may unwrap and panic: a test fails loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails loudly"
)]

mod pages;
