//! The hub's Ed25519 signing keys and their rotation.
//!
//! One key signs at a time (ID tokens, consent receipts, provider grants, webhook events);
//! the JWK Set publishes every key that is not retired. Rotation adds a key that is
//! published at once but signs only from a later time, so services and providers that cache
//! the JWK Set pick it up before anything is signed with it, and every replica switches at
//! the same moment without talking to the others. Old keys stay published, so receipts
//! signed years ago still verify; an operator retires a key only after a compromise.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use renkei_domain::{OperatorAction, OperatorActor};
use renkei_protocol::keys::{Jwks, SigningKey};
use renkei_store::{Store, StoredSigningKey};
use serde::Serialize;

use crate::HubError;

/// How often a running hub re-reads the keys, so a rotation made by `renkei keys rotate` (or
/// on another replica) is published here within this time.
pub const KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(30);

/// How long after a rotation the new key starts signing, by default: long enough for
/// services and providers that cache the JWK Set for a day to have fetched it.
pub const DEFAULT_ACTIVATION_DELAY: TimeDelta = TimeDelta::hours(24);

/// The secret under which the first key was kept before keys could rotate; it becomes the
/// first key of the ring (active since ever), so upgrading keeps every signature valid.
const FIRST_KEY_SECRET: &str = "jws-signing-key";

/// The published keys and which of them signs when.
#[derive(Debug)]
pub struct SigningKeyRing {
    /// Not retired, in the order they become active.
    keys: Vec<(DateTime<Utc>, Arc<SigningKey>)>,
    jwks: Jwks,
}

impl SigningKeyRing {
    /// The ring of the stored keys that are not retired.
    pub fn from_stored(stored: &[StoredSigningKey]) -> Result<Self, HubError> {
        let mut keys = Vec::new();
        for s in stored.iter().filter(|s| s.retired_at.is_none()) {
            let key = SigningKey::from_pkcs8_der(&s.pkcs8)
                .map_err(|e| HubError::Internal(format!("signing key `{}`: {e}", s.kid)))?;
            keys.push((s.active_from, Arc::new(key)));
        }
        keys.sort_by_key(|(from, _)| *from);
        if keys.is_empty() {
            return Err(HubError::Internal(
                "no signing key that is not retired".into(),
            ));
        }
        let jwks = Jwks::from_signing_keys(keys.iter().map(|(_, k)| k.as_ref()));
        Ok(Self { keys, jwks })
    }

    /// The key that signs at `now`: the newest active one, or, if a compromise retired every
    /// active key, the next to become active (it is published already).
    pub fn signing_key(&self, now: DateTime<Utc>) -> Arc<SigningKey> {
        // INVARIANT: `keys` is non-empty (checked in `from_stored`).
        let active = self.keys.iter().rev().find(|(from, _)| *from <= now);
        let (_, key) = active.unwrap_or(&self.keys[0]);
        key.clone()
    }

    /// The public keys, as `/.well-known/jwks.json` serves them.
    pub fn jwks(&self) -> &Jwks {
        &self.jwks
    }
}

/// The ring as this replica last read it from storage.
#[derive(Debug)]
pub struct LoadedKeys(RwLock<Arc<SigningKeyRing>>);

impl LoadedKeys {
    /// Reads the keys, first storing the hub's first key if storage has none yet (every
    /// replica agrees on it through `ensure_secret`).
    pub async fn load(store: &dyn Store, now: DateTime<Utc>) -> Result<Self, HubError> {
        let candidate = SigningKey::generate()
            .map_err(|e| HubError::Internal(format!("key generation: {e}")))?;
        let der = store
            .ensure_secret(FIRST_KEY_SECRET, candidate.pkcs8_der(), now)
            .await?;
        let first = SigningKey::from_pkcs8_der(&der)
            .map_err(|e| HubError::Internal(format!("signing key: {e}")))?;
        // A no-op once stored, also when an operator has retired it since.
        store
            .add_signing_key(&StoredSigningKey {
                kid: first.kid().to_owned(),
                pkcs8: der,
                created_at: now,
                active_from: DateTime::UNIX_EPOCH,
                retired_at: None,
            })
            .await?;
        let ring = SigningKeyRing::from_stored(&store.signing_keys().await?)?;
        Ok(Self(RwLock::new(Arc::new(ring))))
    }

    /// Re-reads the keys from storage.
    pub async fn reload(&self, store: &dyn Store) -> Result<(), HubError> {
        let ring = SigningKeyRing::from_stored(&store.signing_keys().await?)?;
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(ring);
        Ok(())
    }

