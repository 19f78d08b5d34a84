//! End-to-end: the real `renkei keys` commands rotate, list and retire the hub's signing keys
//! in storage (one EdDSA and one RS256 key per rotation), and refuse to retire the last
//! published key of an algorithm or an unknown one; `renkei kek` makes a key-encryption key
//! and rewraps every stored secret under a new one; with a PKCS#11 token (SoftHSM2, from
//! `.ci/softhsm-setup`) `renkei keys rotate` makes the keys in it and `renkei serve` needs it.
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The key-encryption key these tests' databases are wrapped under (`RENKEI_KEK`).
const KEK: &str = "iJpk9zrIMCgSjI8LGI63ARlU1unHUJmkrJb6SE5B6F0";

fn renkei(database: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_renkei"))
        .args(args)
        .env("RENKEI_DATABASE", database)
        .env("RENKEI_KEK", KEK)
        .env_remove("RENKEI_KEK_FILE")
        .env_remove("RENKEI_PKCS11_MODULE")
        .env_remove("RENKEI_PKCS11_TOKEN")
        .env_remove("RENKEI_PKCS11_PIN_FILE")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn ok(database: &str, args: &[&str]) -> String {
    let out = renkei(database, args);
    assert!(
        out.status.success(),
        "renkei {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The kids `renkei keys rotate` printed: EdDSA, then RS256.
fn rotated_kids(out: &str) -> (String, String) {
    let kid = |alg: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("new {alg} key ")))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no {alg} key in the rotate output: {out}"))
            .to_owned()
    };
    (kid("EdDSA"), kid("RS256"))
}

#[test]
fn keys_rotate_list_and_retire_and_the_last_key_cannot_be_retired() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("renkei.db").display().to_string();

    let (delayed, delayed_rs) = rotated_kids(&ok(&database, &["keys", "rotate"]));
    let listed = ok(&database, &["keys", "list"]);
    assert!(
        listed.contains(&format!("{delayed}  EdDSA  signs from"))
            && listed.contains(&format!("{delayed_rs}  RS256  signs from"))
            && listed.contains("published, not signing yet"),
        "{listed}"
    );

    for (kid, alg) in [(&delayed, "EdDSA"), (&delayed_rs, "RS256")] {
        let refused = renkei(&database, &["keys", "retire", kid]);
        assert!(!refused.status.success());
        let why = String::from_utf8_lossy(&refused.stderr);
        assert!(
            why.contains(&format!("is the only published {alg} key")),
            "{why}"
        );
    }

    let (now, now_rs) = rotated_kids(&ok(
        &database,
        &["keys", "rotate", "--activate-after-minutes", "0"],
    ));
    ok(&database, &["keys", "retire", &delayed]);
    ok(&database, &["keys", "retire", &delayed_rs]);
    let listed = ok(&database, &["keys", "list"]);
    let line = |kid: &str| {
        listed
            .lines()
            .find(|l| l.starts_with(kid))
            .unwrap_or_else(|| panic!("{kid} not listed: {listed}"))
            .to_owned()
    };
    assert!(line(&delayed).contains("retired"), "{listed}");
    assert!(line(&delayed_rs).contains("retired"), "{listed}");
    assert!(line(&now).ends_with("published"), "{listed}");
    assert!(line(&now_rs).ends_with("published"), "{listed}");

    let unknown = renkei(&database, &["keys", "retire", "no-such-key"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("`no-such-key`"));
}

#[test]
fn a_kid_that_begins_with_a_hyphen_is_taken_as_a_kid_not_an_option() {
    // RFC 7638 kids are base64url: about one key in 64 has a kid beginning with `-`.
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("renkei.db").display().to_string();
    ok(&database, &["keys", "rotate"]);
    let unknown = renkei(&database, &["keys", "retire", "-2xYz"]);
    assert!(!unknown.status.success());
    let why = String::from_utf8_lossy(&unknown.stderr);
    assert!(why.contains("`-2xYz`"), "{why}");
}

/// `renkei` with its KEK from a file only.
fn with_kek_file(database: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_renkei"));
    command
        .args(args)
        .env("RENKEI_DATABASE", database)
        .env_remove("RENKEI_KEK")
        .env_remove("RENKEI_KEK_FILE")
        .env_remove("RENKEI_PKCS11_MODULE")
        .env_remove("RENKEI_PKCS11_TOKEN")
        .env_remove("RENKEI_PKCS11_PIN_FILE")
        .env("RUST_LOG", "warn");
    command
}

/// A `renkei serve` that answered `/healthz`, or its standard error if it exited instead.
fn serve(database: &str, kek: &Path) -> Result<(Child, String), String> {
    serve_with(database, kek, &[])
}

