//! What crosses the wire between the Renkei hub, data providers and services.
//!
//! This crate owns the wire formats and their cryptography, and nothing else:
//!
//! - [`keys`]: the hub's signing keys (Ed25519; RSA-2048 for RS256 ID tokens), their
//!   RFC 7638 key ids and the JWK Set the hub publishes at `/.well-known/jwks.json`;
//! - [`grant`]: the short-lived, audience-bound, single-use access grant (アクセス許可) the
//!   hub signs for one provider, and the verifier a provider runs;
//! - [`envelope`]: HPKE (RFC 9180) sealing of a provider's answer to the requesting
//!   service's key, bound to the request and the provider, so the hub relays ciphertext it
//!   cannot read;
//! - [`payload`]: the provider's signed answer inside that envelope, so the service can tell
//!   the provider produced exactly this answer for this request and the hub cannot forge one;
//! - [`receipt`]: the signed consent receipt (同意記録) a resident keeps, in the Kantara
//!   Consent Receipt v1.1 vocabulary;
//! - [`event`]: the Security Event Token (RFC 8417) a service receives by webhook when a
//!   consent is granted or revoked.
//!
//! A third-party provider or service can depend on this crate alone, without the hub.
//! It must not touch storage, HTTP servers or clients, or the hub's state: callers pass in
//! keys, key sets, identifiers and `now`, and get bytes and checked claims back. The only
//! state kept here is the set of grant ids a [`grant::GrantVerifier`] has already accepted,
//! which single use requires.

pub mod envelope;
pub mod event;
pub mod grant;
mod jws;
pub mod keys;
pub mod outbound;
pub mod payload;
pub mod receipt;

pub use envelope::{EnvelopeContext, EnvelopeError, SealedPayload, ServiceKeyPair, open, seal};
pub use event::{
    ConsentChange, ConsentEventClaims, ConsentEventToken, ConsentEvents, EventError, sign_event,
    verify_event,
};
pub use grant::{
    AreaGrantClaims, GrantClaims, GrantError, GrantVerifier, sign_area_grant, sign_grant,
};
pub use jws::{SignError, sign_jwt};
pub use keys::{
    AnySigningKey, Jwk, Jwks, KeyError, RsaSigningKey, SigningAlg, SigningKey,
    install_crypto_provider, rsa_thumbprint,
};
pub use payload::{
    PAYLOAD_TYP, PayloadClaims, PayloadError, PayloadSealError, open_verified, sign_and_seal,
    sign_payload,
};
pub use receipt::{
    ConsentReceipt, PiiController, ReceiptError, ReceiptInput, ReceiptPurpose, ReceiptService,
    sign_receipt, verify_receipt,
};
