//! The embedded SQLite backend: the default, created on first run, no set-up.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use sqlx::Sqlite;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::codec::Placeholders;
use crate::wal_sync::WalSync;
use crate::{Durability, StoreError, StoreResult};

/// A [`crate::Store`] in one SQLite file (WAL mode, `synchronous=FULL`, so an acknowledged
/// write survives a crash and a power cut).
#[derive(Clone)]
pub struct SqliteStore {
    read: SqlitePool,
    write: SqlitePool,
    upper_hashes: Arc<crate::hash_cache::UpperHashes>,
    decision_cache: Arc<crate::decision_cache::SharedDecisionCache>,
    wal: Arc<WalSync>,
    /// The database file, whose file system readiness checks for space and writability.
    path: Arc<PathBuf>,
    /// The background checkpointer stops once every clone of the store is dropped.
    _alive: Arc<()>,
}

/// How often the background checkpointer copies the WAL into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
/// WAL pages at which the writer checkpoints by itself, should the background checkpointer
/// fall behind (SQLite's default is 1,000).
const WRITER_CHECKPOINT_PAGES: &str = "20000";
/// Prepared statements the writer keeps: two multi-row appends of each size up to
/// `APPEND_CHUNK` rows, the batch reads' power-of-two `IN` lists, and the rest.
const WRITER_STATEMENTS: usize = 512;

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    ///
    /// A new file is created owner-only (0600), and SQLite gives its `-wal` and `-shm` files
    /// the database file's mode. A file that others may read or write is refused
    /// ([`crate::StoreError::OpenToOthers`]), never opened.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        owner_only(path)?;
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // INVARIANT: exactly one writing connection, so write transactions never contend.
        // Checkpoints (copying the WAL into the database file and syncing it) are left to a
        // connection of their own, so a commit pays only for its WAL frames and their fsync.
        // Set once the WAL's sync thread runs (it needs the file this pool creates).
        let wal_sync: Arc<OnceLock<Arc<WalSync>>> = Arc::default();
        let gate = wal_sync.clone();
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            // INVARIANT: after a failed write-back (of the WAL or of a checkpoint) the writer
            // is never handed out again: no write of any kind is acknowledged until a restart
            // recovers from what is really on disk.
            .before_acquire({
                let gate = gate.clone();
                move |_, _| {
                    let failed = gate.get().and_then(|wal| wal.failure());
                    Box::pin(async move { write_back_gate(failed) })
                }
            })
            // A writer replaced after a doubtful state passes the same gate.
            .after_connect(move |_, _| {
                let failed = gate.get().and_then(|wal| wal.failure());
                Box::pin(async move { write_back_gate(failed).map(|_| ()) })
            })
            // A ping before each use would cost the writer a round trip to its thread per
            // transaction, and a local file does not hang up: every pool here skips it.
            .test_before_acquire(false)
            // INVARIANT: the writer is `synchronous=FULL` and outside any transaction whenever
            // it is taken from the pool; a decision batch lowers it for its own commit
            // (`begin_batch`), and a connection that cannot be set back is closed, never
            // reused.
            .after_release(|conn, _| {
                Box::pin(async move {
                    // Runs after the rollback a dropped transaction queued, so it sees its end.
                    sqlx::Executor::execute(&mut *conn, "PRAGMA synchronous = FULL").await?;
                    // A failed statement (SQLITE_FULL, an I/O error) can make SQLite roll the
                    // transaction back itself; sqlx's ROLLBACK then fails and its count of open
                    // transactions stays up, and every later `begin_with` would be refused.
                    // Such a connection is in a state no one can vouch for: replace it.
                    if sqlx::Connection::is_in_transaction(&*conn) {
                        tracing::warn!(
                            "the database writer was released inside a transaction: it is \
                             closed and a new one opened"
                        );
                        return Ok(false);
                    }
                    Ok(true)
                })
            })
            .connect_with(
                options
                    .clone()
                    .pragma("wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)
                    // Every size of a batch's multi-row appends stays prepared (a few MB).
                    .statement_cache_capacity(WRITER_STATEMENTS),
            )
            .await?;
        sqlx::migrate!("migrations/sqlite").run(&write).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .test_before_acquire(false)
            .connect_with(options.clone().read_only(true))
            .await?;
        let checkpointer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        let alive = Arc::new(());
        let wal = Arc::new(WalSync::start(path)?);
        let _ = wal_sync.set(wal.clone());
        tokio::spawn(checkpoint_in_background(
            checkpointer,
            Arc::downgrade(&alive),
            wal.clone(),
        ));
        Ok(Self {
            read,
            write,
            upper_hashes: Arc::default(),
            decision_cache: Arc::default(),
            wal,
            path: Arc::new(path.to_owned()),
            _alive: alive,
        })
    }

    /// Begins a decision batch's transaction on the writer with `synchronous=NORMAL`: its
    /// commit writes the WAL frames but leaves their fsync to [`Self::commit_batch`].
    async fn begin_batch(&self) -> StoreResult<sqlx::Transaction<'static, Sqlite>> {
        Ok(self
            .write
            .begin_with("PRAGMA synchronous = NORMAL; BEGIN")
            .await?)
    }

    /// Commits a batch, freeing the writer, and hands back the wait for the WAL's fsync.
    /// Nothing is lost to a crash before that fsync but what was never acknowledged: the WAL
    /// is replayed in order and stops at the first frame that did not reach the disk, and
    /// whatever commits with `FULL` later (a consent, a checkpoint) syncs every frame before it.
    async fn commit_batch(
        &self,
        tx: sqlx::Transaction<'static, Sqlite>,
    ) -> StoreResult<Durability> {
        tx.commit().await?;
        Ok(Durability::after(self.wal.durable()))
    }
}

