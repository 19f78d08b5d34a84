//! A town from nothing, as a city would build it: `renkei serve` on an empty database, a
//! provider kit (`renkei provider serve`) over a SQLite file and a CSV, a service, and a
//! resident, connected with the commands and the API alone; then a granted data request
//! (opened and verified with `renkei decrypt`), a revocation, and a denied request. Once
//! with the provider listening, once outbound-only with no port at all.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::{Running, ok, renkei};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "{what} did not happen");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn contact() -> Value {
    json!({
        "contact": "個人情報保護窓口", "email": "privacy@example.jp", "phone": "+81-3-0000-0000",
        "address": { "country": "JP", "postal_code": "999-0101", "region": "ひかり県",
                     "locality": "ひかり台市", "street_address": "中央一丁目1番1号" }
    })
}

/// Enrols the holder of `card` (a dev CA certificate and key) through the API; their token.
fn enrol(http: &reqwest::blocking::Client, hub: &str, dir: &Path, card: &str) -> String {
    let challenge: Value = http
        .post(format!("{hub}/v1/enrolment/challenges"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let bytes = URL_SAFE_NO_PAD
        .decode(challenge["challenge"].as_str().unwrap())
        .unwrap();
    let key = std::fs::read_to_string(dir.join(format!("{card}-key.pem"))).unwrap();
    let signature = renkei_identity::sign_challenge(&key, &bytes).unwrap();
    let enrolled = http
        .post(format!("{hub}/v1/enrolment"))
        .json(&json!({
            "challenge_id": challenge["id"],
            "certificate_chain": std::fs::read_to_string(dir.join(format!("{card}.pem"))).unwrap(),
            "signature": URL_SAFE_NO_PAD.encode(signature),
        }))
        .send()
        .unwrap();
    assert_eq!(enrolled.status(), 200, "enrolment");
    enrolled.json::<Value>().unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn a_city_connects_a_provider_a_service_and_a_resident_with_the_commands_alone(outbound: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(&renkei(dir, &["kek", "new", "--out", "kek"]));
    ok(&renkei(
        dir,
        &["dev-ca", "init", "--dir", "ca", "--algorithm", "ecdsa"],
    ));
    for (name, out) in [("田中 一郎", "operator"), ("佐藤 花子", "resident")] {
        ok(&renkei(
            dir,
            &[
                "dev-ca",
                "issue",
                "--dir",
                "ca",
                "--name",
                name,
                "--algorithm",
                "ecdsa",
                "--out",
                out,
            ],
        ));
    }
    // The SOC's token, owner-only.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(
            dir.join("soc-token"),
            "the-city-soc-polls-with-this-token\n",
        )
        .unwrap();
        std::fs::set_permissions(
            dir.join("soc-token"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
    }
    let started = chrono::Utc::now();
    // The hub, on an empty database.
    let port = free_port();
    let hub = format!("http://127.0.0.1:{port}");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_renkei"));
    serve
        .args(["serve", "--database", "hub.db", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["--issuer", &hub])
        .args(["--trust-anchor", "ca/root.pem", "--crl", "ca/crl.pem"])
        .args(["--soc-token-file", "soc-token"]);
    if !outbound {
        // The kit listens on 127.0.0.1; an outbound-only one needs no such allowance.
        serve.arg("--allow-local-network");
    }
    let _hub = Running(
        serve
            .env("RENKEI_KEK_FILE", dir.join("kek"))
            .env("RUST_LOG", "warn")
            .current_dir(dir)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let http = reqwest::blocking::Client::new();
    wait_for("the hub coming up", || {
        http.get(format!("{hub}/healthz"))
            .send()
            .is_ok_and(|r| r.status().is_success())
    });
    let sign_in = [
        "operator",
        "sign-in",
        "--hub",
        &hub,
        "--certificate",
        "operator.pem",
        "--key",
        "operator-key.pem",
        "--out",
        "operator-token",
    ];
    // The first sign-in enrols the future operator; the role is given to who enrolled.
    assert!(!renkei(dir, &sign_in).status.success());
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
            "operator.pem",
        ],
    ));

    ok(&renkei(dir, &sign_in));
    let as_operator = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--hub", &hub, "--operator-token-file", "operator-token"]);
        ok(&renkei(dir, &all))
    };
    for (id, ja, en) in [
        ("health.checkup", "健康診断結果", "Health check results"),
        ("payment.history", "支払い履歴", "Payment history"),
    ] {
        as_operator(&[
            "category",
            "add",
            "--id",
            id,
            "--name-ja",
            ja,
            "--name-en",
            en,
        ]);
    }

    // The provider: its key, its registration, approved.
    let jwk = ok(&renkei(
        dir,
        &["provider", "keygen", "--out", "clinic-signing.pem"],
    ));
    std::fs::write(dir.join("clinic.jwk"), jwk).unwrap();
    let kit_port = free_port();
    let connection = if outbound {
        "outbound = true".to_owned()
    } else {
        format!("endpoint = \"http://127.0.0.1:{kit_port}\"")
    };
    std::fs::write(
        dir.join("clinic-registration.toml"),
        format!(
            "id = \"hikari-clinic\"\nname_ja = \"ひかり台クリニック\"\nname_en = \"Hikaridai Clinic\"\n\
             {connection}\ncategories = [\"health.checkup\", \"payment.history\"]\n\
             public_keys = [\"clinic.jwk\"]\n[contact]\ncontact = \"医療情報管理室\"\n\
             email = \"records@clinic.example.jp\"\nphone = \"+81-3-0000-0000\"\n\
             [contact.address]\ncountry = \"JP\"\npostal_code = \"999-0101\"\nregion = \"ひかり県\"\n\
             locality = \"ひかり台市\"\nstreet_address = \"中央一丁目5番8号\"\n"
        ),
    )
    .unwrap();
    as_operator(&["provider", "add", "clinic-registration.toml"]);
    as_operator(&["provider", "approve", "hikari-clinic"]);

    // The service, registered and approved through the API.
    let operator = std::fs::read_to_string(dir.join("operator-token")).unwrap();
    let service_keys = renkei_protocol::envelope::ServiceKeyPair::generate().unwrap();
    std::fs::write(dir.join("service.key"), service_keys.private_b64()).unwrap();
    let registered: Value = http
        .post(format!("{hub}/v1/operator/services"))
        .bearer_auth(operator.trim())
        .json(&json!({
            "id": "health-advice", "name_ja": "けんこうアドバイス", "name_en": "Health Advice",
            "hpke_public_key": service_keys.public_b64(),
            "redirect_uris": [],
            "purposes": [{
                "id": "advice", "title_ja": "健康アドバイス", "title_en": "Health advice",
                "description_ja": "健診結果と支払い履歴から助言します。",
                "description_en": "Advice from check-ups and payments.",
                "categories": ["health.checkup", "payment.history"],
                "retention_days": 30, "legal_basis": "consent"
            }],
            "controller": contact(),
        }))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let secret = registered["client_secret"]
        .as_str()
        .unwrap_or_else(|| panic!("registration: {registered}"))
        .to_owned();
    let risks: Vec<Value> = http
        .get(format!("{hub}/v1/operator/services/health-advice/review"))
        .bearer_auth(operator.trim())
        .send()
        .unwrap()
        .json()
        .unwrap();
    let keys: Vec<&Value> = risks.iter().map(|r| &r["key"]).collect();
    let approved = http
        .post(format!("{hub}/v1/operator/services/health-advice/approve"))
        .bearer_auth(operator.trim())
        .json(&json!({ "acknowledged": keys }))
        .send()
        .unwrap();
    assert!(approved.status().is_success(), "approval");

    // The resident enrols with her card, reads her code at the clinic and consents.
    let resident = enrol(&http, &hub, dir, "resident");
    let codes: Vec<Value> = http
        .get(format!("{hub}/v1/me/provider-codes"))
        .bearer_auth(&resident)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let code = codes[0]["code"].as_str().unwrap().to_owned();
    let consent: Value = http
        .post(format!("{hub}/v1/me/consents"))
        .bearer_auth(&resident)
        .json(&json!({ "service": "health-advice", "purpose": "advice" }))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let subject = consent["subject"].as_str().unwrap().to_owned();

    // The clinic's own systems: patients (with the code she gave at its desk) and check-ups
    // in SQLite, payments in a CSV export.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use sqlx::ConnectOptions;
        let mut db = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.join("clinic.db"))
            .create_if_missing(true)
            .connect()
            .await
            .unwrap();
        sqlx::raw_sql(
            "CREATE TABLE patients (patient_no INTEGER PRIMARY KEY, renkei_code TEXT);
             CREATE TABLE checkups (patient_no INTEGER, taken_on TEXT, bmi REAL);
             INSERT INTO patients VALUES (1001, NULL);
             INSERT INTO checkups VALUES (1001, '2026-04-01', 21.5), (1002, '2026-04-02', 30.1);",
        )
        .execute(&mut db)
        .await
        .unwrap();
        sqlx::query("INSERT INTO patients VALUES (1002, $1)")
            .bind(&code)
            .execute(&mut db)
            .await
            .unwrap();
    });
    std::fs::write(
        dir.join("payments.csv"),
        "member_id,date,amount_jpy\nM-1,2026-05-01,1200\nM-2,2026-05-02,800\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("members.csv"),
        format!("code,reference\n{code},M-2\n"),
    )
    .unwrap();
    let listen = if outbound {
        "outbound = true".to_owned()
    } else {
        format!("listen = \"127.0.0.1:{kit_port}\"")
    };
    std::fs::write(
        dir.join("provider.toml"),
        format!(
            "provider = \"hikari-clinic\"\n{listen}\nhub = \"{hub}\"\naccess_log = \"access.jsonl\"\n\
             signing_key = \"clinic-signing.pem\"\n[database]\nurl = \"sqlite:{}\"\n\
             [[category]]\nid = \"health.checkup\"\n\
             query = \"SELECT taken_on, bmi FROM checkups WHERE patient_no = $1\"\n\
             links = \"SELECT renkei_code, patient_no FROM patients WHERE renkei_code IS NOT NULL\"\n\
             [[category]]\nid = \"payment.history\"\ncsv = \"payments.csv\"\nkey = \"member_id\"\n\
             links_csv = \"members.csv\"\n",
            dir.join("clinic.db").display()
        ),
    )
    .unwrap();
    let synced = ok(&renkei(
        dir,
        &["provider", "sync", "--config", "provider.toml"],
    ));
    assert!(synced.contains("2 upserted"), "{synced}");
    let again = ok(&renkei(
        dir,
        &["provider", "sync", "--config", "provider.toml"],
    ));
    assert!(again.contains("0 upserted, 0 removed"), "{again}");
    let _kit = Running(
        Command::new(env!("CARGO_BIN_EXE_renkei"))
            .args(["provider", "serve", "--config", "provider.toml"])
            .env("RUST_LOG", "warn")
            .current_dir(dir)
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );

    // The service asks, and opens the answer as the clinic's own.
    let token: Value = http
        .post(format!("{hub}/oauth/token"))
        .basic_auth("health-advice", Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .unwrap()
        .json()
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let ask = || {
        http.post(format!("{hub}/v1/data-requests"))
            .bearer_auth(&token)
            .json(&json!({ "subject": subject, "purpose": "advice",
                           "categories": ["health.checkup", "payment.history"] }))
            .send()
            .unwrap()
    };
    let mut answer = Value::Null;
    wait_for("a complete answer from the clinic", || {
        let response = ask();
        answer = response.json().unwrap_or_default();
        answer["complete"] == true
    });
    let mut decrypt = Command::new(env!("CARGO_BIN_EXE_renkei"))
        .args([
            "decrypt",
            "--service",
            "health-advice",
            "--key",
            "service.key",
        ])
        .args(["--hub", &hub])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = decrypt.stdin.take().unwrap();
        stdin.write_all(answer.to_string().as_bytes()).unwrap();
    }
    let opened = ok(&decrypt.wait_with_output().unwrap());
    assert!(opened.contains("hikari-clinic"), "{opened}");
    assert!(opened.contains("30.1"), "her check-up: {opened}");
    assert!(opened.contains("800"), "her payments: {opened}");
    assert!(
        !opened.contains("21.5") && !opened.contains("1200"),
        "nobody else's: {opened}"
    );

    // The incident report names her, with what the service was given.
    let to = chrono::Utc::now().to_rfc3339();
    let report: Value = serde_json::from_str(&ok(&renkei(
        dir,
        &[
            "incident",
            "report",
            "--hub",
            &hub,
            "--operator-token-file",
            "operator-token",
            "--service",
            "health-advice",
            "--from",
            &started.to_rfc3339(),
            "--to",
            &to,
        ],
    )))
    .unwrap();
    let residents = report["residents"].as_array().unwrap();
    assert_eq!(residents.len(), 1, "{report}");
    assert_eq!(
        residents[0]["categories"],
        json!(["health.checkup", "payment.history"])
    );
    // The SOC polls with its token (the declaration-free town raised nothing yet).
    let polled = http
        .post(format!("{hub}/v1/soc/events"))
        .bearer_auth("the-city-soc-polls-with-this-token")
        .json(&json!({ "returnImmediately": true }))
        .send()
        .unwrap();
    assert_eq!(polled.status(), 200);

    // She revokes; the next request is denied.
    let revoked = http
        .post(format!(
            "{hub}/v1/me/consents/{}/revoke",
            consent["consent"]["id"].as_str().unwrap()
        ))
        .bearer_auth(&resident)
        .send()
        .unwrap();
    assert!(revoked.status().is_success(), "revocation");
    let denied = ask();
    assert_eq!(denied.status(), 403);
    let problem: Value = denied.json().unwrap();
    assert_eq!(problem["type"], "/problems/consent-revoked", "{problem}");
}

#[test]
fn a_city_builds_a_working_town_from_an_empty_hub_with_an_inbound_provider() {
    a_city_connects_a_provider_a_service_and_a_resident_with_the_commands_alone(false);
}

#[test]
fn a_city_builds_a_working_town_from_an_empty_hub_with_an_outbound_only_provider() {
    a_city_connects_a_provider_a_service_and_a_resident_with_the_commands_alone(true);
}
