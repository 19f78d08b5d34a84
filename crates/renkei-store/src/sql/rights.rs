//! [`crate::RightsStore`] for this backend: residents' requests routed to whoever holds the
//! data, their recipients' answers, and extensions of their due dates.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use renkei_domain::rights::{may_answer, removes_locators, status_after_answers};
use renkei_domain::{
    CategoryId, LogEntry, OperatorAction, OperatorActor, Recipient, RecipientAnswer,
    RequestRecipient, ResidentRequest, ResidentRequestId, RightsEvent, RightsLogEntry,
};

use super::identity::requests::insert_request;
use super::log::{append_operator_action, insert_leaf, reserve_log_seqs};
use super::outbox::insert_outbox;
use super::{Backend, Conn, optional};
use crate::codec;
use crate::rights::{AnswerOutcome, MAX_ROUTED_LISTED, RecipientAnswerDraft, RightsStore};
use crate::rows::identity::{RawResidentRequest, resident_request_columns};
use crate::{OutboxMessage, StoreResult};

/// A `resident_request_recipients` row: request, kind, id, categories, routed, answer, note,
/// answered.
type RawRecipient = (
    String,
    String,
    String,
    String,
    i64,
    String,
    Option<String>,
    Option<i64>,
);

const RECIPIENT_COLUMNS: &str =
    "request_id, recipient_kind, recipient_id, categories, routed_at, answer, note, answered_at";

fn recipient_row(raw: RawRecipient) -> StoreResult<RequestRecipient> {
    let (request, kind, id, categories, routed, answer, note, answered) = raw;
    let recipient = match kind.as_str() {
        "service" => Recipient::Service(codec::parse(&id, "service id")?),
        "provider" => Recipient::Provider(codec::parse(&id, "provider id")?),
        other => {
            return Err(crate::StoreError::Corrupt(format!(
                "unknown recipient kind `{other}`"
            )));
        }
    };
    Ok(RequestRecipient {
        request: codec::parse(&request, "resident request id")?,
        recipient,
        categories: codec::from_json(&categories, "recipient categories")?,
        routed_at: codec::time(routed)?,
        answer: codec::enum_field(RecipientAnswer::parse(&answer), &answer, "recipient answer")?,
        note,
        answered_at: codec::opt_time(answered)?,
    })
}

async fn recipients_of(
    conn: &mut Conn,
    id: ResidentRequestId,
) -> StoreResult<Vec<RequestRecipient>> {
    let sql = format!(
        "SELECT {RECIPIENT_COLUMNS} FROM resident_request_recipients WHERE request_id = $1
         ORDER BY recipient_kind DESC, recipient_id"
    );
    sqlx::query_as::<_, RawRecipient>(sqlx::AssertSqlSafe(sql))
        .bind(id.to_string())
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(recipient_row)
        .collect()
}

