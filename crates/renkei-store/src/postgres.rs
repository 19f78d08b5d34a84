//! The PostgreSQL backend, for several hub replicas behind a load balancer.

use sqlx::Postgres;
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::codec::Placeholders;
use crate::sql::{consent_columns, consent_log_select, impl_store, purpose_columns};
use crate::sql_identity::{code_columns, enrolment_columns, passkey_columns};
use crate::{Durability, StoreResult};

/// A [`crate::Store`] in a PostgreSQL database shared by every hub replica.
#[derive(Clone)]
pub struct PostgresStore {
    read: PgPool,
    write: PgPool,
    upper_hashes: std::sync::Arc<crate::hash_cache::UpperHashes>,
    decision_cache: std::sync::Arc<crate::decision_cache::SharedDecisionCache>,
}

impl PostgresStore {
    /// Connects to `url` (e.g. `postgres://127.0.0.1/renkei`) and brings the schema up to date.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .connect(url)
            .await?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        Ok(Self {
            read: pool.clone(),
            write: pool,
            upper_hashes: std::sync::Arc::default(),
            decision_cache: std::sync::Arc::default(),
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

const PLACEHOLDERS: Placeholders = Placeholders::Numbered;
const INSERT_ROWS: &str = "INSERT INTO";

impl_store!(PostgresStore, Postgres);
crate::sql_identity::impl_identity_store!(PostgresStore);
