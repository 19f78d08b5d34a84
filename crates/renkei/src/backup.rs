//! `renkei backup` and `renkei restore`: a consistent copy of a running hub's database (SQLite's
//! `VACUUM INTO`, PostgreSQL's `pg_dump`), a manifest beside it naming the log's latest signed
//! checkpoint at backup time, and the restore drill: the restored log is verified as `renkei
//! log verify` does, and must extend the manifest's checkpoint, so a backup that lost or
//! altered entries is found when it is restored, not when it is needed.

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Utc};
use renkei::run::{self, KekArgs};
use renkei_log::checkpoint::Checkpoint;
use serde::{Deserialize, Serialize};
use sqlx::Connection;

/// `renkei backup`.
#[derive(clap::Args)]
pub struct BackupArgs {
    /// The hub's database: a SQLite file path, or a `postgres://` URL. The hub may be running.
    #[arg(long, env = "RENKEI_DATABASE", default_value = "renkei-data/renkei.db")]
    database: String,
    /// The backup file to write (never over an existing one), owner-only; its manifest is
    /// written beside it as `<out>.manifest.json`.
    #[arg(long)]
    out: PathBuf,
}

/// `renkei restore`.
#[derive(clap::Args)]
pub struct RestoreArgs {
    /// The backup file `renkei backup` wrote.
    #[arg(long)]
    from: PathBuf,
    /// The backup's manifest; by default `<from>.manifest.json`.
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Where to restore: a new SQLite file path, or the `postgres://` URL of an empty database.
    #[arg(long)]
    database: String,
    /// Replace an existing SQLite database at `--database` (never a non-empty PostgreSQL one).
    #[arg(long)]
    force: bool,
    /// The log's verifier key (`GET /log/key`) the drill checks with; by default the one in
    /// the restored database, opened with the KEK.
    #[arg(long)]
    key: Option<String>,
    /// Opens the stored key when `--key` is not given.
    #[command(flatten)]
    kek: KekArgs,
}

/// What `renkei backup` writes beside a backup: what the log held when it was taken, for the
/// restore drill to hold the restored log to.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    /// `sqlite` or `postgres`.
    backend: String,
    taken_at: DateTime<Utc>,
    /// How many entries the log held just before the copy was taken.
    log_size: u64,
    /// The latest signed checkpoint just before the copy was taken (none on a new log).
    checkpoint: Option<ManifestCheckpoint>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ManifestCheckpoint {
    size: u64,
    /// Lowercase hex.
    root: String,
    /// The C2SP signed note, as `GET /log/checkpoint` serves it.
    note: String,
}

fn is_postgres(database: &str) -> bool {
    database.starts_with("postgres://") || database.starts_with("postgresql://")
}

fn manifest_path(backup: &Path) -> PathBuf {
    suffixed(backup, ".manifest.json")
}

/// `path` with `suffix` after its whole name.
fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// `renkei backup`: the manifest's facts are read before the copy, so the copy (taken later
/// of an append-only log) holds at least what the manifest says.
pub async fn backup(args: BackupArgs) -> anyhow::Result<()> {
    let postgres = is_postgres(&args.database);
    // Opening a missing SQLite path would create an empty database, and back that up.
    anyhow::ensure!(
        postgres || Path::new(&args.database).is_file(),
        "`{}` is not a SQLite database file",
        args.database
    );
    let store = run::open_store(&args.database).await?;
    let log_size = store.log_size().await?;
    let checkpoint = store
        .latest_checkpoint()
        .await?
        .map(|c| ManifestCheckpoint {
            size: c.size,
            root: c.root.to_string(),
            note: c.note,
        });
    let manifest = Manifest {
        backend: if postgres { "postgres" } else { "sqlite" }.to_owned(),
        taken_at: Utc::now(),
        log_size,
        checkpoint,
    };
    drop(store);
    // Made owner-only and empty before anything writes into it: `VACUUM INTO` takes an empty
    // file, and `pg_dump` keeps the mode of the file it truncates.
    create_private_empty(&args.out)?;
    let copied = if postgres {
        pg_dump(&args.database, &args.out).await
    } else {
        vacuum_into(Path::new(&args.database), &args.out).await
    };
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&args.out);
        return Err(e);
    }
    let manifest_file = manifest_path(&args.out);
    run::write_private_file(&manifest_file, &serde_json::to_vec_pretty(&manifest)?)?;
    let at = match &manifest.checkpoint {
        Some(c) => format!("checkpoint {} (root {})", c.size, c.root),
        None => "no checkpoint yet".to_owned(),
    };
    println!(
        "backup of {} written to {} ({} log entries, {at}); manifest {}. Keep the KEK apart \
         from it: without the KEK the hub's secrets in the backup cannot be opened",
        manifest.backend,
        args.out.display(),
        manifest.log_size,
        manifest_file.display()
    );
    Ok(())
}

