//! The store conformance suite against the embedded SQLite backend, plus SQLite-only checks.

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

/// What a failed open says, causes included, as the binary prints it.
fn whole_message(e: &renkei_store::StoreError) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

#[tokio::test]
async fn a_database_path_that_cannot_be_opened_is_refused_naming_the_file_and_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the database file should be: no one can open it as a file.
    let path = dir.path().join("renkei.db");
    std::fs::create_dir(&path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let Err(e) = SqliteStore::open(&path).await else {
        panic!("a directory was opened as the database")
    };
    let message = whole_message(&e);
    assert!(
        message.contains(&path.display().to_string()) && message.contains("os error"),
        "{message}"
    );
}

#[tokio::test]
async fn a_database_on_a_read_only_file_system_is_refused_naming_the_file_and_the_reason() {
    use renkei_store::conformance::faults::SmallFileSystem;
    let Some(fs) = SmallFileSystem::mount("4m") else {
        return;
    };
    let path = fs.path().join("renkei.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store.log_size().await.unwrap();
    drop(store);
    // The store's connections close in the background.
    let started = std::time::Instant::now();
    while let Err(e) = fs.make_read_only() {
        assert!(started.elapsed().as_secs() < 5, "remounting read-only: {e}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let Err(e) = SqliteStore::open(&path).await else {
        panic!("a database on a read-only file system was opened")
    };
    let message = whole_message(&e);
    assert!(
        message.contains(&fs.path().display().to_string())
            && message.contains("Read-only file system"),
        "{message}"
    );
}

#[tokio::test]
async fn readiness_says_when_the_database_s_file_system_is_full_and_ready_again_once_freed() {
    use renkei_store::conformance::faults::SmallFileSystem;
    use renkei_store::{Readiness, StoreError};
    let Some(fs) = SmallFileSystem::mount("4m") else {
        return;
    };
    let store = SqliteStore::open(&fs.path().join("renkei.db"))
        .await
        .unwrap();
    store.readiness().await.unwrap();
    let filler = fs.fill();
    let not_ready = store.readiness().await;
    assert!(
        matches!(&not_ready, Err(StoreError::CannotWrite(why)) if why.contains("full")),
        "{not_ready:?}"
    );
    std::fs::remove_file(filler).unwrap();
    store.readiness().await.unwrap();
}

#[tokio::test]
async fn providers_from_before_registration_migrate_as_approved_inbound_and_keyless() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("renkei.db");
    // The schema as it stood before providers were registered through the product.
    let before = dir.path().join("migrations");
    std::fs::create_dir(&before).unwrap();
    let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    for file in std::fs::read_dir(&all).unwrap() {
        let file = file.unwrap();
        if file.file_name().to_string_lossy().as_ref() < "0019" {
            std::fs::copy(file.path(), before.join(file.file_name())).unwrap();
        }
    }
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::migrate::Migrator::new(before.as_path())
        .await
        .unwrap()
        .run(&mut conn)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO providers (id, name_ja, name_en, endpoint, categories)
         VALUES ('clinic', '診療所', 'Clinic', 'http://127.0.0.1:9', '[]')",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    #[cfg(unix)]
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();

    let store = SqliteStore::open(&path).await.unwrap();
    let clinic = store
        .provider(&renkei_domain::ProviderId::new("clinic").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(clinic.status, renkei_domain::ProviderStatus::Approved);
    assert_eq!(clinic.endpoint(), Some("http://127.0.0.1:9"));
    assert!(clinic.signing_keys.is_empty() && clinic.contact.is_none());
}
