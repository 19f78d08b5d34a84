//! Disclosure packages (開示) and operators' look-ups shown to residents: the package
//! verifies offline and holds the providers' data only sealed to the resident's key, the
//! hub's storage never holds it, a tampered package is refused, and an audit search naming a
//! resident is in their history with its reason.

use renkei_domain::{LogEntry, OperatorAction, OperatorId};
use renkei_hub::HubError;
use renkei_hub::audit::AuditQuery;
use renkei_hub::disclosure::{DisclosurePackage, PackageError, Trust, verify_package};
use renkei_log::note::Signer;
use renkei_protocol::envelope::ServiceKeyPair;
use serde_json::{Value, json};

use crate::common::{HEALTH_CHECKUP, PAYMENT_HISTORY, Town};

/// In the clinic's record of Alice, and nowhere the hub writes.
const MARKER: &str = "MARKER-clinic-alice-7f3a";

/// Alice consents to health advice and the service gets her data once: a recipient.
async fn alice_with_history(town: &Town) -> String {
    let alice = town.sign_in(town.alice).await;
    let granted = town.grant(&alice, "health-advice", "advice").await;
    let service = town.service_token(&town.health).await;
    town.data(
        &service,
        &granted.subject,
        "advice",
        &[HEALTH_CHECKUP, PAYMENT_HISTORY],
    )
    .await;
    alice
}

