//! The hub's signing keys and their rotation.
//!
//! The ring holds keys of two algorithms. Ed25519 (EdDSA) keys sign consent receipts,
//! provider grants and webhook events, and the ID tokens of services registered for EdDSA;
//! RSA-2048 (RS256) keys sign the ID tokens of every other service, since RS256 is what
//! OpenID Connect requires and what relying-party libraries accept by default. For each
//! algorithm one key signs at a time; the JWK Set publishes every key that is not retired.
//! Rotation adds a key of each algorithm that is published at once but signs only from a
//! later time, so services and providers that cache the JWK Set pick it up before anything
//! is signed with it, and every replica switches at the same moment without talking to the
//! others. Old keys stay published, so receipts signed years ago still verify; an operator
//! retires a key only after a compromise.
//!
//! A key's private half is kept in storage, wrapped under the key-encryption key, or, for a
//! hub given a PKCS#11 token, inside the token (`pkcs11`): then new keys are made there and
//! storage holds only their public halves and where they are.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use renkei_domain::{OperatorAction, OperatorActor, SigningAlg};
use renkei_protocol::keys::{AnySigningKey, Jwks, RsaSigningKey, SigningKey};
use renkei_store::{KeyCustody, Store, StoredSigningKey};
use serde::Serialize;

use crate::HubError;
use crate::kek::Kek;
use crate::pkcs11::{Token, TokenSigningKey};

/// How often a running hub re-reads the keys, so a rotation made by `renkei keys rotate` (or
/// on another replica) is published here within this time.
pub const KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(30);

/// How long after a rotation the new key starts signing, by default: long enough for
/// services and providers that cache the JWK Set for a day to have fetched it.
pub const DEFAULT_ACTIVATION_DELAY: TimeDelta = TimeDelta::hours(24);

/// The secret under which the first key was kept before keys could rotate; it becomes the
/// first key of the ring (active since ever), so upgrading keeps every signature valid.
const FIRST_KEY_SECRET: &str = "jws-signing-key";

/// The secret through which replicas starting at once agree on the first RS256 key.
const FIRST_RS256_KEY_SECRET: &str = "jws-signing-key-rs256";

/// The hub secrets through which replicas starting at once with a token agree on the first key
/// of each algorithm made in it: they hold its `CKA_ID`, not a private key.
const FIRST_TOKEN_KEY_SECRETS: [(SigningAlg, &str); 2] = [
    (SigningAlg::EdDsa, "token-signing-key-eddsa"),
    (SigningAlg::Rs256, "token-signing-key-rs256"),
];

/// Keys of one algorithm, in the order they become active.
type Active<K> = Vec<(DateTime<Utc>, Arc<K>)>;

/// The published keys and which of them signs when.
#[derive(Debug)]
pub struct SigningKeyRing {
    /// Not retired, in the order they become active.
    eddsa: Active<SigningKey>,
    rs256: Active<RsaSigningKey>,
    jwks: Jwks,
}

/// The newest key active at `now`, or, if a compromise retired every active key, the next to
/// become active (it is published already).
#[expect(
    clippy::indexing_slicing,
    reason = "a ring holds at least one key of each algorithm, checked in `from_stored`"
)]
fn newest_active<K>(keys: &Active<K>, now: DateTime<Utc>) -> &Arc<K> {
    // INVARIANT: `keys` is non-empty (checked in `SigningKeyRing::from_stored`).
    let active = keys.iter().rev().find(|(from, _)| *from <= now);
    let (_, key) = active.unwrap_or(&keys[0]);
    key
}

