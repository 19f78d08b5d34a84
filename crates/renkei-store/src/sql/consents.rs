//! Consents: granting (superseding an older purpose version's), revoking, reading, their
//! history, and the expiry entries the hub writes; each change is a log entry.

use chrono::{DateTime, Utc};
use renkei_domain::{
    Actor, Consent, ConsentEvent, ConsentEventKind, ConsentId, ConsentLogEntry, ConsentState,
    LogEntry, ResidentId,
};

use super::log::{insert_leaf, reserve_log_seqs};
use super::outbox::insert_outbox;
use super::{Backend, Conn, all, optional};
use crate::codec;
use crate::rows::{RawConsent, RawConsentEvent, consent_columns};
use crate::{OutboxMessage, StoreError, StoreResult};

pub(super) async fn grant_consent(
    store: &Backend,
    c: &Consent,
    notify: Option<&OutboxMessage>,
) -> StoreResult<()> {
    use codec::{millis, to_json};
    let mut tx = store.write.begin().await?;
    // Taking the resident row first serialises consent changes of one resident
    // across replicas, so two grants cannot both become active.
    let locked =
        sqlx::query("UPDATE residents SET consent_changes = consent_changes + 1 WHERE id = $1")
            .bind(c.resident.to_string())
            .execute(&mut *tx)
            .await?;
    if locked.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("resident `{}`", c.resident)));
    }
    let purpose_exists = sqlx::query_scalar::<_, i64>(
        "SELECT version FROM purposes WHERE service_id = $1 AND purpose_id = $2 AND version = $3",
    )
    .bind(c.purpose.service.as_str())
    .bind(c.purpose.purpose.as_str())
    .bind(i64::from(c.purpose.version))
    .fetch_optional(&mut *tx)
    .await?;
    if purpose_exists.is_none() {
        return Err(StoreError::NotFound(format!(
            "version {} of purpose `{}` of service `{}`",
            c.purpose.version, c.purpose.purpose, c.purpose.service
        )));
    }
    let open = sqlx::query_as::<_, RawConsent>(concat!(
        "SELECT ",
        consent_columns!(),
        " FROM consents WHERE resident_id = $1 AND service_id = $2
         AND purpose_id = $3 AND revoked_at IS NULL"
    ))
    .bind(c.resident.to_string())
    .bind(c.purpose.service.as_str())
    .bind(c.purpose.purpose.as_str());
    for old in all(open, &mut *tx).await? {
        if old.state_at(c.granted_at) != ConsentState::Active {
            continue;
        }
        if old.purpose.version == c.purpose.version {
            return Err(StoreError::ConsentAlreadyActive(old.id));
        }
        sqlx::query("UPDATE consents SET revoked_at = $1 WHERE id = $2")
            .bind(millis(c.granted_at))
            .bind(old.id.to_string())
            .execute(&mut *tx)
            .await?;
        insert_consent_event(
            &mut tx,
            &old,
            ConsentEventKind::Superseded,
            c.granted_at,
            &c.given_by,
        )
        .await?;
    }
    sqlx::query(concat!(
        "INSERT INTO consents (",
        consent_columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    ))
    .bind(c.id.to_string())
    .bind(c.resident.to_string())
    .bind(c.purpose.service.as_str())
    .bind(c.purpose.purpose.as_str())
    .bind(i64::from(c.purpose.version))
    .bind(to_json(&c.categories)?)
    .bind(c.legal_basis.as_str())
    .bind(millis(c.granted_at))
    .bind(c.expires_at.map(millis))
    .bind(c.given_via.as_str())
    .bind(to_json(&c.given_by)?)
    .bind(c.revoked_at.map(millis))
    .bind(c.form_reference.as_ref().map(|f| f.as_str()))
    .execute(&mut *tx)
    .await?;
    insert_consent_event(
        &mut tx,
        c,
        ConsentEventKind::Granted,
        c.granted_at,
        &c.given_by,
    )
    .await?;
    if let Some(m) = notify {
        insert_outbox(&mut tx, m, c.granted_at).await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn revoke_consent(
    store: &Backend,
    resident: ResidentId,
    id: ConsentId,
    actor: &Actor,
    at: DateTime<Utc>,
    notify: Option<&OutboxMessage>,
) -> StoreResult<Consent> {
    let mut tx = store.write.begin().await?;
    sqlx::query("UPDATE residents SET consent_changes = consent_changes + 1 WHERE id = $1")
        .bind(resident.to_string())
        .execute(&mut *tx)
        .await?;
    // Another resident's consent is reported as not found, not as forbidden:
    // its existence is nobody else's business.
    let query = sqlx::query_as::<_, RawConsent>(concat!(
        "SELECT ",
        consent_columns!(),
        " FROM consents WHERE id = $1 AND resident_id = $2"
    ))
    .bind(id.to_string())
    .bind(resident.to_string());
    let consent = optional(query, &mut *tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("consent `{id}`")))?;
    if consent.state_at(at) != ConsentState::Active {
        return Err(StoreError::ConsentNotActive(id));
    }
    sqlx::query("UPDATE consents SET revoked_at = $1 WHERE id = $2")
        .bind(codec::millis(at))
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
    insert_consent_event(&mut tx, &consent, ConsentEventKind::Revoked, at, actor).await?;
    if let Some(m) = notify {
        insert_outbox(&mut tx, m, at).await?;
    }
    tx.commit().await?;
    Ok(Consent {
        revoked_at: Some(at),
        ..consent
    })
}

