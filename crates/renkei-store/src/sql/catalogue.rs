//! The catalogue: data categories, services (and their client secret hashes), purposes and
//! their versions, providers.

use chrono::{DateTime, Utc};
use renkei_domain::{
    DataCategory, Provider, ProviderId, ProviderStatus, Purpose, PurposeId, PurposeRef, Service,
    ServiceId, ServiceStatus,
};

use super::{Backend, all, optional};
use crate::codec;
use crate::rows::{
    RawCategory, RawProvider, RawPurpose, RawService, provider_columns, purpose_columns,
    service_columns,
};
use crate::{PurposeDraft, StoreError, StoreResult};

/// A service by id (`$1`).
pub(super) const SERVICE: &str = concat!(
    "SELECT ",
    service_columns!(),
    " FROM services WHERE id = $1"
);

/// The current version of a purpose: `$1` the service, `$2` the purpose.
pub(super) const CURRENT_PURPOSE: &str = concat!(
    "SELECT ",
    purpose_columns!(),
    " FROM purposes WHERE service_id = $1 AND purpose_id = $2 ORDER BY version DESC LIMIT 1"
);

pub(super) async fn put_category(store: &Backend, c: &DataCategory) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO categories (id, name_ja, name_en, special_care, location)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (id) DO UPDATE SET name_ja = excluded.name_ja, name_en = excluded.name_en,
         special_care = excluded.special_care, location = excluded.location",
    )
    .bind(c.id.as_str())
    .bind(&c.name.ja)
    .bind(&c.name.en)
    .bind(c.special_care)
    .bind(c.location)
    .execute(&store.write)
    .await?;
    Ok(())
}

pub(super) async fn categories(store: &Backend) -> StoreResult<Vec<DataCategory>> {
    all(
        sqlx::query_as::<_, RawCategory>(
            "SELECT id, name_ja, name_en, special_care, location FROM categories ORDER BY id",
        ),
        &store.read,
    )
    .await
}

pub(super) async fn put_service(
    store: &Backend,
    s: &Service,
    client_secret_hash: &str,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO services (id, name_ja, name_en, sector, hpke_public_key, webhook_url, status, client_secret_hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (id) DO UPDATE SET name_ja = excluded.name_ja, name_en = excluded.name_en,
         sector = excluded.sector, hpke_public_key = excluded.hpke_public_key,
         webhook_url = excluded.webhook_url, status = excluded.status,
         client_secret_hash = excluded.client_secret_hash",
    )
    .bind(s.id.as_str())
    .bind(&s.name.ja)
    .bind(&s.name.en)
    .bind(&s.sector)
    .bind(&s.hpke_public_key)
    .bind(s.webhook_url.as_deref())
    .bind(s.status.as_str())
    .bind(client_secret_hash)
    .execute(&store.write)
    .await?;
    Ok(())
}

pub(super) async fn service(store: &Backend, id: &ServiceId) -> StoreResult<Option<Service>> {
    optional(
        sqlx::query_as::<_, RawService>(SERVICE).bind(id.as_str()),
        &store.read,
    )
    .await
}

pub(super) async fn services(store: &Backend) -> StoreResult<Vec<Service>> {
    all(
        sqlx::query_as::<_, RawService>(concat!(
            "SELECT ",
            service_columns!(),
            " FROM services ORDER BY id"
        )),
        &store.read,
    )
    .await
}

pub(super) async fn client_secret_hash(
    store: &Backend,
    id: &ServiceId,
) -> StoreResult<Option<String>> {
    Ok(
        sqlx::query_scalar::<_, String>("SELECT client_secret_hash FROM services WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&store.read)
            .await?,
    )
}

pub(super) async fn set_service_status(
    store: &Backend,
    id: &ServiceId,
    status: ServiceStatus,
) -> StoreResult<()> {
    let done = sqlx::query("UPDATE services SET status = $1 WHERE id = $2")
        .bind(status.as_str())
        .bind(id.as_str())
        .execute(&store.write)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("service `{id}`")));
    }
    Ok(())
}

