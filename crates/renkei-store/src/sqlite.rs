//! The embedded SQLite backend: the default, created on first run, no set-up.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::Sqlite;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::StoreResult;
use crate::codec::Placeholders;
use crate::sql::{consent_columns, consent_log_select, impl_store, purpose_columns};
use crate::sql_identity::{code_columns, enrolment_columns, passkey_columns};

/// A [`crate::Store`] in one SQLite file (WAL mode, `synchronous=FULL`, so an acknowledged
/// write survives a crash and a power cut).
#[derive(Clone)]
pub struct SqliteStore {
    read: SqlitePool,
    write: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // INVARIANT: exactly one writing connection, so write transactions never contend.
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("migrations/sqlite").run(&write).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self { read, write })
    }
}

const PLACEHOLDERS: Placeholders = Placeholders::Anonymous;

impl_store!(SqliteStore, Sqlite);
crate::sql_identity::impl_identity_store!(SqliteStore);
