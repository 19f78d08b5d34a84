//! [`crate::EmergencyStore`] for this backend, and the read of the declarations a decision
//! batch needs.

use chrono::{DateTime, Utc};
use renkei_domain::{Declaration, DeclarationId, OperatorAction, OperatorActor, OperatorLogEntry};

use super::log::append_operator_action;
use super::{Backend, Conn, all, optional};
use crate::codec;
use crate::emergency::{AreaListOutcome, AreaRelease, EmergencyStore, MAX_DECLARATIONS_LISTED};
use crate::rows::RawDeclaration;
use crate::{StoreError, StoreResult};

#[async_trait::async_trait]
impl EmergencyStore for Backend {
    async fn record_declaration_step(
        &self,
        d: &Declaration,
        actor: &OperatorActor,
        action: &OperatorAction,
        at: DateTime<Utc>,
    ) -> StoreResult<OperatorLogEntry> {
        let mut tx = self.write.begin().await?;
        let body = codec::to_json(d)?;
        let ended_at = d.ended.as_ref().map(|s| codec::millis(s.at));
        let revision = i64::from(d.revision);
        if d.revision == 0 {
            sqlx::query(
                "INSERT INTO declarations (id, revision, declared_at, ends_at, ended_at, body)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(d.id.to_string())
            .bind(revision)
            .bind(codec::millis(d.declared.at))
            .bind(codec::millis(d.ends_at))
            .bind(ended_at)
            .bind(body)
            .execute(&mut *tx)
            .await?;
        } else {
            // INVARIANT: a step replaces only the revision it was taken from.
            let done = sqlx::query(
                "UPDATE declarations SET revision = $1, ends_at = $2, ended_at = $3, body = $4
                 WHERE id = $5 AND revision = $6",
            )
            .bind(revision)
            .bind(codec::millis(d.ends_at))
            .bind(ended_at)
            .bind(body)
            .bind(d.id.to_string())
            .bind(revision - 1)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                return Err(StoreError::Stale(format!("declaration `{}`", d.id)));
            }
        }
        let entry = append_operator_action(&mut tx, actor, action, at).await?;
        tx.commit().await?;
        Ok(entry)
    }

    async fn declaration(&self, id: DeclarationId) -> StoreResult<Option<Declaration>> {
        optional(
            sqlx::query_as::<_, RawDeclaration>("SELECT body FROM declarations WHERE id = $1")
                .bind(id.to_string()),
            &self.read,
        )
        .await
    }

    async fn record_area_list(
        &self,
        release: &AreaRelease,
        now: DateTime<Utc>,
    ) -> StoreResult<AreaListOutcome> {
        super::area_lists::record_area_list(self, release, now).await
    }

    async fn declarations(&self, limit: u32) -> StoreResult<Vec<Declaration>> {
        all(
            sqlx::query_as::<_, RawDeclaration>(
                "SELECT body FROM declarations ORDER BY declared_at DESC, id DESC LIMIT $1",
            )
            .bind(i64::from(limit.min(MAX_DECLARATIONS_LISTED))),
            &self.read,
        )
        .await
    }
}

/// The declarations a decision may rest on: not ended early and ending after `ending_after`
/// (pending and scheduled ones included). What the decision cache keeps of them stays right
/// while the decision clock stands still, since the decision compares each window with its
/// own `now`.
pub(super) async fn live_declarations(
    conn: &mut Conn,
    ending_after: DateTime<Utc>,
) -> StoreResult<Vec<Declaration>> {
    all(
        sqlx::query_as::<_, RawDeclaration>(
            "SELECT body FROM declarations WHERE ended_at IS NULL AND ends_at > $1 ORDER BY id",
        )
        .bind(codec::millis(ending_after)),
        &mut *conn,
    )
    .await
}
