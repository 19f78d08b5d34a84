//! Storage for identity: enrolments, passkeys and their ceremonies, OpenID Connect codes and
//! revoked tokens, service clients, proxies, operators and resident requests.
//!
//! A supertrait of [`crate::Store`], so every backend implements it and the hub reaches it
//! through the same `Arc<dyn Store>`. Like the rest of this crate it decides nothing: the
//! hub checks certificates, WebAuthn responses and PKCE; storage keeps their outcome and
//! makes single-use things single-use.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use renkei_domain::{
    ConsentId, Enrolment, Operator, OperatorId, ProxyAppointment, ProxyId, ResidentId,
    ResidentRequest, ResidentRequestId, ResidentRequestStatus, ServiceClient, ServiceId,
    SigningAlg,
};

use crate::StoreResult;

/// A registered passkey. `passkey` is webauthn-rs's serialised credential, opaque here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPasskey {
    pub credential_id: String,
    pub resident: ResidentId,
    pub name: String,
    pub passkey: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// One half-finished WebAuthn ceremony.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ceremony {
    /// The resident registering a passkey; `None` while signing in (not known yet).
    pub resident: Option<ResidentId>,
    /// webauthn-rs's ceremony state, opaque here.
    pub state: serde_json::Value,
}

/// The outcome of an enrolment: the resident the certificate's key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolled {
    pub enrolment: Enrolment,
    /// `false` when the key was enrolled before (recovery: same resident as then).
    pub new_resident: bool,
}

/// An authorization code as stored (by the hash of the code, never the code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCodeRecord {
    pub code_hash: String,
    pub service: ServiceId,
    pub resident: ResidentId,
    pub redirect_uri: String,
    /// PKCE S256 challenge.
    pub code_challenge: String,
    pub nonce: Option<String>,
    pub scope: String,
    /// The consents the resident gave or confirmed on the consent screen: tokens issued for
    /// this code are bound to them.
    pub consents: Vec<ConsentId>,
    /// Set when a proxy signed in for the resident.
    pub acting_proxy: Option<ResidentId>,
    /// The appointment the proxy acted under: tokens issued for the code end with it.
    pub acting_appointment: Option<ProxyId>,
    pub auth_time: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What a client presents with a code at the token endpoint: the code is burnt (redeemed,
/// or its tokens revoked on reuse) only when all of it matches what was stored, so whoever
/// merely saw a code can neither spend it nor revoke the tokens issued for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodePresentation {
    /// The authenticated client.
    pub client: ServiceId,
    /// The `redirect_uri` sent, if any.
    pub redirect_uri: Option<String>,
    /// The PKCE S256 transform of the `code_verifier` sent (the hub computes it), if any.
    pub code_challenge: Option<String>,
}

/// Which part of a [`CodePresentation`] differs from the stored code (the first found, in
/// this order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeMismatch {
    Client,
    RedirectUri,
    Verifier,
}

impl CodePresentation {
    /// What in this presentation differs from `code`, if anything.
    pub fn mismatch(&self, code: &AuthorizationCodeRecord) -> Option<CodeMismatch> {
        if self.client != code.service {
            Some(CodeMismatch::Client)
        } else if self.redirect_uri.as_deref() != Some(code.redirect_uri.as_str()) {
            Some(CodeMismatch::RedirectUri)
        } else if self.code_challenge.as_deref() != Some(code.code_challenge.as_str()) {
            Some(CodeMismatch::Verifier)
        } else {
            None
        }
    }
}

/// What redeeming a code found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeRedemption {
    /// First redemption, before expiry: the caller may issue tokens.
    Redeemed(Box<AuthorizationCodeRecord>),
    /// Redeemed before by this same presentation: storage has now revoked the tokens issued
    /// for it (RFC 6749 §4.1.2).
    Reused,
    /// The presentation does not match the code: nothing changed, the code and its tokens
    /// are as they were.
    Mismatch(CodeMismatch),
    Expired,
    Unknown,
}

