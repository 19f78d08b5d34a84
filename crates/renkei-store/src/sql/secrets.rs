//! The hub's secrets: agreed on once by every replica, listed, and rewritten together.

use chrono::{DateTime, Utc};

use super::Backend;
use crate::codec;
use crate::{SecretReplacement, SecretSlot, StoreResult, StoredSecret};

pub(super) async fn ensure_secret(
    store: &Backend,
    name: &str,
    candidate: &[u8],
    at: DateTime<Utc>,
) -> StoreResult<Vec<u8>> {
    sqlx::query("INSERT INTO hub_secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
        .bind(name)
        .bind(candidate)
        .bind(codec::millis(at))
        .execute(&store.write)
        .await?;
    Ok(
        sqlx::query_scalar::<_, Vec<u8>>("SELECT value FROM hub_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&store.write)
            .await?,
    )
}

pub(super) async fn stored_secrets(store: &Backend) -> StoreResult<Vec<StoredSecret>> {
    let hub =
        sqlx::query_as::<_, (String, Vec<u8>)>("SELECT name, value FROM hub_secrets ORDER BY name")
            .fetch_all(&store.write)
            .await?;
    let keys = sqlx::query_as::<_, (String, Vec<u8>)>(
        "SELECT kid, pkcs8 FROM signing_keys WHERE pkcs8 IS NOT NULL ORDER BY kid",
    )
    .fetch_all(&store.write)
    .await?;
    Ok(hub
        .into_iter()
        .map(|(name, value)| StoredSecret {
            slot: SecretSlot::Hub(name),
            value,
        })
        .chain(keys.into_iter().map(|(kid, value)| StoredSecret {
            slot: SecretSlot::SigningKey(kid),
            value,
        }))
        .collect())
}

pub(super) async fn replace_secrets(
    store: &Backend,
    replacements: &[SecretReplacement],
) -> StoreResult<bool> {
    let mut tx = store.write.begin().await?;
    for r in replacements {
        let statement = match r.slot {
            SecretSlot::Hub(_) => {
                "UPDATE hub_secrets SET value = $1 WHERE name = $2 AND value = $3"
            }
            SecretSlot::SigningKey(_) => {
                "UPDATE signing_keys SET pkcs8 = $1 WHERE kid = $2 AND pkcs8 = $3"
            }
        };
        let (SecretSlot::Hub(key) | SecretSlot::SigningKey(key)) = &r.slot;
        let changed = sqlx::query(statement)
            .bind(&r.value)
            .bind(key)
            .bind(&r.expected)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if changed != 1 {
            // Dropped, the transaction rolls back what it changed so far.
            return Ok(false);
        }
    }
    tx.commit().await?;
    Ok(true)
}
