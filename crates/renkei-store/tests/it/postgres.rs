//! The store conformance suite against PostgreSQL, from `RENKEI_TEST_POSTGRES_URL`.
//!
//! Each test gets a database of its own, so they run in parallel without seeing each other.

use renkei_store::PostgresStore;
use sqlx::Connection;

async fn fresh_store() -> Option<PostgresStore> {
    let (store, _) = fresh_store_and_url().await?;
    Some(store)
}

/// A store on a database of its own, and that database's URL.
async fn fresh_store_and_url() -> Option<(PostgresStore, String)> {
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
    let store = PostgresStore::connect(db_url.as_str()).await.unwrap();
    Some((store, db_url.to_string()))
}

renkei_store::store_conformance_suite!(fresh_store);

#[tokio::test]
async fn a_consent_revoked_by_plain_sql_denies_the_next_batch() {
    let Some((store, url)) = fresh_store_and_url().await else {
        return;
    };
    renkei_store::conformance::a_consent_revoked_by_plain_sql_denies_the_next_batch(
        std::sync::Arc::new(store),
        |consent| async move {
            let mut other = sqlx::PgConnection::connect(&url).await.unwrap();
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
async fn a_batch_queued_behind_a_revocation_is_decided_after_it() {
    let Some((store, url)) = fresh_store_and_url().await else {
        return;
    };
    let waiting_url = url.clone();
    renkei_store::conformance::a_batch_queued_behind_a_revocation_is_decided_after_it(
        std::sync::Arc::new(store),
        || async move {
            // The lock every append takes, held by a transaction of another connection.
            let mut holder = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
            sqlx::query("SELECT size FROM log_head WHERE id = 1 FOR UPDATE")
                .execute(&mut holder)
                .await
                .unwrap();
            let (release, released) = tokio::sync::oneshot::channel::<()>();
            tokio::spawn(async move {
                let _ = released.await;
                sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
            });
            release
        },
        move || {
            let url = waiting_url.clone();
            async move {
                let mut probe = sqlx::PgConnection::connect(&url).await.unwrap();
                let n: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE datname = current_database() AND wait_event_type = 'Lock'",
                )
                .fetch_one(&mut probe)
                .await
                .unwrap();
                usize::try_from(n).unwrap()
            }
        },
    )
    .await;
}

#[tokio::test]
async fn a_database_that_refuses_connections_is_unavailable_within_a_second_and_back_by_itself() {
    use renkei_store::{Readiness, Store, StoreError};
    use std::time::{Duration, Instant};
    let Some(db) = renkei_store::conformance::faults::OwnDatabase::from_env().await else {
        return;
    };
    let store = PostgresStore::connect(&db.url).await.unwrap();
    store.readiness().await.unwrap();
    assert_eq!(store.log_size().await.unwrap(), 0);

    db.make_unavailable().await.unwrap();
    let started = Instant::now();
    let failed = store.log_size().await;
    let to_fail = started.elapsed();
    assert!(
        matches!(failed, Err(StoreError::Unavailable(_))),
        "{failed:?}"
    );
    assert!(to_fail <= Duration::from_millis(1500), "{to_fail:?}");
    assert!(store.readiness().await.is_err_and(|e| e.is_unavailable()));

    db.make_available().await.unwrap();
    let started = Instant::now();
    while store.log_size().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "not back within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    store.readiness().await.unwrap();
    eprintln!(
        "unavailable after {to_fail:?}, back {:?} after connections were allowed again",
        started.elapsed()
    );
}

#[tokio::test]
async fn the_sqlite_and_postgres_migrations_define_the_same_tables_and_columns() {
    use std::collections::BTreeSet;
    let Some((_store, url)) = fresh_store_and_url().await else {
        return;
    };
    let mut pg = sqlx::PgConnection::connect(&url).await.unwrap();
    let postgres: BTreeSet<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name NOT LIKE '\\_sqlx%'",
    )
    .fetch_all(&mut pg)
    .await
    .unwrap()
    .into_iter()
    .collect();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("renkei.db");
    drop(renkei_store::SqliteStore::open(&path).await.unwrap());
    let mut lite = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let sqlite: BTreeSet<(String, String)> = sqlx::query_as(
        "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
         AND m.name NOT LIKE '\\_sqlx%' ESCAPE '\\'",
    )
    .fetch_all(&mut lite)
    .await
    .unwrap()
    .into_iter()
    .collect();

    assert!(sqlite.len() > 50, "found only {} columns", sqlite.len());
    let only_sqlite: Vec<_> = sqlite.difference(&postgres).collect();
    let only_postgres: Vec<_> = postgres.difference(&sqlite).collect();
    assert!(
        only_sqlite.is_empty() && only_postgres.is_empty(),
        "(table, column) only in SQLite: {only_sqlite:#?}; only in PostgreSQL: {only_postgres:#?}"
    );
}
