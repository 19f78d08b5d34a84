//! The provider kit's own access log: one JSON line per grant it was shown, answered or
//! refused, written and synced before the answer leaves, in a file only its owner can read.
//!
//! It is the provider's audit record, kept beside its other records: it names the
//! resident's reference at this provider (what the provider must be able to answer a
//! resident's or the city's question with), the grant, request, service, purpose and consent
//! (which tie the line to the hub's log) and the outcome. It never holds the data released.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;

/// One line of the log.
#[derive(Debug, Clone, Serialize)]
pub struct AccessLine {
    pub at: DateTime<Utc>,
    /// `served`, or the refusal's problem code.
    pub outcome: String,
    /// The grant's fields, when it verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant: Option<GrantFacts>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GrantFacts {
    pub jti: uuid::Uuid,
    pub request_id: String,
    pub service: String,
    pub purpose: String,
    /// Absent for a release under a declared emergency alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consent: Option<String>,
    /// `consent:<id>` or `emergency:<declaration id>`.
    pub basis: String,
    pub categories: Vec<String>,
    pub reference: String,
}

/// An append-only JSON-lines file.
#[derive(Clone)]
pub struct AccessLog(Arc<Mutex<std::fs::File>>);

impl AccessLog {
    /// Opens (or creates, owner-only) the log at `path` for appending.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let mut options = std::fs::OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        Ok(Self(Arc::new(Mutex::new(options.open(path)?))))
    }

    /// Appends `line` and syncs it, on a blocking thread.
    pub async fn append(&self, line: &AccessLine) -> std::io::Result<()> {
        self.append_all(std::slice::from_ref(line)).await
    }

    /// Appends `lines` and syncs them once (an area list's entries), on a blocking thread.
    pub async fn append_all(&self, lines: &[AccessLine]) -> std::io::Result<()> {
        let mut bytes = Vec::new();
        for line in lines {
            serde_json::to_writer(&mut bytes, line).map_err(std::io::Error::other)?;
            bytes.push(b'\n');
        }
        let file = self.0.clone();
        tokio::task::spawn_blocking(move || {
            let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
            file.write_all(&bytes)?;
            file.sync_data()
        })
        .await
        .map_err(std::io::Error::other)?
    }
}
