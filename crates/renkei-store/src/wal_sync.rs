//! Group fsync of SQLite's write-ahead log, for batches committed without a sync of their own.
//!
//! In WAL mode `synchronous=FULL` is `NORMAL` plus an fsync of the WAL at every commit, made
//! while the commit holds the one writer. The decision batches commit with `NORMAL` instead
//! and ask [`WalSync`] for that fsync afterwards: the writer goes on with the next batch
//! while the disk works, and every batch that committed before an fsync began shares it.

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
                        && let Err(e) = sync(&wal, &database)
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

/// Syncs the WAL's data to disk. Without a WAL the last connection to close has checkpointed
/// it into the database file (syncing it, as `NORMAL` does for checkpoints) and removed it;
/// the database file is synced again to be sure.
fn sync(wal: &Path, database: &Path) -> io::Result<()> {
    match OpenOptions::new().write(true).open(wal) {
        Ok(file) => file.sync_data(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            OpenOptions::new().write(true).open(database)?.sync_all()
        }
        Err(e) => Err(e),
    }
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
}