/// One of the hub's signing keys. Its private half may be secret, so `Debug` leaves it out.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSigningKey {
    /// The RFC 7638 thumbprint of the public key.
    pub kid: String,
    /// What the key signs with: EdDSA (an Ed25519 key) or RS256 (an RSA key).
    pub alg: SigningAlg,
    /// Where the private half is kept.
    pub custody: KeyCustody,
    pub created_at: DateTime<Utc>,
    /// From when the key signs (it is published from `created_at`).
    pub active_from: DateTime<Utc>,
    /// When it left the published set, if ever.
    pub retired_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for StoredSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("created_at", &self.created_at)
            .field("active_from", &self.active_from)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

/// Where a signing key's private half is kept.
#[derive(Clone, PartialEq, Eq)]
pub enum KeyCustody {
    /// In storage: the PKCS#8 bytes as given (the hub gives them wrapped under its
    /// key-encryption key). A secret, listed by [`crate::Store::stored_secrets`].
    Stored(Vec<u8>),
    /// In a PKCS#11 token, which never lets it out: storage holds where, and the public half.
    Token(TokenKeyRef),
}

impl std::fmt::Debug for KeyCustody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stored(_) => f.write_str("Stored(..)"),
            Self::Token(key) => f.debug_tuple("Token").field(key).finish(),
        }
    }
}

/// A key pair in a PKCS#11 token, as storage names it. Nothing in it is secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenKeyRef {
    /// The token's label.
    pub token: String,
    /// The key objects' `CKA_ID` in the token (the private and the public object share it).
    pub object_id: Vec<u8>,
    /// The public key as a JWK (RFC 7517 JSON), as the JWK Set publishes it.
    pub public_jwk: String,
}

