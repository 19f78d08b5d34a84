//! The hub's signing keys: added once, listed in activation order, retired once.

use chrono::{DateTime, Utc};

use super::{Backend, all};
use crate::StoreResult;
use crate::identity::{KeyCustody, StoredSigningKey};
use crate::rows::identity::{RawSigningKey, signing_key_columns};

pub(super) async fn add_signing_key(store: &Backend, key: &StoredSigningKey) -> StoreResult<bool> {
    let (pkcs8, token) = match &key.custody {
        KeyCustody::Stored(pkcs8) => (Some(pkcs8), None),
        KeyCustody::Token(token) => (None, Some(token)),
    };
    let done = sqlx::query(
        "INSERT INTO signing_keys (kid, alg, pkcs8, token, token_object_id, public_jwk,
             created_at, active_from, retired_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (kid) DO NOTHING",
    )
    .bind(&key.kid)
    .bind(key.alg.as_str())
    .bind(pkcs8)
    .bind(token.map(|t| &t.token))
    .bind(token.map(|t| &t.object_id))
    .bind(token.map(|t| &t.public_jwk))
    .bind(key.created_at.timestamp_millis())
    .bind(key.active_from.timestamp_millis())
    .bind(key.retired_at.map(|t| t.timestamp_millis()))
    .execute(&store.write)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub(super) async fn signing_keys(store: &Backend) -> StoreResult<Vec<StoredSigningKey>> {
    all(
        sqlx::query_as::<_, RawSigningKey>(concat!(
            "SELECT ",
            signing_key_columns!(),
            " FROM signing_keys ORDER BY active_from, created_at, kid"
        )),
        &store.read,
    )
    .await
}

pub(super) async fn retire_signing_key(
    store: &Backend,
    kid: &str,
    at: DateTime<Utc>,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE signing_keys SET retired_at = $1 WHERE kid = $2 AND retired_at IS NULL",
    )
    .bind(at.timestamp_millis())
    .bind(kid)
    .execute(&store.write)
    .await?;
    Ok(done.rows_affected() == 1)
}
