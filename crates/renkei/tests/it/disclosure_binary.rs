//! End-to-end: a resident of the demo town downloads their disclosure package from the
//! running `renkei demo`, and the real `renkei verify-package` checks it offline against the
//! hub's published keys, opens the providers' sealed answers with the resident's key, and
//! refuses the package once edited. Neither the hub's database nor its tracing output ever
//! held what the providers sealed (the providers' purchases' shops are the markers).

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::process::{Running, ok, renkei};

/// What the demo payment provider's records hold and nothing of the hub ever names: the shops
/// of its residents' purchases (the guide resident has some at one or more of them).
const MARKERS: [&str; 5] = [
    "ひかり台スーパー",
    "ドラッグストアみなと",
    "ひかり台駅売店",
    "青空ベーカリー",
    "コミュニティバス",
];

fn free_port_block(n: u16) -> u16 {
    for _ in 0..100 {
        let base = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if base < 60000 && (0..n).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
    panic!("no free port block");
}

/// The demo, its tracing (at `debug`) written to `log`.
fn start_demo(dir: &Path, log: &Path, port: u16) -> (Running, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_renkei"))
        .args(["demo", "--data-dir"])
        .arg(dir)
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--provider-port",
            &(port + 1).to_string(),
            "--residents",
            "50",
        ])
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let running = Running(child);
    let hub = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(90);
    // Ready once a resident can sign in: the demo registers its town after the hub serves.
    let resident = guide_resident();
    loop {
        let signed_in = reqwest::blocking::Client::new()
            .post(format!("{hub}/demo/sign-in"))
            .json(&json!({ "resident": resident }))
            .send()
            .is_ok_and(|r| r.status().is_success());
        let providers = reqwest::blocking::get(format!("{hub}/v1/providers"))
            .ok()
            .and_then(|r| r.json::<Value>().ok())
            .and_then(|v| v.as_array().map(Vec::len))
            .unwrap_or(0);
        if signed_in && providers >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "the demo did not come up");
        std::thread::sleep(Duration::from_millis(200));
    }
    // The providers serve once registered; give their listeners a moment.
    std::thread::sleep(Duration::from_millis(500));
    (running, hub)
}

fn guide_resident() -> String {
    let people = renkei::town::people(50, renkei::demo::SEED);
    renkei::demo::guide_resident(&people)
        .unwrap()
        .resident
        .to_string()
}

/// Every file of the hub's SQLite database (main file, WAL, shared memory), as bytes.
fn database_bytes(dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        if let Ok(b) = std::fs::read(dir.join(format!("renkei.db{suffix}"))) {
            bytes.extend(b);
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn a_downloaded_disclosure_package_verifies_with_the_real_command_and_opens_only_with_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let log = dir.path().join("demo.log");
    let port = free_port_block(4);
    let (_demo, hub) = start_demo(&data, &log, port);

    // The resident's key, made by the command (the portal makes one in the browser).
    let key = dir.path().join("my-key.txt");
    let public = ok(&renkei(
        dir.path(),
        &["disclosure-key", "--out", key.to_str().unwrap()],
    ));
    let signed_in: Value = reqwest::blocking::Client::new()
        .post(format!("{hub}/demo/sign-in"))
        .json(&json!({ "resident": guide_resident() }))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let token = signed_in["access_token"].as_str().unwrap();
    let answer = reqwest::blocking::Client::new()
        .post(format!("{hub}/v1/me/disclosures"))
        .bearer_auth(token)
        .json(&json!({ "recipient_key": public.trim() }))
        .send()
        .unwrap();
    assert_eq!(answer.status(), 200);
    let package = answer.text().unwrap();
    for marker in MARKERS {
        assert!(
            !package.contains(marker),
            "`{marker}` is in the package unsealed"
        );
    }
    let file = dir.path().join("package.json");
    std::fs::write(&file, &package).unwrap();

    // Against the hub's published keys, without the resident's key: verified, still sealed.
    let jwks = format!("{hub}/.well-known/jwks.json");
    let log_key = format!("{hub}/log/key");
    let checked = ok(&renkei(
        dir.path(),
        &[
            "verify-package",
            file.to_str().unwrap(),
            "--jwks",
            &jwks,
            "--log-key",
            &log_key,
        ],
    ));
    assert!(checked.starts_with("verified:"), "{checked}");
    assert!(checked.contains("sealed to your key"), "{checked}");
    assert!(MARKERS.iter().all(|m| !checked.contains(m)), "{checked}");

    // With the key, the providers' signed answers open.
    let opened = ok(&renkei(
        dir.path(),
        &[
            "verify-package",
            file.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
    ));
    assert!(
        opened.contains("opened and verified")
            && opened.contains("hba1c_percent")
            && MARKERS.iter().any(|m| opened.contains(m)),
        "{opened}"
    );

    // Edited, it is refused.
    let mut edited: Value = serde_json::from_str(&package).unwrap();
    let entry = edited["log"]["entries"][0]["entry"]
        .as_str()
        .unwrap()
        .replacen("\"at\":\"", "\"at\":\"1", 1);
    edited["log"]["entries"][0]["entry"] = json!(entry);
    let tampered = dir.path().join("tampered.json");
    std::fs::write(&tampered, edited.to_string()).unwrap();
    let refused = renkei(dir.path(), &["verify-package", tampered.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("does not verify"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // The hub relayed ciphertext: its storage and its tracing never held the answers.
    let stored = database_bytes(&data);
    assert!(stored.len() > 4096, "the hub's database was read");
    let traced = std::fs::read(&log).unwrap();
    assert!(!traced.is_empty(), "the demo's tracing was captured");
    for marker in MARKERS {
        assert!(
            !contains(&stored, marker),
            "`{marker}` is in the hub's database"
        );
        assert!(
            !contains(&traced, marker),
            "`{marker}` is in the tracing output"
        );
    }
}
