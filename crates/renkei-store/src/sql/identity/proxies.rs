//! Proxy appointments (代理人): made, ended by the appointing resident, and listed.

use chrono::{DateTime, Utc};
use renkei_domain::{ProxyAppointment, ProxyId, ResidentId};

use super::{Backend, all, optional};
use crate::codec;
use crate::rows::identity::{RawProxy, proxy_columns};
use crate::{StoreError, StoreResult};

pub(super) async fn appoint_proxy(store: &Backend, a: &ProxyAppointment) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO proxies (id, resident_id, proxy_id, label, scope, appointed_at, ended_at,
         representation) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(a.id.to_string())
    .bind(a.resident.to_string())
    .bind(a.proxy.to_string())
    .bind(&a.label)
    .bind(codec::to_json(&a.scope)?)
    .bind(a.appointed_at.timestamp_millis())
    .bind(a.ended_at.map(|t| t.timestamp_millis()))
    .bind(a.representation.as_ref().map(codec::to_json).transpose()?)
    .execute(&store.write)
    .await?;
    Ok(())
}

pub(super) async fn end_proxy(
    store: &Backend,
    resident: ResidentId,
    id: ProxyId,
    at: DateTime<Utc>,
) -> StoreResult<ProxyAppointment> {
    let query = sqlx::query_as::<_, RawProxy>(concat!(
        "UPDATE proxies SET ended_at = $1 WHERE id = $2 AND resident_id = $3 AND ended_at IS NULL RETURNING ",
        proxy_columns!()
    ))
    .bind(at.timestamp_millis())
    .bind(id.to_string())
    .bind(resident.to_string());
    optional(query, &store.write)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("active proxy appointment `{id}`")))
}

pub(super) async fn proxy_appointment(
    store: &Backend,
    id: ProxyId,
) -> StoreResult<Option<ProxyAppointment>> {
    optional(
        sqlx::query_as::<_, RawProxy>(concat!(
            "SELECT ",
            proxy_columns!(),
            " FROM proxies WHERE id = $1"
        ))
        .bind(id.to_string()),
        &store.read,
    )
    .await
}

pub(super) async fn proxies_of(
    store: &Backend,
    resident: ResidentId,
) -> StoreResult<Vec<ProxyAppointment>> {
    all(
        sqlx::query_as::<_, RawProxy>(concat!(
            "SELECT ",
            proxy_columns!(),
            " FROM proxies WHERE resident_id = $1 ORDER BY appointed_at DESC, id"
        ))
        .bind(resident.to_string()),
        &store.read,
    )
    .await
}

pub(super) async fn proxy_for(
    store: &Backend,
    proxy: ResidentId,
) -> StoreResult<Vec<ProxyAppointment>> {
    all(
        sqlx::query_as::<_, RawProxy>(concat!(
            "SELECT ",
            proxy_columns!(),
            " FROM proxies WHERE proxy_id = $1 AND ended_at IS NULL ORDER BY appointed_at, id"
        ))
        .bind(proxy.to_string()),
        &store.read,
    )
    .await
}
