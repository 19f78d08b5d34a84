//! Storage faults under load: PostgreSQL going away and coming back, a SQLite disk filling up
//! and being freed. While storage cannot serve, data requests are answered `503
//! storage-unavailable` with `Retry-After` within about a second, liveness answers at once and
//! readiness says storage is down; once the fault ends, the hub recovers by itself, and no
//! acknowledged request is missing from the log.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails loudly"
)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use renkei_store::conformance::faults::{OwnDatabase, SmallFileSystem};
use serde_json::Value;

use crate::common::*;

/// One data request's answer, as the load generator saw it.
#[derive(Debug, Clone)]
struct Answer {
    started: Instant,
    took: Duration,
    status: u16,
    /// The problem type, or `None` on success.
    kind: Option<String>,
    retry_after: Option<String>,
    /// Set on a 200: the request the hub acknowledged.
    request_id: Option<String>,
}

/// Sends data requests from `workers` tasks until `stop` is set; every answer is kept.
fn load(
    town: &Arc<Town>,
    token: &str,
    subject: &str,
    workers: usize,
    stop: &Arc<AtomicBool>,
) -> tokio::task::JoinSet<Vec<Answer>> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (town, token, subject, stop) = (
            town.clone(),
            token.to_owned(),
            subject.to_owned(),
            stop.clone(),
        );
        set.spawn(async move {
            let mut answers = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let response = town
                    .request_data(
                        &token,
                        &subject,
                        "advice",
                        &[HEALTH_CHECKUP, PAYMENT_HISTORY],
                    )
                    .await;
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned());
                let body: Value = response.json().await.unwrap_or(Value::Null);
                let took = started.elapsed();
                answers.push(Answer {
                    started,
                    took,
                    status,
                    kind: body["type"].as_str().map(str::to_owned),
                    retry_after,
                    request_id: (status == 200)
                        .then(|| body["request_id"].as_str().unwrap().to_owned()),
                });
                if status != 200 {
                    // A client told to retry after a second would wait; a short pause keeps
                    // the test's own load from being only failures.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            answers
        });
    }
    set
}

async fn gather(mut set: tokio::task::JoinSet<Vec<Answer>>) -> Vec<Answer> {
    let mut all = Vec::new();
    while let Some(answers) = set.join_next().await {
        all.extend(answers.unwrap());
    }
    all.sort_by_key(|a| a.started);
    all
}

/// A town on `database` whose resident consented to `advice`, ready, and `workers` clients
/// asking for her data until the flag is set.
async fn town_under_load(
    database: String,
    workers: usize,
) -> (
    Arc<Town>,
    Arc<AtomicBool>,
    tokio::task::JoinSet<Vec<Answer>>,
) {
    let town = Arc::new(
        Town::with(TownOptions {
            database: Some(database),
            ..TownOptions::default()
        })
        .await,
    );
    let alice = town.sign_in(town.alice).await;
    let granted = town.grant(&alice, "health-advice", "advice").await;
    let token = town.service_token(&town.health).await;
    assert_eq!(status_of(&town, "/readyz").await.0, 200);
    let stop = Arc::new(AtomicBool::new(false));
    let set = load(&town, &token, &granted.subject, workers, &stop);
    (town, stop, set)
}

/// Every answer was a success or a clean `503 storage-unavailable` with `Retry-After: 1`.
fn assert_clean(answers: &[Answer]) {
    for a in answers {
        if a.status != 200 {
            assert_eq!(
                (a.status, a.kind.as_deref(), a.retry_after.as_deref()),
                (503, Some("/problems/storage-unavailable"), Some("1")),
                "{a:?}"
            );
        }
    }
}

/// Acknowledged requests missing from the log.
async fn lost(town: &Town, answers: &[Answer]) -> (usize, usize) {
    let stored: BTreeSet<String> = town
        .all_stored_access_records()
        .await
        .iter()
        .map(|r| r.request.to_string())
        .collect();
    let acknowledged: Vec<&String> = answers
        .iter()
        .filter_map(|a| a.request_id.as_ref())
        .collect();
    let lost = acknowledged
        .iter()
        .filter(|id| !stored.contains(**id))
        .count();
    (acknowledged.len(), lost)
}