/// Refuses the writer once a write-back failed (see [`WalSync::failure`]).
fn write_back_gate(failed: Option<Arc<std::io::Error>>) -> Result<bool, sqlx::Error> {
    match failed {
        None => Ok(true),
        Some(e) => Err(sqlx::Error::Io(std::io::Error::new(
            e.kind(),
            format!("a write-back to disk failed ({e}): nothing more is written until a restart"),
        ))),
    }
}

/// Below this much free space, the file system holding the database counts as full: a batch's
/// WAL frames, or the WAL growing for a checkpoint that is behind, would not fit for long.
const MIN_FREE_BYTES: u64 = 256 * 1024;

#[async_trait::async_trait]
impl crate::Readiness for SqliteStore {
    /// No failed write-back latched, a file system with room that is not read-only, and the
    /// writer free to begin a write transaction within a second.
    async fn readiness(&self) -> StoreResult<()> {
        if let Some(e) = self.wal.failure() {
            return Err(StoreError::Sync(e));
        }
        file_system_writable(&self.path)?;
        let probe = async {
            let tx = self.write.begin_with("BEGIN IMMEDIATE").await?;
            tx.rollback().await?;
            Ok::<_, StoreError>(())
        };
        tokio::time::timeout(crate::DEFAULT_STORAGE_TIMEOUT, probe)
            .await
            .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolTimedOut))?
    }
}