fn create_private_empty(path: &Path) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).with_context(|| {
        format!(
            "creating {} (an existing file is never replaced)",
            path.display()
        )
    })?;
    Ok(())
}

/// An online, consistent copy: SQLite writes one read transaction's snapshot of the database
/// (WAL included) to `out`, while the hub goes on writing.
async fn vacuum_into(database: &Path, out: &Path) -> anyhow::Result<()> {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(database)
        .read_only(true)
        .busy_timeout(std::time::Duration::from_secs(30));
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .with_context(|| format!("opening {}", database.display()))?;
    sqlx::query("VACUUM INTO ?")
        .bind(out.to_string_lossy().into_owned())
        .execute(&mut conn)
        .await
        .with_context(|| format!("copying {} into {}", database.display(), out.display()))?;
    conn.close().await?;
    // Owner-only, like the database, even if SQLite made the file anew.
    #[cfg(unix)]
    std::fs::set_permissions(out, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(())
}

/// A PostgreSQL URL without its password, and the password (for `PGPASSWORD`): a password on
/// a tool's command line is visible to every user of the machine.
fn split_password(url: &str) -> anyhow::Result<(String, Option<String>)> {
    let mut parsed = reqwest::Url::parse(url).context("reading the PostgreSQL URL")?;
    let password = parsed.password().map(percent_decode).transpose()?;
    if password.is_some() {
        parsed
            .set_password(None)
            .map_err(|()| anyhow::anyhow!("the PostgreSQL URL cannot carry a password"))?;
    }
    Ok((parsed.to_string(), password))
}

fn percent_decode(s: &str) -> anyhow::Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(v) = u8::from_str_radix(hex, 16)
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).context("the PostgreSQL URL's password is not UTF-8")
}

/// Runs one of PostgreSQL's client tools against `url`, failing clearly if it is missing.
async fn pg_tool(tool: &str, url: &str, args: &[&std::ffi::OsStr]) -> anyhow::Result<()> {
    let (url, password) = split_password(url)?;
    let mut command = tokio::process::Command::new(tool);
    command.args(args).arg("--dbname").arg(url);
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    let out = match command.output().await {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
            "`{tool}` was not found: PostgreSQL backups go through PostgreSQL's own tools; \
             install its client programs (Debian: `postgresql-client`, the server's major \
             version or newer) and put them on PATH"
        ),
        Err(e) => return Err(e).with_context(|| format!("running `{tool}`")),
    };
    anyhow::ensure!(
        out.status.success(),
        "`{tool}` failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

async fn pg_dump(url: &str, out: &Path) -> anyhow::Result<()> {
    pg_tool(
        "pg_dump",
        url,
        &[
            "--format=custom".as_ref(),
            "--file".as_ref(),
            out.as_os_str(),
        ],
    )
    .await
}

/// `renkei restore`, then the drill.
pub async fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let manifest_file = args
        .manifest
        .clone()
        .unwrap_or_else(|| manifest_path(&args.from));
    let manifest: Manifest = serde_json::from_slice(
        &std::fs::read(&manifest_file)
            .with_context(|| format!("reading the manifest {}", manifest_file.display()))?,
    )
    .with_context(|| format!("reading the manifest {}", manifest_file.display()))?;
    let postgres = is_postgres(&args.database);
    let target = if postgres { "postgres" } else { "sqlite" };
    anyhow::ensure!(
        manifest.backend == target,
        "the backup is of a {} database and cannot be restored into a {target} one",
        manifest.backend
    );
    if postgres {
        restore_postgres(&args.from, &args.database).await?;
    } else {
        restore_sqlite(&args.from, Path::new(&args.database), args.force)?;
    }
    println!("restored {} into {}", args.from.display(), args.database);
    drill(&args, &manifest).await
}