pub(super) async fn consent(store: &Backend, id: ConsentId) -> StoreResult<Option<Consent>> {
    optional(
        sqlx::query_as::<_, RawConsent>(concat!(
            "SELECT ",
            consent_columns!(),
            " FROM consents WHERE id = $1"
        ))
        .bind(id.to_string()),
        &store.read,
    )
    .await
}

pub(super) async fn consents_of(
    store: &Backend,
    resident: ResidentId,
) -> StoreResult<Vec<Consent>> {
    all(
        sqlx::query_as::<_, RawConsent>(concat!(
            "SELECT ",
            consent_columns!(),
            " FROM consents WHERE resident_id = $1
         ORDER BY granted_at DESC, purpose_version DESC"
        ))
        .bind(resident.to_string()),
        &store.read,
    )
    .await
}

pub(super) async fn consents_after(
    store: &Backend,
    after: Option<ConsentId>,
    limit: u32,
) -> StoreResult<Vec<Consent>> {
    all(
        sqlx::query_as::<_, RawConsent>(concat!(
            "SELECT ",
            consent_columns!(),
            " FROM consents WHERE ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2"
        ))
        .bind(after.map(|a| a.to_string()))
        .bind(i64::from(limit)),
        &store.read,
    )
    .await
}

pub(super) async fn consent_history(
    store: &Backend,
    id: ConsentId,
) -> StoreResult<Vec<ConsentEvent>> {
    all(sqlx::query_as::<_, RawConsentEvent>(
        "SELECT consent_id, kind, at, actor FROM consent_events WHERE consent_id = $1 ORDER BY seq",
    )
    .bind(id.to_string())
    , &store.read).await
}

pub(super) async fn record_expiries(
    store: &Backend,
    now: DateTime<Utc>,
    limit: u32,
) -> StoreResult<u32> {
    let mut tx = store.write.begin().await?;
    let due = sqlx::query_as::<_, RawConsent>(concat!(
        "SELECT ", consent_columns!(), " FROM consents c WHERE revoked_at IS NULL AND expires_at <= $1
         AND NOT EXISTS (SELECT 1 FROM consent_events e WHERE e.consent_id = c.id AND e.kind = 'expired')
         ORDER BY expires_at LIMIT $2"
    ))
    .bind(codec::millis(now))
    .bind(i64::from(limit));
    let mut count = 0;
    for consent in all(due, &mut *tx).await? {
        let at = consent.expires_at.unwrap_or(now);
        insert_consent_event(
            &mut tx,
            &consent,
            ConsentEventKind::Expired,
            at,
            &Actor::Hub,
        )
        .await?;
        count += 1;
    }
    tx.commit().await?;
    Ok(count)
}

pub(super) async fn insert_consent_event(
    conn: &mut Conn,
    consent: &Consent,
    kind: ConsentEventKind,
    at: DateTime<Utc>,
    actor: &Actor,
) -> StoreResult<()> {
    let seq = reserve_log_seqs(conn, 1).await?;
    sqlx::query("INSERT INTO consent_events (consent_id, kind, at, actor, log_seq) VALUES ($1, $2, $3, $4, $5)")
        .bind(consent.id.to_string())
        .bind(kind.as_str())
        .bind(codec::millis(at))
        .bind(codec::to_json(actor)?)
        .bind(seq)
        .execute(&mut *conn)
        .await?;
    let entry = LogEntry::Consent(ConsentLogEntry {
        seq: codec::seq_u64(seq)?,
        consent: consent.id,
        resident: consent.resident,
        service: consent.purpose.service.clone(),
        purpose: consent.purpose.purpose.clone(),
        purpose_version: consent.purpose.version,
        change: kind,
        at: codec::time(codec::millis(at))?,
        actor: actor.clone(),
    });
    insert_leaf(conn, seq, &entry).await
}
