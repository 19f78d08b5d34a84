//! Operators, found by id or by the identity they sign in with.

use renkei_domain::{Operator, OperatorId, ResidentId};

use super::{Backend, optional};
use crate::StoreResult;
use crate::rows::identity::{RawOperator, operator_columns};

pub(super) async fn put_operator(store: &Backend, o: &Operator) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO operators (id, name, identity_id, added_at, role) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, identity_id = excluded.identity_id,
         role = excluded.role",
    )
    .bind(o.id.as_str())
    .bind(&o.name)
    .bind(o.identity.to_string())
    .bind(o.added_at.timestamp_millis())
    .bind(o.role.as_str())
    .execute(&store.write)
    .await?;
    Ok(())
}

pub(super) async fn operator(store: &Backend, id: &OperatorId) -> StoreResult<Option<Operator>> {
    optional(
        sqlx::query_as::<_, RawOperator>(concat!(
            "SELECT ",
            operator_columns!(),
            " FROM operators WHERE id = $1"
        ))
        .bind(id.as_str()),
        &store.read,
    )
    .await
}

pub(super) async fn operator_by_identity(
    store: &Backend,
    identity: ResidentId,
) -> StoreResult<Option<Operator>> {
    optional(
        sqlx::query_as::<_, RawOperator>(concat!(
            "SELECT ",
            operator_columns!(),
            " FROM operators WHERE identity_id = $1"
        ))
        .bind(identity.to_string()),
        &store.read,
    )
    .await
}
