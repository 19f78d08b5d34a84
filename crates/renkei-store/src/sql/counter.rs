//! [`crate::CounterStore`] for this backend: counter sessions, the enrolments staff find by
//! name, and statutory representatives with their operator entries of the log.

use chrono::{DateTime, Utc};
use renkei_domain::{
    CounterSession, CounterSessionId, Enrolment, OperatorAction, OperatorActor, OperatorLogEntry,
    ProxyAppointment, ProxyId,
};

use super::log::append_operator_action;
use super::{Backend, all, optional};
use crate::StoreResult;
use crate::codec::{self, IntoDomain, from_json, parse, time};
use crate::counter::{CounterStore, MAX_NAMED_ENROLMENTS};
use crate::rows::identity::{RawEnrolment, RawProxy, enrolment_columns, proxy_columns};

#[derive(sqlx::FromRow)]
struct RawCounterSession {
    id: String,
    operator_id: String,
    resident_id: String,
    verification: String,
    opened_at: i64,
    expires_at: i64,
}

impl IntoDomain for RawCounterSession {
    type Domain = CounterSession;

    fn into_domain(self) -> StoreResult<CounterSession> {
        Ok(CounterSession {
            id: parse(&self.id, "counter session id")?,
            operator: parse(&self.operator_id, "operator id")?,
            resident: parse(&self.resident_id, "resident id")?,
            verification: from_json(&self.verification, "counter verification")?,
            opened_at: time(self.opened_at)?,
            expires_at: time(self.expires_at)?,
        })
    }
}

/// A LIKE pattern matching text that contains `needle`, with `!` as the escape character
/// (both backends take `ESCAPE '!'`; a backslash would clash with JSON's escapes).
fn containing(needle: &str) -> String {
    let mut pattern = String::with_capacity(needle.len() + 2);
    pattern.push('%');
    for c in needle.chars() {
        if matches!(c, '!' | '%' | '_') {
            pattern.push('!');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[async_trait::async_trait]
impl CounterStore for Backend {
    async fn open_counter_session(
        &self,
        s: &CounterSession,
        actor: &OperatorActor,
        action: &OperatorAction,
    ) -> StoreResult<OperatorLogEntry> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO counter_sessions (id, operator_id, resident_id, verification, opened_at,
             expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(s.id.to_string())
        .bind(s.operator.as_str())
        .bind(s.resident.to_string())
        .bind(codec::to_json(&s.verification)?)
        .bind(codec::millis(s.opened_at))
        .bind(codec::millis(s.expires_at))
        .execute(&mut *tx)
        .await?;
        let entry = append_operator_action(&mut tx, actor, action, s.opened_at).await?;
        tx.commit().await?;
        Ok(entry)
    }

    async fn counter_session(&self, id: CounterSessionId) -> StoreResult<Option<CounterSession>> {
        optional(
            sqlx::query_as::<_, RawCounterSession>(
                "SELECT id, operator_id, resident_id, verification, opened_at, expires_at
                 FROM counter_sessions WHERE id = $1",
            )
            .bind(id.to_string()),
            &self.read,
        )
        .await
    }

    async fn enrolments_named(&self, name: &str) -> StoreResult<Vec<Enrolment>> {
        // The attributes are stored as compact JSON, so the name appears as this member.
        let member = format!("\"name\":{}", codec::to_json(&name)?);
        let found: Vec<Enrolment> = all(
            sqlx::query_as::<_, RawEnrolment>(concat!(
                "SELECT ",
                enrolment_columns!(),
                " FROM enrolments WHERE attributes LIKE $1 ESCAPE '!'
                 ORDER BY enrolled_at DESC LIMIT $2"
            ))
            .bind(containing(&member))
            .bind(i64::from(MAX_NAMED_ENROLMENTS)),
            &self.read,
        )
        .await?;
        // LIKE may fold case, and the member may sit inside another string: keep exact names.
        Ok(found
            .into_iter()
            .filter(|e| e.attributes.get("name").and_then(|n| n.as_str()) == Some(name))
            .collect())
    }

    async fn register_representative(
        &self,
        a: &ProxyAppointment,
        actor: &OperatorActor,
        action: &OperatorAction,
        at: DateTime<Utc>,
    ) -> StoreResult<OperatorLogEntry> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO proxies (id, resident_id, proxy_id, label, scope, appointed_at, ended_at,
             representation) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(a.id.to_string())
        .bind(a.resident.to_string())
        .bind(a.proxy.to_string())
        .bind(&a.label)
        .bind(codec::to_json(&a.scope)?)
        .bind(codec::millis(a.appointed_at))
        .bind(a.ended_at.map(codec::millis))
        .bind(a.representation.as_ref().map(codec::to_json).transpose()?)
        .execute(&mut *tx)
        .await?;
        let entry = append_operator_action(&mut tx, actor, action, at).await?;
        tx.commit().await?;
        Ok(entry)
    }

    async fn end_representative(
        &self,
        id: ProxyId,
        actor: &OperatorActor,
        action: &OperatorAction,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<ProxyAppointment>> {
        let mut tx = self.write.begin().await?;
        let ended = sqlx::query_as::<_, RawProxy>(concat!(
            "UPDATE proxies SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL
             AND representation IS NOT NULL RETURNING ",
            proxy_columns!()
        ))
        .bind(codec::millis(at))
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(ended) = ended else {
            return Ok(None);
        };
        append_operator_action(&mut tx, actor, action, at).await?;
        tx.commit().await?;
        Ok(Some(ended.into_domain()?))
    }
}

#[cfg(test)]
mod tests {
    use super::containing;

    #[test]
    fn like_patterns_escape_their_wildcards() {
        assert_eq!(containing("a_b%c!d"), "%a!_b!%c!!d%");
    }
}
