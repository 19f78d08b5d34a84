//! OAuth: services' client registrations, authorization codes (kept by hash, redeemed only
//! when presented as issued), token revocation, and purging what expired.

use chrono::{DateTime, Utc};
use renkei_domain::{ServiceClient, ServiceId};

use super::{Backend, optional};
use crate::StoreResult;
use crate::codec;
use crate::codec::IntoDomain;
use crate::identity::{AuthorizationCodeRecord, CodePresentation, CodeRedemption};
use crate::rows::identity::{
    RawAuthorizationCode, RawServiceClient, code_columns, expired, service_client_columns,
};

pub(super) async fn put_service_client(store: &Backend, c: &ServiceClient) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO service_clients (service_id, redirect_uris, privacy_impact, registered_at, id_token_alg, controller)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (service_id) DO UPDATE SET redirect_uris = excluded.redirect_uris,
         privacy_impact = excluded.privacy_impact, id_token_alg = excluded.id_token_alg,
         controller = excluded.controller",
    )
    .bind(c.service.as_str())
    .bind(codec::to_json(&c.redirect_uris)?)
    .bind(codec::to_json(&c.privacy_impact)?)
    .bind(c.registered_at.timestamp_millis())
    .bind(c.id_token_signed_response_alg.as_str())
    .bind(c.controller.as_ref().map(codec::to_json).transpose()?)
    .execute(&store.write)
    .await?;
    Ok(())
}

pub(super) async fn service_client(
    store: &Backend,
    service: &ServiceId,
) -> StoreResult<Option<ServiceClient>> {
    optional(
        sqlx::query_as::<_, RawServiceClient>(concat!(
            "SELECT ",
            service_client_columns!(),
            " FROM service_clients WHERE service_id = $1"
        ))
        .bind(service.as_str()),
        &store.read,
    )
    .await
}

pub(super) async fn put_authorization_code(
    store: &Backend,
    c: &AuthorizationCodeRecord,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO authorization_codes (code_hash, service_id, resident_id, redirect_uri, code_challenge,
         nonce, scope, consents, acting_proxy, acting_appointment, auth_time, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&c.code_hash)
    .bind(c.service.as_str())
    .bind(c.resident.to_string())
    .bind(&c.redirect_uri)
    .bind(&c.code_challenge)
    .bind(c.nonce.as_deref())
    .bind(&c.scope)
    .bind(codec::to_json(&c.consents)?)
    .bind(c.acting_proxy.map(|p| p.to_string()))
    .bind(c.acting_appointment.map(|a| a.to_string()))
    .bind(c.auth_time.timestamp_millis())
    .bind(c.expires_at.timestamp_millis())
    .execute(&store.write)
    .await?;
    Ok(())
}

pub(super) async fn authorization_code(
    store: &Backend,
    code_hash: &str,
) -> StoreResult<Option<AuthorizationCodeRecord>> {
    optional(
        sqlx::query_as::<_, RawAuthorizationCode>(concat!(
            "SELECT ",
            code_columns!(),
            " FROM authorization_codes WHERE code_hash = $1"
        ))
        .bind(code_hash),
        &store.read,
    )
    .await
}

pub(super) async fn redeem_authorization_code(
    store: &Backend,
    code_hash: &str,
    presented: &CodePresentation,
    now: DateTime<Utc>,
) -> StoreResult<CodeRedemption> {
    let mut tx = store.write.begin().await?;
    let row = sqlx::query_as::<_, RawAuthorizationCode>(concat!(
        "SELECT ",
        code_columns!(),
        " FROM authorization_codes WHERE code_hash = $1"
    ))
    .bind(code_hash)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Ok(CodeRedemption::Unknown);
    };
    let redeemed = row.redeemed_at.is_some();
    let expires_at = row.expires_at;
    let code = row.into_domain()?;
    // INVARIANT: nothing is written unless the presentation matches the code, so
    // a code seen by anyone else is neither spent nor its tokens revoked by them.
    let outcome = if let Some(mismatch) = presented.mismatch(&code) {
        CodeRedemption::Mismatch(mismatch)
    } else if redeemed {
        sqlx::query(
            "UPDATE authorization_codes SET tokens_revoked_at = $1 WHERE code_hash = $2 AND tokens_revoked_at IS NULL",
        )
        .bind(now.timestamp_millis())
        .bind(code_hash)
        .execute(&mut *tx)
        .await?;
        CodeRedemption::Reused
    } else if expired(expires_at, now) {
        CodeRedemption::Expired
    } else {
        sqlx::query("UPDATE authorization_codes SET redeemed_at = $1 WHERE code_hash = $2")
            .bind(now.timestamp_millis())
            .bind(code_hash)
            .execute(&mut *tx)
            .await?;
        CodeRedemption::Redeemed(Box::new(code))
    };
    tx.commit().await?;
    Ok(outcome)
}

pub(super) async fn revoke_token(
    store: &Backend,
    jti: &str,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO revoked_tokens (jti, expires_at, revoked_at) VALUES ($1, $2, $3) ON CONFLICT (jti) DO NOTHING",
    )
    .bind(jti)
    .bind(expires_at.timestamp_millis())
    .bind(now.timestamp_millis())
    .execute(&store.write)
    .await?;
    Ok(())
}

pub(super) async fn revoke_code_tokens(
    store: &Backend,
    code_hash: &str,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE authorization_codes SET tokens_revoked_at = $1 WHERE code_hash = $2 AND tokens_revoked_at IS NULL",
    )
    .bind(now.timestamp_millis())
    .bind(code_hash)
    .execute(&store.write)
    .await?;
    Ok(())
}

pub(super) async fn token_revoked(
    store: &Backend,
    jti: &str,
    code_hash: Option<&str>,
) -> StoreResult<bool> {
    let revoked: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM revoked_tokens WHERE jti = $1)
              + (SELECT COUNT(*) FROM authorization_codes WHERE code_hash = $2 AND tokens_revoked_at IS NOT NULL)",
    )
    .bind(jti)
    .bind(code_hash.unwrap_or(""))
    .fetch_one(&store.read)
    .await?;
    Ok(revoked > 0)
}

pub(super) async fn purge_expired(store: &Backend, before: DateTime<Utc>) -> StoreResult<u64> {
    let before = before.timestamp_millis();
    let mut purged = 0;
    // One statement per table, each its own short transaction: the one SQLite
    // writer is never held for long, and what one deletes stays deleted.
    for statement in [
        "DELETE FROM enrolment_challenges WHERE expires_at <= $1",
        "DELETE FROM webauthn_ceremonies WHERE expires_at <= $1",
        "DELETE FROM authorization_codes WHERE redeemed_at IS NULL AND expires_at <= $1",
        "DELETE FROM revoked_tokens WHERE expires_at <= $1",
    ] {
        purged += sqlx::query(statement)
            .bind(before)
            .execute(&store.write)
            .await?
            .rows_affected();
    }
    Ok(purged)
}
