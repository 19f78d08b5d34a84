//! The integration tests of `renkei-provider`: the provider kit started from a
//! configuration file over a real SQLite file and a CSV file, answering grants signed by a
//! stand-in hub whose key set it fetched over HTTP.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    clippy::indexing_slicing,
    reason = "a test fails loudly; the stand-in hub is a bare router"
)]

mod kit;
mod kit_area;
