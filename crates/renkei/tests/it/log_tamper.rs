//! The tamper test of the access log (flow 4): a hub writes a signed log of a few hundred
//! entries (consent grants, revocations and supersessions, granted and denied data requests),
//! then someone with write access to the database changes it behind the hub's back with raw
//! SQL — dropping the append-only triggers first. The real `renkei log verify` must exit
//! non-zero and name exactly the entry that was touched. Every case runs on SQLite and on
//! PostgreSQL (from `RENKEI_TEST_POSTGRES_URL`; skipped without it), each on a fresh log.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use renkei_domain::{
    Actor, CategoryId, ConsentChannel, ConsentId, DataCategory, LegalBasis, LocalizedText,
    LogEntry, PurposeId, ResidentId, Service, ServiceId, ServiceStatus,
};
use renkei_hub::broker::DataRequestBody;
use renkei_hub::consents::GrantConsentBody;
use renkei_hub::{Hub, HubConfig, HubError};
use renkei_log::merkle;
use renkei_store::{PurposeDraft, Store};
use sqlx::{AssertSqlSafe, Connection};
use tempfile::TempDir;
use tokio::task::JoinSet;

const ISSUER: &str = "https://hub.tamper-test.example.jp";
const SERVICE: &str = "health-advice";
const PURPOSE: &str = "advice";
const RESIDENTS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// A database connection for the tamperer, who bypasses the hub.
enum Raw {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

/// One freshly written, fully integrated log in a database of its own.
pub(crate) struct Log {
    backend: Backend,
    /// What `renkei log verify --database` takes: a file path or a PostgreSQL URL.
    pub(crate) database: String,
    /// The log's verifier key, as `GET /log/key` publishes it.
    pub(crate) key: String,
    /// The key-encryption key the hub wrapped its secrets under (for `RENKEI_KEK`).
    kek: String,
    store: Arc<dyn Store>,
    pub(crate) size: u64,
    /// A consent its resident revoked.
    revoked: ConsentId,
    /// The inclusion promise in the answer to the request of the newest entry.
    promise_of_the_last: String,
    /// The kind (`access` / `consent`) of every position.
    kinds: Vec<String>,
    /// Sizes of every checkpoint the hub signed.
    pub(crate) checkpoints: Vec<u64>,
    /// Where `PostgreSQL` keeps it: (admin URL, database name).
    postgres: Option<(String, String)>,
    _dir: Option<TempDir>,
}

/// What `renkei log verify` said.
struct Verdict {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Verdict {
    /// The position after `FIRST BAD ENTRY:`, if any.
    fn first_bad_entry(&self) -> Option<u64> {
        self.stdout.lines().find_map(|line| {
            let rest = line.strip_prefix("FIRST BAD ENTRY: ")?;
            rest.split(':').next()?.trim().parse().ok()
        })
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn cat(s: &str) -> CategoryId {
    CategoryId::new(s).unwrap()
}

fn service_id() -> ServiceId {
    ServiceId::new(SERVICE).unwrap()
}

fn draft(categories: &[&str]) -> PurposeDraft {
    PurposeDraft {
        service: service_id(),
        id: PurposeId::new(PURPOSE).unwrap(),
        title: LocalizedText::new("健康アドバイス", "Health advice"),
        description: LocalizedText::new("健診結果から助言します", "Advice from check-ups"),
        categories: categories.iter().map(|c| cat(c)).collect(),
        retention_days: 90,
        legal_basis: LegalBasis::Consent,
        emergency_only: false,
        location: None,
    }
}

/// A database name of our own on the server `url` points at, and a URL for it.
pub(crate) fn database_url(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let server = match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    };
    match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    }
}

/// Asks the hub for data `rounds` times per resident, concurrently (so decisions are batched),
/// alternating a request the consent covers and one for a category outside the purpose.
async fn requests(hub: &Hub, subjects: &[String], rounds: usize) {
    let mut tasks = JoinSet::new();
    for round in 0..rounds {
        for subject in subjects {
            let hub = hub.clone();
            let categories = if round % 2 == 0 {
                vec!["health.checkup".to_owned()]
            } else {
                vec!["resident.address".to_owned()]
            };
            let body = DataRequestBody {
                subject: subject.clone(),
                purpose: PURPOSE.into(),
                categories,
            };
            tasks.spawn(async move { hub.request_data(&service_id(), None, body).await });
        }
    }
    while let Some(done) = tasks.join_next().await {
        match done.unwrap() {
            // No provider holds data on these residents: granted with nothing to fetch.
            Ok(_) | Err(HubError::Denied { .. }) => {}
            Err(e) => panic!("data request failed: {e}"),
        }
    }
}

async fn grant(hub: &Hub, resident: ResidentId) -> (ConsentId, String) {
    let body = GrantConsentBody {
        service: SERVICE.into(),
        purpose: PURPOSE.into(),
        valid_days: None,
    };
    let granted = hub
        .grant_consent(resident, body, ConsentChannel::Portal, Actor::Resident)
        .await
        .unwrap();
    (granted.consent.id.parse().unwrap(), granted.subject)
}

impl Log {
    /// Writes about three hundred entries through a running hub, signing checkpoints along
    /// the way, and integrates all of them. `None` when the backend is not configured.
    pub(crate) async fn build(backend: Backend) -> Option<Self> {
        let (database, postgres, dir) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("hub.db");
                (path.to_string_lossy().into_owned(), None, Some(dir))
            }
            Backend::Postgres => {
                let Ok(url) = std::env::var("RENKEI_TEST_POSTGRES_URL") else {
                    eprintln!(
                        "skipped: RENKEI_TEST_POSTGRES_URL is not set, the PostgreSQL tamper test did not run"
                    );
                    return None;
                };
                let name = format!("renkei_tamper_{}", uuid::Uuid::new_v4().simple());
                let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
                sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut admin)
                    .await
                    .unwrap();
                (database_url(&url, &name), Some((url, name)), None)
            }
        };
        // The store exactly as the binary opens it.
        let store = renkei::run::open_store(&database).await.unwrap();
        let now = Utc::now();
        for (id, ja, en, special_care) in [
            (
                "health.checkup",
                "健康診断結果",
                "Health check-up results",
                true,
            ),
            ("payment.history", "支払い履歴", "Payment history", false),
            ("resident.address", "住所", "Address", false),
        ] {
            store
                .put_category(&DataCategory {
                    id: cat(id),
                    name: LocalizedText::new(ja, en),
                    special_care,
                    location: false,
                })
                .await
                .unwrap();
        }
        store
            .put_service(
                &Service {
                    id: service_id(),
                    name: LocalizedText::new("けんこうアドバイス", "Health Advice"),
                    sector: "health".into(),
                    // Well-formed (a service without one is denied); never sealed to here.
                    hpke_public_key: "A".repeat(43),
                    webhook_url: None,
                    status: ServiceStatus::Approved,
                },
                "unused",
            )
            .await
            .unwrap();
        store
            .publish_purpose(&draft(&["health.checkup", "payment.history"]), now)
            .await
            .unwrap();
        let mut residents = Vec::new();
        for _ in 0..RESIDENTS {
            let r = ResidentId::from_uuid(uuid::Uuid::new_v4());
            store.add_resident(r, now).await.unwrap();
            residents.push(r);
        }

