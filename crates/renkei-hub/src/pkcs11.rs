//! Signing keys kept in a PKCS#11 token: a hardware security module, or Debian's SoftHSM2 in
//! tests.
//!
//! A hub given a token makes its signing keys inside it (Ed25519 for receipts, grants, events
//! and EdDSA ID tokens; RSA-2048 for RS256 ID tokens) as private objects that are sensitive
//! and not extractable: the token signs with them and never lets them out. Storage keeps the
//! kid, the public key (a JWK), the token's label and the objects' `CKA_ID`, so a copy of the
//! database and the key-encryption key together still yield none of these keys. The hub logs
//! in with the token's user PIN, which the operator keeps in a file as they keep the KEK.
//!
//! Every call into the token blocks the calling thread (a signature takes a few hundred
//! microseconds with SoftHSM2): the hub makes them on Tokio's blocking threads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use renkei_domain::SigningAlg;
use renkei_protocol::keys::{ExternalSigner, RsaSigningKey, SigningKey};
use renkei_store::TokenKeyRef;
use zeroize::Zeroizing;

use crate::HubError;

/// The DER encoding of id-Ed25519 (RFC 8410, 1.3.101.112): the `CKA_EC_PARAMS` of an Ed25519
/// key (PKCS#11 3.0 §2.3.10).
const ED25519_OID: [u8; 5] = [0x06, 0x03, 0x2b, 0x65, 0x70];
/// How many random bytes name a key pair in the token (`CKA_ID`).
const OBJECT_ID_LEN: usize = 16;
/// RSA keys are made with 2048-bit moduli and the exponent 65537.
const RSA_BITS: u64 = 2048;
const RSA_EXPONENT: [u8; 3] = [0x01, 0x00, 0x01];

/// Which token holds the hub's signing keys, and how the hub logs in to it.
#[derive(Clone)]
pub struct Pkcs11Config {
    /// The PKCS#11 module (a shared library), e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    /// The token's label.
    pub token: String,
    /// The token's user PIN.
    pub pin: Zeroizing<String>,
}

impl std::fmt::Debug for Pkcs11Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Config")
            .field("module", &self.module)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// Why the token could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("loading the PKCS#11 module `{module}`: {why}")]
    Module { module: String, why: String },
    #[error("no PKCS#11 token labelled `{token}` in module `{module}`")]
    NoToken { token: String, module: String },
    #[error("logging in to PKCS#11 token `{token}`: {why}")]
    Login { token: String, why: String },
    #[error("PKCS#11 token `{token}`: {doing}: {why}")]
    Call {
        token: String,
        doing: &'static str,
        why: String,
    },
    #[error(
        "signing key `{kid}` is kept in PKCS#11 token `{token}`, and the hub was given no token: \
         start it with that token (--pkcs11-module, --pkcs11-token, --pkcs11-pin-file)"
    )]
    NotGiven { kid: String, token: String },
    #[error(
        "signing key `{kid}` is kept in PKCS#11 token `{stored}`, not in the token given \
         (`{given}`)"
    )]
    OtherToken {
        kid: String,
        stored: String,
        given: String,
    },
    #[error("PKCS#11 token `{token}` holds no {alg} key pair with id `{id}`")]
    Missing {
        token: String,
        alg: SigningAlg,
        id: String,
    },
    #[error("the key pair with id `{id}` in PKCS#11 token `{token}` is not signing key `{kid}`")]
    NotTheKey {
        token: String,
        id: String,
        kid: String,
    },
    #[error(
        "the private key with id `{id}` in PKCS#11 token `{token}` can be extracted: refusing \
         to sign with it"
    )]
    Extractable { token: String, id: String },
}

impl From<TokenError> for HubError {
    fn from(e: TokenError) -> Self {
        HubError::internal(e.to_string())
    }
}

/// A PKCS#11 error, briefly (the library's own texts are paragraphs).
fn brief(e: &CkError) -> String {
    match e {
        CkError::Pkcs11(rv, function) => format!("{function} failed: {rv:?}"),
        other => other.to_string(),
    }
}

