//! Benchmarks of the Renkei hub. See `benches/`: `brokerage.rs` (brokered requests against
//! direct provider fetches), `consent_check.rs` (the consent check against Cedar), `log.rs`
//! (the transparency log) and `identity.rs`. Run them with `cargo bench -p renkei-bench`.
//!
//! The library holds one thing: the allocator the `renkei` binary ships with, so that every
//! benchmark (each says `use renkei_bench as _;`) measures the hub as it runs.

/// The `renkei` binary's global allocator (see its `main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