pub(super) async fn publish_purpose(
    store: &Backend,
    d: &PurposeDraft,
    at: DateTime<Utc>,
) -> StoreResult<Purpose> {
    let mut tx = store.write.begin().await?;
    let current = optional(
        sqlx::query_as::<_, RawPurpose>(CURRENT_PURPOSE)
            .bind(d.service.as_str())
            .bind(d.id.as_str()),
        &mut *tx,
    )
    .await?;
    let next = match current {
        None => Purpose {
            service: d.service.clone(),
            id: d.id.clone(),
            version: 1,
            title: d.title.clone(),
            description: d.description.clone(),
            categories: d.categories.clone(),
            retention_days: d.retention_days,
            legal_basis: d.legal_basis,
            emergency_only: d.emergency_only,
            location: d.location,
        },
        Some(current) => match current.revise(
            d.title.clone(),
            d.description.clone(),
            d.categories.clone(),
            d.retention_days,
            d.legal_basis,
            d.emergency_only,
            d.location,
        ) {
            Some(next) => next,
            None => return Ok(current),
        },
    };
    sqlx::query(
        "INSERT INTO purposes (service_id, purpose_id, version, title_ja, title_en, description_ja,
         description_en, categories, retention_days, legal_basis, published_at, emergency_only,
         location_precision, location_retention_days)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(next.service.as_str())
    .bind(next.id.as_str())
    .bind(i64::from(next.version))
    .bind(&next.title.ja)
    .bind(&next.title.en)
    .bind(&next.description.ja)
    .bind(&next.description.en)
    .bind(codec::to_json(&next.categories)?)
    .bind(i64::from(next.retention_days))
    .bind(next.legal_basis.as_str())
    .bind(codec::millis(at))
    .bind(next.emergency_only)
    .bind(next.location.map(|l| l.precision.as_str()))
    .bind(next.location.map(|l| i64::from(l.retention_days)))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(next)
}

pub(super) async fn current_purpose(
    store: &Backend,
    service: &ServiceId,
    purpose: &PurposeId,
) -> StoreResult<Option<Purpose>> {
    optional(
        sqlx::query_as::<_, RawPurpose>(CURRENT_PURPOSE)
            .bind(service.as_str())
            .bind(purpose.as_str()),
        &store.read,
    )
    .await
}

pub(super) async fn purpose_version(
    store: &Backend,
    r: &PurposeRef,
) -> StoreResult<Option<Purpose>> {
    optional(
        sqlx::query_as::<_, RawPurpose>(concat!(
            "SELECT ",
            purpose_columns!(),
            " FROM purposes WHERE service_id = $1 AND purpose_id = $2 AND version = $3"
        ))
        .bind(r.service.as_str())
        .bind(r.purpose.as_str())
        .bind(i64::from(r.version)),
        &store.read,
    )
    .await
}

pub(super) async fn purposes(store: &Backend, service: &ServiceId) -> StoreResult<Vec<Purpose>> {
    all(sqlx::query_as::<_, RawPurpose>(concat!(
        "SELECT ", purpose_columns!(), " FROM purposes p WHERE service_id = $1 AND version =
         (SELECT MAX(version) FROM purposes q WHERE q.service_id = p.service_id AND q.purpose_id = p.purpose_id)
         ORDER BY purpose_id"
    ))
    .bind(service.as_str())
    , &store.read).await
}

pub(super) async fn put_provider(store: &Backend, p: &Provider) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO providers (id, name_ja, name_en, endpoint, categories, max_answer_bytes,
         status, connection, signing_keys, contact)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (id) DO UPDATE SET name_ja = excluded.name_ja, name_en = excluded.name_en,
         endpoint = excluded.endpoint, categories = excluded.categories,
         max_answer_bytes = excluded.max_answer_bytes, status = excluded.status,
         connection = excluded.connection, signing_keys = excluded.signing_keys,
         contact = excluded.contact",
    )
    .bind(p.id.as_str())
    .bind(&p.name.ja)
    .bind(&p.name.en)
    .bind(p.endpoint().unwrap_or_default())
    .bind(codec::to_json(&p.categories)?)
    .bind(p.max_answer_bytes.map(codec::byte_count_i64).transpose()?)
    .bind(p.status.as_str())
    .bind(p.connection.mode())
    .bind(codec::to_json(&p.signing_keys)?)
    .bind(p.contact.as_ref().map(codec::to_json).transpose()?)
    .execute(&store.write)
    .await?;
    Ok(())
}

pub(super) async fn providers(store: &Backend) -> StoreResult<Vec<Provider>> {
    all(
        sqlx::query_as::<_, RawProvider>(concat!(
            "SELECT ",
            provider_columns!(),
            " FROM providers ORDER BY id"
        )),
        &store.read,
    )
    .await
}

pub(super) async fn provider(store: &Backend, id: &ProviderId) -> StoreResult<Option<Provider>> {
    optional(
        sqlx::query_as::<_, RawProvider>(concat!(
            "SELECT ",
            provider_columns!(),
            " FROM providers WHERE id = $1"
        ))
        .bind(id.as_str()),
        &store.read,
    )
    .await
}

pub(super) async fn set_provider_status(
    store: &Backend,
    id: &ProviderId,
    status: ProviderStatus,
) -> StoreResult<()> {
    let done = sqlx::query("UPDATE providers SET status = $1 WHERE id = $2")
        .bind(status.as_str())
        .bind(id.as_str())
        .execute(&store.write)
        .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("provider `{id}`")));
    }
    Ok(())
}