    pub fn ring(&self) -> Arc<SigningKeyRing> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A signing key as an operator sees it (never the private half).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SigningKeyView {
    pub kid: String,
    pub created_at: DateTime<Utc>,
    pub active_from: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}

impl From<&StoredSigningKey> for SigningKeyView {
    fn from(s: &StoredSigningKey) -> Self {
        Self {
            kid: s.kid.clone(),
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

/// Adds a fresh key, published from now and signing from `now + activation_delay`.
pub async fn rotate(
    store: &dyn Store,
    now: DateTime<Utc>,
    activation_delay: TimeDelta,
) -> Result<SigningKeyView, HubError> {
    let key =
        SigningKey::generate().map_err(|e| HubError::Internal(format!("key generation: {e}")))?;
    let stored = StoredSigningKey {
        kid: key.kid().to_owned(),
        pkcs8: key.pkcs8_der().to_vec(),
        created_at: now,
        active_from: now + activation_delay.max(TimeDelta::zero()),
        retired_at: None,
    };
    if !store.add_signing_key(&stored).await? {
        return Err(HubError::Internal(
            "a fresh key collided with a stored one".into(),
        ));
    }
    let action = OperatorAction::RotateSigningKey {
        kid: stored.kid.clone(),
        active_from: stored.active_from,
    };
    store
        .record_operator_action(&OperatorActor::CommandLine, &action, now)
        .await?;
    Ok(SigningKeyView::from(&stored))
}

/// Why a key cannot be retired.
#[derive(Debug, thiserror::Error)]
pub enum RetireError {
    #[error("no published key has the id `{0}`")]
    Unknown(String),
    #[error("`{0}` is the only published key: rotate first, then retire it")]
    LastKey(String),
    #[error(transparent)]
    Hub(#[from] HubError),
}

/// Takes a key out of the JWK Set for good (after a compromise): what it signed no longer
/// verifies. Refused for the last published key, so the hub can always sign.
pub async fn retire(store: &dyn Store, kid: &str, now: DateTime<Utc>) -> Result<(), RetireError> {
    let keys = store.signing_keys().await.map_err(HubError::from)?;
    let published: Vec<&StoredSigningKey> =
        keys.iter().filter(|k| k.retired_at.is_none()).collect();
    if !published.iter().any(|k| k.kid == kid) {
        return Err(RetireError::Unknown(kid.to_owned()));
    }
    if published.len() == 1 {
        return Err(RetireError::LastKey(kid.to_owned()));
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
            pkcs8: key.pkcs8_der().to_vec(),
            created_at: active_from,
            active_from,
            retired_at: None,
        }
    }

    #[test]
    fn the_newest_active_key_signs_and_every_published_key_is_in_the_set() -> Result<(), HubError> {
        let now = Utc::now();
        let old = SigningKey::generate().map_err(|e| HubError::Internal(e.to_string()))?;
        let current = SigningKey::generate().map_err(|e| HubError::Internal(e.to_string()))?;
        let next = SigningKey::generate().map_err(|e| HubError::Internal(e.to_string()))?;
        let ring = SigningKeyRing::from_stored(&[
            stored(&next, now + TimeDelta::hours(1)),
            stored(&old, now - TimeDelta::days(2)),
            stored(&current, now - TimeDelta::days(1)),
        ])?;
        assert_eq!(ring.signing_key(now).kid(), current.kid());
        assert_eq!(
            ring.signing_key(now + TimeDelta::hours(2)).kid(),
            next.kid()
        );
        let kids: Vec<_> = ring
            .jwks()
            .keys
            .iter()
            .filter_map(|k| k.common.key_id.clone())
            .collect();
        assert_eq!(kids, [old.kid(), current.kid(), next.kid()]);
        Ok(())
    }

    #[test]
    fn retired_keys_leave_the_set_and_never_sign() -> Result<(), HubError> {
        let now = Utc::now();
        let compromised = SigningKey::generate().map_err(|e| HubError::Internal(e.to_string()))?;
        let next = SigningKey::generate().map_err(|e| HubError::Internal(e.to_string()))?;
        let mut retired = stored(&compromised, now - TimeDelta::days(1));
        retired.retired_at = Some(now);
        let ring =
            SigningKeyRing::from_stored(&[retired, stored(&next, now + TimeDelta::hours(1))])?;
        assert_eq!(
            ring.signing_key(now).kid(),
            next.kid(),
            "the next key signs early rather than a retired one"
        );
        assert_eq!(ring.jwks().keys.len(), 1);
        Ok(())
    }

    #[test]
    fn a_ring_without_a_published_key_is_refused() {
        assert!(SigningKeyRing::from_stored(&[]).is_err());
    }
}
