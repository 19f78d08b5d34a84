//! Residents' requests (開示・訂正・削除・利用停止) and their status.

use chrono::{DateTime, Utc};
use renkei_domain::{ResidentId, ResidentRequest, ResidentRequestId, ResidentRequestStatus};

use super::super::Conn;
use super::{Backend, all, optional};
use crate::codec;
use crate::rows::identity::{RawResidentRequest, resident_request_columns};
use crate::{StoreError, StoreResult};

pub(super) async fn file_request(store: &Backend, r: &ResidentRequest) -> StoreResult<()> {
    let mut conn = store.write.acquire().await?;
    insert_request(&mut conn, r).await
}

/// Inserts a request on `conn` (inside the caller's transaction, when routed).
pub(crate) async fn insert_request(conn: &mut Conn, r: &ResidentRequest) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO resident_requests (id, resident_id, kind, service_id, details, status, filed_by,
         filed_at, updated_at, response, category_id, due_at, extension_reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(r.id.to_string())
    .bind(r.resident.to_string())
    .bind(r.kind.as_str())
    .bind(r.service.as_ref().map(|s| s.as_str().to_owned()))
    .bind(&r.details)
    .bind(r.status.as_str())
    .bind(codec::to_json(&r.filed_by)?)
    .bind(r.filed_at.timestamp_millis())
    .bind(r.updated_at.timestamp_millis())
    .bind(r.response.as_deref())
    .bind(r.category.as_ref().map(|c| c.as_str().to_owned()))
    .bind(r.due_at.timestamp_millis())
    .bind(r.extension_reason.as_deref())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(super) async fn requests_of(
    store: &Backend,
    resident: ResidentId,
) -> StoreResult<Vec<ResidentRequest>> {
    all(
        sqlx::query_as::<_, RawResidentRequest>(concat!(
            "SELECT ",
            resident_request_columns!(),
            " FROM resident_requests WHERE resident_id = $1 ORDER BY filed_at DESC, id"
        ))
        .bind(resident.to_string()),
        &store.read,
    )
    .await
}

pub(super) async fn requests(
    store: &Backend,
    status: Option<ResidentRequestStatus>,
) -> StoreResult<Vec<ResidentRequest>> {
    all(
        sqlx::query_as::<_, RawResidentRequest>(concat!(
            "SELECT ",
            resident_request_columns!(),
            " FROM resident_requests WHERE ($1 = '' OR status = $1) ORDER BY filed_at, id"
        ))
        .bind(status.map(|s| s.as_str()).unwrap_or("")),
        &store.read,
    )
    .await
}

pub(super) async fn update_request(
    store: &Backend,
    id: ResidentRequestId,
    status: ResidentRequestStatus,
    response: Option<&str>,
    at: DateTime<Utc>,
) -> StoreResult<ResidentRequest> {
    let query = sqlx::query_as::<_, RawResidentRequest>(concat!(
        "UPDATE resident_requests SET status = $1, response = COALESCE($2, response), updated_at = $3
         WHERE id = $4 RETURNING ",
        resident_request_columns!()
    ))
    .bind(status.as_str())
    .bind(response)
    .bind(at.timestamp_millis())
    .bind(id.to_string());
    optional(query, &store.write)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("resident request `{id}`")))
}
