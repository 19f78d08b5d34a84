//! The store's integration tests, one binary: the conformance suite against each backend
//! (`sqlite`, `postgres`), and the checks only one backend needs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails loudly"
)]

mod postgres;
mod sqlite;