#[async_trait]
pub trait IdentityStore: Send + Sync {
    // --- enrolment ---
    async fn put_enrolment_challenge(
        &self,
        id: uuid::Uuid,
        challenge: &[u8],
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Removes and returns the challenge if it exists and has not expired: single use.
    async fn take_enrolment_challenge(
        &self,
        id: uuid::Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Vec<u8>>>;
    /// Records a proven identity. A key enrolled before maps to its resident (attributes
    /// refreshed); a new key makes `candidate` a new resident.
    async fn enrol(
        &self,
        key_hash: &str,
        attributes: &serde_json::Value,
        certificate_not_after: DateTime<Utc>,
        candidate: ResidentId,
        now: DateTime<Utc>,
    ) -> StoreResult<Enrolled>;
    /// The resident's latest enrolment.
    async fn enrolment_of(&self, resident: ResidentId) -> StoreResult<Option<Enrolment>>;
    async fn enrolment_by_key(&self, key_hash: &str) -> StoreResult<Option<Enrolment>>;

    // --- passkeys ---
    async fn put_ceremony(
        &self,
        id: uuid::Uuid,
        kind: &str,
        ceremony: &Ceremony,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Removes and returns an unexpired ceremony of `kind`: single use.
    async fn take_ceremony(
        &self,
        id: uuid::Uuid,
        kind: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Ceremony>>;
    async fn add_passkey(&self, passkey: &StoredPasskey) -> StoreResult<()>;
    async fn passkeys_of(&self, resident: ResidentId) -> StoreResult<Vec<StoredPasskey>>;
    async fn passkey(&self, credential_id: &str) -> StoreResult<Option<StoredPasskey>>;
    /// Stores the credential's new state (its signature counter) after a sign-in.
    async fn update_passkey(
        &self,
        credential_id: &str,
        passkey: &serde_json::Value,
        used_at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Returns whether the resident had that passkey.
    async fn remove_passkey(&self, resident: ResidentId, credential_id: &str) -> StoreResult<bool>;

    // --- OpenID Connect ---
    async fn put_service_client(&self, client: &ServiceClient) -> StoreResult<()>;
    async fn service_client(&self, service: &ServiceId) -> StoreResult<Option<ServiceClient>>;
    async fn put_authorization_code(&self, code: &AuthorizationCodeRecord) -> StoreResult<()>;
    /// The stored code, redeemed or not (what its tokens are bound to).
    async fn authorization_code(
        &self,
        code_hash: &str,
    ) -> StoreResult<Option<AuthorizationCodeRecord>>;
    /// Marks the code redeemed, atomically, if `presented` matches it; see
    /// [`CodeRedemption`].
    async fn redeem_authorization_code(
        &self,
        code_hash: &str,
        presented: &CodePresentation,
        now: DateTime<Utc>,
    ) -> StoreResult<CodeRedemption>;
    async fn revoke_token(
        &self,
        jti: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Revokes every token issued for a code (on code reuse, or when one of them is revoked).
    async fn revoke_code_tokens(&self, code_hash: &str, now: DateTime<Utc>) -> StoreResult<()>;
    /// Whether the token `jti`, or the code it was issued for, was revoked.
    async fn token_revoked(&self, jti: &str, code_hash: Option<&str>) -> StoreResult<bool>;

    // --- proxies ---
    async fn appoint_proxy(&self, appointment: &ProxyAppointment) -> StoreResult<()>;
    /// Ends an active appointment the resident made; `NotFound` otherwise.
    async fn end_proxy(
        &self,
        resident: ResidentId,
        id: ProxyId,
        at: DateTime<Utc>,
    ) -> StoreResult<ProxyAppointment>;
    async fn proxy_appointment(&self, id: ProxyId) -> StoreResult<Option<ProxyAppointment>>;
    /// Appointments the resident made, newest first, ended ones too.
    async fn proxies_of(&self, resident: ResidentId) -> StoreResult<Vec<ProxyAppointment>>;
    /// Active appointments in which `proxy` acts for someone.
    async fn proxy_for(&self, proxy: ResidentId) -> StoreResult<Vec<ProxyAppointment>>;

    // --- operators ---
    async fn put_operator(&self, operator: &Operator) -> StoreResult<()>;
    /// The operator account `id`, if there is one (checked on every operator request).
    async fn operator(&self, id: &OperatorId) -> StoreResult<Option<Operator>>;
    async fn operator_by_identity(&self, identity: ResidentId) -> StoreResult<Option<Operator>>;

    // --- resident requests ---
    async fn file_request(&self, request: &ResidentRequest) -> StoreResult<()>;
    /// A resident's requests, newest first.
    async fn requests_of(&self, resident: ResidentId) -> StoreResult<Vec<ResidentRequest>>;
    /// Every request, optionally of one status, oldest first (the operators' queue).
    async fn requests(
        &self,
        status: Option<ResidentRequestStatus>,
    ) -> StoreResult<Vec<ResidentRequest>>;
    async fn update_request(
        &self,
        id: ResidentRequestId,
        status: ResidentRequestStatus,
        response: Option<&str>,
        at: DateTime<Utc>,
    ) -> StoreResult<ResidentRequest>;

    // --- housekeeping ---
    /// Deletes what can no longer be used at `before`: enrolment challenges and WebAuthn
    /// ceremonies that expired, codes that expired unredeemed, and revoked token ids whose
    /// tokens expired. Returns how many rows went. Requests nobody authenticated write the
    /// first two, so without this their tables grow with every such request.
    async fn purge_expired(&self, before: DateTime<Utc>) -> StoreResult<u64>;

    // --- signing keys ---
    /// Adds a key; `false` (and nothing changed) if one with its `kid` exists.
    async fn add_signing_key(&self, key: &StoredSigningKey) -> StoreResult<bool>;
    /// Every signing key, retired ones too, in the order they become active.
    async fn signing_keys(&self) -> StoreResult<Vec<StoredSigningKey>>;
    /// Takes a key out of the published set; `false` if there is none such or it was
    /// retired before.
    async fn retire_signing_key(&self, kid: &str, at: DateTime<Utc>) -> StoreResult<bool>;
}
