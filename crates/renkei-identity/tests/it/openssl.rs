//! Checks against an outside implementation, the `openssl` command-line tool: certificates,
//! CRLs and challenge signatures that OpenSSL makes are judged as ours are, and what the
//! development CA makes, OpenSSL verifies. Skipped, saying so, where `openssl` is absent.
use std::path::Path;
use std::process::Command;

use crate::common::*;
use renkei_identity::{
    DevCa, EnrolmentError, KeyAlgorithm, TrustAnchors, parse_chain, sign_challenge,
    verify_enrolment,
};

fn openssl_present() -> bool {
    let present = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        eprintln!("SKIPPED: the `openssl` command is not installed, so this check did not run");
    }
    present
}

/// Runs `openssl args...` in `dir`, failing the test with OpenSSL's own words.
fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn write(dir: &Path, name: &str, contents: &[u8]) {
    std::fs::write(dir.join(name), contents).unwrap();
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap()
}

const RESIDENT_EXT: &str = "basicConstraints=critical,CA:FALSE\n\
keyUsage=critical,digitalSignature,nonRepudiation\n\
subjectKeyIdentifier=hash\n\
authorityKeyIdentifier=keyid\n";

const CA_EXT: &str = "basicConstraints=critical,CA:TRUE\n\
keyUsage=critical,keyCertSign,cRLSign\n\
subjectKeyIdentifier=hash\n\
authorityKeyIdentifier=keyid\n";

/// An OpenSSL CA in `dir`: `root.pem`/`root.key`, plus the files `openssl ca` keeps.
fn openssl_root(dir: &Path, newkey: &[&str]) {
    let mut args = vec![
        "req", "-x509", "-nodes", "-keyout", "root.key", "-out", "root.pem",
    ];
    args.extend_from_slice(newkey);
    args.extend_from_slice(&[
        "-days",
        "30",
        "-subj",
        "/C=JP/O=OpenSSL test/CN=OpenSSL test root",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &args);
    write(dir, "index.txt", b"");
    write(dir, "crlnumber", b"01\n");
    write(
        dir,
        "ca.cnf",
        b"[ca]\ndefault_ca = test\n[test]\ndatabase = index.txt\ncrlnumber = crlnumber\n\
          default_md = sha256\ndefault_crl_days = 7\ncertificate = root.pem\n\
          private_key = root.key\n",
    );
}

/// A resident key and certificate signed by `ca` (`ca.pem`/`ca.key` names without suffix).
fn openssl_resident(dir: &Path, ca: &str, genkey: &[&str], name: &str) {
    let mut args = vec!["genpkey", "-out", "resident.key"];
    args.extend_from_slice(genkey);
    openssl(dir, &args);
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-utf8",
            "-key",
            "resident.key",
            "-subj",
            &format!("/C=JP/CN={name}"),
            "-out",
            "resident.csr",
        ],
    );
    write(dir, "resident.ext", RESIDENT_EXT.as_bytes());
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "resident.csr",
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-set_serial",
            "4660",
            "-days",
            "20",
            "-extfile",
            "resident.ext",
            "-out",
            "resident.pem",
        ],
    );
}

fn openssl_signature(dir: &Path) -> Vec<u8> {
    write(dir, "challenge.bin", CHALLENGE);
    openssl(
        dir,
        &[
            "dgst",
            "-sha256",
            "-sign",
            "resident.key",
            "-out",
            "sig.bin",
            "challenge.bin",
        ],
    );
    read(dir, "sig.bin")
}

#[test]
fn an_rsa_certificate_and_signature_made_by_openssl_are_accepted() {
    if !openssl_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl_root(d, &["-newkey", "rsa:2048"]);
    openssl_resident(
        d,
        "root",
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        "山田 太郎",
    );
    let signature = openssl_signature(d);

    let anchors = TrustAnchors::new(&[read(d, "root.pem")]).unwrap();
    let chain = parse_chain(&String::from_utf8(read(d, "resident.pem")).unwrap()).unwrap();
    let identity = verify_enrolment(&anchors, &chain, CHALLENGE, &signature, now()).unwrap();
    assert_eq!(identity.attributes.name, "山田 太郎");
    // OpenSSL's own signature over another challenge is refused.
    assert_eq!(
        verify_enrolment(&anchors, &chain, b"another challenge", &signature, now()),
        Err(EnrolmentError::BadSignature)
    );
    // Our signing helper reads OpenSSL's key and signs as OpenSSL does (PKCS#1 v1.5 is
    // deterministic, so the bytes are equal).
    let key = String::from_utf8(read(d, "resident.key")).unwrap();
    assert_eq!(sign_challenge(&key, CHALLENGE).unwrap(), signature);
}