fn restore_sqlite(from: &Path, target: &Path, force: bool) -> anyhow::Result<()> {
    anyhow::ensure!(
        force || !target.exists(),
        "`{}` exists: restoring never replaces a database unless --force is given",
        target.display()
    );
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        run::create_private_dir(dir)?;
    }
    // Copied aside and renamed into place, so a failed copy leaves no half database.
    let partial = suffixed(target, ".restoring");
    let _ = std::fs::remove_file(&partial);
    create_private_empty(&partial)?;
    std::fs::copy(from, &partial).with_context(|| format!("reading {}", from.display()))?;
    std::fs::File::open(&partial)?.sync_all()?;
    // A replaced database's write-ahead log belongs to it, not to the restored one.
    for suffix in ["-wal", "-shm"] {
        match std::fs::remove_file(suffixed(target, suffix)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
    }
    std::fs::rename(&partial, target)
        .with_context(|| format!("moving the restored database to {}", target.display()))?;
    Ok(())
}

async fn restore_postgres(from: &Path, url: &str) -> anyhow::Result<()> {
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .context("connecting to the PostgreSQL database to restore into")?;
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_catalog.pg_tables \
         WHERE schemaname NOT IN ('pg_catalog', 'information_schema')",
    )
    .fetch_one(&mut conn)
    .await?;
    conn.close().await?;
    anyhow::ensure!(
        tables == 0,
        "the database to restore into holds {tables} tables: restore into an empty database \
         (`CREATE DATABASE …`), never over one"
    );
    pg_tool(
        "pg_restore",
        url,
        &[
            "--no-owner".as_ref(),
            "--exit-on-error".as_ref(),
            "--single-transaction".as_ref(),
            from.as_os_str(),
        ],
    )
    .await
}

/// The restore drill: the restored log verified as `renkei log verify` verifies it, with the
/// manifest's checkpoint pinned, so the restored log must hold it and extend it.
async fn drill(args: &RestoreArgs, manifest: &Manifest) -> anyhow::Result<()> {
    let store = run::open_store(&args.database).await?;
    let verifier = match &args.key {
        Some(k) => k
            .trim()
            .parse()
            .context("--key is not a signed-note verifier key")?,
        None => run::stored_log_verifier(store.as_ref(), &args.kek.read()?).await?,
    };
    let pinned: Vec<String> = manifest.checkpoint.iter().map(|c| c.note.clone()).collect();
    let report = renkei_hub::log::verify(store.as_ref(), &verifier, &pinned, &[]).await?;
    for c in &report.bad_checkpoints {
        println!("BAD CHECKPOINT: {c}");
    }
    for m in &report.state_mismatches {
        println!("STATE DIFFERS FROM THE LOG: {m}");
    }
    if let Some((seq, why)) = &report.first_bad_entry {
        println!("FIRST BAD ENTRY: {seq}: {why}");
    }
    anyhow::ensure!(
        report.ok(),
        "the restore drill failed: the restored log does not verify (see above); do not serve \
         from this database"
    );
    anyhow::ensure!(
        report.entries >= manifest.log_size,
        "the restore drill failed: the restored log holds {} entries, fewer than the {} the \
         log held when the backup was taken",
        report.entries,
        manifest.log_size
    );
    let checkpoint = match &manifest.checkpoint {
        Some(c) => {
            // The size and root printed are the signed note's, not the manifest's say-so.
            let signed = Checkpoint::open(c.note.as_bytes(), verifier.name(), &verifier)
                .context("the manifest's checkpoint does not verify")?;
            anyhow::ensure!(
                signed.size() == c.size && signed.root().to_string() == c.root,
                "the manifest's checkpoint size and root are not those of its signed note"
            );
            format!(
                "the backup's checkpoint {} (root {}) is in it and the log extends it",
                signed.size(),
                signed.root()
            )
        }
        None => "the backup's manifest names no checkpoint (a new log)".to_owned(),
    };
    println!(
        "restore drill OK: {} entries verified against {} signed checkpoints (the manifest's \
         among them); {checkpoint}",
        report.entries, report.checkpoints
    );
    Ok(())
}