async fn status_of(town: &Town, path: &str) -> (u16, Duration) {
    let started = Instant::now();
    let response = town.get(path).send().await.unwrap();
    (response.status().as_u16(), started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_postgres_refuses_connections_requests_get_a_clean_503_within_a_second_and_succeed_again_once_it_is_back()
 {
    let Some(db) = OwnDatabase::from_env().await else {
        return;
    };
    let (town, stop, workers) = town_under_load(db.url.clone(), 32).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    db.make_unavailable().await.unwrap();
    let down = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Liveness does not wait for storage; readiness says it is down.
    let (live, live_took) = status_of(&town, "/healthz").await;
    assert_eq!(live, 200);
    assert!(live_took < Duration::from_millis(200), "{live_took:?}");
    let (ready, ready_took) = status_of(&town, "/readyz").await;
    assert_eq!(ready, 503);
    tokio::time::sleep(Duration::from_millis(1700)).await;

    db.make_available().await.unwrap();
    let up = Instant::now();
    tokio::time::sleep(Duration::from_millis(2000)).await;
    stop.store(true, Ordering::Relaxed);
    let answers = gather(workers).await;
    assert_clean(&answers);

    // Requests that began while storage was down: each answered 503 within about a second.
    let during: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.started >= down && a.started + a.took <= up)
        .collect();
    assert!(
        during.len() > 32,
        "{} requests during the outage",
        during.len()
    );
    let slowest_503 = during
        .iter()
        .filter(|a| a.status == 503)
        .map(|a| a.took)
        .max()
        .unwrap();
    assert!(
        slowest_503 <= Duration::from_millis(1200),
        "slowest 503: {slowest_503:?}"
    );
    let first_503 = answers
        .iter()
        .filter(|a| a.status == 503)
        .map(|a| a.started + a.took - down)
        .min()
        .unwrap();
    // Recovery: the first success that began after storage was back.
    let recovered = answers
        .iter()
        .filter(|a| a.started >= up && a.status == 200)
        .map(|a| a.started + a.took - up)
        .min()
        .expect("no request succeeded after PostgreSQL was back");
    assert!(recovered <= Duration::from_secs(5), "{recovered:?}");
    assert_eq!(status_of(&town, "/readyz").await.0, 200);
    let (acknowledged, lost) = lost(&town, &answers).await;
    assert_eq!(lost, 0);
    eprintln!(
        "postgres outage: {} requests, {} answered 503; first 503 {first_503:?} after the \
         outage began, slowest 503 {slowest_503:?}; /healthz {live_took:?}, /readyz \
         {ready_took:?}; first success {recovered:?} after PostgreSQL was back; \
         {acknowledged} acknowledged, {lost} lost",
        answers.len(),
        answers.iter().filter(|a| a.status == 503).count(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_and_data_requests_succeed_again_once_space_is_freed_without_a_restart()
 {
    let Some(fs) = SmallFileSystem::mount("16m") else {
        return;
    };
    let (town, stop, workers) =
        town_under_load(fs.path().join("hub.sqlite").display().to_string(), 16).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let filler = fs.fill();
    let full = Instant::now();
    let (ready, _) = status_of(&town, "/readyz").await;
    assert_eq!(ready, 503, "readiness while the disk is full");
    tokio::time::sleep(Duration::from_secs(3)).await;

    std::fs::remove_file(&filler).unwrap();
    let freed = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let answers = gather(workers).await;
    assert_clean(&answers);

    let first_503 = answers
        .iter()
        .filter(|a| a.status == 503)
        .map(|a| a.started + a.took - full)
        .min()
        .expect("no request was refused while the disk was full");
    let slowest_503 = answers
        .iter()
        .filter(|a| a.status == 503)
        .map(|a| a.took)
        .max()
        .unwrap();
    let recovered = answers
        .iter()
        .filter(|a| a.started >= freed && a.status == 200)
        .map(|a| a.started + a.took - freed)
        .min()
        .expect("no data request succeeded after space was freed");
    assert!(recovered <= Duration::from_secs(5), "{recovered:?}");
    // Every request that began a second after the space was freed succeeded.
    let late_failures = answers
        .iter()
        .filter(|a| a.started >= freed + Duration::from_secs(1) && a.status != 200)
        .count();
    assert_eq!(
        late_failures, 0,
        "data requests still fail after space was freed"
    );
    assert_eq!(status_of(&town, "/readyz").await.0, 200);
    let (acknowledged, lost) = lost(&town, &answers).await;
    assert_eq!(lost, 0);
    eprintln!(
        "full disk: {} requests, {} answered 503; first 503 {first_503:?} after the disk \
         filled, slowest 503 {slowest_503:?}; first success {recovered:?} after space was \
         freed; {acknowledged} acknowledged, {lost} lost",
        answers.len(),
        answers.iter().filter(|a| a.status == 503).count(),
    );
}