#[test]
fn an_ecdsa_chain_with_an_intermediate_and_a_crl_made_by_openssl_are_judged_as_ours() {
    if !openssl_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl_root(d, &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    // An intermediate CA under the root.
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "sub.key",
        ],
    );
    openssl(
        d,
        &[
            "req",
            "-new",
            "-key",
            "sub.key",
            "-subj",
            "/C=JP/CN=OpenSSL signing CA",
            "-out",
            "sub.csr",
        ],
    );
    write(d, "ca.ext", CA_EXT.as_bytes());
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "sub.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-set_serial",
            "17",
            "-days",
            "25",
            "-extfile",
            "ca.ext",
            "-out",
            "sub.pem",
        ],
    );
    openssl_resident(
        d,
        "sub",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "Suzuki Hanako",
    );
    let signature = openssl_signature(d);
    let chain_pem = format!(
        "{}{}",
        String::from_utf8(read(d, "resident.pem")).unwrap(),
        String::from_utf8(read(d, "sub.pem")).unwrap()
    );
    let chain = parse_chain(&chain_pem).unwrap();
    assert_eq!(chain.len(), 2);

    // The root's CRL, from `openssl ca -gencrl`: first with nothing revoked, then with the
    // intermediate revoked. The intermediate's own CRL is made the same way.
    let root_crl = |d: &Path| {
        openssl(
            d,
            &["ca", "-config", "ca.cnf", "-gencrl", "-out", "root-crl.pem"],
        );
        read(d, "root-crl.pem")
    };
    let sub_dir = tempfile::tempdir().unwrap();
    let s = sub_dir.path();
    std::fs::copy(d.join("sub.pem"), s.join("root.pem")).unwrap();
    std::fs::copy(d.join("sub.key"), s.join("root.key")).unwrap();
    write(s, "index.txt", b"");
    write(s, "crlnumber", b"01\n");
    std::fs::copy(d.join("ca.cnf"), s.join("ca.cnf")).unwrap();
    let sub_crl = root_crl(s);

    let anchors_with = |crl: Vec<u8>| {
        TrustAnchors::new(&[read(d, "root.pem")])
            .unwrap()
            .with_crls(&[crl, sub_crl.clone()])
            .unwrap()
    };
    let identity = verify_enrolment(
        &anchors_with(root_crl(d)),
        &chain,
        CHALLENGE,
        &signature,
        now(),
    )
    .unwrap();
    assert_eq!(identity.attributes.name, "Suzuki Hanako");

    openssl(d, &["ca", "-config", "ca.cnf", "-revoke", "sub.pem"]);
    assert_eq!(
        verify_enrolment(
            &anchors_with(root_crl(d)),
            &chain,
            CHALLENGE,
            &signature,
            now()
        ),
        Err(EnrolmentError::Revoked)
    );
}

#[test]
fn openssl_verifies_what_the_development_ca_makes() {
    if !openssl_present() {
        return;
    }
    for algorithm in [KeyAlgorithm::Rsa2048, KeyAlgorithm::EcdsaP256] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut ca = DevCa::generate(algorithm).unwrap();
        let resident = resident(&ca, algorithm);
        let revoked = resident_of_another_algorithm(&ca, algorithm);
        ca.revoke(&revoked.serial);
        ca.save(d).unwrap();
        write(d, "resident.pem", resident.cert_pem.as_bytes());
        write(d, "revoked.pem", revoked.cert_pem.as_bytes());
        write(d, "resident.key", resident.key_pem.as_bytes());

        let ok = openssl(
            d,
            &[
                "verify",
                "-CAfile",
                "root.pem",
                "-crl_check",
                "-CRLfile",
                "crl.pem",
                "resident.pem",
            ],
        );
        assert!(ok.contains("resident.pem: OK"), "{algorithm}: {ok}");
        let refused = Command::new("openssl")
            .args([
                "verify",
                "-CAfile",
                "root.pem",
                "-crl_check",
                "-CRLfile",
                "crl.pem",
                "revoked.pem",
            ])
            .current_dir(d)
            .output()
            .unwrap();
        assert!(
            !refused.status.success(),
            "{algorithm}: OpenSSL accepted a revoked certificate"
        );
        assert!(
            String::from_utf8_lossy(&refused.stdout).contains("revoked")
                || String::from_utf8_lossy(&refused.stderr).contains("revoked")
        );

        // OpenSSL checks our challenge signature with the certificate's public key.
        write(d, "challenge.bin", CHALLENGE);
        write(
            d,
            "sig.bin",
            &sign_challenge(&resident.key_pem, CHALLENGE).unwrap(),
        );
        let public = openssl(d, &["x509", "-in", "resident.pem", "-pubkey", "-noout"]);
        write(d, "public.pem", public.as_bytes());
        let verified = openssl(
            d,
            &[
                "dgst",
                "-sha256",
                "-verify",
                "public.pem",
                "-signature",
                "sig.bin",
                "challenge.bin",
            ],
        );
        assert!(verified.contains("Verified OK"), "{algorithm}: {verified}");
        // And reads the Japanese name as UTF-8.
        let subject = openssl(
            d,
            &[
                "x509",
                "-in",
                "resident.pem",
                "-noout",
                "-subject",
                "-nameopt",
                "utf8",
            ],
        );
        assert!(subject.contains("山田 花子"), "{algorithm}: {subject}");
    }
}

fn resident_of_another_algorithm(
    ca: &DevCa,
    algorithm: KeyAlgorithm,
) -> renkei_identity::IssuedCertificate {
    let other = match algorithm {
        KeyAlgorithm::Rsa2048 => KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::EcdsaP256 => KeyAlgorithm::Rsa2048,
    };
    resident(ca, other)
}
