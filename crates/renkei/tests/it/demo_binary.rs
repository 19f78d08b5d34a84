//! End-to-end: the real `renkei` binary running the demo town, driven over HTTP like the
//! README's walk-through, including a crash (kill -9) in the middle.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub(crate) fn free_port_block(n: u16) -> u16 {
    // Find `n` consecutive free ports (the demo puts its providers after the hub's).
    for _ in 0..100 {
        let base = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if base > 60000 {
            continue;
        }
        if (0..n).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
    panic!("no free port block");
}

pub(crate) struct Demo {
    child: Child,
    pub(crate) hub: String,
    /// What the demo printed so far.
    printed: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Demo {
    pub(crate) fn start(data_dir: &Path, port: u16) -> Demo {
        let mut child = Command::new(env!("CARGO_BIN_EXE_renkei"))
            .args(["demo", "--data-dir"])
            .arg(data_dir)
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--provider-port",
                &(port + 1).to_string(),
                "--residents",
                "200",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let printed = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut stdout = child.stdout.take().unwrap();
        let sink = printed.clone();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stdout.read(&mut buf) {
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let hub = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        // Ready once the guide is printed: the hub serves first, then the demo registers its
        // town through the API and starts the providers.
        loop {
            if printed.lock().unwrap().contains("is running")
                && reqwest::blocking::get(format!("{hub}/healthz"))
                    .is_ok_and(|r| r.status().is_success())
            {
                break;
            }
            assert!(Instant::now() < deadline, "the demo did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
        Demo {
            child,
            hub,
            printed,
        }
    }

    /// The line after the one that starts with `heading`, once the demo printed it.
    fn printed_after(&self, heading: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let printed = self.printed.lock().unwrap().clone();
            let mut lines = printed.lines().skip_while(|l| !l.starts_with(heading));
            if let (Some(_), Some(next)) = (lines.next(), lines.next()) {
                return next.trim().to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "the demo never printed {heading:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill_9(mut self) {
        // SIGKILL: no shutdown code runs, as in a crash.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn post(url: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let client = reqwest::blocking::Client::new();
    let mut req = client.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

fn get(url: &str, token: &str) -> Value {
    reqwest::blocking::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .unwrap()
        .json()
        .unwrap()
}

/// The client secret the hub showed the demo operator when it registered the service.
fn client_secret(data_dir: &Path, service: &str) -> String {
    std::fs::read_to_string(data_dir.join("service-secrets").join(service))
        .unwrap()
        .trim()
        .to_owned()
}

pub(crate) fn service_token(hub: &str, data_dir: &Path) -> String {
    let r: Value = reqwest::blocking::Client::new()
        .post(format!("{hub}/oauth/token"))
        .basic_auth(
            "health-advice",
            Some(client_secret(data_dir, "health-advice")),
        )
        .form(&[("grant_type", "client_credentials")])
        .send()
        .unwrap()
        .json()
        .unwrap();
    r["access_token"].as_str().unwrap().to_owned()
}

/// The walk-through resident: the first with records at every provider (see `demo::guide_resident`).
pub(crate) fn guide_resident() -> String {
    let people = renkei::town::people(200, renkei::demo::SEED);
    renkei::demo::guide_resident(&people)
        .unwrap()
        .resident
        .to_string()
}

#[test]
fn the_demo_walk_through_works_and_survives_a_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port_block(4);
    let demo = Demo::start(dir.path(), port);
    let hub = demo.hub.clone();

    // The log's verifier key is printed for an auditor to keep, as the hub publishes it.
    let published = reqwest::blocking::get(format!("{hub}/log/key"))
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(
        demo.printed_after("Access log verifier key"),
        published.trim()
    );

    let resident = guide_resident();
    let (status, signed_in) = post(
        &format!("{hub}/demo/sign-in"),
        None,
        json!({ "resident": resident }),
    );
    assert_eq!(status, 200);
    let me = signed_in["access_token"].as_str().unwrap().to_owned();

    let (status, granted) = post(
        &format!("{hub}/v1/me/consents"),
        Some(&me),
        json!({ "service": "health-advice", "purpose": "health-advice" }),
    );
    assert_eq!(status, 201, "{granted}");
    let consent_id = granted["consent"]["id"].as_str().unwrap().to_owned();
    let subject = granted["subject"].as_str().unwrap().to_owned();

    let svc = service_token(&hub, dir.path());
    let request = json!({ "subject": subject, "purpose": "health-advice", "categories": ["health.checkup", "payment.history"] });
    let (status, data) = post(
        &format!("{hub}/v1/data-requests"),
        Some(&svc),
        request.clone(),
    );
    assert_eq!(status, 200, "{data}");
    assert_eq!(data["complete"], json!(true));
    assert_eq!(data["results"].as_array().unwrap().len(), 2);

    // The service opens the payloads with its key and verifies each against the provider
    // keys the hub publishes, as `renkei decrypt` does.
    let key = dir.path().join("service-keys/health-advice.key");
    let mut decrypt = Command::new(env!("CARGO_BIN_EXE_renkei"))
        .args([
            "decrypt",
            "--service",
            "health-advice",
            "--hub",
            &hub,
            "--key",
        ])
        .arg(&key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    decrypt
        .stdin
        .take()
        .unwrap()
        .write_all(data.to_string().as_bytes())
        .unwrap();
    let out = decrypt.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("hba1c_percent") && text.contains("amount_jpy"),
        "{text}"
    );
    assert!(
        text.contains("hikari-clinic (ひかり台クリニック): verified"),
        "{text}"
    );
    assert!(
        !data.to_string().contains("hba1c_percent"),
        "the hub relayed plaintext"
    );

    // Crash right after the revocation was acknowledged: it must still hold.
    let (status, revoked) = post(
        &format!("{hub}/v1/me/consents/{consent_id}/revoke"),
        Some(&me),
        json!({}),
    );
    assert_eq!(status, 200, "{revoked}");
    demo.kill_9();

    let demo = Demo::start(dir.path(), port);
    let hub = demo.hub.clone();
    let svc = service_token(&hub, dir.path());
    let (status, denied) = post(&format!("{hub}/v1/data-requests"), Some(&svc), request);
    assert_eq!(status, 403);
    assert_eq!(denied["type"], json!("/problems/consent-revoked"));

    let (_, signed_in) = post(
        &format!("{hub}/demo/sign-in"),
        None,
        json!({ "resident": resident }),
    );
    let me = signed_in["access_token"].as_str().unwrap().to_owned();
    let records = get(&format!("{hub}/v1/me/access-records"), &me);
    let outcomes: Vec<&str> = records["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["granted", "denied"],
        "both decisions survived the crash, in order"
    );
    let consents = get(&format!("{hub}/v1/me/consents"), &me);
    assert_eq!(consents[0]["state"], json!("revoked"));
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Runs `renkei` to its end (it should refuse to start) and returns its exit status and
/// standard error.
fn refused(args: &[&str]) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_renkei"))
        .args(args)
        .env_remove("RENKEI_KEK")
        .env_remove("RENKEI_KEK_FILE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "renkei {args:?} started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[cfg(unix)]
#[test]
fn the_demo_keeps_its_files_owner_only_and_serve_and_demo_refuse_a_database_others_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port_block(4);
    let demo = Demo::start(&data, port);
    let db = data.join("renkei.db");
    let mut secrets = vec![
        db.clone(),
        data.join("renkei.db-wal"),
        data.join("renkei.db-shm"),
        data.join("kek"),
    ];
    for sub in ["service-keys", "dev-ca"] {
        for entry in std::fs::read_dir(data.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            if path.to_string_lossy().ends_with(".key")
                || path.to_string_lossy().contains("key.pem")
            {
                secrets.push(path);
            }
        }
    }
    assert!(secrets.len() >= 8, "{secrets:?}");
    for path in &secrets {
        assert_eq!(mode(path), 0o600, "{}", path.display());
    }
    assert_eq!(mode(&data), 0o700, "the data directory");
    demo.kill_9();

    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let fix = format!("chmod 600 {}", db.display());
    let (status, stderr) = refused(&[
        "demo",
        "--data-dir",
        data.to_str().unwrap(),
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--provider-port",
        &(port + 1).to_string(),
    ]);
    assert!(!status.success());
    assert!(stderr.contains(&fix), "demo: {stderr}");
    let kek = data.join("kek");
    let (status, stderr) = refused(&[
        "serve",
        "--database",
        db.to_str().unwrap(),
        "--kek-file",
        kek.to_str().unwrap(),
        "--issuer",
        "http://127.0.0.1:1",
        "--listen",
        &format!("127.0.0.1:{port}"),
    ]);
    assert!(!status.success());
    assert!(stderr.contains(&fix), "serve: {stderr}");
    assert_eq!(mode(&db), 0o644, "the file is left for its owner to fix");
}

/// What one resident's client was told before the crash.
#[derive(Default)]
struct Acknowledged {
    /// Data requests answered (granted or denied): each has an access record.
    requests: Vec<String>,
    /// Consents whose grant was answered 201.
    granted: Vec<String>,
    /// Consents whose revocation was answered 200.
    revoked: Vec<String>,
}

/// A resident who keeps saying yes and no to health advice while the service reads their
/// data, until the hub stops answering.
fn resident_under_load(
    hub: &str,
    secret: &str,
    resident: &str,
    stop: &std::sync::atomic::AtomicBool,
) -> Acknowledged {
    use std::sync::atomic::Ordering;
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut acked = Acknowledged::default();
    let send = |req: reqwest::blocking::RequestBuilder| -> Option<(u16, Value)> {
        let r = req.send().ok()?;
        let status = r.status().as_u16();
        Some((status, r.json().ok()?))
    };
    let Some((200, signed_in)) = send(
        client
            .post(format!("{hub}/demo/sign-in"))
            .json(&json!({ "resident": resident })),
    ) else {
        return acked;
    };
    let me = signed_in["access_token"].as_str().unwrap().to_owned();
    let Some((200, token)) = send(
        client
            .post(format!("{hub}/oauth/token"))
            .basic_auth("health-advice", Some(secret))
            .form(&[("grant_type", "client_credentials")]),
    ) else {
        return acked;
    };
    let service = token["access_token"].as_str().unwrap().to_owned();
    while !stop.load(Ordering::Relaxed) {
        let grant = client
            .post(format!("{hub}/v1/me/consents"))
            .bearer_auth(&me)
            .json(&json!({ "service": "health-advice", "purpose": "health-advice" }));
        let (consent, subject) = match send(grant) {
            Some((201, granted)) => {
                let id = granted["consent"]["id"].as_str().unwrap().to_owned();
                acked.granted.push(id.clone());
                (id, granted["subject"].as_str().unwrap().to_owned())
            }
            // Granted before an earlier crash, or by a round whose answer was lost: withdraw
            // it and start again.
            Some((409, problem)) => {
                let id = problem["consent_id"].as_str().unwrap();
                match send(
                    client
                        .post(format!("{hub}/v1/me/consents/{id}/revoke"))
                        .bearer_auth(&me)
                        .json(&json!({})),
                ) {
                    Some((200, _)) => acked.revoked.push(id.to_owned()),
                    _ => return acked,
                }
                continue;
            }
            _ => return acked,
        };
        for _ in 0..3 {
            let request = client
                .post(format!("{hub}/v1/data-requests"))
                .bearer_auth(&service)
                .json(&json!({ "subject": subject, "purpose": "health-advice", "categories": ["health.checkup", "payment.history"] }));
            match send(request) {
                Some((200 | 403 | 502, answer)) => {
                    acked
                        .requests
                        .push(answer["request_id"].as_str().unwrap().to_owned());
                }
                _ => return acked,
            }
        }
        match send(
            client
                .post(format!("{hub}/v1/me/consents/{consent}/revoke"))
                .bearer_auth(&me)
                .json(&json!({})),
        ) {
            Some((200, _)) => acked.revoked.push(consent),
            _ => return acked,
        }
    }
    acked
}

#[test]
fn acknowledged_decisions_and_consent_changes_survive_kill_9_under_load() {
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    const ROUNDS: usize = 3;
    const CLIENTS: usize = 16;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port_block(4);
    let people = renkei::town::people(200, renkei::demo::SEED);
    let db = dir.path().join("renkei.db");
    let mut all = Acknowledged::default();
    for round in 0..ROUNDS {
        let demo = Demo::start(dir.path(), port);
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = people[..CLIENTS]
            .iter()
            .map(|p| {
                let (hub, resident, stop) =
                    (demo.hub.clone(), p.resident.to_string(), stop.clone());
                let secret = client_secret(dir.path(), "health-advice");
                std::thread::spawn(move || resident_under_load(&hub, &secret, &resident, &stop))
            })
            .collect();
        // The crash comes at a different point of each round, with every client mid-request.
        std::thread::sleep(Duration::from_millis(1_500 + 400 * round as u64));
        demo.kill_9();
        stop.store(true, Ordering::Relaxed);
        for client in clients {
            let acked = client.join().unwrap();
            all.requests.extend(acked.requests);
            all.granted.extend(acked.granted);
            all.revoked.extend(acked.revoked);
        }
    }
    assert!(
        all.requests.len() > 100 && all.revoked.len() > 20,
        "too little load to tell: {} requests, {} revocations",
        all.requests.len(),
        all.revoked.len()
    );

    // What the crash images hold, read straight from the database.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (records, consents) = runtime.block_on(async {
        use sqlx::Connection;
        let mut db = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let records: Vec<(String,)> = sqlx::query_as("SELECT request_id FROM access_records")
            .fetch_all(&mut db)
            .await
            .unwrap();
        let consents: Vec<(String, Option<i64>)> =
            sqlx::query_as("SELECT id, revoked_at FROM consents")
                .fetch_all(&mut db)
                .await
                .unwrap();
        (records, consents)
    });
    let records: HashSet<String> = records.into_iter().map(|(r,)| r).collect();
    let stored: std::collections::HashMap<String, Option<i64>> = consents.into_iter().collect();
    let lost_requests = all
        .requests
        .iter()
        .filter(|r| !records.contains(*r))
        .count();
    let lost_grants = all
        .granted
        .iter()
        .filter(|c| !stored.contains_key(*c))
        .count();
    let lost_revocations = all
        .revoked
        .iter()
        .filter(|c| !matches!(stored.get(*c), Some(Some(_))))
        .count();
    eprintln!(
        "kill -9 x{ROUNDS} under {CLIENTS} clients: acknowledged {} decisions ({} stored in all), \
         {} grants, {} revocations; lost {lost_requests}, {lost_grants}, {lost_revocations}",
        all.requests.len(),
        records.len(),
        all.granted.len(),
        all.revoked.len()
    );
    assert_eq!(
        (lost_requests, lost_grants, lost_revocations),
        (0, 0, 0),
        "every acknowledged write survives a crash"
    );

    // And the crash images make one verifiable log.
    let out = Command::new(env!("CARGO_BIN_EXE_renkei"))
        .args(["log", "verify", "--database"])
        .arg(&db)
        .arg("--kek-file")
        .arg(dir.path().join("kek"))
        .env_remove("RENKEI_KEK")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
