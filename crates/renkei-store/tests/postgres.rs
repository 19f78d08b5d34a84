//! The store conformance suite against PostgreSQL, from `RENKEI_TEST_POSTGRES_URL`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails loudly"
)]
//!
//! Each test gets a database of its own, so they run in parallel without seeing each other.

use renkei_store::PostgresStore;
use sqlx::Connection;

async fn fresh_store() -> Option<PostgresStore> {
    let Ok(url) = std::env::var("RENKEI_TEST_POSTGRES_URL") else {
        eprintln!("skipped: RENKEI_TEST_POSTGRES_URL is not set, PostgreSQL tests did not run");
        return None;
    };
    let name = format!("renkei_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let mut db_url = url::Url::parse(&url).unwrap();
    db_url.set_path(&name);
    Some(PostgresStore::connect(db_url.as_str()).await.unwrap())
}

renkei_store::store_conformance_suite!(fresh_store);
