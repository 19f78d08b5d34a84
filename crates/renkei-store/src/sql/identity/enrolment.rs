//! Enrolment: single-use challenges, and the enrolments that tie a proven key to a resident.

use chrono::{DateTime, Utc};
use renkei_domain::{Enrolment, ResidentId};

use super::{Backend, optional};
use crate::StoreResult;
use crate::codec;
use crate::identity::Enrolled;
use crate::rows::identity::{RawEnrolment, enrolment_columns, expired};

pub(super) async fn put_enrolment_challenge(
    store: &Backend,
    id: uuid::Uuid,
    challenge: &[u8],
    expires_at: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO enrolment_challenges (id, challenge, expires_at) VALUES ($1, $2, $3)")
        .bind(id.to_string())
        .bind(challenge)
        .bind(expires_at.timestamp_millis())
        .execute(&store.write)
        .await?;
    Ok(())
}

pub(super) async fn take_enrolment_challenge(
    store: &Backend,
    id: uuid::Uuid,
    now: DateTime<Utc>,
) -> StoreResult<Option<Vec<u8>>> {
    let row: Option<(Vec<u8>, i64)> = sqlx::query_as(
        "DELETE FROM enrolment_challenges WHERE id = $1 RETURNING challenge, expires_at",
    )
    .bind(id.to_string())
    .fetch_optional(&store.write)
    .await?;
    Ok(row.and_then(|(c, exp)| (!expired(exp, now)).then_some(c)))
}

pub(super) async fn enrol(
    store: &Backend,
    key_hash: &str,
    attributes: &serde_json::Value,
    certificate_not_after: DateTime<Utc>,
    candidate: ResidentId,
    now: DateTime<Utc>,
) -> StoreResult<Enrolled> {
    let attributes_json = codec::to_json(attributes)?;
    let mut tx = store.write.begin().await?;
    let known: Option<String> =
        sqlx::query_scalar("SELECT resident_id FROM enrolments WHERE key_hash = $1")
            .bind(key_hash)
            .fetch_optional(&mut *tx)
            .await?;
    let new_resident = known.is_none();
    let resident = match known {
        Some(r) => codec::parse(&r, "resident id")?,
        None => {
            sqlx::query("INSERT INTO residents (id, created_at) VALUES ($1, $2)")
                .bind(candidate.to_string())
                .bind(now.timestamp_millis())
                .execute(&mut *tx)
                .await?;
            candidate
        }
    };
    sqlx::query(
        "INSERT INTO enrolments (key_hash, resident_id, attributes, enrolled_at, certificate_not_after)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (key_hash) DO UPDATE SET attributes = excluded.attributes,
         enrolled_at = excluded.enrolled_at, certificate_not_after = excluded.certificate_not_after",
    )
    .bind(key_hash)
    .bind(resident.to_string())
    .bind(&attributes_json)
    .bind(now.timestamp_millis())
    .bind(certificate_not_after.timestamp_millis())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Enrolled {
        enrolment: Enrolment {
            resident,
            key_hash: key_hash.to_owned(),
            attributes: attributes.clone(),
            enrolled_at: codec::time(now.timestamp_millis())?,
            certificate_not_after: codec::time(certificate_not_after.timestamp_millis())?,
        },
        new_resident,
    })
}

pub(super) async fn enrolment_of(
    store: &Backend,
    resident: ResidentId,
) -> StoreResult<Option<Enrolment>> {
    optional(
        sqlx::query_as::<_, RawEnrolment>(concat!(
            "SELECT ",
            enrolment_columns!(),
            " FROM enrolments WHERE resident_id = $1 ORDER BY enrolled_at DESC LIMIT 1"
        ))
        .bind(resident.to_string()),
        &store.read,
    )
    .await
}

pub(super) async fn enrolment_by_key(
    store: &Backend,
    key_hash: &str,
) -> StoreResult<Option<Enrolment>> {
    optional(
        sqlx::query_as::<_, RawEnrolment>(concat!(
            "SELECT ",
            enrolment_columns!(),
            " FROM enrolments WHERE key_hash = $1"
        ))
        .bind(key_hash),
        &store.read,
    )
    .await
}
