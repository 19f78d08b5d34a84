//! The hub's integration tests, one binary: each module was a test file of its own, and
//! `common` is the small fictional town they share (a hub on SQLite, providers and a
//! webhook receiver on 127.0.0.1).

// Tests (and the helpers they share) may unwrap and panic: a test fails loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a test fails loudly"
)]

mod common;

mod api_contract;
mod area_lists;
mod city_counter;
mod consent_flow;
mod counter_consents;
mod disclosure;
mod emergency;
mod identity;
mod location_precision;
mod metrics;
mod notices;
mod onboarding;
mod openid_provider;
mod outbound;
mod provider_safety;
mod provider_sync;
mod revocation;
mod rights_routing;
mod soc;
mod storage_faults;
mod transparency_log;
