//! The store conformance suite against the embedded SQLite backend, plus SQLite-only checks.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails loudly"
)]

use renkei_store::{SqliteStore, Store};

async fn fresh_store() -> Option<SqliteStore> {
    let dir = tempfile::tempdir().unwrap();
    // Leak the directory so it outlives the test's store; it is under the system temp dir.
    let path = dir.keep().join("renkei.db");
    Some(SqliteStore::open(&path).await.unwrap())
}

renkei_store::store_conformance_suite!(fresh_store);

#[tokio::test]
async fn a_consent_revoked_by_plain_sql_denies_the_next_batch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("renkei.db");
    let store = std::sync::Arc::new(SqliteStore::open(&path).await.unwrap());
    renkei_store::conformance::a_consent_revoked_by_plain_sql_denies_the_next_batch(
        store,
        |consent| async move {
            use sqlx::Connection;
            let url = format!("sqlite://{}", path.display());
            let mut other = sqlx::SqliteConnection::connect(&url).await.unwrap();
            let changed = sqlx::query("UPDATE consents SET revoked_at = 1 WHERE id = $1")
                .bind(consent.to_string())
                .execute(&mut other)
                .await
                .unwrap();
            assert_eq!(changed.rows_affected(), 1);
        },
    )
    .await;
}

#[tokio::test]
async fn reopening_the_file_keeps_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("renkei.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store
        .ensure_secret("k", b"v", chrono::Utc::now())
        .await
        .unwrap();
    drop(store);
    let reopened = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        reopened
            .ensure_secret("k", b"other", chrono::Utc::now())
            .await
            .unwrap(),
        b"v"
    );
}
