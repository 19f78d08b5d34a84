//! The access log as a transparency log (flow 4), checked over real HTTP the way a resident's
//! app or an outside auditor would: with nothing but the published verifier key, the signed
//! checkpoints, tiles and proofs, and `renkei_log`'s client-side verification.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails loudly"
)]

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use renkei_domain::ResidentId;
use renkei_log::checkpoint::Checkpoint;
use renkei_log::merkle::{self, Hash};
use renkei_log::note::Verifier;
use serde_json::Value;

use crate::common;
use crate::common::{HEALTH_CHECKUP, PAYMENT_HISTORY, RESIDENT_ADDRESS, Town};

/// The verifier key from `GET /log/key`.
pub(crate) async fn published_key(town: &Town) -> Verifier {
    let response = town.get("/log/key").send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap().trim().parse().unwrap()
}

/// Opens a checkpoint note with the log's key: its signature and origin must hold.
fn open(note: &str, key: &Verifier) -> Checkpoint {
    Checkpoint::open(note.as_bytes(), key.name(), key).unwrap()
}

/// The latest signed checkpoint once it covers at least `size` entries (waits up to 5 s).
async fn checkpoint_covering(town: &Town, key: &Verifier, size: u64) -> (String, Checkpoint) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let response = town.get("/log/checkpoint").send().await.unwrap();
        if response.status() == 200 {
            let note = response.text().await.unwrap();
            let checkpoint = open(&note, key);
            if checkpoint.size() >= size {
                return (note, checkpoint);
            }
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint of {size} entries within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until every entry written so far is in a signed checkpoint.
pub(crate) async fn everything_signed(town: &Town, key: &Verifier) -> (String, Checkpoint) {
    let size = town.store.log_size().await.unwrap();
    checkpoint_covering(town, key, size).await
}

fn b64(v: &Value) -> Vec<u8> {
    STANDARD.decode(v.as_str().unwrap()).unwrap()
}

fn hash(v: &Value) -> Hash {
    Hash::from_slice(&b64(v)).unwrap()
}

fn proof(v: &Value) -> Vec<Hash> {
    v.as_array().unwrap().iter().map(hash).collect()
}

/// One page of `/v1/me/log`.
pub(crate) async fn my_log(town: &Town, token: &str, query: &str) -> Value {
    let response = town
        .get(&format!("/v1/me/log{query}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// Checks one entry of `/v1/me/log` as the resident's app would: the leaf hash follows from
/// the salt and the entry bytes, and the inclusion proof leads to the signed root. Returns
/// the leaf hash and the entry.
pub(crate) fn verify_entry(entry: &Value, checkpoint: &Checkpoint) -> (Hash, Value) {
    let seq = entry["seq"].as_u64().unwrap();
    let mut data = b64(&entry["salt"]);
    data.extend_from_slice(entry["entry"].as_str().unwrap().as_bytes());
    let leaf = merkle::leaf_hash(&data);
    assert_eq!(
        leaf,
        hash(&entry["leaf_hash"]),
        "leaf {seq} is SHA-256(0x00 ‖ salt ‖ entry)"
    );
    merkle::verify_inclusion(
        seq,
        checkpoint.size(),
        &leaf,
        &proof(&entry["proof"]),
        checkpoint.root(),
    )
    .unwrap_or_else(|e| panic!("entry {seq} is not in the signed tree: {e}"));
    let parsed: Value = serde_json::from_str(entry["entry"].as_str().unwrap()).unwrap();
    assert_eq!(parsed["seq"], seq);
    assert_eq!(parsed["kind"], entry["kind"]);
    (leaf, parsed)
}

/// Alice consents to health advice; the service reads her data once (granted) and asks for a
/// category outside the purpose once (denied). Bob consents to reminders and is read once.
/// Returns the health service's token and Alice's subject there.
async fn some_history(town: &Town) -> (String, String) {
    let alice = town.sign_in(town.alice).await;
    let bob = town.sign_in(town.bob).await;
    let granted = town.grant(&alice, "health-advice", "advice").await;
    let health = town.service_token(&town.health).await;
    town.data(
        &health,
        &granted.subject,
        "advice",
        &[HEALTH_CHECKUP, PAYMENT_HISTORY],
    )
    .await;
    let denied = town
        .request_data(&health, &granted.subject, "advice", &[RESIDENT_ADDRESS])
        .await;
    assert_eq!(denied.status(), 403);
    let bobs = town.grant(&bob, "checkup-reminder", "reminders").await;
    let reminder = town.service_token(&town.reminder).await;
    town.data(&reminder, &bobs.subject, "reminders", &[HEALTH_CHECKUP])
        .await;
    (health, granted.subject)
}

#[tokio::test]
async fn a_residents_log_entries_verify_against_the_signed_checkpoint_with_the_published_key() {
    let town = Town::new().await;
    some_history(&town).await;
    let key = published_key(&town).await;
    everything_signed(&town, &key).await;
    let alice = town.sign_in(town.alice).await;
    let page = my_log(&town, &alice, "").await;

    assert_eq!(
        page["verifier_key"].as_str().unwrap(),
        key.to_string(),
        "the page names the published key"
    );
    let checkpoint = open(page["checkpoint"].as_str().unwrap(), &key);
    let entries = page["entries"].as_array().unwrap();
    let kinds: Vec<&str> = entries
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["consent", "access", "access"], "{page:#}");
    let mut last = None;
    for entry in entries {
        let (_, parsed) = verify_entry(entry, &checkpoint);
        assert_eq!(parsed["resident"], town.alice.to_string());
        let seq = entry["seq"].as_u64().unwrap();
        assert!(last < Some(seq), "in log order");
        last = Some(seq);
    }
    let outcomes: Vec<&str> = entries[1..]
        .iter()
        .map(|e| {
            let parsed: Value = serde_json::from_str(e["entry"].as_str().unwrap()).unwrap();
            if parsed["outcome"]["outcome"] == "granted" {
                "granted"
            } else {
                "denied"
            }
        })
        .collect();
    assert_eq!(outcomes, ["granted", "denied"]);

    // Changing one byte of an entry breaks the chain to the signed root.
    let entry = &entries[1];
    let mut data = b64(&entry["salt"]);
    data.extend_from_slice(
        entry["entry"]
            .as_str()
            .unwrap()
            .replace("granted", "denied")
            .as_bytes(),
    );
    assert!(
        merkle::verify_inclusion(
            entry["seq"].as_u64().unwrap(),
            checkpoint.size(),
            &merkle::leaf_hash(&data),
            &proof(&entry["proof"]),
            checkpoint.root(),
        )
        .is_err()
    );
}

#[tokio::test]
async fn a_residents_log_pages_by_next_after_and_every_page_verifies() {
    let town = Town::new().await;
    let (health, subject) = some_history(&town).await;
    for _ in 0..4 {
        town.data(&health, &subject, "advice", &[HEALTH_CHECKUP])
            .await;
    }
    let key = published_key(&town).await;
    everything_signed(&town, &key).await;
    let alice = town.sign_in(town.alice).await;
    let all: Vec<u64> = my_log(&town, &alice, "?limit=500").await["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(all.len(), 7, "one consent and six requests");

    let mut seen = Vec::new();
    let mut query = "?limit=3".to_owned();
    loop {
        let page = my_log(&town, &alice, &query).await;
        let checkpoint = open(page["checkpoint"].as_str().unwrap(), &key);
        for entry in page["entries"].as_array().unwrap() {
            verify_entry(entry, &checkpoint);
            seen.push(entry["seq"].as_u64().unwrap());
        }
        match page["next_after"].as_u64() {
            Some(after) => query = format!("?limit=3&after={after}"),
            None => break,
        }
    }
    assert_eq!(seen, all);
}

#[tokio::test]
async fn a_residents_log_pages_newest_first_by_next_before_and_every_page_verifies() {
    let town = Town::new().await;
    let (health, subject) = some_history(&town).await;
    for _ in 0..4 {
        town.data(&health, &subject, "advice", &[HEALTH_CHECKUP])
            .await;
    }
    let key = published_key(&town).await;
    everything_signed(&town, &key).await;
    let alice = town.sign_in(town.alice).await;
    let seqs = |page: &Value| -> Vec<u64> {
        page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_u64().unwrap())
            .collect()
    };
    let mut all = seqs(&my_log(&town, &alice, "?limit=500").await);
    assert_eq!(all.len(), 7, "one consent and six requests");
    all.reverse();

    // From the newest back: every entry exactly once, newest first, each page verified.
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut query = "?limit=3&order=newest".to_owned();
    loop {
        let page = my_log(&town, &alice, &query).await;
        pages += 1;
        assert!(page["next_after"].is_null(), "{page}");
        let checkpoint = open(page["checkpoint"].as_str().unwrap(), &key);
        for entry in page["entries"].as_array().unwrap() {
            verify_entry(entry, &checkpoint);
            seen.push(entry["seq"].as_u64().unwrap());
        }
        match page["next_before"].as_u64() {
            Some(before) => {
                assert_eq!(Some(&before), seen.last());
                query = format!("?limit=3&before={before}");
            }
            None => break,
        }
    }
    assert_eq!(seen, all);
    assert_eq!(
        pages, 3,
        "3 + 3 + 1 entries, and no empty page after the oldest"
    );

    // A page that holds the oldest entry names no older page, even when it is full.
    let whole = my_log(&town, &alice, "?limit=7&order=newest").await;
    assert_eq!(seqs(&whole), all);
    assert!(whole["next_before"].is_null(), "{whole}");
    let six = my_log(&town, &alice, "?limit=6&order=newest").await;
    assert_eq!(six["next_before"].as_u64(), Some(all[5]));

    // Either cursor bounds a page in either order; `before` alone means newest first.
    let (low, high) = (all[5], all[1]);
    let between = |newest_first: bool| {
        let mut want: Vec<u64> = all
            .iter()
            .copied()
            .filter(|s| low < *s && *s < high)
            .collect();
        if !newest_first {
            want.reverse();
        }
        want
    };
    for (query, newest_first) in [
        (format!("?order=oldest&after={low}&before={high}"), false),
        (format!("?order=newest&after={low}&before={high}"), true),
        (format!("?after={low}&before={high}"), true),
    ] {
        let page = my_log(&town, &alice, &query).await;
        assert_eq!(seqs(&page), between(newest_first), "{query}");
    }
    let response = town
        .get("/v1/me/log?order=sideways")
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    common::expect_problem(response, 400, "/problems/malformed-request").await;
}

#[tokio::test]
async fn a_consistency_proof_links_two_signed_checkpoints() {
    let town = Town::new().await;
    let key = published_key(&town).await;
    let alice = town.sign_in(town.alice).await;
    let granted = town.grant(&alice, "health-advice", "advice").await;
    let (_, first) = everything_signed(&town, &key).await;
    let health = town.service_token(&town.health).await;
    for _ in 0..5 {
        town.data(&health, &granted.subject, "advice", &[HEALTH_CHECKUP])
            .await;
    }
    let (_, second) = everything_signed(&town, &key).await;
    let (from, to) = (first.size(), second.size());
    assert!(0 < from && from < to, "{from} < {to}");

    // Both as a monitor fetches them later, by size.
    let mut roots = Vec::new();
    for size in [from, to] {
        let response = town
            .get(&format!("/log/checkpoints/{size}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let checkpoint = open(&response.text().await.unwrap(), &key);
        assert_eq!(checkpoint.size(), size);
        roots.push(*checkpoint.root());
    }
    assert_eq!(roots, [*first.root(), *second.root()]);

    let response = town
        .get(&format!("/log/proof/consistency?from={from}&to={to}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let proof = proof(&body["proof"]);
    merkle::verify_consistency(from, to, &proof, &roots[0], &roots[1]).unwrap();
    // The proof binds the old root: another one does not verify.
    assert!(merkle::verify_consistency(from, to, &proof, &roots[1], &roots[1]).is_err());
}

#[tokio::test]
async fn the_partial_level_0_tile_holds_every_leaf_hash_in_order() {
    let town = Town::new().await;
    some_history(&town).await;
    let key = published_key(&town).await;
    let (_, checkpoint) = everything_signed(&town, &key).await;
    let size = checkpoint.size();
    assert!(0 < size && size < 256, "one partial tile: {size}");

    let response = town
        .get(&format!("/log/tile/0/000.p/{size}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let tile = response.bytes().await.unwrap();
    let leaves: Vec<Hash> = tile
        .chunks(32)
        .map(|h| Hash::from_slice(h).unwrap())
        .collect();
    assert_eq!(leaves.len() as u64, size);
    let stored = town
        .store
        .log_leaf_hashes(0, u32::try_from(size).unwrap())
        .await
        .unwrap();
    assert_eq!(leaves, stored);
    // The tile alone rebuilds the signed root.
    assert_eq!(merkle::root_hash(&leaves), *checkpoint.root());
    // And the resident's own leaves sit at their positions in it.
    let alice = town.sign_in(town.alice).await;
    for entry in my_log(&town, &alice, "").await["entries"]
        .as_array()
        .unwrap()
    {
        let seq = usize::try_from(entry["seq"].as_u64().unwrap()).unwrap();
        assert_eq!(leaves[seq], hash(&entry["leaf_hash"]));
    }
    // A tile the checkpoint does not cover yet is not there.
    let beyond = town
        .get(&format!("/log/tile/0/000.p/{}", size + 1))
        .send()
        .await
        .unwrap();
    assert_eq!(beyond.status(), 404);
}

#[tokio::test]
async fn a_new_entry_is_in_a_signed_checkpoint_within_a_second() {
    let town = Town::new().await;
    let key = published_key(&town).await;
    let alice = town.sign_in(town.alice).await;
    let granted = town.grant(&alice, "health-advice", "advice").await;
    let health = town.service_token(&town.health).await;
    everything_signed(&town, &key).await;
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        town.data(&health, &granted.subject, "advice", &[HEALTH_CHECKUP])
            .await;
        // Answered: the access record is durable. Its position is the last one.
        let appended = Instant::now();
        let seq = town.store.log_size().await.unwrap() - 1;
        let (_, checkpoint) = checkpoint_covering(&town, &key, seq + 1).await;
        let took = appended.elapsed();
        slowest = slowest.max(took);
        assert!(
            took < Duration::from_secs(1),
            "entry {seq} took {took:?} to be signed"
        );
        // And an auditor can prove it is there.
        let response = town
            .get(&format!(
                "/log/proof/inclusion?index={seq}&size={}",
                checkpoint.size()
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        let leaf = town.store.log_leaf_hashes(seq, 1).await.unwrap()[0];
        merkle::verify_inclusion(
            seq,
            checkpoint.size(),
            &leaf,
            &proof(&body["proof"]),
            checkpoint.root(),
        )
        .unwrap();
    }
    eprintln!("slowest append → signed checkpoint: {slowest:?}");
}

/// Every way `text` might spell out a resident id.
fn spellings(resident: ResidentId) -> Vec<String> {
    let id = resident.as_uuid();
    vec![
        id.hyphenated().to_string(),
        id.simple().to_string(),
        id.hyphenated().to_string().to_uppercase(),
        id.simple().to_string().to_uppercase(),
        STANDARD.encode(id.as_bytes()),
    ]
}

#[tokio::test]
async fn public_checkpoints_keys_proofs_and_tiles_reveal_no_resident_or_category() {
    let town = Town::new().await;
    let (health, subject) = some_history(&town).await;
    let carol = town.sign_in(town.carol).await;
    town.grant(&carol, "health-advice", "reminders").await;
    town.data(&health, &subject, "advice", &[HEALTH_CHECKUP])
        .await;
    let key = published_key(&town).await;
    let (_, latest) = everything_signed(&town, &key).await;
    let size = latest.size();

    // Everything an anonymous visitor can read about the log.
    let signed_sizes: Vec<u64> = town
        .store
        .checkpoints()
        .await
        .unwrap()
        .iter()
        .map(|c| c.size)
        .collect();
    let paths = ["/log/key".to_owned(), "/log/checkpoint".to_owned()]
        .into_iter()
        .chain(signed_sizes.iter().map(|s| format!("/log/checkpoints/{s}")))
        .chain((1..size).map(|from| format!("/log/proof/consistency?from={from}&to={size}")))
        .chain((0..size).map(|index| format!("/log/proof/inclusion?index={index}&size={size}")));
    let mut public_text = Vec::new();
    let mut public_bytes = Vec::new();
    for path in paths {
        let response = town.get(&path).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        public_text.push(response.text().await.unwrap());
    }
    for width in 1..=size {
        let response = town
            .get(&format!("/log/tile/0/000.p/{width}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        public_bytes.push(response.bytes().await.unwrap().to_vec());
    }
    // A checkpoint says who signed, how many entries, the root: nothing else.
    let note = &public_text[1];
    let body = note.split("\n\n").next().unwrap();
    assert_eq!(body.lines().count(), 3, "origin, size, root only: {note}");
    assert!(open(note, &key).extensions().is_empty());

    let mut secrets: Vec<String> = [town.alice, town.bob, town.carol]
        .into_iter()
        .flat_map(spellings)
        .collect();
    for category in town.store.categories().await.unwrap() {
        secrets.extend([
            category.id.to_string(),
            category.name.ja.clone(),
            category.name.en.clone(),
        ]);
    }
    // What providers hold on residents, and the services' names for them.
    secrets.extend(
        [
            "K-0001",
            "P-7781",
            "R-0001",
            "架空町",
            "health-advice",
            "advice",
        ]
        .map(str::to_owned),
    );
    secrets.push(subject);
    for text in &public_text {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "`{secret}` is public: {text}"
            );
        }
    }
    let raw_ids: Vec<[u8; 16]> = [town.alice, town.bob, town.carol]
        .iter()
        .map(|r| *r.as_uuid().as_bytes())
        .collect();
    for tile in &public_bytes {
        for id in &raw_ids {
            assert!(
                !tile.windows(16).any(|w| w == id),
                "a resident id in a tile"
            );
        }
        for secret in &secrets {
            assert!(
                !tile.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "`{secret}` in a tile"
            );
        }
    }
}

#[tokio::test]
async fn an_operators_suspension_and_audit_search_are_entries_of_the_signed_log() {
    use renkei_domain::{LogEntry, OperatorAction, OperatorActor, OperatorId};
    let town = Town::new().await;
    some_history(&town).await;
    let key = published_key(&town).await;
    let operator = OperatorId::new("tanaka").unwrap();
    let before = town.store.log_size().await.unwrap();

    town.hub
        .suspend_service(&operator, &town.mobility.id)
        .await
        .unwrap();
    let query = renkei_hub::audit::AuditQuery {
        resident: Some(town.alice),
        limit: 10,
        ..Default::default()
    };
    let found = town
        .hub
        .audit_search(&operator, &query, "complaint 2026-114")
        .await
        .unwrap();
    assert!(!found.is_empty(), "alice has entries to find");

    let acts = town.hub.operator_log(None, 10).await.unwrap();
    let by_tanaka = OperatorActor::Operator {
        id: operator.clone(),
    };
    assert_eq!(acts.len(), 2);
    assert_eq!(
        acts[1].seq, before,
        "the suspension took the next log position"
    );
    assert_eq!(acts[1].actor, by_tanaka);
    assert_eq!(
        acts[1].action,
        OperatorAction::SuspendService {
            service: town.mobility.id.clone()
        }
    );
    assert_eq!(
        acts[0].action,
        OperatorAction::SearchAccessLog {
            resident: Some(town.alice),
            service: None,
            reason: Some("complaint 2026-114".into()),
        },
        "looking at a resident's entries is itself recorded"
    );

    // Both are leaves of the signed tree like any access: the signed root covers them.
    let (_, checkpoint) = everything_signed(&town, &key).await;
    assert!(checkpoint.size() >= before + 2);
    let leaves = town
        .store
        .log_leaf_hashes(0, u32::try_from(checkpoint.size()).unwrap())
        .await
        .unwrap();
    assert_eq!(merkle::root_hash(&leaves), *checkpoint.root());
    for act in &acts {
        let stored = &town.store.log_range(act.seq, 1).await.unwrap()[0];
        let leaf = stored.leaf.as_ref().unwrap();
        let entry = LogEntry::Operator(act.clone());
        assert_eq!(
            merkle::leaf_hash(&entry.leaf_data(&leaf.salt)),
            leaves[usize::try_from(act.seq).unwrap()]
        );
    }
}
