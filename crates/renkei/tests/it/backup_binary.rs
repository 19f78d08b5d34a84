//! `renkei backup` and `renkei restore` as processes: a SQLite backup of the demo hub taken
//! while it answers data requests, restored into a new file, passes the restore drill, and the
//! restored hub serves the same signed checkpoint; a backup whose log lost an entry, or was cut
//! short below its manifest's checkpoint, fails the drill. The PostgreSQL variant runs with
//! `RENKEI_TEST_POSTGRES_URL` and PostgreSQL's client tools (skipped, saying why, without).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Connection};

use crate::demo_binary::{Demo, free_port_block, guide_resident, post, service_token};
use crate::log_tamper::{Backend, Log, database_url};
use crate::process::{Running, ok, renkei};

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn manifest(backup: &Path) -> Value {
    let path = format!("{}.manifest.json", backup.display());
    assert_eq!(mode(Path::new(&path)), 0o600, "the manifest is owner-only");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Stdout and stderr of a command that must fail.
fn failed(out: &std::process::Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    text
}

fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_sqlite_backup_taken_while_the_demo_serves_restores_passes_the_drill_and_serves_the_same_checkpoint()
 {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port_block(5);
    let demo = Demo::start(&data, port);
    let hub = demo.hub.clone();

    // A service asks for data all along: every answer is an entry of the log.
    let (status, signed_in) = post(
        &format!("{hub}/demo/sign-in"),
        None,
        json!({ "resident": guide_resident() }),
    );
    assert_eq!(status, 200);
    let me = signed_in["access_token"].as_str().unwrap().to_owned();
    let (status, granted) = post(
        &format!("{hub}/v1/me/consents"),
        Some(&me),
        json!({ "service": "health-advice", "purpose": "health-advice" }),
    );
    assert_eq!(status, 201, "{granted}");
    let subject = granted["subject"].as_str().unwrap().to_owned();
    let svc = service_token(&hub, &data);
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let load = std::thread::spawn({
        let (stop, answered, hub) = (stop.clone(), answered.clone(), hub.clone());
        move || {
            let request = json!({ "subject": subject, "purpose": "health-advice", "categories": ["health.checkup"] });
            while !stop.load(Ordering::Relaxed) {
                let (status, body) = post(
                    &format!("{hub}/v1/data-requests"),
                    Some(&svc),
                    request.clone(),
                );
                assert_eq!(status, 200, "{body}");
                answered.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    wait_for("data requests answered", || {
        answered.load(Ordering::Relaxed) >= 5
    });

    let backup = dir.path().join("backups").join("hub.backup");
    std::fs::create_dir(dir.path().join("backups")).unwrap();
    let database = data.join("renkei.db");
    let printed = ok(&renkei(
        dir.path(),
        &[
            "backup",
            "--database",
            database.to_str().unwrap(),
            "--out",
            backup.to_str().unwrap(),
        ],
    ));
    let during = answered.load(Ordering::Relaxed);
    wait_for("data requests answered after the backup", || {
        answered.load(Ordering::Relaxed) >= during + 3
    });
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    assert!(printed.contains("backup of sqlite written"), "{printed}");
    assert_eq!(mode(&backup), 0o600, "the backup is owner-only");
    let manifest = manifest(&backup);
    assert_eq!(manifest["backend"], "sqlite", "{manifest}");
    let size = manifest["checkpoint"]["size"].as_u64().unwrap();
    let root = manifest["checkpoint"]["root"].as_str().unwrap().to_owned();
    assert!(manifest["log_size"].as_u64().unwrap() >= size, "{manifest}");

    // Restored into a new file, with the KEK kept apart from the backup.
    let restored = dir.path().join("restored").join("hub.db");
    let kek = data.join("kek");
    let restore = [
        "restore",
        "--from",
        backup.to_str().unwrap(),
        "--database",
        restored.to_str().unwrap(),
        "--kek-file",
        kek.to_str().unwrap(),
    ];
    let drill = ok(&renkei(dir.path(), &restore));
    assert!(drill.contains("restore drill OK"), "{drill}");
    assert!(
        drill.contains(&format!("checkpoint {size} (root {root})")),
        "{drill}"
    );
    assert_eq!(
        mode(&restored),
        0o600,
        "the restored database is owner-only"
    );
    // Never over an existing database without --force.
    let refused = failed(&renkei(dir.path(), &restore));
    assert!(refused.contains("unless --force"), "{refused}");
    let mut forced = restore.to_vec();
    forced.push("--force");
    assert!(ok(&renkei(dir.path(), &forced)).contains("restore drill OK"));
    drop(demo);

    // The restored hub starts, under the demo's issuer, and serves the same checkpoint.
    let again = free_port_block(1);
    let _hub = Running(
        Command::new(env!("CARGO_BIN_EXE_renkei"))
            .args(["serve", "--database", restored.to_str().unwrap()])
            .args(["--listen", &format!("127.0.0.1:{again}")])
            .args(["--issuer", &format!("http://localhost:{port}")])
            .args(["--kek-file", kek.to_str().unwrap()])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let restored_hub = format!("http://127.0.0.1:{again}");
    wait_for("the restored hub coming up", || {
        reqwest::blocking::get(format!("{restored_hub}/healthz"))
            .is_ok_and(|r| r.status().is_success())
    });
    let served = reqwest::blocking::get(format!("{restored_hub}/log/checkpoints/{size}"))
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(served, manifest["checkpoint"]["note"].as_str().unwrap());
    let latest = reqwest::blocking::get(format!("{restored_hub}/log/checkpoint"))
        .unwrap()
        .text()
        .unwrap();
    let latest_size: u64 = latest.lines().nth(1).unwrap().parse().unwrap();
    assert!(latest_size >= size, "{latest}");
}

/// A copy of `backup` (and its manifest) at `to`, changed by `sql` run as a tamperer with
/// write access to the file, after dropping the append-only triggers.
async fn tampered(backup: &Path, to: &Path, sql: &str) {
    std::fs::copy(backup, to).unwrap();
    std::fs::copy(
        format!("{}.manifest.json", backup.display()),
        format!("{}.manifest.json", to.display()),
    )
    .unwrap();
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(to);
    let mut c = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    let sql = format!(
        "DROP TRIGGER access_records_no_delete; DROP TRIGGER consent_events_no_delete;
         DROP TRIGGER log_leaves_no_delete; DROP TRIGGER log_checkpoints_no_delete; {sql}"
    );
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_backup_whose_log_lost_entries_fails_the_restore_drill() {
    let log = Log::build(Backend::Sqlite).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("hub.backup");
    ok(&renkei(
        dir.path(),
        &[
            "backup",
            "--database",
            &log.database,
            "--out",
            backup.to_str().unwrap(),
        ],
    ));
    let restore = |from: &Path, to: &str| {
        renkei(
            dir.path(),
            &[
                "restore",
                "--from",
                from.to_str().unwrap(),
                "--database",
                to,
                "--key",
                &log.key,
            ],
        )
    };
    assert!(ok(&restore(&backup, "untouched.db")).contains("restore drill OK"));

    // An entry in the middle removed: the drill names it.
    let middle = log.position("access", log.size / 2);
    let deleted = dir.path().join("deleted.backup");
    tampered(
        &backup,
        &deleted,
        &format!("DELETE FROM access_records WHERE seq = {middle};"),
    )
    .await;
    let verdict = failed(&restore(&deleted, "deleted.db"));
    assert!(verdict.contains("the restore drill failed"), "{verdict}");
    assert!(
        verdict.contains(&format!("FIRST BAD ENTRY: {middle}:")),
        "{verdict}"
    );

    // The newest entry and every checkpoint over it removed, the head shrunk: storage agrees
    // with itself, and only the manifest's checkpoint tells.
    let last = log.size - 1;
    let cut = dir.path().join("cut.backup");
    tampered(
        &backup,
        &cut,
        &format!(
            "DELETE FROM access_records WHERE seq = {last};
             DELETE FROM consent_events WHERE log_seq = {last};
             DELETE FROM log_leaves WHERE seq = {last};
             DELETE FROM log_checkpoints WHERE size > {last};
             UPDATE log_head SET size = size - 1 WHERE id = 1;"
        ),
    )
    .await;
    let verdict = failed(&restore(&cut, "cut.db"));
    assert!(
        verdict.contains(&format!(
            "checkpoint {} is beyond the log's {last} entries",
            log.size
        )),
        "{verdict}"
    );
    log.remove().await;
}

/// Whether PostgreSQL's client tools are on PATH.
fn pg_tools() -> bool {
    ["pg_dump", "pg_restore"].iter().all(|tool| {
        Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_backup_restores_into_an_empty_database_and_passes_the_drill() {
    let Ok(url) = std::env::var("RENKEI_TEST_POSTGRES_URL") else {
        eprintln!(
            "skipped: RENKEI_TEST_POSTGRES_URL is not set, the PostgreSQL backup did not run"
        );
        return;
    };
    if !pg_tools() {
        eprintln!(
            "skipped: pg_dump or pg_restore is not on PATH, the PostgreSQL backup did not run"
        );
        return;
    }
    let log = Log::build(Backend::Postgres).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("hub.dump");
    let printed = ok(&renkei(
        dir.path(),
        &[
            "backup",
            "--database",
            &log.database,
            "--out",
            backup.to_str().unwrap(),
        ],
    ));
    assert!(printed.contains("backup of postgres written"), "{printed}");
    assert_eq!(mode(&backup), 0o600, "the dump is owner-only");
    let manifest = manifest(&backup);
    assert_eq!(manifest["checkpoint"]["size"].as_u64(), Some(log.size));

    // Without PostgreSQL's own tools there is no backup, and the operator is told why.
    let missing = Command::new(env!("CARGO_BIN_EXE_renkei"))
        .args(["backup", "--database", &log.database, "--out"])
        .arg(dir.path().join("never.dump"))
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    let missing = failed(&missing);
    assert!(missing.contains("`pg_dump` was not found"), "{missing}");
    assert!(!dir.path().join("never.dump").exists());

    let name = format!("renkei_restore_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap();
    let target = database_url(&url, &name);
    let restore = [
        "restore",
        "--from",
        backup.to_str().unwrap(),
        "--database",
        &target,
        "--key",
        &log.key,
    ];
    let drill = ok(&renkei(dir.path(), &restore));
    assert!(drill.contains("restore drill OK"), "{drill}");
    assert!(
        drill.contains(&format!("{} entries verified", log.size)),
        "{drill}"
    );
    // Never into a database that holds anything.
    let refused = failed(&renkei(dir.path(), &restore));
    assert!(
        refused.contains("restore into an empty database"),
        "{refused}"
    );
    let _ = sqlx::query(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await;
    log.remove().await;
}
