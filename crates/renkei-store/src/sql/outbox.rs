//! The webhook outbox: messages written beside the change they report, leased to one
//! replica at a time, and what became of each delivery.

use chrono::{DateTime, Utc};

use super::{Backend, Conn};
use crate::codec;
use crate::{DeliveryOutcome, DueMessage, OutboxMessage, StoreResult};

pub(super) async fn take_due_messages(
    store: &Backend,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: u32,
) -> StoreResult<Vec<DueMessage>> {
    use codec::millis;
    let mut tx = store.write.begin().await?;
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT id, service_id, event, attempts FROM webhook_outbox
         WHERE delivered_at IS NULL AND given_up_at IS NULL AND next_attempt_at <= $1
         ORDER BY next_attempt_at LIMIT $2",
    )
    .bind(millis(now))
    .bind(i64::from(limit))
    .fetch_all(&mut *tx)
    .await?;
    let mut due = Vec::with_capacity(rows.len());
    for (id, service, event, attempts) in rows {
        // Only the replica whose update sees the old lease takes the message.
        let taken = sqlx::query(
            "UPDATE webhook_outbox SET next_attempt_at = $1 WHERE id = $2 AND next_attempt_at <= $3
             AND delivered_at IS NULL",
        )
        .bind(millis(lease_until))
        .bind(&id)
        .bind(millis(now))
        .execute(&mut *tx)
        .await?;
        if taken.rows_affected() == 1 {
            due.push(DueMessage {
                message: OutboxMessage {
                    id: codec::parse(&id, "outbox id")?,
                    service: codec::parse(&service, "service id")?,
                    event: codec::from_json(&event, "outbox event")?,
                },
                attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            });
        }
    }
    tx.commit().await?;
    Ok(due)
}

/// Messages neither delivered nor given up.
pub(super) async fn webhook_backlog(store: &Backend) -> StoreResult<u64> {
    let (waiting,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM webhook_outbox WHERE delivered_at IS NULL AND given_up_at IS NULL",
    )
    .fetch_one(&store.read)
    .await?;
    Ok(u64::try_from(waiting).unwrap_or(0))
}

pub(super) async fn record_delivery(
    store: &Backend,
    id: uuid::Uuid,
    outcome: DeliveryOutcome,
    error: Option<&str>,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    use codec::millis;
    let (delivered, given_up, next) = match outcome {
        DeliveryOutcome::Delivered => (Some(millis(at)), None, millis(at)),
        DeliveryOutcome::GiveUp => (None, Some(millis(at)), millis(at)),
        DeliveryOutcome::RetryAt(t) => (None, None, millis(t)),
    };
    sqlx::query(
        "UPDATE webhook_outbox SET attempts = attempts + 1, delivered_at = $1, given_up_at = $2,
         next_attempt_at = $3, last_error = $4 WHERE id = $5",
    )
    .bind(delivered)
    .bind(given_up)
    .bind(next)
    .bind(error)
    .bind(id.to_string())
    .execute(&store.write)
    .await?;
    Ok(())
}

pub(super) async fn insert_outbox(
    conn: &mut Conn,
    m: &OutboxMessage,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO webhook_outbox (id, service_id, event, created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $4)",
    )
    .bind(m.id.to_string())
    .bind(m.service.as_str())
    .bind(codec::to_json(&m.event)?)
    .bind(codec::millis(at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}
