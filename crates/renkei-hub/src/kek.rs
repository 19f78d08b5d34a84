//! The key-encryption key (KEK), under which the hub's secrets are kept at rest.
//!
//! The database holds the hub's secrets (`hub_secrets`: the access-token key, the
//! pairwise-subject key, the log's signing seed; `signing_keys`: the private signing keys)
//! only as AES-256-GCM ciphertext under a key that is not in the database: a file
//! (`--kek-file`) or an environment variable (`RENKEI_KEK`). A copy of the database alone
//! yields no usable secret. Each wrapped value names the KEK it was wrapped under (a short id
//! derived from the key) and is bound to its slot (the secret's name, or the key's `kid`) as
//! associated data, so a value copied to another row does not open.
//!
//! A database from before KEKs holds its secrets in plain text: the first start with a KEK
//! wraps them all in one transaction ([`seal_stored_secrets`]). From then on a secret in plain
//! text is refused (it can only have been written into the database by hand), and so is one
//! wrapped under another KEK: a hub never creates new secrets over ones it cannot open.

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use renkei_store::{
    KeyCustody, SecretReplacement, SecretSlot, Store, StoreError, StoredSigningKey,
};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::HubError;

/// What every wrapped value begins with; a value without it is plain text (from before KEKs).
const MAGIC: &[u8; 8] = b"RKEKWRP1";
/// How many bytes of the KEK's id a wrapped value carries.
const ID_LEN: usize = 8;
/// The size of a KEK.
const KEK_LEN: usize = 32;

/// The key-encryption key. Its bytes live only inside the AEAD key; `Debug` shows its id.
pub struct Kek {
    key: RandomizedNonceKey,
    id: [u8; ID_LEN],
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kek").field("id", &self.id()).finish()
    }
}

/// Why a KEK or a stored secret was refused.
#[derive(Debug, thiserror::Error)]
pub enum KekError {
    #[error(
        "a key-encryption key is 32 random bytes in base64 (`renkei kek new` writes one, as \
         does `openssl rand -base64 32`)"
    )]
    Malformed,
    #[error(
        "{slot} is wrapped under key-encryption key `{stored}`, not under the one given \
         (`{given}`): start with the KEK this database's secrets were wrapped with"
    )]
    WrongKek {
        slot: SecretSlot,
        stored: String,
        given: String,
    },
    #[error(
        "{0} does not open under the key-encryption key it names: the stored value was altered \
         or copied from another row"
    )]
    Altered(SecretSlot),
    #[error(
        "{0} is stored in plain text although this database's secrets are wrapped under a \
         key-encryption key: refusing it (it can only have been written into the database by hand)"
    )]
    PlainText(SecretSlot),
    #[error("the stored secrets changed while they were being wrapped: try again")]
    Raced,
    #[error("the AEAD cipher failed")]
    Cipher,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<KekError> for HubError {
    fn from(e: KekError) -> Self {
        match e {
            KekError::Store(e) => e.into(),
            other => HubError::internal(format!("key-encryption key: {other}")),
        }
    }
}

impl Kek {
    /// A fresh random KEK, in the text form a KEK file and `RENKEI_KEK` hold (43 base64url
    /// characters).
    pub fn generate_text() -> Zeroizing<String> {
        let bytes = Zeroizing::new(crate::auth::random_bytes());
        Zeroizing::new(URL_SAFE_NO_PAD.encode(bytes.as_slice()))
    }