impl SigningKeyRing {
    /// The ring of the stored keys that are not retired (private halves already opened with
    /// the KEK); it needs one of each algorithm. Keys kept in a token are found in `token`,
    /// which this blocks on.
    pub fn from_stored(
        stored: &[StoredSigningKey],
        token: Option<&Arc<Token>>,
    ) -> Result<Self, HubError> {
        let mut eddsa = Vec::new();
        let mut rs256 = Vec::new();
        let mut published = Vec::new();
        for s in stored.iter().filter(|s| s.retired_at.is_none()) {
            let bad = |e| HubError::internal(format!("signing key `{}`: {e}", s.kid));
            let jwk = match (&s.custody, s.alg) {
                (KeyCustody::Stored(pkcs8), SigningAlg::EdDsa) => {
                    let key = SigningKey::from_pkcs8_der(pkcs8).map_err(bad)?;
                    let jwk = key.public_jwk();
                    eddsa.push((s.active_from, Arc::new(key)));
                    jwk
                }
                (KeyCustody::Stored(pkcs8), SigningAlg::Rs256) => {
                    let key = RsaSigningKey::from_pkcs8_der(pkcs8).map_err(bad)?;
                    let jwk = key.public_jwk();
                    rs256.push((s.active_from, Arc::new(key)));
                    jwk
                }
                (KeyCustody::Token(reference), alg) => {
                    match crate::pkcs11::open_key(token, &s.kid, alg, reference)? {
                        TokenSigningKey::EdDsa(key) => {
                            let jwk = key.public_jwk();
                            eddsa.push((s.active_from, Arc::new(key)));
                            jwk
                        }
                        TokenSigningKey::Rs256(key) => {
                            let jwk = key.public_jwk();
                            rs256.push((s.active_from, Arc::new(key)));
                            jwk
                        }
                    }
                }
            };
            published.push((s.active_from, jwk));
        }
        eddsa.sort_by_key(|(from, _)| *from);
        rs256.sort_by_key(|(from, _)| *from);
        published.sort_by_key(|(from, _)| *from);
        for (alg, empty) in [
            (SigningAlg::EdDsa, eddsa.is_empty()),
            (SigningAlg::Rs256, rs256.is_empty()),
        ] {
            if empty {
                return Err(HubError::internal(format!(
                    "no {alg} signing key that is not retired"
                )));
            }
        }
        let jwks = Jwks::new(published.into_iter().map(|(_, jwk)| jwk).collect());
        Ok(Self { eddsa, rs256, jwks })
    }

    /// The Ed25519 key that signs receipts, grants and events at `now`.
    pub fn signing_key(&self, now: DateTime<Utc>) -> Arc<SigningKey> {
        newest_active(&self.eddsa, now).clone()
    }

    /// The key that signs `alg` ID tokens at `now`.
    pub fn id_token_key(&self, alg: SigningAlg, now: DateTime<Utc>) -> AnySigningKey<'_> {
        match alg {
            SigningAlg::EdDsa => AnySigningKey::EdDsa(newest_active(&self.eddsa, now)),
            SigningAlg::Rs256 => AnySigningKey::Rs256(newest_active(&self.rs256, now)),
        }
    }

    /// The public keys, as `/.well-known/jwks.json` serves them.
    pub fn jwks(&self) -> &Jwks {
        &self.jwks
    }
}

/// The ring as this replica last read it from storage, the KEK that opens it, and the token
/// that holds its keys, if the hub was given one.
#[derive(Debug)]
pub struct LoadedKeys {
    ring: RwLock<Arc<SigningKeyRing>>,
    kek: Arc<Kek>,
    token: Option<Arc<Token>>,
}

