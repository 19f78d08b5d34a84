//! Onboarding a fresh `renkei serve` with the commands alone: an operator signs in with their
//! card's certificate and key, adds a category, makes a provider's signing key, registers the
//! provider and approves it; the hub then publishes it with that key.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::process::{Running, ok, renkei};
use serde_json::Value;

#[test]
fn an_operator_registers_a_category_and_a_provider_on_a_fresh_hub_with_the_commands_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(&renkei(dir, &["kek", "new", "--out", "kek"]));
    ok(&renkei(
        dir,
        &["dev-ca", "init", "--dir", "ca", "--algorithm", "ecdsa"],
    ));
    ok(&renkei(
        dir,
        &[
            "dev-ca",
            "issue",
            "--dir",
            "ca",
            "--name",
            "田中 一郎",
            "--algorithm",
            "ecdsa",
            "--out",
            "tanaka",
        ],
    ));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hub = format!("http://127.0.0.1:{port}");
    let _serving = Running(
        Command::new(env!("CARGO_BIN_EXE_renkei"))
            .args(["serve", "--database", "hub.db", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["--issuer", &format!("http://localhost:{port}")])
            .args(["--trust-anchor", "ca/root.pem", "--crl", "ca/crl.pem"])
            .env("RENKEI_KEK_FILE", dir.join("kek"))
            .env("RUST_LOG", "warn")
            .current_dir(dir)
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while !reqwest::blocking::get(format!("{hub}/healthz")).is_ok_and(|r| r.status().is_success()) {
        assert!(Instant::now() < deadline, "the hub did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
    let sign_in = [
        "operator",
        "sign-in",
        "--hub",
        &hub,
        "--certificate",
        "tanaka.pem",
        "--key",
        "tanaka-key.pem",
        "--out",
        "operator-token",
    ];
    // Enrolled, but not an operator yet: no token.
    let refused = renkei(dir, &sign_in);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("not an operator"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(!dir.join("operator-token").exists());
    ok(&renkei(
        dir,
        &[
            "operator",
            "add",
            "--database",
            "hub.db",
            "--id",
            "tanaka",
            "--name",
            "田中",
            "--certificate",
            "tanaka.pem",
        ],
    ));
    ok(&renkei(dir, &sign_in));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("operator-token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let as_operator = ["--hub", &hub, "--operator-token-file", "operator-token"];
    let mut add = vec![
        "category",
        "add",
        "--id",
        "health.checkup",
        "--name-ja",
        "健康診断結果",
        "--name-en",
        "Health check results",
        "--special-care",
    ];
    add.extend(as_operator);
    ok(&renkei(dir, &add));

    let jwk = ok(&renkei(
        dir,
        &["provider", "keygen", "--out", "clinic-signing.pem"],
    ));
    std::fs::write(dir.join("clinic.jwk"), &jwk).unwrap();
    let jwk: Value = serde_json::from_str(&jwk).unwrap();
    assert!(jwk.get("d").is_none(), "only the public key is printed");
    std::fs::write(
        dir.join("clinic.toml"),
        r#"
id = "hikari-clinic"
name_ja = "ひかり台クリニック"
name_en = "Hikaridai Clinic"
outbound = true
categories = ["health.checkup"]
public_keys = ["clinic.jwk"]
[contact]
contact = "医療情報管理室"
email = "records@clinic.example.jp"
phone = "+81-3-0000-0000"
[contact.address]
country = "JP"
postal_code = "999-0101"
region = "ひかり県"
locality = "ひかり台市"
street_address = "中央一丁目5番8号"
"#,
    )
    .unwrap();
    let mut register = vec!["provider", "add", "clinic.toml"];
    register.extend(as_operator);
    ok(&renkei(dir, &register));
    let published = || -> Vec<Value> {
        reqwest::blocking::get(format!("{hub}/v1/providers"))
            .unwrap()
            .json()
            .unwrap()
    };
    assert!(published().is_empty(), "pending: not published");
    let mut approve = vec!["provider", "approve", "hikari-clinic"];
    approve.extend(as_operator);
    ok(&renkei(dir, &approve));
    let providers = published();
    assert_eq!(providers.len(), 1);
    assert_eq!(providers[0]["id"], "hikari-clinic");
    assert_eq!(providers[0]["signing_keys"]["keys"][0]["kid"], jwk["kid"]);
    assert_eq!(providers[0]["signing_keys"]["keys"][0]["x"], jwk["x"]);
    let vocabulary: Vec<Value> = reqwest::blocking::get(format!("{hub}/v1/categories"))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(vocabulary[0]["special_care"], true);

    // A token file that is not an operator's is refused by the hub, saying so.
    std::fs::write(dir.join("forged-token"), "not-a-token").unwrap();
    let refused = renkei(
        dir,
        &[
            "provider",
            "suspend",
            "hikari-clinic",
            "--hub",
            &hub,
            "--operator-token-file",
            "forged-token",
        ],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("401"));
}