async fn ask(town: &Town, token: &str, key: &ServiceKeyPair) -> (u16, String) {
    let response = town
        .post("/v1/me/disclosures")
        .bearer_auth(token)
        .json(&json!({ "recipient_key": key.public_b64() }))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn trusted(town: &Town) -> (renkei_protocol::keys::Jwks, String) {
    (town.hub.keys().jwks(), town.hub.keys().log.verifier_key())
}

/// Every file of the hub's SQLite database, as bytes.
fn database_bytes(town: &Town) -> Vec<u8> {
    let mut bytes = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let mut path = town.db_path.clone().into_os_string();
        path.push(suffix);
        if let Ok(b) = std::fs::read(&path) {
            bytes.extend(b);
        }
    }
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disclosure_package_verifies_offline_and_holds_the_providers_data_only_sealed() {
    let town = Town::new().await;
    let alice = alice_with_history(&town).await;
    let key = ServiceKeyPair::generate().unwrap();
    let (status, raw) = ask(&town, &alice, &key).await;
    assert_eq!(status, 200, "{raw}");
    for secret in [MARKER, "118/76", "町立プール", "架空町1-2-3"] {
        assert!(
            !raw.contains(secret),
            "`{secret}` is in the package unsealed"
        );
    }
    let package: DisclosurePackage = serde_json::from_str(&raw).unwrap();
    assert_eq!(package.resident, town.alice.to_string());
    assert_eq!(package.consents.len(), 1);
    assert_eq!(package.recipients.len(), 1);
    assert_eq!(package.recipients[0].service, "health-advice");
    let parts: Vec<(&str, &str)> = package
        .providers
        .iter()
        .map(|p| (p.provider.as_str(), p.status.as_str()))
        .collect();
    assert_eq!(
        parts,
        [("clinic", "ok"), ("payments", "ok"), ("registry", "ok")]
    );

    // Offline, against the hub's keys kept apart: verified, and still sealed.
    let (jwks, log_key) = trusted(&town);
    let trust = Trust {
        jwks: Some(&jwks),
        log_key: Some(&log_key),
    };
    let report = verify_package(&package, trust, None).unwrap();
    assert_eq!(report.resident, town.alice);
    assert_eq!(report.receipts, 1);
    assert_eq!(
        report.entries, 3,
        "consent, request, disclosure: {report:?}"
    );
    assert!(report.providers.iter().all(|p| p.opened.is_none()));

    // With Alice's key, each part opens as its provider's signed answer.
    let report = verify_package(&package, trust, Some(&key)).unwrap();
    let opened: Vec<String> = report
        .providers
        .iter()
        .map(|p| p.opened.as_ref().unwrap().data.to_string())
        .collect();
    assert!(opened[0].contains(MARKER), "{opened:?}");
    assert!(opened[1].contains("町立プール"), "{opened:?}");
    assert!(opened[2].contains("架空町1-2-3"), "{opened:?}");
    // Anyone else's key opens nothing.
    let stranger = ServiceKeyPair::generate().unwrap();
    assert!(matches!(
        verify_package(&package, trust, Some(&stranger)),
        Err(PackageError::Sealed { .. })
    ));

    // The disclosure is an entry of Alice's log; the hub never held what it relayed.
    let log: Value = town
        .get("/v1/me/log?order=newest&limit=5")
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let newest: Value = serde_json::from_str(log["entries"][0]["entry"].as_str().unwrap()).unwrap();
    assert_eq!(newest["basis"]["kind"], "data_subject_access");
    assert_eq!(newest["request"], package.disclosure_id.as_str());
    assert_eq!(newest["service"], "data-subject");
    let stored = database_bytes(&town);
    assert!(stored.len() > 4096);
    for secret in [MARKER, "町立プール", "架空町1-2-3"] {
        assert!(
            !stored.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "`{secret}` is in the hub's database"
        );
    }
    // The clinic's grant said what it rests on.
    let grant = town.clinic.captured_grants().pop().unwrap();
    let claims: Value = {
        use base64::Engine;
        let body = grant.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(body)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(claims["basis"], "data-subject-access");
    assert_eq!(claims["service_hpke_key"], key.public_b64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_package_is_refused() {
    let town = Town::new().await;
    let alice = alice_with_history(&town).await;
    let key = ServiceKeyPair::generate().unwrap();
    let (_, first) = ask(&town, &alice, &key).await;
    let (_, second) = ask(&town, &alice, &key).await;
    let package: DisclosurePackage = serde_json::from_str(&second).unwrap();
    let earlier: DisclosurePackage = serde_json::from_str(&first).unwrap();
    let check = |p: &DisclosurePackage| verify_package(p, Trust::default(), Some(&key));
    check(&package).unwrap();

    // An edited entry: its leaf is no longer the one in the tree.
    let mut edited = package.clone();
    let view = edited
        .log
        .entries
        .iter_mut()
        .find(|v| v.entry.contains("\"granted\""))
        .unwrap();
    view.entry = view.entry.replacen("\"granted\"", "\"denied\"", 1);
    assert!(matches!(check(&edited), Err(PackageError::Entry { .. })));

    // A truncated proof leads to no root.
    let mut truncated = package.clone();
    let proof = truncated.log.entries[0].proof.as_mut().unwrap();
    assert!(!proof.is_empty());
    proof.pop();
    assert!(matches!(check(&truncated), Err(PackageError::Entry { .. })));

    // A swapped checkpoint: the earlier package's (a smaller tree), or one signed by
    // another key over the same tree.
    let mut swapped = package.clone();
    swapped.log.checkpoint = earlier.log.checkpoint.clone();
    assert!(check(&swapped).is_err());
    let origin = town.hub.keys().log.origin.clone();
    let forger = Signer::from_seed(&origin, &[7; 32]).unwrap();
    let text = package
        .log
        .checkpoint
        .split("\n\n")
        .next()
        .unwrap()
        .to_owned()
        + "\n";
    let mut forged = package.clone();
    forged.log.checkpoint = renkei_log::note::sign(&text, &[&forger]).unwrap();
    assert!(matches!(check(&forged), Err(PackageError::Checkpoint(_))));
    // ... even with the forger's key in the package, when the hub's is trusted.
    forged.log.verifier_key = forger.verifier().to_string();
    check(&forged).unwrap_or_else(|e| panic!("self-consistent: {e}"));
    let (_, log_key) = trusted(&town);
    let trust = Trust {
        jwks: None,
        log_key: Some(&log_key),
    };
    assert!(matches!(
        verify_package(&forged, trust, None),
        Err(PackageError::UntrustedLogKey)
    ));

    // A receipt of another consent, an entry removed from the list of recipients, or a
    // provider part the log does not record.
    let mut receipt = package.clone();
    receipt.consents[0].consent.id = uuid::Uuid::new_v4().to_string();
    assert!(matches!(check(&receipt), Err(PackageError::Receipt { .. })));
    let mut recipients = package.clone();
    recipients.recipients.clear();
    assert!(matches!(
        check(&recipients),
        Err(PackageError::Recipients(_))
    ));
    let mut moved = package.clone();
    moved.disclosure_id = earlier.disclosure_id.clone();
    assert!(check(&moved).is_err(), "another disclosure's answers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_search_naming_alice_shows_in_her_history_with_its_reason() {
    let town = Town::new().await;
    let alice = town.sign_in(town.alice).await;
    let bob = town.sign_in(town.bob).await;
    let operator = OperatorId::new("tanaka").unwrap();
    let query = AuditQuery {
        resident: Some(town.alice),
        limit: 10,
        ..Default::default()
    };
    // No reason, no search, and nothing recorded.
    let before = town.store.log_size().await.unwrap();
    for reason in ["", "   "] {
        assert!(matches!(
            town.hub.audit_search(&operator, &query, reason).await,
            Err(HubError::Malformed(_))
        ));
    }
    assert_eq!(town.store.log_size().await.unwrap(), before);

    town.hub
        .audit_search(&operator, &query, "complaint 2026-114 about a release")
        .await
        .unwrap();
    let page = |token: &str| {
        let request = town
            .get("/v1/me/log?order=newest&limit=10")
            .bearer_auth(token);
        async move {
            let page: Value = request.send().await.unwrap().json().await.unwrap();
            page["entries"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["kind"] == "operator")
                .map(|e| serde_json::from_str::<LogEntry>(e["entry"].as_str().unwrap()).unwrap())
                .collect::<Vec<_>>()
        }
    };
    let looked = page(&alice).await;
    assert_eq!(looked.len(), 1, "{looked:?}");
    let LogEntry::Operator(entry) = &looked[0] else {
        panic!("an operator's entry: {looked:?}")
    };
    assert_eq!(
        entry.action,
        OperatorAction::SearchAccessLog {
            resident: Some(town.alice),
            service: None,
            reason: Some("complaint 2026-114 about a release".into()),
        }
    );
    assert!(page(&bob).await.is_empty(), "Bob was not looked at");
}
