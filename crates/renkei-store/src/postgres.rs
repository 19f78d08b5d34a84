//! The PostgreSQL backend, for several hub replicas behind a load balancer.

use std::time::Duration;

use sqlx::Postgres;
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::codec::Placeholders;
use crate::{Durability, StoreError, StoreResult};

/// How long a call waits for a connection (or a readiness probe for its answer) before
/// storage counts as unavailable, unless the caller sets another.
pub const DEFAULT_STORAGE_TIMEOUT: Duration = Duration::from_secs(1);

/// A [`crate::Store`] in a PostgreSQL database shared by every hub replica.
#[derive(Clone)]
pub struct PostgresStore {
    read: PgPool,
    write: PgPool,
    upper_hashes: std::sync::Arc<crate::hash_cache::UpperHashes>,
    decision_cache: std::sync::Arc<crate::decision_cache::SharedDecisionCache>,
    timeout: Duration,
}

impl PostgresStore {
    /// Connects to `url` (e.g. `postgres://127.0.0.1/renkei`) and brings the schema up to date.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        Self::connect_with_timeout(url, DEFAULT_STORAGE_TIMEOUT).await
    }

    /// [`Self::connect`], with how long a call may wait for a connection before it fails as
    /// [`StoreError::Unavailable`]: while PostgreSQL is down, requests fail within it
    /// instead of queueing for sqlx's default 30 s.
    pub async fn connect_with_timeout(url: &str, timeout: Duration) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(timeout)
            .connect(url)
            .await?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        Ok(Self {
            read: pool.clone(),
            write: pool,
            upper_hashes: std::sync::Arc::default(),
            decision_cache: std::sync::Arc::default(),
            timeout,
        })
    }

    /// Begins a decision batch's transaction.
    async fn begin_batch(&self) -> StoreResult<sqlx::Transaction<'static, Postgres>> {
        Ok(self.write.begin().await?)
    }

    /// Commits a batch: durable when it returns.
    async fn commit_batch(
        &self,
        tx: sqlx::Transaction<'static, Postgres>,
    ) -> StoreResult<Durability> {
        tx.commit().await?;
        Ok(Durability::already())
    }
}

#[async_trait::async_trait]
impl crate::Readiness for PostgresStore {
    /// Reachable within the timeout, and a primary that takes writes (not a standby, not
    /// read-only by `default_transaction_read_only`).
    async fn readiness(&self) -> StoreResult<()> {
        let probe = sqlx::query_scalar::<_, bool>(
            "SELECT NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off'",
        )
        .fetch_one(&self.write);
        let writable = tokio::time::timeout(self.timeout, probe)
            .await
            .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolTimedOut))??;
        if writable {
            Ok(())
        } else {
            Err(StoreError::CannotWrite(
                "the PostgreSQL server is read-only".into(),
            ))
        }
    }
}

const PLACEHOLDERS: Placeholders = Placeholders::Numbered;
const INSERT_ROWS: &str = "INSERT INTO";

// The shared SQL (`sql/`), compiled for this backend: it names the backend only as these.
type Db = Postgres;
type Backend = PostgresStore;

#[path = "sql/mod.rs"]
#[expect(
    clippy::duplicate_mod,
    reason = "the shared SQL is compiled once per backend on purpose (see sql/mod.rs)"
)]
mod sql;
