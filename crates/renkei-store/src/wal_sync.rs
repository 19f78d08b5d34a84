//! Group fsync of SQLite's write-ahead log, for batches committed without a sync of their own.
//!
//! In WAL mode `synchronous=FULL` is `NORMAL` plus an fsync of the WAL at every commit, made
//! while the commit holds the one writer. The decision batches commit with `NORMAL` instead
//! and ask [`WalSync`] for that fsync afterwards: the writer goes on with the next batch
//! while the disk works, and every batch that committed before an fsync began shares it.
//!
//! The WAL is synced through one file descriptor, opened before any frame is written and kept
//! while the file lives: on Linux a write-back error is reported to the descriptors open when
//! it happened, and one opened afterwards would sync "successfully" past the lost pages.

use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};

use tokio::sync::oneshot;

use crate::{StoreError, StoreResult};

type Outcome = Result<(), Arc<io::Error>>;

/// The handle of the thread that syncs one database's WAL; the thread ends with the last handle.
pub(crate) struct WalSync {
    requests: mpsc::Sender<oneshot::Sender<Outcome>>,
    /// The first failed write-back, for good once set.
    failed: Arc<OnceLock<Arc<io::Error>>>,
}

impl WalSync {
    /// Starts the sync thread for the database file at `database`.
    pub(crate) fn start(database: &Path) -> StoreResult<Self> {
        let mut wal = database.as_os_str().to_owned();
        wal.push("-wal");
        let (wal, database) = (PathBuf::from(wal), database.to_owned());
        let mut file = WalFile::new(wal, database);
        file.open_current()
            .map_err(|e| StoreError::Sync(Arc::new(e)))?;
        let (requests, waiting) = mpsc::channel::<oneshot::Sender<Outcome>>();
        let failed = Arc::new(OnceLock::new());
        let latch = Arc::clone(&failed);
        std::thread::Builder::new()
            .name("renkei-wal-sync".into())
            .spawn(move || {
                // Once an fsync failed, the kernel may have dropped the dirty pages it could not
                // write, and a later fsync can succeed without them: the WAL on disk would then
                // stop before frames a later success claimed. So a failure is for good, as
                // PostgreSQL does it; a restart recovers from what is really on disk.
                let failed = latch;
                while let Ok(first) = waiting.recv() {
                    // INVARIANT: every waiter here asked after its commit returned, so its
                    // frames were written before this fsync begins and are covered by it.
                    let mut group = vec![first];
                    group.extend(waiting.try_iter());
                    if failed.get().is_none()
                        && let Err(e) = file.sync()
                    {
                        tracing::error!(error = %e, "syncing the WAL failed: no further decision batch will be acknowledged until a restart");
                        let _ = failed.set(Arc::new(e));
                    }
                    let outcome = failed.get().cloned().map_or(Ok(()), Err);
                    for waiter in group {
                        let _ = waiter.send(outcome.clone());
                    }
                }
            })
            .map_err(|e| StoreError::Sync(Arc::new(e)))?;
        Ok(Self { requests, failed })
    }

    /// The write-back failure that stopped acknowledgements, if one did.
    pub(crate) fn failure(&self) -> Option<Arc<io::Error>> {
        self.failed.get().cloned()
    }

    /// Stops acknowledgements for good, as a failed sync of the WAL does: another writer of
    /// the database's files (the background checkpointer) failed to get its writes to disk.
    pub(crate) fn latch(&self, e: io::Error) {
        let _ = self.failed.set(Arc::new(e));
    }

    /// Resolves once everything committed before this call is on disk.
    pub(crate) fn durable(
        &self,
    ) -> impl std::future::Future<Output = StoreResult<()>> + Send + 'static {
        let (reply, outcome) = oneshot::channel();
        let asked = self.requests.send(reply);
        async move {
            let stopped =
                || StoreError::Sync(Arc::new(io::Error::other("the WAL sync thread stopped")));
            asked.map_err(|_| stopped())?;
            outcome
                .await
                .map_err(|_| stopped())?
                .map_err(StoreError::Sync)
        }
    }
}

/// The WAL as the sync thread holds it: one descriptor for as long as the file lives.
struct WalFile {
    wal: PathBuf,
    database: PathBuf,
    /// The open WAL and which file it is (device and inode).
    held: Option<(std::fs::File, FileId)>,
}

impl WalFile {
    fn new(wal: PathBuf, database: PathBuf) -> Self {
        Self {
            wal,
            database,
            held: None,
        }
    }

    /// Holds the WAL now at the path, unless it is the one held already. `false` if there is
    /// none.
    fn open_current(&mut self) -> io::Result<bool> {
        let meta = match std::fs::metadata(&self.wal) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.held = None;
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        let id = file_id(&meta);
        if self
            .held
            .as_ref()
            .is_none_or(|(_, held)| id.is_none() || *held != id)
        {
            // A new WAL: the last connection's close checkpointed, synced and removed the old
            // one, so nothing of it is left to report.
            let file = OpenOptions::new().write(true).open(&self.wal)?;
            self.held = Some((file, id));
        }
        Ok(true)
    }

    /// Syncs the WAL's data to disk. Without a WAL the last connection to close has
    /// checkpointed it into the database file (syncing it, as `NORMAL` does for checkpoints)
    /// and removed it; the database file is synced again to be sure.
    fn sync(&mut self) -> io::Result<()> {
        if self.open_current()?
            && let Some((file, _)) = &self.held
        {
            return file.sync_data();
        }
        OpenOptions::new()
            .write(true)
            .open(&self.database)?
            .sync_all()
    }
}

/// Device and inode: which file a path names now.
type FileId = Option<(u64, u64)>;

#[cfg(unix)]
fn file_id(meta: &std::fs::Metadata) -> FileId {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn file_id(_meta: &std::fs::Metadata) -> FileId {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sync_that_failed_once_fails_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("renkei.db");
        std::fs::write(&database, b"").unwrap();
        let sync = WalSync::start(&database).unwrap();
        sync.durable().await.unwrap();

        // A WAL that cannot be opened for writing (here a directory) fails the sync...
        let wal = dir.path().join("renkei.db-wal");
        std::fs::create_dir(&wal).unwrap();
        assert!(matches!(sync.durable().await, Err(StoreError::Sync(_))));
        // ...and once the cause is gone, nothing is acknowledged any more all the same.
        std::fs::remove_dir(&wal).unwrap();
        assert!(matches!(sync.durable().await, Err(StoreError::Sync(_))));
    }

    /// The files this process holds open, by the path each descriptor names.
    #[cfg(target_os = "linux")]
    fn open_files() -> Vec<PathBuf> {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
            .collect()
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_wal_is_synced_through_one_descriptor_held_from_before_its_first_frame() {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("renkei.db");
        let wal = dir.path().join("renkei.db-wal");
        std::fs::write(&database, b"").unwrap();
        std::fs::write(&wal, b"").unwrap();
        let sync = WalSync::start(&database).unwrap();
        // Held from the start, so a write-back error after this point is reported to it.
        assert_eq!(open_files().iter().filter(|f| **f == wal).count(), 1);
        sync.durable().await.unwrap();
        sync.durable().await.unwrap();
        assert_eq!(open_files().iter().filter(|f| **f == wal).count(), 1);

        // A WAL removed and made anew (the last connection closed, another opened) is a new
        // file: the sync follows it.
        std::fs::remove_file(&wal).unwrap();
        std::fs::write(&wal, b"").unwrap();
        sync.durable().await.unwrap();
        assert_eq!(open_files().iter().filter(|f| **f == wal).count(), 1);
    }
}
