//! [`crate::LocationStore`] for this backend: the location-data deletions services owe.

use chrono::{DateTime, Utc};
use renkei_domain::{LocationDeletion, OperatorAction, OperatorActor, OperatorLogEntry};

use super::Backend;
use super::log::append_operator_action;
use crate::StoreResult;
use crate::codec;
use crate::location::LocationStore;

#[async_trait::async_trait]
impl LocationStore for Backend {
    async fn record_location_deletions(&self, owed: &[LocationDeletion]) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        for d in owed {
            sqlx::query(
                "INSERT INTO location_deletions (service_id, purpose_id, purpose_version,
                 ended_at, due_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (service_id, purpose_id, purpose_version) DO NOTHING",
            )
            .bind(d.service.as_str())
            .bind(d.purpose.as_str())
            .bind(i64::from(d.purpose_version))
            .bind(codec::millis(d.ended_at))
            .bind(codec::millis(d.due_at))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn location_deletions(&self) -> StoreResult<Vec<LocationDeletion>> {
        let rows =
            sqlx::query_as::<_, (String, String, i64, i64, i64, Option<i64>, Option<String>)>(
                "SELECT service_id, purpose_id, purpose_version, ended_at, due_at, confirmed_at,
             confirmed_by FROM location_deletions ORDER BY due_at, service_id, purpose_id",
            )
            .fetch_all(&self.read)
            .await?;
        rows.into_iter()
            .map(|(service, purpose, version, ended, due, confirmed, by)| {
                Ok(LocationDeletion {
                    service: codec::parse(&service, "service id")?,
                    purpose: codec::parse(&purpose, "purpose id")?,
                    purpose_version: codec::u32_field(version, "purpose version")?,
                    ended_at: codec::time(ended)?,
                    due_at: codec::time(due)?,
                    confirmed_at: confirmed.map(codec::time).transpose()?,
                    confirmed_by: by.map(|b| codec::parse(&b, "operator id")).transpose()?,
                })
            })
            .collect()
    }

    async fn confirm_location_deletion(
        &self,
        d: &LocationDeletion,
        actor: &OperatorActor,
        action: &OperatorAction,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<OperatorLogEntry>> {
        let by = match actor {
            OperatorActor::Operator { id } => Some(id.to_string()),
            OperatorActor::CommandLine => None,
        };
        let mut tx = self.write.begin().await?;
        let done = sqlx::query(
            "UPDATE location_deletions SET confirmed_at = $1, confirmed_by = $2
             WHERE service_id = $3 AND purpose_id = $4 AND purpose_version = $5
             AND confirmed_at IS NULL",
        )
        .bind(codec::millis(at))
        .bind(by)
        .bind(d.service.as_str())
        .bind(d.purpose.as_str())
        .bind(i64::from(d.purpose_version))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        let entry = append_operator_action(&mut tx, actor, action, at).await?;
        tx.commit().await?;
        Ok(Some(entry))
    }
}