        let kek = renkei_hub::kek::Kek::generate_text().to_string();
        let mut config = HubConfig::new(ISSUER, renkei_hub::kek::Kek::from_text(&kek).unwrap());
        // Thousands of requests at once from one service: the test is about the log.
        config.limits = renkei_hub::limits::RateLimits::GENEROUS;
        let hub = Hub::start(config, store.clone()).await.unwrap();
        let integrate = || renkei_hub::log::integrate_once(hub.store().as_ref(), &hub.keys().log);
        // Everyone says yes to the purpose.
        let mut consents = Vec::new();
        let mut subjects = Vec::new();
        for &r in &residents {
            let (consent, subject) = grant(&hub, r).await;
            consents.push(consent);
            subjects.push(subject);
        }
        integrate().await.unwrap();
        // Granted and denied requests, and some for a subject the hub does not know.
        requests(&hub, &subjects, 8).await;
        requests(&hub, &["a-subject-nobody-has".to_owned()], 4).await;
        integrate().await.unwrap();
        // Half of them change their mind.
        for (&r, &c) in residents.iter().zip(&consents).take(RESIDENTS / 2) {
            hub.revoke_consent(&renkei_hub::auth::ResidentSession::resident(r), c)
                .await
                .unwrap();
        }
        // The purpose changes; a quarter consent again (superseding their old consent).
        store
            .publish_purpose(&draft(&["health.checkup"]), Utc::now())
            .await
            .unwrap();
        for &r in &residents[RESIDENTS / 2..RESIDENTS * 3 / 4] {
            grant(&hub, r).await;
        }
        integrate().await.unwrap();
        requests(&hub, &subjects, 8).await;
        // The newest entry: a granted request, whose answer carries the log's promise.
        let last = hub
            .request_data(
                &service_id(),
                None,
                DataRequestBody {
                    // One who consented again to the purpose as it is now.
                    subject: subjects[RESIDENTS / 2].clone(),
                    purpose: PURPOSE.into(),
                    categories: vec!["health.checkup".to_owned()],
                },
            )
            .await
            .unwrap();
        while integrate().await.unwrap().is_some() {}