impl LoadedKeys {
    /// Reads the keys, first storing the hub's first key of each algorithm if storage has
    /// none yet (every replica agrees on them through `ensure_secret`). Private halves are
    /// stored wrapped under `kek`, or, given a `token`, first keys are made in it.
    pub async fn load(
        store: &dyn Store,
        kek: Arc<Kek>,
        token: Option<Arc<Token>>,
        now: DateTime<Utc>,
    ) -> Result<Self, HubError> {
        // The first Ed25519 key of a hub without a token; a hub with one makes no key outside
        // it, and neither makes one beside keys kept in a token. A first key stored before
        // stays where it is (a no-op once stored, also when retired since).
        let stored = store.signing_keys().await?;
        let legacy_first = match &token {
            None if !stored.iter().any(|k| k.alg == SigningAlg::EdDsa) => {
                let candidate = SigningKey::generate()
                    .map_err(|e| HubError::internal(format!("key generation: {e}")))?;
                let candidate = pkcs8(candidate.pkcs8_der())?;
                Some(
                    crate::kek::ensure_secret(store, &kek, FIRST_KEY_SECRET, candidate, now)
                        .await?,
                )
            }
            _ => crate::kek::read_secret(store, &kek, FIRST_KEY_SECRET).await?,
        };
        if let Some(der) = legacy_first {
            let first = SigningKey::from_pkcs8_der(&der)
                .map_err(|e| HubError::internal(format!("signing key: {e}")))?;
            store
                .add_signing_key(&crate::kek::wrap_signing_key(
                    &kek,
                    first_key(first.kid(), SigningAlg::EdDsa, &der, now),
                )?)
                .await?;
        }
        let stored = store.signing_keys().await?;
        if let Some(token) = &token {
            for (alg, secret) in FIRST_TOKEN_KEY_SECRETS {
                if !stored.iter().any(|k| k.alg == alg) {
                    first_token_key(store, &kek, token, alg, secret, now).await?;
                }
            }
        } else if !stored.iter().any(|k| k.alg == SigningAlg::Rs256) {
            // An RSA key takes a while to generate, so only a hub without any makes a candidate.
            let candidate = RsaSigningKey::generate()
                .map_err(|e| HubError::internal(format!("key generation: {e}")))?;
            let der = crate::kek::ensure_secret(
                store,
                &kek,
                FIRST_RS256_KEY_SECRET,
                pkcs8(candidate.pkcs8_der())?,
                now,
            )
            .await?;
            let first = RsaSigningKey::from_pkcs8_der(&der)
                .map_err(|e| HubError::internal(format!("signing key: {e}")))?;
            // Signs at once: services registered before RS256 existed keep EdDSA, so nobody
            // can have cached a JWK Set that RS256 ID tokens need and lacks.
            store
                .add_signing_key(&crate::kek::wrap_signing_key(
                    &kek,
                    first_key(first.kid(), SigningAlg::Rs256, &der, now),
                )?)
                .await?;
        }
        let ring = read_ring(store, &kek, token.clone()).await?;
        let in_storage = stored_private_halves(&ring, &store.signing_keys().await?);
        if token.is_some() && in_storage > 0 {
            tracing::warn!(
                keys = in_storage,
                "signing keys made before the hub had a token are still kept in the database \
                 (wrapped under the KEK): `renkei keys rotate` with the token replaces them"
            );
        }
        Ok(Self {
            ring: RwLock::new(Arc::new(ring)),
            kek,
            token,
        })
    }

    /// Re-reads the keys from storage.
    pub async fn reload(&self, store: &dyn Store) -> Result<(), HubError> {
        let ring = read_ring(store, &self.kek, self.token.clone()).await?;
        *self.ring.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(ring);
        Ok(())
    }

    pub fn ring(&self) -> Arc<SigningKeyRing> {
        self.ring
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The PKCS#8 bytes of a key just generated in this process.
fn pkcs8(der: Option<&[u8]>) -> Result<&[u8], HubError> {
    der.ok_or_else(|| HubError::internal("a key generated here has no PKCS#8 bytes"))
}

/// A first key (signing since ever) whose private half is stored.
fn first_key(kid: &str, alg: SigningAlg, der: &[u8], now: DateTime<Utc>) -> StoredSigningKey {
    StoredSigningKey {
        kid: kid.to_owned(),
        alg,
        custody: KeyCustody::Stored(der.to_vec()),
        created_at: now,
        active_from: DateTime::UNIX_EPOCH,
        retired_at: None,
    }
}

/// How many of the published keys have their private half in storage.
fn stored_private_halves(ring: &SigningKeyRing, stored: &[StoredSigningKey]) -> usize {
    stored
        .iter()
        .filter(|k| k.retired_at.is_none() && matches!(k.custody, KeyCustody::Stored(_)))
        .filter(|k| ring.jwks().find(&k.kid).is_some())
        .count()
}

/// Makes the first `alg` key in `token` and stores it, signing since ever. Replicas starting
/// at once each make a candidate and agree on one through the hub secret `secret` (its
/// `CKA_ID`); the others delete theirs.
async fn first_token_key(
    store: &dyn Store,
    kek: &Kek,
    token: &Arc<Token>,
    alg: SigningAlg,
    secret: &str,
    now: DateTime<Utc>,
) -> Result<(), HubError> {
    let made = blocking(token, move |t| t.generate(alg)).await?;
    let agreed =
        crate::kek::ensure_secret(store, kek, secret, &made.reference.object_id, now).await?;
    if agreed.as_slice() != made.reference.object_id.as_slice() {
        let id = made.reference.object_id.clone();
        if let Err(e) = blocking(token, move |t| t.destroy(&id)).await {
            tracing::warn!(error = %e, "deleting a first key another replica beat failed");
        }
    }
    let agreed = agreed.to_vec();
    let key = blocking(token, move |t| t.describe(alg, &agreed)).await?;
    store
        .add_signing_key(&StoredSigningKey {
            kid: key.kid,
            alg,
            custody: KeyCustody::Token(key.reference),
            created_at: now,
            active_from: DateTime::UNIX_EPOCH,
            retired_at: None,
        })
        .await?;
    Ok(())
}

/// Runs `f` with the token on a blocking thread: every PKCS#11 call blocks.
async fn blocking<R: Send + 'static>(
    token: &Arc<Token>,
    f: impl FnOnce(&Arc<Token>) -> Result<R, crate::pkcs11::TokenError> + Send + 'static,
) -> Result<R, HubError> {
    let token = token.clone();
    tokio::task::spawn_blocking(move || f(&token))
        .await
        .map_err(|e| HubError::internal(format!("a token call panicked: {e}")))?
        .map_err(HubError::from)
}

/// The stored keys, opened with `kek` (or found in `token`), as a ring. Opening keys blocks
/// (parsing an RSA key, or calls into the token), so it runs on a blocking thread.
async fn read_ring(
    store: &dyn Store,
    kek: &Kek,
    token: Option<Arc<Token>>,
) -> Result<SigningKeyRing, HubError> {
    let published = store
        .signing_keys()
        .await?
        .into_iter()
        .filter(|k| k.retired_at.is_none())
        .collect();
    let opened = crate::kek::open_signing_keys(kek, published)?;
    tokio::task::spawn_blocking(move || SigningKeyRing::from_stored(&opened, token.as_ref()))
        .await
        .map_err(|e| HubError::internal(format!("opening the signing keys panicked: {e}")))?
}

/// A signing key as an operator sees it (never the private half).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SigningKeyView {
    pub kid: String,
    pub alg: SigningAlg,
    /// The label of the PKCS#11 token that keeps the private half, or `None` if the database
    /// does (wrapped under the KEK).
    pub token: Option<String>,
    pub created_at: DateTime<Utc>,
    pub active_from: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}

