//! End-to-end: the real `renkei keys` commands rotate, list and retire the hub's signing keys
//! in storage (one EdDSA and one RS256 key per rotation), and refuse to retire the last
//! published key of an algorithm or an unknown one.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails loudly"
)]

use std::process::{Command, Output};

fn renkei(database: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_renkei"))
        .args(args)
        .env("RENKEI_DATABASE", database)
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