        let size = store.log_size().await.unwrap();
        assert!(size >= 250, "a log of a few hundred entries, not {size}");
        let latest = store.latest_checkpoint().await.unwrap().unwrap();
        assert_eq!(latest.size, size, "every entry is in a signed checkpoint");
        let key = hub.keys().log.verifier_key();
        // The hub is gone before anyone tampers with its database.
        drop(hub);
        let kinds: Vec<String> = store
            .log_range(0, u32::try_from(size).unwrap())
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.leaf.unwrap().kind)
            .collect();
        assert_eq!(kinds.len() as u64, size);
        let checkpoints = store
            .checkpoints()
            .await
            .unwrap()
            .iter()
            .map(|c| c.size)
            .collect();
        Some(Self {
            backend,
            database,
            key,
            kek,
            store,
            size,
            revoked: consents[0],
            promise_of_the_last: last.log_promise,
            kinds,
            checkpoints,
            postgres,
            _dir: dir,
        })
    }

    /// The first position at or after `from` holding an entry of `kind`.
    pub(crate) fn position(&self, kind: &str, from: u64) -> u64 {
        (from..self.size)
            .find(|&s| self.kinds[usize::try_from(s).unwrap()] == kind)
            .unwrap_or_else(|| panic!("no {kind} entry at or after {from}"))
    }

    async fn raw(&self) -> Raw {
        match self.backend {
            Backend::Sqlite => {
                let options = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(&self.database)
                    .busy_timeout(Duration::from_secs(10));
                Raw::Sqlite(
                    sqlx::SqliteConnection::connect_with(&options)
                        .await
                        .unwrap(),
                )
            }
            Backend::Postgres => {
                Raw::Postgres(sqlx::PgConnection::connect(&self.database).await.unwrap())
            }
        }
    }

    /// Runs `sql` (one or more statements) as the tamperer.
    async fn sql(&self, sql: &str) {
        let sql = AssertSqlSafe(sql.to_owned());
        match self.raw().await {
            Raw::Sqlite(mut c) => {
                sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
            }
            Raw::Postgres(mut c) => {
                sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
            }
        }
    }

    /// What a tamperer does first: drop the triggers that refuse UPDATE and DELETE.
    async fn drop_append_only_triggers(&self) {
        let sql = match self.backend {
            Backend::Sqlite => {
                "DROP TRIGGER access_records_no_update; DROP TRIGGER access_records_no_delete;
                 DROP TRIGGER consent_events_no_delete; DROP TRIGGER log_leaves_no_update;
                 DROP TRIGGER log_leaves_no_delete; DROP TRIGGER consent_events_no_update;
                 DROP TRIGGER log_checkpoints_no_delete; DROP TRIGGER log_hashes_no_update;
                 DROP TRIGGER log_hashes_no_delete;"
            }
            Backend::Postgres => {
                "DROP TRIGGER access_records_no_update ON access_records;
                 DROP TRIGGER consent_events_no_delete ON consent_events;
                 DROP TRIGGER log_leaves_no_update ON log_leaves;
                 DROP TRIGGER consent_events_no_update ON consent_events;
                 DROP TRIGGER log_hashes_no_update ON log_hashes;
                 DROP TRIGGER log_checkpoints_no_update ON log_checkpoints;"
            }
        };
        self.sql(sql).await;
    }

    /// Writes `hash` into the row `key = id` of `table` (`log_leaves.leaf_hash` or
    /// `log_hashes.hash`).
    async fn set_hash(&self, table: &str, column: &str, key: &str, id: u64, hash: &[u8]) {
        let sql = AssertSqlSafe(format!("UPDATE {table} SET {column} = $1 WHERE {key} = $2"));
        let id = i64::try_from(id).unwrap();
        let done = match self.raw().await {
            Raw::Sqlite(mut c) => sqlx::query(sql)
                .bind(hash.to_vec())
                .bind(id)
                .execute(&mut c)
                .await
                .unwrap()
                .rows_affected(),
            Raw::Postgres(mut c) => sqlx::query(sql)
                .bind(hash.to_vec())
                .bind(id)
                .execute(&mut c)
                .await
                .unwrap()
                .rows_affected(),
        };
        assert_eq!(done, 1, "{table} row {id}");
    }

    /// Edits the row of the entry at `seq` so that what it says changes: an access record's
    /// outcome, or a consent event's kind.
    async fn edit(&self, seq: u64) {
        let sql = if self.kinds[usize::try_from(seq).unwrap()] == "access" {
            format!(
                "UPDATE access_records SET outcome = CASE WHEN outcome = 'granted'
                 THEN 'consent-revoked' ELSE 'granted' END WHERE seq = {seq}"
            )
        } else {
            format!(
                "UPDATE consent_events SET kind = CASE WHEN kind = 'granted'
                 THEN 'revoked' ELSE 'granted' END WHERE log_seq = {seq}"
            )
        };
        self.sql(&sql).await;
    }

    /// The leaf hash the (possibly edited) row at `seq` commits to with its stored salt: what
    /// a tamperer writes to make the row and its leaf agree again.
    async fn recomputed_leaf(&self, seq: u64) -> merkle::Hash {
        let stored = self.store.log_range(seq, 1).await.unwrap().remove(0);
        let entry: LogEntry = stored.entry.unwrap().unwrap();
        merkle::leaf_hash(&entry.leaf_data(&stored.leaf.unwrap().salt))
    }

    /// Rewrites every stored node hash (`log_hashes`) that differs from the tree over the
    /// leaves as they are stored now: a tamperer covering their tracks up to the signatures.
    async fn rewrite_stored_tree(&self) -> usize {
        let leaves = self
            .store
            .log_leaf_hashes(0, u32::try_from(self.size).unwrap())
            .await
            .unwrap();
        let mut tree = BTreeMap::new();
        for (n, leaf) in (0..).zip(&leaves) {
            let first = merkle::stored_hash_index(0, n).unwrap();
            let hashes = merkle::stored_hashes_for_append(n, *leaf, &tree).unwrap();
            tree.extend((first..).zip(hashes));
        }
        let indexes: Vec<u64> = tree.keys().copied().collect();
        let stored = self.store.read_log_hashes(&indexes).await.unwrap();
        let mut rewritten = 0;
        for (idx, old) in indexes.iter().zip(stored) {
            if tree[idx] != old {
                self.set_hash("log_hashes", "hash", "idx", *idx, tree[idx].as_bytes())
                    .await;
                rewritten += 1;
            }
        }
        rewritten
    }

    /// Runs `renkei log verify` on the database, with the published key or (`None`) the key
    /// derived from storage.
    async fn verify(&self, key: Option<&str>) -> Verdict {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_renkei"));
        command.args(["log", "verify", "--database", &self.database]);
        if let Some(key) = key {
            command.args(["--key", key]);
        }
        let out = command
            .env("RUST_LOG", "warn")
            .env("RENKEI_KEK", &self.kek)
            .output()
            .await
            .unwrap();
        Verdict {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Verifies as an auditor (with the published key) and expects exit 1 naming `seq`.
    async fn expect_named(&self, seq: u64) -> Verdict {
        let verdict = self.verify(Some(&self.key)).await;
        assert_eq!(verdict.code, Some(1), "{verdict}");
        assert_eq!(verdict.first_bad_entry(), Some(seq), "{verdict}");
        eprintln!("{verdict}");
        verdict
    }

    /// Drops a PostgreSQL test database (a SQLite one goes with its directory).
    pub(crate) async fn remove(self) {
        let Some((admin_url, name)) = &self.postgres else {
            return;
        };
        drop(self.store);
        if let Ok(mut admin) = sqlx::PgConnection::connect(admin_url).await {
            let _ = sqlx::query(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut admin)
            .await;
        }
    }
}

async fn an_untampered_log_verifies_ok(backend: Backend) {
    let Some(log) = Log::build(backend).await else {
        return;
    };
    assert!(log.checkpoints.len() >= 4, "{:?}", log.checkpoints);
    for key in [Some(log.key.as_str()), None] {
        let verdict = log.verify(key).await;
        assert_eq!(verdict.code, Some(0), "{verdict}");
        assert!(verdict.stdout.contains("OK: "), "{verdict}");
        assert!(
            verdict.stdout.contains(&format!(
                "entries: {}  checkpoints: {}",
                log.size,
                log.checkpoints.len()
            )),
            "{verdict}"
        );
        assert_eq!(verdict.first_bad_entry(), None);
    }
    // The wrong key: the checkpoints do not verify.
    let (_, other_key) = renkei_log::note::generate_key("hub.tamper-test.example.jp/log").unwrap();
    let verdict = log.verify(Some(&other_key)).await;
    assert_eq!(verdict.code, Some(1), "{verdict}");
    assert!(verdict.stdout.contains("BAD CHECKPOINT"), "{verdict}");
    assert_eq!(
        verdict.first_bad_entry(),
        None,
        "a key that does not verify says nothing about the entries: {verdict}"
    );
    log.remove().await;
}

async fn an_edited_access_record_is_named_by_its_seq(backend: Backend) {
    let Some(log) = Log::build(backend).await else {
        return;
    };
    let target = log.position("access", log.size / 2);
    log.drop_append_only_triggers().await;
    log.edit(target).await;
    let verdict = log.expect_named(target).await;
    assert!(verdict.stdout.contains("BAD CHECKPOINT"), "{verdict}");
    log.remove().await;
}

async fn an_edited_consent_event_is_named_by_its_seq(backend: Backend) {
    let Some(log) = Log::build(backend).await else {
        return;
    };
    let target = log.position("consent", log.size / 3);
    log.drop_append_only_triggers().await;
    log.edit(target).await;
    log.expect_named(target).await;
    log.remove().await;
}

async fn a_deleted_access_record_is_named_by_its_seq(backend: Backend) {
    let Some(log) = Log::build(backend).await else {
        return;
    };
    let target = log.position("access", log.size / 2);
    log.drop_append_only_triggers().await;
    log.sql(&format!("DELETE FROM access_records WHERE seq = {target}"))
        .await;
    let verdict = log.expect_named(target).await;
    assert!(verdict.stdout.contains("removed"), "{verdict}");
    log.remove().await;
}

async fn a_deleted_entry_with_its_leaf_is_named_by_its_seq(backend: Backend) {
    let Some(log) = Log::build(backend).await else {
        return;
    };
    let target = log.position("consent", log.size / 4);
    log.drop_append_only_triggers().await;
    log.sql(&format!(
        "DELETE FROM consent_events WHERE log_seq = {target};
         DELETE FROM log_leaves WHERE seq = {target};"
    ))
    .await;
    log.expect_named(target).await;
    log.remove().await;
}

async fn removing_the_newest_entry_and_shrinking_the_head_is_named(backend: Backend) {
    let Some(log) = Log::build(backend).await else {
        return;
    };
    let last = log.size - 1;
    log.drop_append_only_triggers().await;
    log.sql(&format!(
        "DELETE FROM access_records WHERE seq = {last};
         DELETE FROM consent_events WHERE log_seq = {last};
         DELETE FROM log_leaves WHERE seq = {last};
         UPDATE log_head SET size = size - 1 WHERE id = 1;"
    ))
    .await;
    log.expect_named(last).await;
    log.remove().await;
}

async fn two_swapped_access_records_are_named_by_the_lower_seq(backend: Backend) {
    let Some(log) = Log::build(backend).await else {
        return;
    };
    let low = log.position("access", log.size / 3);
    let high = log.position("access", log.size * 2 / 3);
    assert!(low < high);
    log.drop_append_only_triggers().await;
    // The positions are unique: move one aside first.
    log.sql(&format!(
        "UPDATE access_records SET seq = -1 WHERE seq = {low};
         UPDATE access_records SET seq = {low} WHERE seq = {high};
         UPDATE access_records SET seq = {high} WHERE seq = -1;"
    ))
    .await;
    let verdict = log.expect_named(low).await;
    assert!(verdict.stdout.contains("reordered"), "{verdict}");
    log.remove().await;
}

async fn a_consent_event_swapped_with_an_access_record_and_their_leaves_is_named_by_the_lower_seq(
    backend: Backend,
) {
    let Some(log) = Log::build(backend).await else {
        return;
    };
    let consent = log.position("consent", log.size / 2);
    let access = log.position("access", consent);
    log.drop_append_only_triggers().await;
    // Whole entries move: rows and leaves.
    log.sql(&format!(
        "UPDATE access_records SET seq = {consent} WHERE seq = {access};
         UPDATE consent_events SET log_seq = {access} WHERE log_seq = {consent};
         UPDATE log_leaves SET seq = -1 WHERE seq = {consent};
         UPDATE log_leaves SET seq = {consent} WHERE seq = {access};
         UPDATE log_leaves SET seq = {access} WHERE seq = -1;"
    ))
    .await;
    log.expect_named(consent.min(access)).await;
    log.remove().await;
}

async fn an_edit_with_a_rewritten_leaf_hash_is_caught_by_the_integrated_level_0_hash(
    backend: Backend,
) {
    let Some(log) = Log::build(backend).await else {
        return;
    };
    let target = log.position("access", log.size / 2);
    log.drop_append_only_triggers().await;
    log.edit(target).await;
    let leaf = log.recomputed_leaf(target).await;
    log.set_hash("log_leaves", "leaf_hash", "seq", target, leaf.as_bytes())
        .await;
    let verdict = log.expect_named(target).await;
    assert!(
        verdict.stdout.contains("the leaf hash the log integrated"),
        "{verdict}"
    );
    log.remove().await;
}

async fn an_edit_with_a_rewritten_leaf_hash_and_its_level_0_hash_removed_is_named_by_its_seq(
    backend: Backend,
) {
    let Some(log) = Log::build(backend).await else {
        return;
    };
    // Not at a checkpoint boundary: only the entry's own checks can name it exactly.
    let mut target = log.position("access", log.size / 2);
    while log.checkpoints.contains(&target) {
        target = log.position("access", target + 1);
    }
    log.drop_append_only_triggers().await;
    log.edit(target).await;
    let leaf = log.recomputed_leaf(target).await;
    log.set_hash("log_leaves", "leaf_hash", "seq", target, leaf.as_bytes())
        .await;
    // Nothing guards the stored node hashes: remove the one that would tell.
    let level0 = merkle::stored_hash_index(0, target).unwrap();
    log.sql(&format!("DELETE FROM log_hashes WHERE idx = {level0}"))
        .await;
    log.expect_named(target).await;
    log.remove().await;
}

async fn an_edit_with_its_leaf_and_level_0_hashes_rewritten_is_narrowed_to_its_pair(
    backend: Backend,
) {
    let Some(log) = Log::build(backend).await else {
        return;
    };
    // An even position whose pair does not straddle a checkpoint: the node stored over the
    // pair tells that one of the two changed, and nothing stored can tell which.
    let mut target = log.position("access", log.size / 2);
    while target % 2 == 1 || log.checkpoints.contains(&(target + 1)) || target + 1 >= log.size {
        target = log.position("access", target + 1);
    }
    log.drop_append_only_triggers().await;
    log.edit(target).await;
    let leaf = log.recomputed_leaf(target).await;
    log.set_hash("log_leaves", "leaf_hash", "seq", target, leaf.as_bytes())
        .await;
    let level0 = merkle::stored_hash_index(0, target).unwrap();
    log.set_hash("log_hashes", "hash", "idx", level0, leaf.as_bytes())
        .await;
    let verdict = log.expect_named(target).await;
    assert!(
        verdict
            .stdout
            .contains(&format!("one of entries {target} to {}", target + 1)),
        "{verdict}"
    );
    log.remove().await;
}

async fn an_edit_with_the_whole_stored_tree_rewritten_is_caught_by_the_signed_checkpoints(
    backend: Backend,
) {
    let Some(log) = Log::build(backend).await else {
        return;
    };
    // The first entry after a checkpoint in the middle: every checkpoint up to it still
    // holds, every later one does not, so verification names exactly this entry.
    let target = log.checkpoints[log.checkpoints.len() / 2];
    assert!(0 < target && target < log.size, "{:?}", log.checkpoints);
    log.drop_append_only_triggers().await;
    log.edit(target).await;
    let leaf = log.recomputed_leaf(target).await;
    log.set_hash("log_leaves", "leaf_hash", "seq", target, leaf.as_bytes())
        .await;
    let rewritten = log.rewrite_stored_tree().await;
    assert!(
        rewritten > 1,
        "the leaf's level-0 hash and the nodes above it"
    );
    let verdict = log.expect_named(target).await;
    assert!(verdict.stdout.contains("BAD CHECKPOINT"), "{verdict}");
    assert!(
        !verdict.stdout.contains("the leaf hash the log integrated"),
        "the stored tree agrees with the rows now; only the signatures tell: {verdict}"
    );
    log.remove().await;
}

async fn cutting_the_log_short_with_its_checkpoints_is_caught_only_by_a_pinned_checkpoint(
    backend: Backend,
) {
    let Some(log) = Log::build(backend).await else {
        return;
    };
    // The auditor kept the latest checkpoint earlier.
    let kept = log.store.latest_checkpoint().await.unwrap().unwrap();
    let pinned = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(pinned.path(), &kept.note).unwrap();
    // The tamperer removes the newest entry and every checkpoint that covered it.
    let last = log.size - 1;
    log.drop_append_only_triggers().await;
    log.sql(&format!(
        "DELETE FROM access_records WHERE seq = {last};
         DELETE FROM consent_events WHERE log_seq = {last};
         DELETE FROM log_leaves WHERE seq = {last};
         DELETE FROM log_checkpoints WHERE size > {last};
         UPDATE log_head SET size = size - 1 WHERE id = 1;"
    ))
    .await;
    let unpinned = log.verify(Some(&log.key)).await;
    assert_eq!(
        unpinned.code,
        Some(0),
        "storage alone cannot tell: {unpinned}"
    );
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_renkei"))
        .args([
            "log",
            "verify",
            "--database",
            &log.database,
            "--key",
            &log.key,
            "--checkpoint",
        ])
        .arg(pinned.path())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("checkpoint {}", kept.size)),
        "{stdout}"
    );
    log.remove().await;
}