impl From<&StoredSigningKey> for SigningKeyView {
    fn from(s: &StoredSigningKey) -> Self {
        Self {
            kid: s.kid.clone(),
            alg: s.alg,
            token: match &s.custody {
                KeyCustody::Stored(_) => None,
                KeyCustody::Token(reference) => Some(reference.token.clone()),
            },
            created_at: s.created_at,
            active_from: s.active_from,
            retired_at: s.retired_at,
        }
    }
}

/// Every key ever stored, retired ones too, in the order they become active.
pub async fn list(store: &dyn Store) -> Result<Vec<SigningKeyView>, HubError> {
    Ok(store
        .signing_keys()
        .await?
        .iter()
        .map(SigningKeyView::from)
        .collect())
}

/// Adds a fresh key of each algorithm, published from now and signing from
/// `now + activation_delay`; returns them, EdDSA first.
pub async fn rotate(
    store: &dyn Store,
    kek: &Kek,
    now: DateTime<Utc>,
    activation_delay: TimeDelta,
) -> Result<Vec<SigningKeyView>, HubError> {
    rotate_with(store, kek, None, now, activation_delay).await
}

/// [`rotate`], making the new keys in `token` if one is given (storage then keeps only their
/// public halves and where they are).
pub async fn rotate_with(
    store: &dyn Store,
    kek: &Kek,
    token: Option<&Arc<Token>>,
    now: DateTime<Utc>,
    activation_delay: TimeDelta,
) -> Result<Vec<SigningKeyView>, HubError> {
    // New keys are stored wrapped, which a database with secrets in plain text would refuse.
    crate::kek::seal_stored_secrets(store, kek).await?;
    let generation =
        |e: renkei_protocol::KeyError| HubError::internal(format!("key generation: {e}"));
    let mut fresh = Vec::new();
    for alg in [SigningAlg::EdDsa, SigningAlg::Rs256] {
        let (kid, custody) = match token {
            Some(token) => {
                let made = blocking(token, move |t| t.generate(alg)).await?;
                (made.kid, KeyCustody::Token(made.reference))
            }
            None => {
                let (kid, der) = match alg {
                    SigningAlg::EdDsa => {
                        let key = SigningKey::generate().map_err(generation)?;
                        (key.kid().to_owned(), pkcs8(key.pkcs8_der())?.to_vec())
                    }
                    SigningAlg::Rs256 => {
                        let key = RsaSigningKey::generate().map_err(generation)?;
                        (key.kid().to_owned(), pkcs8(key.pkcs8_der())?.to_vec())
                    }
                };
                (kid, KeyCustody::Stored(der))
            }
        };
        fresh.push((alg, kid, custody));
    }
    let active_from = now + activation_delay.max(TimeDelta::zero());
    let mut added = Vec::new();
    for (alg, kid, custody) in fresh {
        let stored = StoredSigningKey {
            kid,
            alg,
            custody,
            created_at: now,
            active_from,
            retired_at: None,
        };
        if !store
            .add_signing_key(&crate::kek::wrap_signing_key(kek, stored.clone())?)
            .await?
        {
            return Err(HubError::internal("a fresh key collided with a stored one"));
        }
        let action = OperatorAction::RotateSigningKey {
            kid: stored.kid.clone(),
            active_from,
        };
        store
            .record_operator_action(&OperatorActor::CommandLine, &action, now)
            .await?;
        added.push(SigningKeyView::from(&stored));
    }
    Ok(added)
}

