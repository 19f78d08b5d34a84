//! End-to-end: the real `renkei dev-ca` commands make a root, a resident's certificate and a
//! challenge signature that `renkei_identity::verify_enrolment` accepts, and a revocation that
//! it then honours (DESIGN.md flow 6, tried without a My Number card).
use std::path::Path;
use std::process::{Command, Output};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use renkei_identity::{EnrolmentError, TrustAnchors, parse_chain, verify_enrolment};

fn renkei(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_renkei"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

/// Runs `renkei args...`, which must succeed; returns its standard output.
fn ok(args: &[&str]) -> String {
    let out = renkei(args);
    assert!(
        out.status.success(),
        "renkei {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn anchors(dir: &Path) -> TrustAnchors {
    TrustAnchors::new(&[std::fs::read(dir.join("root.pem")).unwrap()])
        .unwrap()
        .with_crls(&[std::fs::read(dir.join("crl.pem")).unwrap()])
        .unwrap()
}

fn enrol(
    dir: &Path,
    prefix: &str,
    challenge: &[u8],
    signature: &str,
) -> Result<String, EnrolmentError> {
    let chain = parse_chain(&std::fs::read_to_string(format!("{prefix}.pem")).unwrap()).unwrap();
    let signature = URL_SAFE_NO_PAD.decode(signature.trim()).unwrap();
    verify_enrolment(&anchors(dir), &chain, challenge, &signature, Utc::now())
        .map(|identity| identity.attributes.name)
}

#[test]
fn init_issue_sign_verifies_and_revoke_is_then_refused() {
    for (root, resident) in [("rsa", "rsa"), ("ecdsa", "ecdsa"), ("ecdsa", "rsa")] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ca");
        let d = dir.to_str().unwrap();

        let out = ok(&["dev-ca", "init", "--dir", d, "--algorithm", root]);
        assert!(
            out.contains("root.pem") && out.contains("root-key.pem") && out.contains("crl.pem"),
            "{out}"
        );

        let prefix = tmp.path().join("hanako");
        let p = prefix.to_str().unwrap();
        let out = ok(&[
            "dev-ca",
            "issue",
            "--dir",
            d,
            "--name",
            "山田 花子",
            "--algorithm",
            resident,
            "--days",
            "30",
            "--out",
            p,
            "--birth-date",
            "1988-04-01",
        ]);
        assert!(
            out.contains(&format!("{p}.pem")) && out.contains(&format!("{p}-key.pem")),
            "{out}"
        );

        let challenge = b"challenge from the hub: 5b1e0c";
        let signature = ok(&[
            "dev-ca",
            "sign",
            "--key",
            &format!("{p}-key.pem"),
            "--challenge",
            &URL_SAFE_NO_PAD.encode(challenge),
        ]);
        assert_eq!(
            enrol(&dir, p, challenge, &signature).unwrap(),
            "山田 花子",
            "{root}/{resident}"
        );
        assert_eq!(
            enrol(&dir, p, b"another challenge", &signature),
            Err(EnrolmentError::BadSignature)
        );

        let out = ok(&[
            "dev-ca",
            "revoke",
            "--dir",
            d,
            "--cert",
            &format!("{p}.pem"),
        ]);
        assert!(
            out.contains("revoked serial") && out.contains("1 revoked"),
            "{out}"
        );
        assert_eq!(
            enrol(&dir, p, challenge, &signature),
            Err(EnrolmentError::Revoked)
        );

        // A resident issued after the revocation is still accepted.
        let other = tmp.path().join("taro");
        let o = other.to_str().unwrap();
        ok(&[
            "dev-ca",
            "issue",
            "--dir",
            d,
            "--name",
            "Taro",
            "--algorithm",
            resident,
            "--out",
            o,
        ]);
        let signature = ok(&[
            "dev-ca",
            "sign",
            "--key",
            &format!("{o}-key.pem"),
            "--challenge",
            &URL_SAFE_NO_PAD.encode(challenge),
        ]);
        assert_eq!(enrol(&dir, o, challenge, &signature).unwrap(), "Taro");
    }
}

#[test]
fn the_issued_private_key_is_readable_by_its_owner_only() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    ok(&["dev-ca", "init", "--dir", d, "--algorithm", "ecdsa"]);
    let out = ok(&[
        "dev-ca",
        "issue",
        "--dir",
        d,
        "--name",
        "Hanako",
        "--algorithm",
        "ecdsa",
    ]);
    // Without --out the files go into the CA's directory, named by serial.
    let key = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("private key: "))
        .unwrap();
    assert!(key.starts_with(d) && key.ends_with("-key.pem"), "{out}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for file in [key.to_owned(), format!("{d}/root-key.pem")] {
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{file}: {mode:o}");
        }
    }
}

#[test]
fn mistakes_are_refused_with_a_clear_message_and_a_failing_exit() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    let fails = |args: &[&str], expected: &str| {
        let out = renkei(args);
        assert!(!out.status.success(), "renkei {} succeeded", args.join(" "));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(expected),
            "renkei {}: {stderr}",
            args.join(" ")
        );
    };
    fails(
        &["dev-ca", "issue", "--dir", d, "--name", "Hanako"],
        "dev-ca init",
    );
    ok(&["dev-ca", "init", "--dir", d, "--algorithm", "ecdsa"]);
    fails(
        &["dev-ca", "init", "--dir", d],
        "already holds a development CA",
    );
    fails(
        &["dev-ca", "init", "--dir", d, "--algorithm", "dsa"],
        "unknown key algorithm `dsa`",
    );
    fails(
        &["dev-ca", "issue", "--dir", d, "--name", " "],
        "the name is empty",
    );
    fails(
        &[
            "dev-ca", "issue", "--dir", d, "--name", "Hanako", "--days", "0",
        ],
        "--days",
    );
    let root = format!("{d}/root.pem");
    fails(
        &["dev-ca", "sign", "--key", &root, "--challenge", "AAAA"],
        "signing with",
    );
    let key = format!("{d}/root-key.pem");
    fails(
        &[
            "dev-ca",
            "sign",
            "--key",
            &key,
            "--challenge",
            "not base64!",
        ],
        "base64url",
    );
    let other = tempfile::tempdir().unwrap();
    let o = other.path().to_str().unwrap();
    ok(&["dev-ca", "init", "--dir", o, "--algorithm", "ecdsa"]);
    ok(&[
        "dev-ca",
        "issue",
        "--dir",
        o,
        "--name",
        "Hanako",
        "--algorithm",
        "ecdsa",
        "--out",
        &format!("{o}/h"),
    ]);
    fails(
        &[
            "dev-ca",
            "revoke",
            "--dir",
            d,
            "--cert",
            &format!("{o}/h.pem"),
        ],
        "not issued by this development CA",
    );
}