async fn a_consent_un_revoked_behind_the_logs_back_is_named(backend: Backend) {
    let Some(log) = Log::build(backend).await else {
        return;
    };
    // Consents are not append-only (they end): no trigger stands in the way.
    log.sql(&format!(
        "UPDATE consents SET revoked_at = NULL WHERE id = '{}'",
        log.revoked
    ))
    .await;
    let verdict = log.verify(Some(&log.key)).await;
    assert_eq!(verdict.code, Some(1), "{verdict}");
    let line = format!(
        "STATE DIFFERS FROM THE LOG: consent `{}` is in force but entry",
        log.revoked
    );
    assert!(verdict.stdout.contains(&line), "{verdict}");
    assert_eq!(
        verdict.first_bad_entry(),
        None,
        "the entries themselves are intact: {verdict}"
    );
    log.remove().await;
}

async fn cutting_the_log_short_is_caught_by_an_answers_inclusion_promise(backend: Backend) {
    let Some(log) = Log::build(backend).await else {
        return;
    };
    let last = log.size - 1;
    assert!(
        log.promise_of_the_last
            .contains(&format!("\ninclusion promise\n{last}\n")),
        "{}",
        log.promise_of_the_last
    );
    let promise = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(promise.path(), &log.promise_of_the_last).unwrap();
    // The tamperer removes the newest entry and every checkpoint that covered it: what
    // happens to entries not yet in a checkpoint, which storage alone cannot tell.
    log.drop_append_only_triggers().await;
    log.sql(&format!(
        "DELETE FROM access_records WHERE seq = {last};
         DELETE FROM log_leaves WHERE seq = {last};
         DELETE FROM log_checkpoints WHERE size > {last};
         UPDATE log_head SET size = size - 1 WHERE id = 1;"
    ))
    .await;
    assert_eq!(log.verify(Some(&log.key)).await.code, Some(0));
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_renkei"))
        .args([
            "log",
            "verify",
            "--database",
            &log.database,
            "--key",
            &log.key,
            "--promise",
        ])
        .arg(promise.path())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "FIRST BAD ENTRY: {last}: the log ends at {last} entries but promised"
        )),
        "{stdout}"
    );
    // A promise the log never signed proves nothing.
    let forged = log
        .promise_of_the_last
        .replace(&format!("\n{last}\n"), "\n3\n");
    std::fs::write(promise.path(), forged).unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_renkei"))
        .args([
            "log",
            "verify",
            "--database",
            &log.database,
            "--key",
            &log.key,
            "--promise",
        ])
        .arg(promise.path())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("BAD PROMISE: "), "{stdout}");
    log.remove().await;
}