/// [`serve`] with more environment variables.
fn serve_with(
    database: &str,
    kek: &Path,
    env: &[(&str, String)],
) -> Result<(Child, String), String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let mut child = with_kek_file(database, &["serve", "--issuer", &url, "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--kek-file")
        .arg(kek)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        if reqwest::blocking::get(format!("{url}/healthz")).is_ok_and(|r| r.status().is_success()) {
            return Ok((child, url));
        }
        assert!(Instant::now() < deadline, "renkei serve did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The published key ids of a running hub.
fn published_kids(url: &str) -> Vec<String> {
    let jwks: serde_json::Value = reqwest::blocking::get(format!("{url}/.well-known/jwks.json"))
        .unwrap()
        .json()
        .unwrap();
    let mut kids: Vec<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    kids.sort();
    kids
}

fn stop(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Every secret as the database holds it: `hub_secrets` rows and private signing keys.
fn stored_secrets(database: &str) -> Vec<(String, Vec<u8>)> {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use sqlx::Connection;
        let mut db = sqlx::SqliteConnection::connect(&format!("sqlite://{database}"))
            .await
            .unwrap();
        let mut rows: Vec<(String, Vec<u8>)> =
            sqlx::query_as("SELECT name, value FROM hub_secrets")
                .fetch_all(&mut db)
                .await
                .unwrap();
        rows.extend(
            sqlx::query_as::<_, (String, Vec<u8>)>("SELECT kid, pkcs8 FROM signing_keys")
                .fetch_all(&mut db)
                .await
                .unwrap(),
        );
        rows.sort();
        rows
    })
}

#[cfg(unix)]
#[test]
fn kek_rotate_rewraps_every_secret_so_that_only_the_new_kek_opens_the_database() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("renkei.db").display().to_string();
    let (old, new) = (dir.path().join("old.kek"), dir.path().join("new.kek"));
    for file in [&old, &new] {
        let made = with_kek_file(&database, &["kek", "new", "--out"])
            .arg(file)
            .output()
            .unwrap();
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
        let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
    let before = std::fs::read(&old).unwrap();
    let again = with_kek_file(&database, &["kek", "new", "--out"])
        .arg(&old)
        .output()
        .unwrap();
    assert!(
        !again.status.success(),
        "an existing KEK file is never replaced"
    );
    assert_eq!(std::fs::read(&old).unwrap(), before);

    // A hub creates its secrets under the old KEK; a rotation adds two more keys.
    let (hub, url) = serve(&database, &old).unwrap();
    let kids = published_kids(&url);
    stop(hub);
    let rotated = with_kek_file(&database, &["keys", "rotate", "--kek-file"])
        .arg(&old)
        .output()
        .unwrap();
    assert!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    let wrapped = stored_secrets(&database);
    assert_eq!(
        wrapped.len(),
        5 + 4,
        "five hub secrets and four signing keys: {wrapped:?}"
    );

    let out = with_kek_file(&database, &["kek", "rotate", "--old"])
        .arg(&old)
        .arg("--new")
        .arg(&new)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("9 secrets rewrapped"));
    let rewrapped = stored_secrets(&database);
    assert_eq!(rewrapped.len(), wrapped.len(), "no secret added or lost");
    for ((slot, was), (same_slot, now)) in wrapped.iter().zip(&rewrapped) {
        assert_eq!(slot, same_slot);
        assert_ne!(was, now, "{slot} was rewrapped");
    }

    let refused = serve(&database, &old)
        .map(|(hub, _)| stop(hub))
        .unwrap_err();
    assert!(refused.contains("not under the one given"), "{refused}");
    assert_eq!(
        stored_secrets(&database),
        rewrapped,
        "a refused start changes nothing"
    );
    let (hub, url) = serve(&database, &new).unwrap();
    let after = published_kids(&url);
    stop(hub);
    assert_eq!(after.len(), 4);
    assert!(
        kids.iter().all(|k| after.contains(k)),
        "the same keys, opened with the new KEK"
    );
    assert_eq!(
        stored_secrets(&database),
        rewrapped,
        "nothing was created over them"
    );

    // Rotating again from the old KEK finds the secrets are not under it, and changes nothing.
    let stale = with_kek_file(&database, &["kek", "rotate", "--old"])
        .arg(&old)
        .arg("--new")
        .arg(&new)
        .output()
        .unwrap();
    assert!(!stale.status.success());
    assert_eq!(stored_secrets(&database), rewrapped);
}