async fn append_rights_entry(
    conn: &mut Conn,
    request: &ResidentRequest,
    event: RightsEvent,
    at: DateTime<Utc>,
) -> StoreResult<RightsLogEntry> {
    let seq = reserve_log_seqs(&mut *conn, 1).await?;
    sqlx::query(
        "INSERT INTO rights_log (log_seq, at, request_id, resident_id, request_kind, event)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(seq)
    .bind(codec::millis(at))
    .bind(request.id.to_string())
    .bind(request.resident.to_string())
    .bind(request.kind.as_str())
    .bind(codec::to_json(&event)?)
    .execute(&mut *conn)
    .await?;
    let entry = RightsLogEntry {
        seq: codec::seq_u64(seq)?,
        at: codec::time(codec::millis(at))?,
        request: request.id,
        resident: request.resident,
        request_kind: request.kind,
        event,
    };
    insert_leaf(&mut *conn, seq, &LogEntry::Rights(entry.clone())).await?;
    Ok(entry)
}

async fn request_on(
    conn: &mut Conn,
    id: ResidentRequestId,
) -> StoreResult<Option<ResidentRequest>> {
    let query = sqlx::query_as::<_, RawResidentRequest>(concat!(
        "SELECT ",
        resident_request_columns!(),
        " FROM resident_requests WHERE id = $1"
    ))
    .bind(id.to_string());
    optional(query, &mut *conn).await
}

#[async_trait::async_trait]
impl RightsStore for Backend {
    async fn file_routed_request(
        &self,
        request: &ResidentRequest,
        recipients: &[(Recipient, BTreeSet<CategoryId>)],
        messages: &[OutboxMessage],
        consents_revoked: u32,
    ) -> StoreResult<RightsLogEntry> {
        let mut tx = self.write.begin().await?;
        insert_request(&mut tx, request).await?;
        for (recipient, categories) in recipients {
            sqlx::query(
                "INSERT INTO resident_request_recipients (request_id, recipient_kind, recipient_id,
                 categories, routed_at, answer) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(request.id.to_string())
            .bind(recipient.kind())
            .bind(recipient.id())
            .bind(codec::to_json(categories)?)
            .bind(codec::millis(request.filed_at))
            .bind(RecipientAnswer::Pending.as_str())
            .execute(&mut *tx)
            .await?;
        }
        for m in messages {
            insert_outbox(&mut tx, m, request.filed_at).await?;
        }
        let event = RightsEvent::Routed {
            services: recipients
                .iter()
                .filter_map(|(r, _)| match r {
                    Recipient::Service(s) => Some(s.clone()),
                    Recipient::Provider(_) => None,
                })
                .collect(),
            providers: recipients
                .iter()
                .filter_map(|(r, _)| match r {
                    Recipient::Provider(p) => Some(p.clone()),
                    Recipient::Service(_) => None,
                })
                .collect(),
            consents_revoked,
        };
        let entry = append_rights_entry(&mut tx, request, event, request.filed_at).await?;
        tx.commit().await?;
        Ok(entry)
    }

    async fn request_recipients(
        &self,
        requests: &[ResidentRequestId],
    ) -> StoreResult<Vec<RequestRecipient>> {
        let mut conn = self.read.acquire().await?;
        let mut out = Vec::new();
        for id in requests {
            out.extend(recipients_of(&mut conn, *id).await?);
        }
        Ok(out)
    }

    async fn routed_to(
        &self,
        recipient: &Recipient,
        open_only: bool,
    ) -> StoreResult<Vec<(ResidentRequest, RequestRecipient)>> {
        // Which answers count as open is the domain's (`may_answer`), not the query's.
        let answers: Vec<&str> = RecipientAnswer::ALL
            .into_iter()
            .filter(|a| !open_only || may_answer(*a))
            .map(RecipientAnswer::as_str)
            .collect();
        let sql = format!(
            "SELECT {RECIPIENT_COLUMNS} FROM resident_request_recipients
             WHERE recipient_kind = $1 AND recipient_id = $2 AND answer IN ($3, $4, $5, $6)
             ORDER BY routed_at, request_id LIMIT $7"
        );
        let mut query = sqlx::query_as::<_, RawRecipient>(sqlx::AssertSqlSafe(sql))
            .bind(recipient.kind())
            .bind(recipient.id());
        // Four places, padded with the last answer (a repeated value changes no match).
        for i in 0..RecipientAnswer::ALL.len() {
            query = query.bind(answers.get(i).or(answers.last()).copied().unwrap_or(""));
        }
        let mut conn = self.read.acquire().await?;
        let rows = query
            .bind(i64::from(MAX_ROUTED_LISTED))
            .fetch_all(&mut *conn)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for raw in rows {
            let row = recipient_row(raw)?;
            if let Some(request) = request_on(&mut conn, row.request).await? {
                out.push((request, row));
            }
        }
        Ok(out)
    }

    async fn answer_routed_request(
        &self,
        d: &RecipientAnswerDraft<'_>,
    ) -> StoreResult<AnswerOutcome> {
        let mut tx = self.write.begin().await?;
        let Some(request) = request_on(&mut tx, d.request).await? else {
            return Ok(AnswerOutcome::NotARecipient);
        };
        let recipients = recipients_of(&mut tx, d.request).await?;
        let Some(mine) = recipients.iter().find(|r| &r.recipient == d.recipient) else {
            return Ok(AnswerOutcome::NotARecipient);
        };
        if !may_answer(mine.answer) {
            return Ok(AnswerOutcome::AlreadyAnswered(mine.answer));
        }
        let categories: Vec<CategoryId> = mine.categories.iter().cloned().collect();
        sqlx::query(
            "UPDATE resident_request_recipients SET answer = $1, note = $2, answered_at = $3
             WHERE request_id = $4 AND recipient_kind = $5 AND recipient_id = $6",
        )
        .bind(d.answer.as_str())
        .bind(d.note)
        .bind(codec::millis(d.at))
        .bind(d.request.to_string())
        .bind(d.recipient.kind())
        .bind(d.recipient.id())
        .execute(&mut *tx)
        .await?;
        let mut removed = 0;
        if let (true, Recipient::Provider(provider)) = (
            removes_locators(request.kind, d.recipient, d.answer),
            d.recipient,
        ) {
            for category in &categories {
                removed += sqlx::query(
                    "DELETE FROM locators WHERE resident_id = $1 AND provider_id = $2
                     AND category_id = $3",
                )
                .bind(request.resident.to_string())
                .bind(provider.as_str())
                .bind(category.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
        }
        let recipients = recipients_of(&mut tx, d.request).await?;
        let status = status_after_answers(request.status, &recipients);
        let query = sqlx::query_as::<_, RawResidentRequest>(concat!(
            "UPDATE resident_requests SET status = $1, updated_at = $2 WHERE id = $3 RETURNING ",
            resident_request_columns!()
        ))
        .bind(status.as_str())
        .bind(codec::millis(d.at))
        .bind(d.request.to_string());
        let Some(request) = optional(query, &mut *tx).await? else {
            return Ok(AnswerOutcome::NotARecipient);
        };
        let event = RightsEvent::Answered {
            recipient: d.recipient.clone(),
            answer: d.answer,
            locators_removed: removed,
        };
        let entry = append_rights_entry(&mut tx, &request, event, d.at).await?;
        tx.commit().await?;
        Ok(AnswerOutcome::Answered {
            request: Box::new(request),
            recipients,
            entry: Box::new(entry),
        })
    }

    async fn extend_request(
        &self,
        id: ResidentRequestId,
        due_at: DateTime<Utc>,
        reason: &str,
        actor: &OperatorActor,
        action: &OperatorAction,
    ) -> StoreResult<Option<ResidentRequest>> {
        let mut tx = self.write.begin().await?;
        let query = sqlx::query_as::<_, RawResidentRequest>(concat!(
            "UPDATE resident_requests SET due_at = $1, extension_reason = $2 WHERE id = $3
             RETURNING ",
            resident_request_columns!()
        ))
        .bind(codec::millis(due_at))
        .bind(reason)
        .bind(id.to_string());
        let Some(request) = optional(query, &mut *tx).await? else {
            return Ok(None);
        };
        append_operator_action(&mut tx, actor, action, Utc::now()).await?;
        tx.commit().await?;
        Ok(Some(request))
    }
}
