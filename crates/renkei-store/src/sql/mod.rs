//! The SQL behind [`crate::Store`] and [`crate::IdentityStore`], written once and compiled
//! once per backend.
//!
//! `sqlite.rs` and `postgres.rs` each include this directory as their own `sql` module
//! (`#[path = "sql/mod.rs"] mod sql;`), so every file here is ordinary Rust that rustfmt and
//! clippy reach, yet concrete for each backend: no generic bounds over sqlx's traits. The
//! files name the backend only through what the including module defines: `Db` (the sqlx
//! database), `Backend` (its store, with `read` and `write` pools, `begin_batch` and
//! `commit_batch`), `PLACEHOLDERS` (how a statement built at run time writes its parameters)
//! and `INSERT_ROWS` (how a multi-row append begins). Both schemas (see `migrations/`) use the
//! same table and column names and `$n` placeholders, so the statements are the same.
//!
//! `write` is the pool for transactions that change data, `read` for plain reads; on SQLite
//! `write` has one connection, which serialises writers without busy retries. Each concern
//! is a file of functions taking the store; `store.rs` and `identity/mod.rs` implement the
//! traits by calling them, and `emergency.rs` and `notices.rs` implement their own.

mod area_lists;
mod catalogue;
mod consents;
mod counter;
mod decisions;
mod emergency;
mod identity;
mod location;
mod locators;
mod log;
mod log_tree;
mod notices;
mod outbox;
mod residents;
mod rights;
mod secrets;
mod security_events;
mod store;

use sqlx::query::QueryAs;
use sqlx::{Database, Executor, FromRow};

use super::{Backend, Db, INSERT_ROWS, PLACEHOLDERS};
use crate::StoreResult;
use crate::codec::IntoDomain;

/// The parameters of a statement.
type Args = <Db as Database>::Arguments;
/// One connection, as a transaction derefs to.
type Conn = <Db as Database>::Connection;

/// Runs `query` and turns every row it returns into its domain value.
async fn all<'q, 'c, R, E>(
    query: QueryAs<'q, Db, R, Args>,
    executor: E,
) -> StoreResult<Vec<R::Domain>>
where
    R: IntoDomain + Send + Unpin + for<'r> FromRow<'r, <Db as Database>::Row> + 'q,
    E: Executor<'c, Database = Db> + 'q,
    'c: 'q,
{
    query
        .fetch_all(executor)
        .await?
        .into_iter()
        .map(IntoDomain::into_domain)
        .collect()
}

/// Runs `query` and turns the row it returns, if any, into its domain value.
async fn optional<'q, 'c, R, E>(
    query: QueryAs<'q, Db, R, Args>,
    executor: E,
) -> StoreResult<Option<R::Domain>>
where
    R: IntoDomain + Send + Unpin + for<'r> FromRow<'r, <Db as Database>::Row> + 'q,
    E: Executor<'c, Database = Db> + 'q,
    'c: 'q,
{
    query
        .fetch_optional(executor)
        .await?
        .map(IntoDomain::into_domain)
        .transpose()
}
