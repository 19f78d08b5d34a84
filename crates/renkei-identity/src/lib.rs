//! Identity proofing (身元確認, DESIGN.md flow 6): a resident proves who they are with an
//! X.509 certificate that chains to a configured root, as the My Number card's signing
//! certificate (JPKI) does, and a signature over a challenge from the hub.
//!
//! It owns the verification ([`verify_enrolment`] against [`TrustAnchors`]) and a development
//! CA ([`dev_ca::DevCa`]) that stands in for JPKI in tests, demos and `renkei dev-ca`. It is
//! logic only: no HTTP, no database, no storage of identities, and verification reads no clock
//! (callers pass `now`). Its only I/O is the development CA's own PEM files
//! (`DevCa::save`/`DevCa::load`). What the hub keeps of an enrolment is the
//! [`VerifiedIdentity`], never the certificate.

mod anchors;
mod attributes;
mod chain;
pub mod dev_ca;
mod enrolment;

pub use anchors::{TrustAnchorError, TrustAnchors};
pub use attributes::IdentityAttributes;
pub use chain::{MAX_CHAIN_LEN, parse_chain, parse_chain_base64};
pub use dev_ca::{DevCa, DevCaError, IssuedCertificate, KeyAlgorithm, Validity, sign_challenge};
pub use enrolment::{
    EnrolmentError, KeyHash, KeyHashParseError, MAX_CHALLENGE_LEN, VerifiedIdentity,
    key_hash_of_certificate, verify_enrolment,
};