    /// A fresh random KEK (tests, and hubs whose data lives no longer than the process).
    #[expect(
        clippy::unreachable,
        reason = "`generate_text` writes what `from_text` reads"
    )]
    pub fn generate() -> Self {
        let text = Self::generate_text();
        // INVARIANT: `generate_text` writes exactly what `from_text` reads.
        Self::from_text(&text).unwrap_or_else(|_| unreachable!("a generated KEK parses"))
    }

    /// Reads a KEK from its text form: 32 bytes in base64url or standard base64, surrounding
    /// whitespace ignored.
    pub fn from_text(text: &str) -> Result<Self, KekError> {
        let text = text.trim();
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .or_else(|_| STANDARD.decode(text))
            .map(Zeroizing::new)
            .map_err(|_| KekError::Malformed)?;
        if bytes.len() != KEK_LEN {
            return Err(KekError::Malformed);
        }
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&bytes).map_err(|_| KekError::Malformed)?;
        mac.update(b"renkei key-encryption key id");
        let digest: [u8; 32] = mac.finalize().into_bytes().into();
        let id: [u8; ID_LEN] = *digest.first_chunk().ok_or(KekError::Malformed)?;
        let key = RandomizedNonceKey::new(&AES_256_GCM, &bytes).map_err(|_| KekError::Malformed)?;
        Ok(Self { key, id })
    }

    /// The KEK's id as wrapped values name it: 16 hex digits, safe to show (it is an HMAC
    /// of a fixed text under the KEK, telling nothing of the key).
    pub fn id(&self) -> String {
        hex(&self.id)
    }

    /// `secret`, wrapped for `slot`: `MAGIC ‖ KEK id ‖ nonce ‖ ciphertext ‖ tag`.
    pub fn wrap(&self, slot: &SecretSlot, secret: &[u8]) -> Result<Vec<u8>, KekError> {
        let mut sealed = secret.to_vec();
        let nonce = self
            .key
            .seal_in_place_append_tag(Aad::from(associated_data(&self.id, slot)), &mut sealed)
            .map_err(|_| KekError::Cipher)?;
        let mut out = Vec::with_capacity(MAGIC.len() + ID_LEN + NONCE_LEN + sealed.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.id);
        out.extend_from_slice(nonce.as_ref());
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// The secret `stored` in `slot` holds, if it is wrapped under this KEK for this slot.
    pub fn unwrap(&self, slot: &SecretSlot, stored: &[u8]) -> Result<Zeroizing<Vec<u8>>, KekError> {
        let Some(rest) = stored.strip_prefix(MAGIC.as_slice()) else {
            return Err(KekError::PlainText(slot.clone()));
        };
        let altered = || KekError::Altered(slot.clone());
        let (id, rest) = rest.split_at_checked(ID_LEN).ok_or_else(altered)?;
        if id != self.id {
            return Err(KekError::WrongKek {
                slot: slot.clone(),
                stored: hex(id),
                given: self.id(),
            });
        }
        let (nonce, sealed) = rest.split_at_checked(NONCE_LEN).ok_or_else(altered)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| altered())?;
        let mut buffer = Zeroizing::new(sealed.to_vec());
        let plain_len = self
            .key
            .open_in_place(
                nonce,
                Aad::from(associated_data(&self.id, slot)),
                &mut buffer,
            )
            .map_err(|_| altered())?
            .len();
        buffer.truncate(plain_len);
        Ok(buffer)
    }
}

