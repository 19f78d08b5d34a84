//! Benchmarks of the Renkei hub (no library code): `benches/brokerage.rs` measures brokered
//! requests against direct provider fetches, `benches/consent_check.rs` the consent check
//! against Cedar. Run them with `cargo bench -p renkei-bench`.
