//! [`crate::SecurityEventStore`] for this backend: events kept until acknowledged, leased to
//! one replica at a time for a push, like the webhook outbox.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Backend;
use crate::StoreResult;
use crate::codec::{self, millis};
use crate::security_events::{
    DueSecurityEvent, MAX_SECURITY_EVENTS_READ, SecurityEventAck, SecurityEventStore,
    StoredSecurityEvent,
};

fn event(jti: &str, token: String, raised_at: i64) -> StoreResult<StoredSecurityEvent> {
    Ok(StoredSecurityEvent {
        jti: codec::parse(jti, "security event id")?,
        token,
        raised_at: codec::time(raised_at)?,
    })
}

#[async_trait::async_trait]
impl SecurityEventStore for Backend {
    async fn raise_security_event(&self, e: &StoredSecurityEvent) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO security_events (jti, raised_at, token, next_attempt_at)
             VALUES ($1, $2, $3, $2)",
        )
        .bind(e.jti.to_string())
        .bind(millis(e.raised_at))
        .bind(&e.token)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn take_due_security_events(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<DueSecurityEvent>> {
        let mut tx = self.write.begin().await?;
        let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT jti, token, raised_at, attempts FROM security_events
             WHERE acknowledged_at IS NULL AND next_attempt_at <= $1
             ORDER BY raised_at, jti LIMIT $2",
        )
        .bind(millis(now))
        .bind(i64::from(limit.min(MAX_SECURITY_EVENTS_READ)))
        .fetch_all(&mut *tx)
        .await?;
        let mut due = Vec::with_capacity(rows.len());
        for (jti, token, raised_at, attempts) in rows {
            // Only the replica whose update sees the old lease takes the event.
            let taken = sqlx::query(
                "UPDATE security_events SET next_attempt_at = $1
                 WHERE jti = $2 AND next_attempt_at <= $3 AND acknowledged_at IS NULL",
            )
            .bind(millis(lease_until))
            .bind(&jti)
            .bind(millis(now))
            .execute(&mut *tx)
            .await?;
            if taken.rows_affected() == 1 {
                due.push(DueSecurityEvent {
                    event: event(&jti, token, raised_at)?,
                    attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                });
            }
        }
        tx.commit().await?;
        Ok(due)
    }

    async fn retry_security_event(
        &self,
        jti: Uuid,
        next: DateTime<Utc>,
        error: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE security_events SET attempts = attempts + 1, next_attempt_at = $1,
             last_error = $2 WHERE jti = $3 AND acknowledged_at IS NULL",
        )
        .bind(millis(next))
        .bind(error)
        .bind(jti.to_string())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn unacknowledged_security_events(
        &self,
        limit: u32,
    ) -> StoreResult<Vec<StoredSecurityEvent>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT jti, token, raised_at FROM security_events WHERE acknowledged_at IS NULL
             ORDER BY raised_at, jti LIMIT $1",
        )
        .bind(i64::from(limit.min(MAX_SECURITY_EVENTS_READ)))
        .fetch_all(&self.read)
        .await?;
        rows.into_iter()
            .map(|(jti, token, raised_at)| event(&jti, token, raised_at))
            .collect()
    }

    async fn acknowledge_security_events(
        &self,
        acks: &[SecurityEventAck],
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        for ack in acks {
            sqlx::query(
                "UPDATE security_events SET acknowledged_at = $1, receiver_error = $2
                 WHERE jti = $3 AND acknowledged_at IS NULL",
            )
            .bind(millis(at))
            .bind(ack.error.as_deref())
            .bind(ack.jti.to_string())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn forget_acknowledged_security_events(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM security_events WHERE acknowledged_at < $1")
            .bind(millis(before))
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected())
    }
}
