//! [`crate::NoticeStore`] for this backend: the records under a declaration, its notices
//! written once, and residents' notice channels.

use chrono::{DateTime, Utc};
use renkei_domain::{
    AccessBasis, AccessRecord, Declaration, DeclarationId, EmergencyNotice, ResidentId, ServiceId,
};

use super::outbox::insert_outbox;
use super::{Backend, PLACEHOLDERS, all};
use crate::codec::{self, IN_LIST_MAX, in_list_len, padded};
use crate::notices::{MAX_NOTICES_LISTED, NoticeStore};
use crate::rows::{RawAccessRecord, RawDeclaration, access_columns};
use crate::{OutboxMessage, StoreResult};

#[async_trait::async_trait]
impl NoticeStore for Backend {
    async fn declarations_awaiting_notices(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Declaration>> {
        all(
            sqlx::query_as::<_, RawDeclaration>(
                "SELECT d.body FROM declarations d
                 WHERE (d.ended_at IS NOT NULL OR d.ends_at <= $1)
                 AND NOT EXISTS (SELECT 1 FROM emergency_notice_runs r WHERE r.declaration_id = d.id)
                 ORDER BY COALESCE(d.ended_at, d.ends_at), d.id LIMIT $2",
            )
            .bind(codec::millis(now))
            .bind(i64::from(limit)),
            &self.read,
        )
        .await
    }

    async fn records_under_declaration(
        &self,
        declaration: DeclarationId,
    ) -> StoreResult<Vec<AccessRecord>> {
        let basis = codec::to_json(&AccessBasis::Emergency { declaration })?;
        // The range repeats the partial index's condition (0023), so the planner uses it.
        all(
            sqlx::query_as::<_, RawAccessRecord>(concat!(
                "SELECT ",
                access_columns!(),
                " FROM access_records WHERE basis = $1",
                " AND basis >= '{\"kind\":\"emergency\"' AND basis < '{\"kind\":\"emergencz'",
                " ORDER BY seq"
            ))
            .bind(basis),
            &self.read,
        )
        .await
    }

    async fn record_notices(
        &self,
        declaration: DeclarationId,
        notices: &[EmergencyNotice],
        messages: &[OutboxMessage],
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut tx = self.write.begin().await?;
        let count = i64::try_from(notices.len()).unwrap_or(i64::MAX);
        // INVARIANT: a declaration's notices are written once: whoever inserts its run row
        // writes them, and a second writer (another replica) inserts nothing.
        let run = sqlx::query(
            "INSERT INTO emergency_notice_runs (declaration_id, done_at, notices) VALUES ($1, $2, $3)
             ON CONFLICT (declaration_id) DO NOTHING",
        )
        .bind(declaration.to_string())
        .bind(codec::millis(at))
        .bind(count)
        .execute(&mut *tx)
        .await?;
        if run.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        for n in notices {
            sqlx::query(
                "INSERT INTO emergency_notices (resident_id, declaration_id, created_at, body)
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(n.resident.to_string())
            .bind(declaration.to_string())
            .bind(codec::millis(n.at))
            .bind(codec::to_json(n)?)
            .execute(&mut *tx)
            .await?;
        }
        for m in messages {
            insert_outbox(&mut tx, m, at).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn notices(&self, resident: ResidentId, limit: u32) -> StoreResult<Vec<EmergencyNotice>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT body FROM emergency_notices WHERE resident_id = $1
             ORDER BY created_at DESC, declaration_id DESC LIMIT $2",
        )
        .bind(resident.to_string())
        .bind(i64::from(limit.min(MAX_NOTICES_LISTED)))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|(body,)| codec::from_json(body, "notice"))
            .collect()
    }

    async fn notice_channels(
        &self,
        residents: &[ResidentId],
    ) -> StoreResult<Vec<(ResidentId, ServiceId)>> {
        let mut found = Vec::new();
        for chunk in residents.chunks(IN_LIST_MAX) {
            let sql = format!(
                "SELECT resident_id, service_id FROM notice_channels WHERE resident_id IN ({})
                 ORDER BY resident_id, service_id",
                PLACEHOLDERS.list(1, in_list_len(chunk.len()))
            );
            let mut query = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql));
            for r in padded(chunk) {
                query = query.bind(r.to_string());
            }
            for (resident, service) in query.fetch_all(&self.read).await? {
                found.push((
                    codec::parse(&resident, "resident id")?,
                    codec::parse(&service, "service id")?,
                ));
            }
        }
        Ok(found)
    }

    async fn set_notice_channel(
        &self,
        resident: ResidentId,
        service: &ServiceId,
        on: bool,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let query = if on {
            sqlx::query(
                "INSERT INTO notice_channels (resident_id, service_id, since) VALUES ($1, $2, $3)
                 ON CONFLICT (resident_id, service_id) DO NOTHING",
            )
            .bind(resident.to_string())
            .bind(service.as_str())
            .bind(codec::millis(at))
        } else {
            sqlx::query("DELETE FROM notice_channels WHERE resident_id = $1 AND service_id = $2")
                .bind(resident.to_string())
                .bind(service.as_str())
        };
        query.execute(&self.write).await?;
        Ok(())
    }
}