/// The modules this process has loaded and initialised: `C_Initialize` may be called once per
/// process and module, and every hub (tests start several) shares it.
static MODULES: Mutex<BTreeMap<PathBuf, Pkcs11>> = Mutex::new(BTreeMap::new());

fn module(path: &Path) -> Result<Pkcs11, TokenError> {
    let mut modules = MODULES.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(context) = modules.get(path) {
        return Ok(context.clone());
    }
    let failed = |e: CkError| TokenError::Module {
        module: path.display().to_string(),
        why: brief(&e),
    };
    let context = Pkcs11::new(path).map_err(failed)?;
    match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(failed(e)),
    }
    modules.insert(path.to_owned(), context.clone());
    Ok(context)
}

/// A token the hub is logged in to.
pub struct Token {
    context: Pkcs11,
    slot: Slot,
    label: String,
    pin: AuthPin,
    /// Logged in, and kept open: a login lasts while the application has a session open.
    anchor: Mutex<Session>,
    /// Sessions free for the next signature (a session serves one call at a time).
    idle: Mutex<Vec<Session>>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

/// A key pair just made in the token.
#[derive(Debug)]
pub struct TokenKey {
    pub kid: String,
    pub reference: TokenKeyRef,
}

impl Token {
    /// Loads the module, finds the token by its label and logs in with the user PIN. Blocks.
    pub fn open(config: &Pkcs11Config) -> Result<Arc<Self>, TokenError> {
        let context = module(&config.module)?;
        let call = |doing| {
            move |e: CkError| TokenError::Call {
                token: config.token.clone(),
                doing,
                why: brief(&e),
            }
        };
        let mut found = None;
        for slot in context
            .get_slots_with_token()
            .map_err(call("listing slots"))?
        {
            let info = context
                .get_token_info(slot)
                .map_err(call("reading a slot's token"))?;
            if info.label().trim_end() == config.token {
                found = Some(slot);
                break;
            }
        }
        let slot = found.ok_or_else(|| TokenError::NoToken {
            token: config.token.clone(),
            module: config.module.display().to_string(),
        })?;
        let pin = AuthPin::new(config.pin.trim_end_matches(['\n', '\r']).into());
        let anchor = context
            .open_ro_session(slot)
            .map_err(call("opening a session"))?;
        match anchor.login(UserType::User, Some(&pin)) {
            // Another hub in this process logged in to it already (logins are per process).
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => {
                return Err(TokenError::Login {
                    token: config.token.clone(),
                    why: brief(&e),
                });
            }
        }
        Ok(Arc::new(Self {
            context,
            slot,
            label: config.token.clone(),
            pin,
            anchor: Mutex::new(anchor),
            idle: Mutex::new(Vec::new()),
        }))
    }

    /// The token's label.
    pub fn label(&self) -> &str {
        &self.label
    }

