//! The integration tests of `renkei-identity`: enrolment, the development CA, input parsers
//! and their property tests, and interoperation with OpenSSL.
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
mod dev_ca;
mod enrolment;
mod inputs;
mod never_panics;
mod openssl;
