//! Residents, the locators of their data, and the pairwise subjects services know them by.

use chrono::{DateTime, Utc};
use renkei_domain::{Locator, ResidentId, ServiceSubject};

use super::{Backend, all};
use crate::StoreResult;
use crate::codec;
use crate::rows::RawLocator;

pub(super) async fn add_resident(
    store: &Backend,
    id: ResidentId,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO residents (id, created_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
    )
    .bind(id.to_string())
    .bind(codec::millis(at))
    .execute(&store.write)
    .await?;
    Ok(())
}

pub(super) async fn resident_exists(store: &Backend, id: ResidentId) -> StoreResult<bool> {
    Ok(
        sqlx::query_scalar::<_, String>("SELECT id FROM residents WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&store.read)
            .await?
            .is_some(),
    )
}

pub(super) async fn put_locators(store: &Backend, locators: &[Locator]) -> StoreResult<()> {
    let mut tx = store.write.begin().await?;
    for l in locators {
        sqlx::query(
            "INSERT INTO locators (resident_id, category_id, provider_id, reference) VALUES ($1, $2, $3, $4)
             ON CONFLICT (resident_id, category_id) DO UPDATE SET provider_id = excluded.provider_id,
             reference = excluded.reference",
        )
        .bind(l.resident.to_string())
        .bind(l.category.as_str())
        .bind(l.provider.as_str())
        .bind(&l.reference)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn locators_of(
    store: &Backend,
    resident: ResidentId,
) -> StoreResult<Vec<Locator>> {
    all(sqlx::query_as::<_, RawLocator>(
        "SELECT resident_id, category_id, provider_id, reference FROM locators WHERE resident_id = $1
         ORDER BY category_id",
    )
    .bind(resident.to_string())
    , &store.read).await
}

pub(super) async fn link_subject(
    store: &Backend,
    sector: &str,
    subject: &ServiceSubject,
    resident: ResidentId,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO subjects (sector, subject, resident_id) VALUES ($1, $2, $3)
         ON CONFLICT (sector, subject) DO NOTHING",
    )
    .bind(sector)
    .bind(subject.as_str())
    .bind(resident.to_string())
    .execute(&store.write)
    .await?;
    Ok(())
}
