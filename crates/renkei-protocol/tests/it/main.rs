//! The integration tests of `renkei-protocol`: envelopes, events, grants and receipts, checked
//! against published schemas and by property tests that no input panics.
//!
//! One test binary for the crate (a module per concern), so the tests link once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails loudly"
)]

mod common;
mod envelope;
mod event;
mod grant;
mod never_panics;
mod receipt;
