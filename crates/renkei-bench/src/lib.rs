//! Benchmarks of the Renkei hub; no library code. See `benches/`: `brokerage.rs` (brokered
//! requests against direct provider fetches), `consent_check.rs` (the consent check against
//! Cedar) and `log.rs` (the transparency log). Run them with `cargo bench -p renkei-bench`.