/// What binds a wrapped value to its KEK and its slot.
fn associated_data(id: &[u8; ID_LEN], slot: &SecretSlot) -> Vec<u8> {
    let (table, key) = match slot {
        SecretSlot::Hub(name) => ("hub_secrets", name),
        SecretSlot::SigningKey(kid) => ("signing_keys", kid),
    };
    let mut aad = Vec::with_capacity(MAGIC.len() + ID_LEN + table.len() + 1 + key.len());
    aad.extend_from_slice(MAGIC);
    aad.extend_from_slice(id);
    aad.extend_from_slice(table.as_bytes());
    aad.push(0);
    aad.extend_from_slice(key.as_bytes());
    aad
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_wrapped(stored: &[u8]) -> bool {
    stored.starts_with(MAGIC)
}

/// Brings every stored secret under `kek` and checks that each one opens.
///
/// A database from before KEKs (every secret in plain text) has all its secrets wrapped in
/// one transaction; returns how many. A database whose secrets are wrapped is left as it is,
/// but a secret in it that does not open under `kek` (another KEK's, altered, or in plain
/// text) is an error: nothing is created or overwritten then.
pub async fn seal_stored_secrets(store: &dyn Store, kek: &Kek) -> Result<usize, KekError> {
    // Replicas starting at once on an old database race to wrap it; a loser finds it wrapped.
    for _ in 0..3 {
        let stored = store.stored_secrets().await?;
        let (wrapped, plain): (Vec<_>, Vec<_>) = stored.iter().partition(|s| is_wrapped(&s.value));
        for s in &wrapped {
            kek.unwrap(&s.slot, &s.value)?;
        }
        let Some(first_plain) = plain.first() else {
            return Ok(0);
        };
        if !wrapped.is_empty() {
            return Err(KekError::PlainText(first_plain.slot.clone()));
        }
        let replacements = plain
            .iter()
            .map(|s| {
                Ok(SecretReplacement {
                    slot: s.slot.clone(),
                    expected: s.value.clone(),
                    value: kek.wrap(&s.slot, &s.value)?,
                })
            })
            .collect::<Result<Vec<_>, KekError>>()?;
        if store.replace_secrets(&replacements).await? {
            tracing::info!(
                secrets = replacements.len(),
                kek = %kek.id(),
                "wrapped the secrets stored in plain text under the key-encryption key"
            );
            return Ok(replacements.len());
        }
    }
    Err(KekError::Raced)
}

/// The hub secret `name`, storing `candidate` (wrapped) first if there is none: every
/// replica agrees on one value, as with [`Store::ensure_secret`].
pub(crate) async fn ensure_secret(
    store: &dyn Store,
    kek: &Kek,
    name: &str,
    candidate: &[u8],
    at: DateTime<Utc>,
) -> Result<Zeroizing<Vec<u8>>, KekError> {
    let slot = SecretSlot::Hub(name.to_owned());
    let stored = store
        .ensure_secret(name, &kek.wrap(&slot, candidate)?, at)
        .await?;
    kek.unwrap(&slot, &stored)
}

/// The hub secret `name` as stored, opened, without storing anything if there is none.
pub async fn read_secret(
    store: &dyn Store,
    kek: &Kek,
    name: &str,
) -> Result<Option<Zeroizing<Vec<u8>>>, KekError> {
    let slot = SecretSlot::Hub(name.to_owned());
    let stored = store.stored_secrets().await?;
    stored
        .iter()
        .find(|s| s.slot == slot)
        .map(|s| kek.unwrap(&slot, &s.value))
        .transpose()
}

/// `key` with its private half wrapped, ready to store (a key kept in a token has none here).
pub(crate) fn wrap_signing_key(
    kek: &Kek,
    mut key: StoredSigningKey,
) -> Result<StoredSigningKey, KekError> {
    if let KeyCustody::Stored(pkcs8) = &key.custody {
        key.custody =
            KeyCustody::Stored(kek.wrap(&SecretSlot::SigningKey(key.kid.clone()), pkcs8)?);
    }
    Ok(key)
}

/// The stored signing keys with their private halves opened (those kept in a token as they
/// are).
pub(crate) fn open_signing_keys(
    kek: &Kek,
    stored: Vec<StoredSigningKey>,
) -> Result<Vec<StoredSigningKey>, KekError> {
    stored
        .into_iter()
        .map(|mut key| {
            if let KeyCustody::Stored(wrapped) = &key.custody {
                let slot = SecretSlot::SigningKey(key.kid.clone());
                key.custody = KeyCustody::Stored(kek.unwrap(&slot, wrapped)?.to_vec());
            }
            Ok(key)
        })
        .collect()
}

/// Rewraps every stored secret from `old` to `new`, in one transaction; returns how many.
/// Secrets still in plain text (a database from before KEKs) are wrapped under `new` too.
/// Running hubs keep the secrets they opened; restart them with `new`.
pub async fn rotate(store: &dyn Store, old: &Kek, new: &Kek) -> Result<usize, KekError> {
    seal_stored_secrets(store, old).await?;
    let replacements = store
        .stored_secrets()
        .await?
        .into_iter()
        .map(|s| {
            let secret = old.unwrap(&s.slot, &s.value)?;
            Ok(SecretReplacement {
                value: new.wrap(&s.slot, &secret)?,
                slot: s.slot,
                expected: s.value,
            })
        })
        .collect::<Result<Vec<_>, KekError>>()?;
    if !store.replace_secrets(&replacements).await? {
        return Err(KekError::Raced);
    }
    Ok(replacements.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(name: &str) -> SecretSlot {
        SecretSlot::Hub(name.into())
    }

    #[test]
    fn a_wrapped_secret_opens_under_its_kek_and_slot_only() {
        let kek = Kek::generate();
        let wrapped = kek.wrap(&slot("access-token-key"), b"the secret").unwrap();
        assert!(
            !wrapped.windows(10).any(|w| w == b"the secret"),
            "the secret is not in the wrapped bytes"
        );
        assert_eq!(
            kek.unwrap(&slot("access-token-key"), &wrapped)
                .unwrap()
                .as_slice(),
            b"the secret"
        );
        assert!(matches!(
            kek.unwrap(&slot("pairwise-subject-key"), &wrapped),
            Err(KekError::Altered(_))
        ));
        assert!(matches!(
            kek.unwrap(&SecretSlot::SigningKey("access-token-key".into()), &wrapped),
            Err(KekError::Altered(_))
        ));
        let other = Kek::generate();
        match other.unwrap(&slot("access-token-key"), &wrapped) {
            Err(KekError::WrongKek { stored, given, .. }) => {
                assert_eq!((stored, given), (kek.id(), other.id()));
            }
            e => panic!("not refused as another KEK's: {e:?}"),
        }
        let mut flipped = wrapped.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(matches!(
            kek.unwrap(&slot("access-token-key"), &flipped),
            Err(KekError::Altered(_))
        ));
        assert!(matches!(
            kek.unwrap(&slot("access-token-key"), b"the secret"),
            Err(KekError::PlainText(_))
        ));
        assert_ne!(
            kek.wrap(&slot("a"), b"x").unwrap(),
            kek.wrap(&slot("a"), b"x").unwrap(),
            "every wrap takes a fresh nonce"
        );
    }

    const ISSUER: &str = "https://hub.example.jp";

    async fn store(dir: &tempfile::TempDir) -> std::sync::Arc<dyn Store> {
        std::sync::Arc::new(
            renkei_store::SqliteStore::open(&dir.path().join("hub.db"))
                .await
                .unwrap(),
        )
    }

    async fn start(store: &std::sync::Arc<dyn Store>, kek: Kek) -> Result<crate::Hub, HubError> {
        crate::Hub::start(crate::HubConfig::new(ISSUER, kek), store.clone()).await
    }

    fn resident() -> renkei_domain::ResidentId {
        renkei_domain::ResidentId::from_uuid(uuid::Uuid::new_v4())
    }

    /// The pairwise subject `key` would give `resident` in `sector`, as `HubKeys::subject`.
    fn subject_under(key: &[u8], sector: &str, resident: renkei_domain::ResidentId) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
        mac.update(sector.as_bytes());
        mac.update(&[0]);
        mac.update(resident.as_uuid().as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    #[tokio::test]
    async fn a_copy_of_the_database_yields_no_secret_the_hub_uses() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let hub = start(&store, Kek::generate()).await.unwrap();
        let ghost = renkei_domain::OperatorId::new("ghost").unwrap();
        let token = hub.keys().issue_operator_token(&ghost, Utc::now()).unwrap();
        let someone = resident();
        let subject = hub.keys().subject("health", someone);
        let log_key = hub.keys().log.verifier_key();
        let stored = store.stored_secrets().await.unwrap();
        assert_eq!(
            stored.len(),
            7,
            "five hub secrets and two signing keys: {stored:?}"
        );
        for s in &stored {
            let forged = jsonwebtoken::decode::<serde_json::Value>(
                &token,
                &jsonwebtoken::DecodingKey::from_secret(&s.value),
                &{
                    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
                    v.validate_aud = false;
                    v
                },
            );
            assert!(forged.is_err(), "{} verifies the hub's tokens", s.slot);
            assert_ne!(
                subject_under(&s.value, "health", someone),
                subject.as_str(),
                "{} gives the pairwise subjects",
                s.slot
            );
            if let Ok(log) = crate::log::LogIdentity::new(ISSUER, &s.value) {
                assert_ne!(log.verifier_key(), log_key, "{} signs the log", s.slot);
            }
            assert!(
                renkei_protocol::keys::SigningKey::from_pkcs8_der(&s.value).is_err()
                    && renkei_protocol::keys::RsaSigningKey::from_pkcs8_der(&s.value).is_err(),
                "{} is a usable private key",
                s.slot
            );
        }
    }

    #[tokio::test]
    async fn a_hub_started_with_another_kek_is_refused_and_creates_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let kek = Kek::generate_text();
        let hub = start(&store, Kek::from_text(&kek).unwrap()).await.unwrap();
        let jwks = hub.keys().jwks();
        drop(hub);
        let before = store.stored_secrets().await.unwrap();
        let other = Kek::generate();
        let other_id = other.id();
        let refused = start(&store, other)
            .await
            .err()
            .expect("started with another KEK");
        let message = refused.to_string();
        assert!(
            message.contains("not under the one given") && message.contains(&other_id),
            "{message}"
        );
        assert_eq!(
            store.stored_secrets().await.unwrap(),
            before,
            "nothing created or changed"
        );
        let again = start(&store, Kek::from_text(&kek).unwrap()).await.unwrap();
        assert_eq!(
            again.keys().jwks(),
            jwks,
            "the right KEK opens the same keys"
        );
    }

    #[tokio::test]
    async fn secrets_of_a_database_from_before_keks_are_wrapped_on_first_start_and_keep_working() {
        use renkei_protocol::keys::{RsaSigningKey, SigningKey};
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        // What a hub before KEKs stored: every secret in plain text.
        let now = Utc::now();
        let pairwise = crate::auth::random_bytes();
        for (name, value) in [
            ("access-token-key", crate::auth::random_bytes().to_vec()),
            ("pairwise-subject-key", pairwise.to_vec()),
            ("log-signing-seed", crate::auth::random_bytes().to_vec()),
        ] {
            store.ensure_secret(name, &value, now).await.unwrap();
        }
        let ed25519 = SigningKey::generate().unwrap();
        let rsa = RsaSigningKey::generate().unwrap();
        for (name, alg, kid, der) in [
            (
                "jws-signing-key",
                renkei_domain::SigningAlg::EdDsa,
                ed25519.kid(),
                ed25519.pkcs8_der().unwrap(),
            ),
            (
                "jws-signing-key-rs256",
                renkei_domain::SigningAlg::Rs256,
                rsa.kid(),
                rsa.pkcs8_der().unwrap(),
            ),
        ] {
            store.ensure_secret(name, der, now).await.unwrap();
            store
                .add_signing_key(&StoredSigningKey {
                    kid: kid.to_owned(),
                    alg,
                    custody: KeyCustody::Stored(der.to_vec()),
                    created_at: now,
                    active_from: DateTime::UNIX_EPOCH,
                    retired_at: None,
                })
                .await
                .unwrap();
        }
        let plain = store.stored_secrets().await.unwrap();

        let kek = Kek::generate_text();
        let hub = start(&store, Kek::from_text(&kek).unwrap()).await.unwrap();
        let someone = resident();
        assert_eq!(
            hub.keys().subject("health", someone).as_str(),
            subject_under(&pairwise, "health", someone),
            "residents keep their pairwise subjects"
        );
        let kids: Vec<_> = hub
            .keys()
            .jwks()
            .keys
            .iter()
            .filter_map(|k| k.common.key_id.clone())
            .collect();
        assert_eq!(kids.len(), 2, "no key was added: {kids:?}");
        assert!(kids.iter().any(|k| k == ed25519.kid()) && kids.iter().any(|k| k == rsa.kid()));
        drop(hub);
        let wrapped = store.stored_secrets().await.unwrap();
        assert_eq!(wrapped.len(), plain.len());
        for (was, now) in plain.iter().zip(&wrapped) {
            assert_eq!(was.slot, now.slot);
            assert!(is_wrapped(&now.value), "{} is wrapped", now.slot);
            let kek = Kek::from_text(&kek).unwrap();
            assert_eq!(
                kek.unwrap(&now.slot, &now.value).unwrap().as_slice(),
                was.value.as_slice()
            );
        }
        start(&store, Kek::from_text(&kek).unwrap()).await.unwrap();
        assert_eq!(
            store.stored_secrets().await.unwrap(),
            wrapped,
            "wrapped once"
        );
    }

    #[tokio::test]
    async fn a_secret_written_in_plain_text_into_a_wrapped_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let kek = Kek::generate_text();
        drop(start(&store, Kek::from_text(&kek).unwrap()).await.unwrap());
        // Someone with write access to the database puts in a token key they know.
        let slot = SecretSlot::Hub("access-token-key".into());
        let stored = store.stored_secrets().await.unwrap();
        let current = stored.iter().find(|s| s.slot == slot).unwrap();
        assert!(
            store
                .replace_secrets(&[SecretReplacement {
                    slot: slot.clone(),
                    expected: current.value.clone(),
                    value: b"a key the intruder knows".to_vec(),
                }])
                .await
                .unwrap()
        );
        let refused = start(&store, Kek::from_text(&kek).unwrap())
            .await
            .err()
            .expect("started on a planted key");
        assert!(refused.to_string().contains("plain text"), "{refused}");
    }

    #[tokio::test]
    async fn rotating_the_kek_rewraps_every_secret_and_only_the_new_kek_opens_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).await;
        let (old, new) = (Kek::generate_text(), Kek::generate_text());
        let jwks = start(&store, Kek::from_text(&old).unwrap())
            .await
            .unwrap()
            .keys()
            .jwks();
        let before = store.stored_secrets().await.unwrap();
        let count = rotate(
            store.as_ref(),
            &Kek::from_text(&old).unwrap(),
            &Kek::from_text(&new).unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(count, before.len());
        let after = store.stored_secrets().await.unwrap();
        for (was, now) in before.iter().zip(&after) {
            assert_ne!(was.value, now.value, "{} rewrapped", now.slot);
        }
        assert!(start(&store, Kek::from_text(&old).unwrap()).await.is_err());
        let hub = start(&store, Kek::from_text(&new).unwrap()).await.unwrap();
        assert_eq!(hub.keys().jwks(), jwks);
        assert_eq!(store.stored_secrets().await.unwrap(), after);
    }

    #[test]
    fn a_kek_is_read_from_base64_of_32_bytes_and_nothing_else() {
        let text = Kek::generate_text();
        assert_eq!(text.len(), 43);
        let kek = Kek::from_text(&format!("  {}\n", text.as_str())).unwrap();
        let again =
            Kek::from_text(&STANDARD.encode(URL_SAFE_NO_PAD.decode(text.as_str()).unwrap()))
                .unwrap();
        assert_eq!(kek.id(), again.id(), "standard base64 reads the same key");
        assert_eq!(kek.id().len(), 16);
        for bad in ["", "not base64!", &URL_SAFE_NO_PAD.encode([7u8; 16])] {
            assert!(
                matches!(Kek::from_text(bad), Err(KekError::Malformed)),
                "{bad}"
            );
        }
        assert!(!format!("{kek:?}").contains(text.as_str()));
    }
}
