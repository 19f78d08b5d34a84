//! The integration and end-to-end tests of the `renkei` binary: the demo, keys and CA commands
//! run as processes, a tampered log caught, the authorization matrix, and the tidy checks.
//!
//! One test binary for the crate (a module per concern), so the tests link once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails loudly"
)]

mod backup_binary;
mod demo_binary;
mod dev_ca_binary;
mod disclosure_binary;
mod keys_binary;
mod log_tamper;
mod onboard_binary;
mod process;
mod route_access;
mod tidy;
mod town_from_nothing;