/// Refuses a file system (the one holding `database`) that is read-only or (nearly) full.
#[cfg(unix)]
fn file_system_writable(database: &Path) -> StoreResult<()> {
    let dir = database
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let fs = rustix::fs::statvfs(dir).map_err(|e| StoreError::File {
        path: dir.display().to_string(),
        source: e.into(),
    })?;
    if fs.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY) {
        return Err(StoreError::CannotWrite(
            "the file system holding the database is read-only".into(),
        ));
    }
    if fs.f_bavail.saturating_mul(fs.f_frsize) < MIN_FREE_BYTES {
        return Err(StoreError::CannotWrite(
            "the file system holding the database is full".into(),
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn file_system_writable(_database: &Path) -> StoreResult<()> {
    Ok(())
}

/// Copies committed WAL frames into the database file, beside the writer: a PASSIVE
/// checkpoint never waits for or blocks a writer or a reader.
///
/// A checkpoint that failed to write or sync the database file is the end of acknowledgements
/// (latched in `wal`, as a failed sync of the WAL is) and of checkpoints: the kernel may have
/// dropped the pages it could not write, and a retry that "succeeded" would let SQLite reuse
/// the WAL over frames the database file never got. A full disk is not such a failure: SQLite
/// wrote nothing, and the checkpoint is retried until there is room.
async fn checkpoint_in_background(pool: SqlitePool, alive: Weak<()>, wal: Arc<WalSync>) {
    while alive.strong_count() > 0 && wal.failure().is_none() {
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            if is_write_back_failure(&e) {
                tracing::error!(error = %e, "the background WAL checkpoint could not write the database file to disk: no further write will be acknowledged until a restart");
                wal.latch(std::io::Error::other(
                    "the background checkpoint could not write the database file to disk",
                ));
            } else {
                tracing::warn!(error = %e, "background WAL checkpoint failed");
            }
        }
        tokio::time::sleep(CHECKPOINT_EVERY).await;
    }
    pool.close().await;
}

/// Whether SQLite reported an I/O error (`SQLITE_IOERR` and its extended codes: a failed
/// write, fsync or truncate), not a full disk or a busy database.
fn is_write_back_failure(e: &sqlx::Error) -> bool {
    const SQLITE_IOERR: u32 = 10;
    e.as_database_error()
        .and_then(|db| db.code())
        .and_then(|code| code.parse::<u32>().ok())
        .is_some_and(|code| code & 0xff == SQLITE_IOERR)
}

/// Creates the database file owner-only if it is missing, and refuses it, or its `-wal` or
/// `-shm` file, when group or others have any access to it.
#[cfg(unix)]
fn owner_only(path: &Path) -> StoreResult<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file_error = |path: &Path, source| crate::StoreError::File {
        path: path.display().to_string(),
        source,
    };
    // INVARIANT: the file exists, owner-only, before SQLite opens it, so SQLite never
    // creates it with its default 0644 (and its -wal and -shm files take this mode).
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(file_error(path, e)),
    }
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let mut shm = path.as_os_str().to_owned();
    shm.push("-shm");
    // The hub must write the database and create its WAL beside it: a read-only directory or
    // file system, or a file it may not open, stops the start here with the file's name and
    // the system's reason, not with SQLite's "unable to open database file" later on.
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| file_error(path, e))?;
    let wal = PathBuf::from(wal);
    // An empty WAL is a valid one (SQLite would create it the same way, with the database's mode).
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&wal)
        .map_err(|e| file_error(&wal, e))?;
    for file in [path.to_path_buf(), wal, shm.into()] {
        let mode = match std::fs::metadata(&file) {
            Ok(m) => m.permissions().mode() & 0o777,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(file_error(&file, e)),
        };
        if mode & 0o077 != 0 {
            return Err(crate::StoreError::OpenToOthers {
                path: file.display().to_string(),
                mode,
            });
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn owner_only(_path: &Path) -> StoreResult<()> {
    Ok(())
}

const PLACEHOLDERS: Placeholders = Placeholders::Anonymous;
/// How multi-row appends begin. `OR FAIL` spares SQLite the statement journal (a copy of
/// every page the statement changes) that the default `ABORT` keeps to undo a half-done
/// statement: a failed append fails, and rolls back, its whole transaction anyway.
const INSERT_ROWS: &str = "INSERT OR FAIL INTO";

// The shared SQL (`sql/`), compiled for this backend: it names the backend only as these.
type Db = Sqlite;
type Backend = SqliteStore;

#[path = "sql/mod.rs"]
#[expect(
    clippy::duplicate_mod,
    reason = "the shared SQL is compiled once per backend on purpose (see sql/mod.rs)"
)]
mod sql;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Readiness, Store};

    async fn writer_synchronous(store: &SqliteStore) -> i64 {
        sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&store.write)
            .await
            .unwrap()
    }

    const FULL: i64 = 2;

    #[tokio::test]
    async fn the_writer_is_back_to_full_sync_after_a_batch_committed_or_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("renkei.db"))
            .await
            .unwrap();
        assert_eq!(writer_synchronous(&store).await, FULL);

        let mut batch = store.begin_batch().await.unwrap();
        let lowered: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *batch)
            .await
            .unwrap();
        assert_eq!(lowered, 1, "a batch commits with NORMAL");
        store
            .commit_batch(batch)
            .await
            .unwrap()
            .wait()
            .await
            .unwrap();
        assert_eq!(writer_synchronous(&store).await, FULL);

        let dropped = store.begin_batch().await.unwrap();
        drop(dropped);
        assert_eq!(writer_synchronous(&store).await, FULL);
    }

    #[tokio::test]
    async fn after_a_failed_write_back_no_write_of_any_kind_is_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("renkei.db"))
            .await
            .unwrap();
        let now = chrono::Utc::now();
        store.ensure_secret("before", b"v", now).await.unwrap();
        // What the background checkpointer does when writing the database file back failed.
        store
            .wal
            .latch(std::io::Error::other("EIO from a checkpoint"));
        let refused = store.ensure_secret("after", b"v", now).await;
        assert!(
            matches!(&refused, Err(e) if e.is_unavailable()),
            "a write after the failure: {refused:?}"
        );
        let batch = store.begin_batch().await;
        assert!(batch.is_err(), "a decision batch after the failure");
        assert!(store.readiness().await.is_err());
        // Reads go on: residents still see what was acknowledged before.
        assert_eq!(store.log_size().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_committed_batch_is_read_back_after_its_sync_and_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("renkei.db");
        let store = SqliteStore::open(&path).await.unwrap();
        let mut batch = store.begin_batch().await.unwrap();
        sqlx::query("UPDATE log_head SET size = size + 3 WHERE id = 1")
            .execute(&mut *batch)
            .await
            .unwrap();
        let durability = store.commit_batch(batch).await.unwrap();
        durability.wait().await.unwrap();
        assert_eq!(store.log_size().await.unwrap(), 3);
        drop(store);
        // Reopened (the WAL replayed or checkpointed), the batch is there.
        let reopened = SqliteStore::open(&path).await.unwrap();
        assert_eq!(reopened.log_size().await.unwrap(), 3);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_database_and_its_wal_and_shm_files_are_the_owners_alone_and_a_readable_one_is_refused()
     {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("renkei.db");
        let store = SqliteStore::open(&path).await.unwrap();
        store
            .ensure_secret("k", b"v", chrono::Utc::now())
            .await
            .unwrap();
        let mode = |suffix: &str| {
            let file = format!("{}{suffix}", path.display());
            std::fs::metadata(file).unwrap().permissions().mode() & 0o777
        };
        for suffix in ["", "-wal", "-shm"] {
            assert_eq!(mode(suffix), 0o600, "renkei.db{suffix}");
        }
        drop(store);
        for suffix in ["", "-wal"] {
            let file = format!("{}{suffix}", path.display());
            // The last connection's close may have removed the WAL: an empty one is valid.
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&file)
                .unwrap();
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
            match SqliteStore::open(&path).await {
                Err(crate::StoreError::OpenToOthers { path: named, mode }) => {
                    assert_eq!((named.as_str(), mode), (file.as_str(), 0o644));
                }
                Err(e) => panic!("refused for another reason: {e}"),
                Ok(_) => panic!("renkei.db{suffix} readable by others was opened"),
            }
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert!(SqliteStore::open(&path).await.is_ok());
    }
}