/// `renkei`'s variables for the SoftHSM2 token `.ci/softhsm-setup` made, or `None` (saying
/// the test is skipped) when its `RENKEI_TEST_PKCS11_*` variables are not set.
fn token_env(test: &str) -> Option<Vec<(&'static str, String)>> {
    let Ok(module) = std::env::var("RENKEI_TEST_PKCS11_MODULE") else {
        eprintln!(
            "skipped {test}: RENKEI_TEST_PKCS11_MODULE is not set (eval \"$(.ci/softhsm-setup)\")"
        );
        return None;
    };
    let var = |name: &str| std::env::var(name).unwrap();
    Some(vec![
        ("RENKEI_PKCS11_MODULE", module),
        ("RENKEI_PKCS11_TOKEN", var("RENKEI_TEST_PKCS11_TOKEN")),
        ("RENKEI_PKCS11_PIN_FILE", var("RENKEI_TEST_PKCS11_PIN_FILE")),
    ])
}

/// A `signing_keys` row: kid, alg, pkcs8, token, token_object_id.
type KeyRow = (
    String,
    String,
    Option<Vec<u8>>,
    Option<String>,
    Option<Vec<u8>>,
);

#[cfg(unix)]
#[test]
fn keys_rotate_with_a_token_makes_the_keys_in_it_and_serve_needs_that_token() {
    use std::os::unix::fs::PermissionsExt;
    let Some(env) = token_env("keys_rotate_with_a_token") else {
        return;
    };
    let value = |name: &str| env.iter().find(|(k, _)| *k == name).unwrap().1.clone();
    let label = value("RENKEI_PKCS11_TOKEN");
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("renkei.db").display().to_string();
    let kek = dir.path().join("kek");
    assert!(
        with_kek_file(&database, &["kek", "new", "--out"])
            .arg(&kek)
            .output()
            .unwrap()
            .status
            .success()
    );
    let rotate = |env: &[(&str, String)]| {
        with_kek_file(
            &database,
            &["keys", "rotate", "--activate-after-minutes", "0"],
        )
        .arg("--kek-file")
        .arg(&kek)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap()
    };

    // A PIN file other users can read is refused before anything is done.
    let open_pin = dir.path().join("pin");
    std::fs::copy(value("RENKEI_PKCS11_PIN_FILE"), &open_pin).unwrap();
    std::fs::set_permissions(&open_pin, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut careless = env.clone();
    careless.retain(|(k, _)| *k != "RENKEI_PKCS11_PIN_FILE");
    careless.push(("RENKEI_PKCS11_PIN_FILE", open_pin.display().to_string()));
    let refused = rotate(&careless);
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(why.contains("open to other users"), "{why}");

    let out = rotate(&env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.contains(&format!("(kept in PKCS#11 token `{label}`)")),
        "{out}"
    );
    let (eddsa, rs256) = rotated_kids(&out);
    let listed = ok(&database, &["keys", "list"]);
    for kid in [&eddsa, &rs256] {
        let line = listed
            .lines()
            .find(|l| l.starts_with(kid.as_str()))
            .unwrap();
        assert!(line.ends_with(&format!("in token `{label}`")), "{listed}");
    }

    // The database names the objects and holds no private key; the token holds the keys.
    let rows: Vec<KeyRow> = tokio::runtime::Runtime::new().unwrap().block_on(async {
        use sqlx::Connection;
        let mut db = sqlx::SqliteConnection::connect(&format!("sqlite://{database}"))
            .await
            .unwrap();
        sqlx::query_as("SELECT kid, alg, pkcs8, token, token_object_id FROM signing_keys")
            .fetch_all(&mut db)
            .await
            .unwrap()
    });
    assert_eq!(rows.len(), 2, "only the two rotated keys");
    let token = renkei_hub::pkcs11::Token::open(&renkei_hub::pkcs11::Pkcs11Config {
        module: value("RENKEI_PKCS11_MODULE").into(),
        token: label.clone(),
        pin: zeroize::Zeroizing::new(
            std::fs::read_to_string(value("RENKEI_PKCS11_PIN_FILE")).unwrap(),
        ),
    })
    .unwrap();
    for (kid, alg, pkcs8, in_token, object_id) in rows {
        assert!(pkcs8.is_none(), "{kid}: a private key in the database");
        assert_eq!(in_token.as_deref(), Some(label.as_str()));
        let alg = renkei_domain::SigningAlg::parse(&alg).unwrap();
        let found = token.describe(alg, &object_id.unwrap()).unwrap();
        assert_eq!(found.kid, kid, "the token holds {kid}");
    }

    // A hub with the token publishes these keys and makes no other; without it, it stops.
    let (hub, url) = serve_with(&database, &kek, &env).unwrap();
    let mut expected = vec![eddsa.clone(), rs256.clone()];
    expected.sort();
    assert_eq!(published_kids(&url), expected);
    stop(hub);
    let refused = serve(&database, &kek)
        .map(|(hub, _)| stop(hub))
        .unwrap_err();
    assert!(
        refused.contains(&format!("kept in PKCS#11 token `{label}`")),
        "{refused}"
    );
}
