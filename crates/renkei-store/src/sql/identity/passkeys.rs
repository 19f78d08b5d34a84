//! WebAuthn ceremonies (single use, by kind) and the passkeys residents registered.

use chrono::{DateTime, Utc};
use renkei_domain::ResidentId;

use super::{Backend, all, optional};
use crate::codec;
use crate::identity::{Ceremony, StoredPasskey};
use crate::rows::identity::{RawPasskey, expired, passkey_columns};
use crate::{StoreError, StoreResult};

pub(super) async fn put_ceremony(
    store: &Backend,
    id: uuid::Uuid,
    kind: &str,
    ceremony: &Ceremony,
    expires_at: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO webauthn_ceremonies (id, kind, resident_id, state, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id.to_string())
    .bind(kind)
    .bind(ceremony.resident.map(|r| r.to_string()))
    .bind(codec::to_json(&ceremony.state)?)
    .bind(expires_at.timestamp_millis())
    .execute(&store.write)
    .await?;
    Ok(())
}

pub(super) async fn take_ceremony(
    store: &Backend,
    id: uuid::Uuid,
    kind: &str,
    now: DateTime<Utc>,
) -> StoreResult<Option<Ceremony>> {
    let row: Option<(Option<String>, String, i64)> = sqlx::query_as(
        "DELETE FROM webauthn_ceremonies WHERE id = $1 AND kind = $2 RETURNING resident_id, state, expires_at",
    )
    .bind(id.to_string())
    .bind(kind)
    .fetch_optional(&store.write)
    .await?;
    let Some((resident, state, expires_at)) = row else {
        return Ok(None);
    };
    if expired(expires_at, now) {
        return Ok(None);
    }
    Ok(Some(Ceremony {
        resident: resident
            .as_deref()
            .map(|r| codec::parse(r, "resident id"))
            .transpose()?,
        state: codec::from_json(&state, "ceremony state")?,
    }))
}

pub(super) async fn add_passkey(store: &Backend, p: &StoredPasskey) -> StoreResult<()> {
    let done = sqlx::query(
        "INSERT INTO passkeys (credential_id, resident_id, name, passkey, created_at, last_used_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (credential_id) DO NOTHING",
    )
    .bind(&p.credential_id)
    .bind(p.resident.to_string())
    .bind(&p.name)
    .bind(codec::to_json(&p.passkey)?)
    .bind(p.created_at.timestamp_millis())
    .bind(p.last_used_at.map(|t| t.timestamp_millis()))
    .execute(&store.write)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Invalid(
            "this passkey is already registered".into(),
        ));
    }
    Ok(())
}

pub(super) async fn passkeys_of(
    store: &Backend,
    resident: ResidentId,
) -> StoreResult<Vec<StoredPasskey>> {
    all(
        sqlx::query_as::<_, RawPasskey>(concat!(
            "SELECT ",
            passkey_columns!(),
            " FROM passkeys WHERE resident_id = $1 ORDER BY created_at, credential_id"
        ))
        .bind(resident.to_string()),
        &store.read,
    )
    .await
}

pub(super) async fn passkey(
    store: &Backend,
    credential_id: &str,
) -> StoreResult<Option<StoredPasskey>> {
    optional(
        sqlx::query_as::<_, RawPasskey>(concat!(
            "SELECT ",
            passkey_columns!(),
            " FROM passkeys WHERE credential_id = $1"
        ))
        .bind(credential_id),
        &store.read,
    )
    .await
}

pub(super) async fn update_passkey(
    store: &Backend,
    credential_id: &str,
    passkey: &serde_json::Value,
    used_at: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query("UPDATE passkeys SET passkey = $1, last_used_at = $2 WHERE credential_id = $3")
        .bind(codec::to_json(passkey)?)
        .bind(used_at.timestamp_millis())
        .bind(credential_id)
        .execute(&store.write)
        .await?;
    Ok(())
}

pub(super) async fn remove_passkey(
    store: &Backend,
    resident: ResidentId,
    credential_id: &str,
) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM passkeys WHERE resident_id = $1 AND credential_id = $2")
        .bind(resident.to_string())
        .bind(credential_id)
        .execute(&store.write)
        .await?;
    Ok(done.rows_affected() > 0)
}