/// Why a key cannot be retired.
#[derive(Debug, thiserror::Error)]
pub enum RetireError {
    #[error("no published key has the id `{0}`")]
    Unknown(String),
    #[error("`{kid}` is the only published {alg} key: rotate first, then retire it")]
    LastKey { kid: String, alg: SigningAlg },
    #[error(transparent)]
    Hub(#[from] HubError),
}

/// Takes a key out of the JWK Set for good (after a compromise): what it signed no longer
/// verifies. Refused for the last published key of its algorithm, so the hub can always
/// sign with both.
pub async fn retire(store: &dyn Store, kid: &str, now: DateTime<Utc>) -> Result<(), RetireError> {
    let keys = store.signing_keys().await.map_err(HubError::from)?;
    let published: Vec<&StoredSigningKey> =
        keys.iter().filter(|k| k.retired_at.is_none()).collect();
    let Some(key) = published.iter().find(|k| k.kid == kid) else {
        return Err(RetireError::Unknown(kid.to_owned()));
    };
    if published.iter().filter(|k| k.alg == key.alg).count() == 1 {
        return Err(RetireError::LastKey {
            kid: kid.to_owned(),
            alg: key.alg,
        });
    }
    if !store
        .retire_signing_key(kid, now)
        .await
        .map_err(HubError::from)?
    {
        return Err(RetireError::Unknown(kid.to_owned()));
    }
    let action = OperatorAction::RetireSigningKey {
        kid: kid.to_owned(),
    };
    store
        .record_operator_action(&OperatorActor::CommandLine, &action, now)
        .await
        .map_err(HubError::from)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(key: &SigningKey, active_from: DateTime<Utc>) -> StoredSigningKey {
        StoredSigningKey {
            kid: key.kid().to_owned(),
            alg: SigningAlg::EdDsa,
            custody: KeyCustody::Stored(key.pkcs8_der().unwrap().to_vec()),
            created_at: active_from,
            active_from,
            retired_at: None,
        }
    }

    fn stored_rsa(key: &RsaSigningKey, active_from: DateTime<Utc>) -> StoredSigningKey {
        StoredSigningKey {
            kid: key.kid().to_owned(),
            alg: SigningAlg::Rs256,
            custody: KeyCustody::Stored(key.pkcs8_der().unwrap().to_vec()),
            created_at: active_from,
            active_from,
            retired_at: None,
        }
    }

    fn ed25519() -> Result<SigningKey, HubError> {
        SigningKey::generate().map_err(|e| HubError::internal(e.to_string()))
    }

    fn rsa() -> Result<RsaSigningKey, HubError> {
        RsaSigningKey::generate().map_err(|e| HubError::internal(e.to_string()))
    }

    #[test]
    fn the_newest_active_key_of_each_algorithm_signs_and_every_published_key_is_in_the_set()
    -> Result<(), HubError> {
        let now = Utc::now();
        let (old, current, next) = (ed25519()?, ed25519()?, ed25519()?);
        let (rsa_current, rsa_next) = (rsa()?, rsa()?);
        let ring = SigningKeyRing::from_stored(
            &[
                stored(&next, now + TimeDelta::hours(1)),
                stored_rsa(&rsa_next, now + TimeDelta::hours(1)),
                stored(&old, now - TimeDelta::days(2)),
                stored_rsa(&rsa_current, now - TimeDelta::days(1)),
                stored(&current, now - TimeDelta::days(1)),
            ],
            None,
        )?;
        let later = now + TimeDelta::hours(2);
        assert_eq!(ring.signing_key(now).kid(), current.kid());
        assert_eq!(ring.signing_key(later).kid(), next.kid());
        let id_token = |alg, at| {
            let key = ring.id_token_key(alg, at);
            (key.alg(), key.kid().to_owned())
        };
        assert_eq!(
            id_token(SigningAlg::EdDsa, now),
            (SigningAlg::EdDsa, current.kid().to_owned())
        );
        assert_eq!(
            id_token(SigningAlg::Rs256, now),
            (SigningAlg::Rs256, rsa_current.kid().to_owned())
        );
        assert_eq!(
            id_token(SigningAlg::Rs256, later),
            (SigningAlg::Rs256, rsa_next.kid().to_owned())
        );
        let kids: Vec<_> = ring
            .jwks()
            .keys
            .iter()
            .filter_map(|k| k.common.key_id.clone())
            .collect();
        assert_eq!(kids.len(), 5);
        for kid in [old.kid(), current.kid(), next.kid()] {
            assert!(kids.iter().any(|k| k == kid), "{kid} is published");
        }
        for kid in [rsa_current.kid(), rsa_next.kid()] {
            assert!(kids.iter().any(|k| k == kid), "{kid} is published");
        }
        assert_eq!(kids[0], old.kid(), "the set is in activation order");
        Ok(())
    }

    #[test]
    fn retired_keys_leave_the_set_and_never_sign() -> Result<(), HubError> {
        let now = Utc::now();
        let (compromised, next) = (ed25519()?, ed25519()?);
        let rsa_key = rsa()?;
        let mut retired = stored(&compromised, now - TimeDelta::days(1));
        retired.retired_at = Some(now);
        let ring = SigningKeyRing::from_stored(
            &[
                retired,
                stored(&next, now + TimeDelta::hours(1)),
                stored_rsa(&rsa_key, now - TimeDelta::days(1)),
            ],
            None,
        )?;
        assert_eq!(
            ring.signing_key(now).kid(),
            next.kid(),
            "the next key signs early rather than a retired one"
        );
        assert_eq!(ring.jwks().keys.len(), 2);
        assert!(ring.jwks().find(compromised.kid()).is_none());
        Ok(())
    }

    #[test]
    fn a_ring_without_a_published_key_of_each_algorithm_is_refused() -> Result<(), HubError> {
        let now = Utc::now();
        assert!(SigningKeyRing::from_stored(&[], None).is_err());
        assert!(SigningKeyRing::from_stored(&[stored(&ed25519()?, now)], None).is_err());
        assert!(SigningKeyRing::from_stored(&[stored_rsa(&rsa()?, now)], None).is_err());
        Ok(())
    }

    #[test]
    fn a_key_stored_under_the_wrong_algorithm_is_refused() -> Result<(), HubError> {
        let now = Utc::now();
        let mut mislabelled = stored(&ed25519()?, now);
        mislabelled.alg = SigningAlg::Rs256;
        assert!(
            SigningKeyRing::from_stored(&[stored(&ed25519()?, now), mislabelled], None).is_err()
        );
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replicas_starting_at_once_with_a_token_agree_on_its_first_keys() {
        let Some(token) = crate::pkcs11::tests::test_token() else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(
            renkei_store::SqliteStore::open(&dir.path().join("hub.db"))
                .await
                .unwrap(),
        );
        let kek = Arc::new(Kek::generate());
        let now = Utc::now();
        let start = || LoadedKeys::load(store.as_ref(), kek.clone(), Some(token.clone()), now);
        let (a, b, c) = tokio::join!(start(), start(), start());
        let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
        let stored = store.signing_keys().await.unwrap();
        assert_eq!(stored.len(), 2, "one key of each algorithm: {stored:?}");
        assert!(
            stored
                .iter()
                .all(|k| matches!(k.custody, KeyCustody::Token(_)))
        );
        assert_eq!(a.ring().jwks(), b.ring().jwks());
        assert_eq!(a.ring().jwks(), c.ring().jwks());
        assert_eq!(a.ring().jwks().keys.len(), 2);
        for (alg, _) in FIRST_TOKEN_KEY_SECRETS {
            assert_eq!(
                a.ring().id_token_key(alg, now).kid(),
                c.ring().id_token_key(alg, now).kid()
            );
        }
    }
}