/// Every case, as one test per backend.
macro_rules! tamper_tests {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Backend::Postgres).await;
                }
            )*
        }
    };
}

tamper_tests!(
    an_untampered_log_verifies_ok,
    an_edited_access_record_is_named_by_its_seq,
    an_edited_consent_event_is_named_by_its_seq,
    a_deleted_access_record_is_named_by_its_seq,
    a_deleted_entry_with_its_leaf_is_named_by_its_seq,
    removing_the_newest_entry_and_shrinking_the_head_is_named,
    two_swapped_access_records_are_named_by_the_lower_seq,
    a_consent_event_swapped_with_an_access_record_and_their_leaves_is_named_by_the_lower_seq,
    an_edit_with_a_rewritten_leaf_hash_is_caught_by_the_integrated_level_0_hash,
    an_edit_with_a_rewritten_leaf_hash_and_its_level_0_hash_removed_is_named_by_its_seq,
    an_edit_with_its_leaf_and_level_0_hashes_rewritten_is_narrowed_to_its_pair,
    an_edit_with_the_whole_stored_tree_rewritten_is_caught_by_the_signed_checkpoints,
    cutting_the_log_short_with_its_checkpoints_is_caught_only_by_a_pinned_checkpoint,
    a_consent_un_revoked_behind_the_logs_back_is_named,
    cutting_the_log_short_is_caught_by_an_answers_inclusion_promise,
);
