//! Faults the fault tests inject into storage, touching only what the test itself made.
//!
//! [`OwnDatabase`] is a PostgreSQL database of the test's own, which it can make refuse
//! connections (`ALLOW_CONNECTIONS false` and `pg_terminate_backend` of its own sessions)
//! and allow again; no other database on the server is ever touched. [`SmallFileSystem`] is
//! a tmpfs of a few megabytes the test mounts for itself, fills, frees or makes read-only.

use sqlx::{AssertSqlSafe, Connection, PgConnection};

/// A fresh PostgreSQL database made for one test.
pub struct OwnDatabase {
    /// The URL the test's store connects with.
    pub url: String,
    /// The server's URL the helper administers the database through (another database).
    admin_url: String,
    /// `renkei_fault_<uuid>`: made here, so never another test's or anyone's database.
    name: String,
}

impl OwnDatabase {
    /// Creates a database of its own on the server `admin_url` points at.
    pub async fn create(admin_url: &str) -> sqlx::Result<Self> {
        let name = format!("renkei_fault_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(admin_url).await?;
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await?;
        Ok(Self {
            url: with_database(admin_url, &name),
            admin_url: admin_url.to_owned(),
            name,
        })
    }

    /// From `RENKEI_TEST_POSTGRES_URL`, or `None` (the caller says it skipped) when unset.
    pub async fn from_env() -> Option<Self> {
        let Ok(url) = std::env::var("RENKEI_TEST_POSTGRES_URL") else {
            eprintln!(
                "skipped: RENKEI_TEST_POSTGRES_URL is not set, PostgreSQL fault tests did not run"
            );
            return None;
        };
        Some(Self::create(&url).await.unwrap_or_else(|e| {
            panic!("creating a test database on RENKEI_TEST_POSTGRES_URL failed: {e}")
        }))
    }

    /// Takes the database away as an outage would: new connections are refused and the
    /// open ones (this database's only) are terminated.
    pub async fn make_unavailable(&self) -> sqlx::Result<()> {
        let mut admin = PgConnection::connect(&self.admin_url).await?;
        sqlx::query(AssertSqlSafe(format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS false",
            self.name
        )))
        .execute(&mut admin)
        .await?;
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&self.name)
        .execute(&mut admin)
        .await?;
        Ok(())
    }

    /// Ends the outage: connections are accepted again.
    pub async fn make_available(&self) -> sqlx::Result<()> {
        let mut admin = PgConnection::connect(&self.admin_url).await?;
        sqlx::query(AssertSqlSafe(format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS true",
            self.name
        )))
        .execute(&mut admin)
        .await?;
        Ok(())
    }
}

/// A tmpfs of a given size mounted on a fresh directory, unmounted (and the directory
/// removed) on drop.
pub struct SmallFileSystem {
    dir: std::path::PathBuf,
}

impl SmallFileSystem {
    /// Mounts one of `size` (`mount`'s spelling, e.g. `16m`); `None`, having said why, where
    /// the kernel refuses (not root, no `CAP_SYS_ADMIN`).
    pub fn mount(size: &str) -> Option<Self> {
        let dir = std::env::temp_dir().join(format!("renkei-fs-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&dir).unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(&dir)
            .output();
        let refused = match mounted {
            Ok(out) if out.status.success() => return Some(Self { dir }),
            Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            Err(e) => e.to_string(),
        };
        let _ = std::fs::remove_dir(&dir);
        eprintln!(
            "skipped: mounting a small tmpfs was refused ({refused}): this file-system fault \
             test needs root or CAP_SYS_ADMIN"
        );
        None
    }

    pub fn path(&self) -> &std::path::Path {
        &self.dir
    }

    /// Fills what space is left with a file of its own, and returns that file's path.
    pub fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let filler = self.dir.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        for size in [64 * 1024, 4096, 512, 1] {
            let block = vec![0u8; size];
            while file.write(&block).is_ok_and(|n| n > 0) {}
        }
        filler
    }

    /// Remounts it read-only (refused while a file on it is open for writing).
    pub fn make_read_only(&self) -> std::io::Result<()> {
        let out = std::process::Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.dir)
            .output()?;
        if out.status.success() {
            Ok(())
        } else {
            Err(std::io::Error::other(
                String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            ))
        }
    }
}

impl Drop for SmallFileSystem {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// `url` naming database `name` instead (the query string kept).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_own_database_url_keeps_the_server_and_the_query() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/test?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }
}