    fn call(&self, doing: &'static str) -> impl Fn(CkError) -> TokenError + '_ {
        move |e| TokenError::Call {
            token: self.label.clone(),
            doing,
            why: brief(&e),
        }
    }

    /// Runs `f` on an idle session (opening one if none is idle), logging in again once if the
    /// token forgot the login. A session that failed is closed rather than reused.
    fn with_session<R>(
        &self,
        doing: &'static str,
        rw: bool,
        f: impl Fn(&Session) -> Result<R, CkError>,
    ) -> Result<R, TokenError> {
        let pooled = if rw {
            None
        } else {
            self.idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop()
        };
        let session = match pooled {
            Some(s) => s,
            None if rw => self
                .context
                .open_rw_session(self.slot)
                .map_err(self.call("opening a session"))?,
            None => self
                .context
                .open_ro_session(self.slot)
                .map_err(self.call("opening a session"))?,
        };
        let mut result = f(&session);
        if let Err(CkError::Pkcs11(RvError::UserNotLoggedIn, _)) = result {
            let anchor = self.anchor.lock().unwrap_or_else(PoisonError::into_inner);
            match anchor.login(UserType::User, Some(&self.pin)) {
                Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
                Err(e) => {
                    return Err(TokenError::Login {
                        token: self.label.clone(),
                        why: brief(&e),
                    });
                }
            }
            drop(anchor);
            result = f(&session);
        }
        match result {
            Ok(value) => {
                if !rw {
                    self.idle
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(session);
                }
                Ok(value)
            }
            Err(e) => Err(self.call(doing)(e)),
        }
    }

    /// Makes a key pair for `alg` in the token: the private half sensitive and never
    /// extractable, both halves token objects under one fresh random `CKA_ID`. Blocks (an RSA
    /// key takes a while).
    pub fn generate(self: &Arc<Self>, alg: SigningAlg) -> Result<TokenKey, TokenError> {
        let id = self.with_session("drawing random bytes", false, |s| {
            s.generate_random_vec(OBJECT_ID_LEN as u32)
        })?;
        let label = format!("renkei {alg} signing key").into_bytes();
        let private = vec![
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Id(id.clone()),
            Attribute::Label(label.clone()),
        ];
        let mut public = vec![
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(true),
            Attribute::Id(id.clone()),
            Attribute::Label(label),
        ];
        let mechanism = match alg {
            SigningAlg::EdDsa => {
                public.push(Attribute::EcParams(ED25519_OID.to_vec()));
                Mechanism::EccEdwardsKeyPairGen
            }
            SigningAlg::Rs256 => {
                public.push(Attribute::ModulusBits(RSA_BITS.into()));
                public.push(Attribute::PublicExponent(RSA_EXPONENT.to_vec()));
                Mechanism::RsaPkcsKeyPairGen
            }
        };
        // SoftHSM2 sometimes fails a key generation with CKR_GENERAL_ERROR while other
        // sessions of the process use the token (2 to 3 of 20 runs of three replicas starting
        // at once in one process; serialising the generations did not help), and the same
        // call then succeeds. A failed generation leaves no object: it is tried up to 3 times.
        self.with_session("generating a key pair", true, |s| {
            let mut made = s.generate_key_pair(&mechanism, &public, &private);
            for _ in 0..2 {
                if !matches!(made, Err(CkError::Pkcs11(RvError::GeneralError, _))) {
                    break;
                }
                tracing::warn!("the PKCS#11 token failed a key generation; trying again");
                made = s.generate_key_pair(&mechanism, &public, &private);
            }
            made
        })?;
        self.describe(alg, &id)
    }

    /// The kid and stored form of the `alg` key pair with `CKA_ID` `id`. Blocks.
    pub fn describe(self: &Arc<Self>, alg: SigningAlg, id: &[u8]) -> Result<TokenKey, TokenError> {
        let key = self.open_key(alg, id)?;
        let public_jwk =
            serde_json::to_string(&key.public_jwk()).map_err(|e| TokenError::Call {
                token: self.label.clone(),
                doing: "encoding the public key",
                why: e.to_string(),
            })?;
        Ok(TokenKey {
            kid: key.kid().to_owned(),
            reference: TokenKeyRef {
                token: self.label.clone(),
                object_id: id.to_vec(),
                public_jwk,
            },
        })
    }

    /// The `alg` key pair with `CKA_ID` `id`, checked to stay inside the token, signing
    /// through it.
    fn open_key(
        self: &Arc<Self>,
        alg: SigningAlg,
        id: &[u8],
    ) -> Result<TokenSigningKey, TokenError> {
        let encoded = URL_SAFE_NO_PAD.encode(id);
        let missing = || TokenError::Missing {
            token: self.label.clone(),
            alg,
            id: encoded.clone(),
        };
        let private = self
            .find(ObjectClass::PRIVATE_KEY, id)?
            .ok_or_else(missing)?;
        let public = self
            .find(ObjectClass::PUBLIC_KEY, id)?
            .ok_or_else(missing)?;
        if !self.stays_inside(private)? {
            return Err(TokenError::Extractable {
                token: self.label.clone(),
                id: encoded,
            });
        }
        self.signing_key(private, alg, self.public_key(public, alg)?, id)
    }

    /// The key whose private object is `private` and public half `public`, signing through
    /// the token.
    fn signing_key(
        self: &Arc<Self>,
        private: ObjectHandle,
        alg: SigningAlg,
        public: PublicKey,
        id: &[u8],
    ) -> Result<TokenSigningKey, TokenError> {
        let signer = Arc::new(TokenSigner {
            token: self.clone(),
            key: private,
            alg,
        });
        match (alg, public) {
            (SigningAlg::EdDsa, PublicKey::Ed25519(raw)) => {
                Ok(TokenSigningKey::EdDsa(SigningKey::external(raw, signer)))
            }
            (SigningAlg::Rs256, PublicKey::Rsa { n, e }) => RsaSigningKey::external(&n, &e, signer)
                .map(TokenSigningKey::Rs256)
                .map_err(|e| TokenError::Call {
                    token: self.label.clone(),
                    doing: "reading the public key",
                    why: format!("key pair `{}`: {e}", URL_SAFE_NO_PAD.encode(id)),
                }),
            _ => Err(TokenError::Call {
                token: self.label.clone(),
                doing: "reading the public key",
                why: format!(
                    "key pair `{}` is not an {alg} key",
                    URL_SAFE_NO_PAD.encode(id)
                ),
            }),
        }
    }

    /// The one object of `class` with `CKA_ID` `id`, if there is exactly one.
    fn find(&self, class: ObjectClass, id: &[u8]) -> Result<Option<ObjectHandle>, TokenError> {
        let found = self.with_session("finding a key", false, |s| {
            s.find_objects(&[Attribute::Class(class), Attribute::Id(id.to_vec())])
        })?;
        Ok(match found.as_slice() {
            [one] => Some(*one),
            _ => None,
        })
    }

    fn public_key(&self, handle: ObjectHandle, alg: SigningAlg) -> Result<PublicKey, TokenError> {
        let bad = |why: &str| TokenError::Call {
            token: self.label.clone(),
            doing: "reading the public key",
            why: why.to_owned(),
        };
        match alg {
            SigningAlg::EdDsa => {
                let attributes = self.with_session("reading the public key", false, |s| {
                    s.get_attributes(handle, &[AttributeType::EcPoint])
                })?;
                let Some(Attribute::EcPoint(point)) = attributes.into_iter().next() else {
                    return Err(bad("no CKA_EC_POINT"));
                };
                // PKCS#11 3.0 has CKA_EC_POINT as a DER OCTET STRING; some tokens give the
                // 32 bytes bare.
                let raw = match point.as_slice() {
                    [0x04, 0x20, raw @ ..] if raw.len() == 32 => raw,
                    raw if raw.len() == 32 => raw,
                    _ => return Err(bad("CKA_EC_POINT is not an Ed25519 public key")),
                };
                let mut public = [0u8; 32];
                public.copy_from_slice(raw);
                Ok(PublicKey::Ed25519(public))
            }
            SigningAlg::Rs256 => {
                let attributes = self.with_session("reading the public key", false, |s| {
                    s.get_attributes(
                        handle,
                        &[AttributeType::Modulus, AttributeType::PublicExponent],
                    )
                })?;
                let (mut n, mut e) = (None, None);
                for attribute in attributes {
                    match attribute {
                        Attribute::Modulus(v) => n = Some(v),
                        Attribute::PublicExponent(v) => e = Some(v),
                        _ => {}
                    }
                }
                match (n, e) {
                    (Some(n), Some(e)) => Ok(PublicKey::Rsa { n, e }),
                    _ => Err(bad("no modulus or exponent")),
                }
            }
        }
    }

    /// Whether the private key `handle` is sensitive and can never be extracted.
    fn stays_inside(&self, handle: ObjectHandle) -> Result<bool, TokenError> {
        let attributes = self.with_session("reading a key's attributes", false, |s| {
            s.get_attributes(
                handle,
                &[AttributeType::Sensitive, AttributeType::Extractable],
            )
        })?;
        let (mut sensitive, mut extractable) = (false, true);
        for attribute in attributes {
            match attribute {
                Attribute::Sensitive(v) => sensitive = v,
                Attribute::Extractable(v) => extractable = v,
                _ => {}
            }
        }
        Ok(sensitive && !extractable)
    }

    /// The key `reference` names, checked to be `kid` and to stay inside the token, signing
    /// through the token. Blocks.
    fn key(
        self: &Arc<Self>,
        kid: &str,
        alg: SigningAlg,
        reference: &TokenKeyRef,
    ) -> Result<TokenSigningKey, TokenError> {
        if reference.token != self.label {
            return Err(TokenError::OtherToken {
                kid: kid.to_owned(),
                stored: reference.token.clone(),
                given: self.label.clone(),
            });
        }
        let key = self.open_key(alg, &reference.object_id)?;
        if key.kid() != kid {
            return Err(TokenError::NotTheKey {
                token: self.label.clone(),
                id: URL_SAFE_NO_PAD.encode(&reference.object_id),
                kid: kid.to_owned(),
            });
        }
        Ok(key)
    }

    /// Deletes the key pair with `CKA_ID` `id` (one made for nothing). Blocks.
    pub fn destroy(&self, id: &[u8]) -> Result<(), TokenError> {
        for class in [ObjectClass::PRIVATE_KEY, ObjectClass::PUBLIC_KEY] {
            if let Some(handle) = self.find(class, id)? {
                self.with_session("deleting a key", true, |s| s.destroy_object(handle))?;
            }
        }
        Ok(())
    }

    fn sign(
        &self,
        key: ObjectHandle,
        alg: SigningAlg,
        message: &[u8],
    ) -> Result<Vec<u8>, TokenError> {
        let mechanism = match alg {
            SigningAlg::EdDsa => Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
            SigningAlg::Rs256 => Mechanism::Sha256RsaPkcs,
        };
        self.with_session("signing", false, |s| s.sign(&mechanism, key, message))
    }
}

/// A public key as the token gives it.
enum PublicKey {
    Ed25519([u8; 32]),
    Rsa { n: Vec<u8>, e: Vec<u8> },
}

/// A key in the token, as the ring holds it.
pub(crate) enum TokenSigningKey {
    EdDsa(SigningKey),
    Rs256(RsaSigningKey),
}

impl TokenSigningKey {
    fn kid(&self) -> &str {
        match self {
            Self::EdDsa(k) => k.kid(),
            Self::Rs256(k) => k.kid(),
        }
    }

    fn public_jwk(&self) -> renkei_protocol::keys::Jwk {
        match self {
            Self::EdDsa(k) => k.public_jwk(),
            Self::Rs256(k) => k.public_jwk(),
        }
    }
}

/// Opens the key a stored row names in `token`, or says why it cannot: the hub has no token,
/// the key is in another one, or the token lacks it. Blocks.
pub(crate) fn open_key(
    token: Option<&Arc<Token>>,
    kid: &str,
    alg: SigningAlg,
    reference: &TokenKeyRef,
) -> Result<TokenSigningKey, TokenError> {
    match token {
        Some(token) => token.key(kid, alg, reference),
        None => Err(TokenError::NotGiven {
            kid: kid.to_owned(),
            token: reference.token.clone(),
        }),
    }
}

/// Signs through the token with one private key object.
struct TokenSigner {
    token: Arc<Token>,
    key: ObjectHandle,
    alg: SigningAlg,
}

impl ExternalSigner for TokenSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        self.token
            .sign(self.key, self.alg, message)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
pub(crate) mod tests;
