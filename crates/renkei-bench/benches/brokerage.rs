//! Brokerage throughput and latency: the same data fetched straight from a provider and
//! through the hub (consent check, grant, durable access record, relay), 64 requests in flight.
//!
//! Everything runs in this one process over loopback, on three Tokio runtimes: the hub's
//! (SQLite in a temporary directory under the target dir; every access record is fsynced
//! before its answer, as the store does it: batches share an fsync of the WAL), the
//! providers' (one answering after 5 ms, one at once) and the service's: a closed-loop load
//! generator (reqwest, one pooled connection per in-flight request). The service and the
//! providers are different programs, so they never share a thread: a fetch straight from the
//! provider wakes the provider's thread as it would anywhere, and the phases through the hub
//! differ from it by the hub's hop alone. Every phase runs twice, once per [`Placement`]:
//! with all threads sharing every core, and with the hub's threads on one core and the
//! world's on the others, as when the hub has a machine of its own. Each phase warms up for 1 s and then runs
//! `RENKEI_BENCH_SECS` seconds (default 10); a direct phase and the same through the hub take
//! turns in five rounds (direct, hub, direct again), so a machine whose speed drifts slows both
//! alike and the two direct halves show how far identical phases differ. `RENKEI_BENCH_DIR`
//! puts the hub's database elsewhere (e.g. `/dev/shm`, to see what fsync costs);
//! `RENKEI_BENCH_OWN_CORE_ONLY=1` skips the shared placement (half the time, for trying a
//! change); `RENKEI_BENCH_IN_FLIGHT=8` holds another number of requests in flight.
//!
//! The targets, each printed as a verdict with the 5 ms provider and the hub on its own core:
//! at 8 in flight (below saturation) ≥ 0.95× direct throughput and < 1 ms added at p99; at 64
//! in flight ≥ 0.8× direct; and the hub's CPU per brokered request no more than the bare
//! relay's plus the steps a brokered request adds, each timed alone (decide and record, sign
//! the grant). Run with `cargo bench -p renkei-bench --bench brokerage` (64 in flight) and
//! again with `RENKEI_BENCH_IN_FLIGHT=8 RENKEI_BENCH_OWN_CORE_ONLY=1`.
#![allow(
    clippy::indexing_slicing,
    reason = "a benchmark harness, not the product: a bad index fails the run loudly"
)]
#![allow(
    clippy::disallowed_methods,
    reason = "the bare relay and the ceiling are stand-ins beside the hub, not its routes"
)]

use renkei_bench as _; // the binary's allocator

#[path = "brokerage/outbound.rs"]
mod outbound;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::routing::post;
use chrono::Utc;
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use renkei_domain::{
    Actor, CategoryId, ConsentChannel, ConsentId, DataCategory, DataRequest, LegalBasis,
    LocalizedText, Locator, ProviderId, PurposeId, RequestId, ResidentId, Service, ServiceId,
    ServiceStatus, ServiceSubject,
};
use renkei_hub::broker::{DataRequestBody, DataResponse};
use renkei_hub::consents::GrantConsentBody;
use renkei_hub::{Hub, HubConfig};
use renkei_protocol::envelope::{EnvelopeContext, SealedPayload, ServiceKeyPair};
use renkei_protocol::grant::{GrantClaims, MAX_GRANT_LIFETIME_SECS, sign_grant};
use renkei_protocol::payload::open_verified;
use renkei_provider::MemoryRecords;
use renkei_store::{DecisionInput, PurposeDraft, SqliteStore, Store};
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// Requests held in flight by the load generator, always, unless `RENKEI_BENCH_IN_FLIGHT`
/// says another number.
const TARGET_IN_FLIGHT: usize = 64;
static IN_FLIGHT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();

/// Requests held in flight in this run ([`TARGET_IN_FLIGHT`] unless the environment says).
fn in_flight() -> usize {
    IN_FLIGHT.get().copied().unwrap_or(TARGET_IN_FLIGHT)
}
/// Brokered throughput with the provider in outbound-only mode, as a share of the same
/// provider's inbound (issue 23).
const OUTBOUND_TARGET: f64 = 0.9;
/// Residents, each with a consent and records at the provider.
const RESIDENTS: usize = 1_000;
const WARM_UP: Duration = Duration::from_secs(1);
/// The "database-backed" provider's answer time.
const SLOW_PROVIDER: Duration = Duration::from_millis(5);
/// The targets with the 5 ms provider and the hub on its own core, by requests in flight: hub
/// throughput at least this fraction of direct, and (where set) at most this much added
/// latency at p99. Below saturation the hop must be nearly free; at 64 in flight a 2-vCPU
/// machine cannot give the p99 target to any hop, a bare relay included.
const TARGETS: [Target; 2] = [
    Target {
        in_flight: 8,
        throughput_ratio: 0.95,
        added_p99_ms: Some(1.0),
    },
    Target {
        in_flight: 64,
        throughput_ratio: 0.8,
        added_p99_ms: None,
    },
];

/// What the hub must reach at one load.
struct Target {
    in_flight: usize,
    throughput_ratio: f64,
    added_p99_ms: Option<f64>,
}

impl Target {
    /// The target for this run's load and placement, if there is one.
    fn of_run(placement: Placement) -> Option<&'static Target> {
        if placement != Placement::HubOnOwnCore {
            return None;
        }
        TARGETS.iter().find(|t| t.in_flight == in_flight())
    }

    fn verdict(&self, ratio: f64, added_p99_ms: f64) -> String {
        let mut met = ratio >= self.throughput_ratio;
        let mut what = format!(">= {:.2}x", self.throughput_ratio);
        if let Some(p99) = self.added_p99_ms {
            met &= added_p99_ms < p99;
            what.push_str(&format!(" and < {p99:.0} ms added at p99"));
        }
        format!("{what}: {}", if met { "MET" } else { "NOT MET" })
    }
}
/// More failed requests than this fraction aborts the run.
const MAX_ERROR_RATE: f64 = 0.01;
/// Service tokens last 300 s; workers take a new one well before.
const TOKEN_REFRESH: Duration = Duration::from_secs(240);
/// Pre-signed grants must all be used within their lifetime: when the last would be used
/// later than this after signing, the load generator signs them on the fly.
const MAX_PRESIGNED_PHASE_SECS: u64 = 45;

const SERVICE: &str = "bench-service";
const PURPOSE: &str = "bench-purpose";
const PROVIDER: &str = "bench-provider";
const CATEGORIES: [&str; 2] = ["health.checkup", "payment.history"];

/// The whole number in environment variable `name`, if set, within `range`.
fn env_number(name: &str, range: std::ops::RangeInclusive<usize>) -> anyhow::Result<Option<usize>> {
    let Ok(v) = std::env::var(name) else {
        return Ok(None);
    };
    let n = v
        .trim()
        .parse::<usize>()
        .ok()
        .filter(|n| range.contains(n))
        .with_context(|| {
            format!(
                "{name}={v} is not a whole number from {} to {}",
                range.start(),
                range.end()
            )
        })?;
    Ok(Some(n))
}

fn main() -> anyhow::Result<()> {
    let secs = env_number("RENKEI_BENCH_SECS", 1..=86_400)?.unwrap_or(10);
    let duration = Duration::from_secs(u64::try_from(secs)?);
    if let Some(n) = env_number("RENKEI_BENCH_IN_FLIGHT", 1..=4096)? {
        let _ = IN_FLIGHT.set(n);
    }
    let in_flight = in_flight();
    println!("Renkei brokerage benchmark");
    println!(
        "  {in_flight} requests in flight, {} s per phase after a {} s warm-up, {RESIDENTS} residents with a consent each,",
        duration.as_secs(),
        WARM_UP.as_secs()
    );
    println!(
        "  2 categories per request from 1 provider; hub on SQLite (WAL, every record fsynced); one process"
    );
    if let Some(w) = wake_up_cost()? {
        println!(
            "  this machine: a wake-up round trip between two threads takes {:.1} us of CPU on one core, {:.1} us across two ({:.1} us wall);",
            w.one_core_cpu_us, w.two_cores_cpu_us, w.two_cores_wall_us
        );
        println!(
            "  a brokered request crosses between the hub's core and the others' four times, a direct fetch never"
        );
    }
    println!();
    let placements = if std::env::var_os("RENKEI_BENCH_OWN_CORE_ONLY").is_some() {
        vec![Placement::HubOnOwnCore]
    } else {
        vec![Placement::Shared, Placement::HubOnOwnCore]
    };
    for (i, placement) in placements.iter().copied().enumerate() {
        // Fresh runtimes and a fresh hub per placement, each runtime with as many workers as
        // it has cores, as it would have on a machine of that size.
        let (hub_cpus, world_cpus) = cpus_for(placement)?;
        let world = runtime(world_cpus.len(), WORLD_THREADS)?;
        let providers = runtime(world_cpus.len(), PROVIDER_THREADS)?;
        let hub = runtime(hub_cpus.len(), HUB_THREADS)?;
        let last = i + 1 == placements.len();
        let runtimes = Runtimes {
            hub: hub.handle().clone(),
            providers: providers.handle().clone(),
        };
        world.block_on(run(duration, placement, runtimes, last))?;
        drop(hub);
        drop(providers);
        drop(world);
    }
    Ok(())
}

/// Thread names of the runtimes; the hub's own threads (SQLite's WAL sync) and SQLite's
/// connection threads belong to the hub too. The load generator runs on the world's
/// runtime, the one `main` blocks on; it and the providers are "the world".
const HUB_THREADS: &str = "hub";
const WORLD_THREADS: &str = "world";
const PROVIDER_THREADS: &str = "provider";

/// A multi-threaded Tokio runtime of `workers` threads named `name`.
fn runtime(workers: usize, name: &str) -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name(name)
        .enable_all()
        .build()
        .with_context(|| format!("starting the `{name}` Tokio runtime"))
}

/// The runtimes servers are started on, besides the load generator's own.
struct Runtimes {
    hub: tokio::runtime::Handle,
    providers: tokio::runtime::Handle,
}

fn is_hub_thread(name: &str) -> bool {
    name.starts_with(HUB_THREADS) || name.starts_with("renkei-") || name.starts_with("sqlx-sqlite")
}

/// Where the benchmark's threads may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// Every thread on every core: hub, providers and load generator compete for the CPU.
    Shared,
    /// The hub's threads on one core (the one that takes the disk's interrupts, where
    /// `/proc/interrupts` says), the providers' and load generator's on the rest: the hub has a machine of its own, as
    /// where it is deployed, and the direct phases get exactly the CPU the world gets in the
    /// hub phases.
    HubOnOwnCore,
}

impl Placement {
    fn describe(self) -> &'static str {
        match self {
            Self::Shared => "hub, providers and load generator share every core",
            Self::HubOnOwnCore => {
                "hub on a core of its own; providers and load generator on the other core(s)"
            }
        }
    }
}

/// Each thread of this process, by id and name (Linux `/proc`).
fn threads() -> anyhow::Result<Vec<(i32, String)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc/self/task").context("listing this process's threads")? {
        let entry = entry?;
        let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|t| t.parse::<i32>().ok())
        else {
            continue;
        };
        // A thread that ended meanwhile has no `comm` left: skip it.
        if let Ok(name) = std::fs::read_to_string(entry.path().join("comm")) {
            out.push((tid, name.trim().to_owned()));
        }
    }
    Ok(out)
}

/// The CPUs the hub's threads and the others' may use under `placement`.
fn cpus_for(placement: Placement) -> anyhow::Result<(Vec<usize>, Vec<usize>)> {
    use nix::sched::{CpuSet, sched_getaffinity};
    use nix::unistd::Pid;
    // The CPUs this process was given, read once: placing narrows each thread's own mask.
    static GIVEN: std::sync::OnceLock<Vec<usize>> = std::sync::OnceLock::new();
    let allowed = sched_getaffinity(Pid::from_raw(0)).context("reading the CPU affinity")?;
    let cpus = GIVEN
        .get_or_init(|| {
            (0..CpuSet::count())
                .filter(|&c| allowed.is_set(c).unwrap_or(false))
                .collect()
        })
        .clone();
    Ok(match placement {
        Placement::Shared => (cpus.clone(), cpus),
        Placement::HubOnOwnCore => {
            if cpus.len() < 2 {
                bail!(
                    "a core of the hub's own needs at least 2 cores; this process may use {}",
                    cpus.len()
                );
            }
            // The hub's disk is the hub's: on its own machine the fsyncs' completion
            // interrupts would not land on the providers' or the service's cores.
            let hub_cpu = disk_interrupt_cpu()
                .filter(|c| cpus.contains(c))
                .unwrap_or(cpus[0]);
            let world = cpus.iter().copied().filter(|&c| c != hub_cpu).collect();
            (vec![hub_cpu], world)
        }
    })
}

/// The CPU that has taken most of the block devices' interrupts, if `/proc/interrupts` says;
/// read once, so every phase places the hub on the same core.
fn disk_interrupt_cpu() -> Option<usize> {
    static CPU: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    *CPU.get_or_init(|| {
        let table = std::fs::read_to_string("/proc/interrupts").ok()?;
        renkei_bench::disk_interrupt_cpu(&table)
    })
}

/// Sets every thread's CPU affinity for `placement`; run before each phase, so threads
/// started since (blocking pools, connections) are placed too.
fn place_threads(placement: Placement) -> anyhow::Result<()> {
    use nix::sched::{CpuSet, sched_setaffinity};
    use nix::unistd::Pid;
    let (hub_cpus, world_cpus) = cpus_for(placement)?;
    let set_of = |list: &[usize]| -> anyhow::Result<CpuSet> {
        let mut set = CpuSet::new();
        for &c in list {
            set.set(c)?;
        }
        Ok(set)
    };
    let (hub_set, world_set) = (set_of(&hub_cpus)?, set_of(&world_cpus)?);
    for (tid, name) in threads()? {
        let set = if is_hub_thread(&name) {
            &hub_set
        } else {
            &world_set
        };
        match sched_setaffinity(Pid::from_raw(tid), set) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => bail!("placing thread {tid} ({name}): {e}"),
        }
    }
    Ok(())
}

/// CPU time used so far by the hub's threads and by the others (Linux; threads that ended
/// are not counted).
fn cpu_by_side() -> Option<(Duration, Duration)> {
    let mut hub = Duration::ZERO;
    let mut world = Duration::ZERO;
    for (tid, name) in threads().ok()? {
        let Some(used) = cpu_of(&format!("/proc/self/task/{tid}/stat")) else {
            continue;
        };
        if is_hub_thread(&name) {
            hub += used;
        } else {
            world += used;
        }
    }
    Some((hub, world))
}

/// One resident as the benchmark knows them.
struct Resident {
    reference: String,
    consent: ConsentId,
    /// How the service knows the resident.
    subject: ServiceSubject,
    /// The service's request for this resident's data, as JSON.
    hub_body: String,
}

/// Everything the phases share.
struct Bench {
    hub: Hub,
    store: Arc<dyn Store>,
    hub_url: String,
    service: ServiceId,
    service_keys: ServiceKeyPair,
    provider: ProviderId,
    purpose: PurposeId,
    purpose_version: u32,
    categories: Vec<CategoryId>,
    residents: Vec<Resident>,
    client: reqwest::Client,
    /// The 5 ms provider again, for the outbound-only phase (it polls instead of listening).
    outbound_provider: Arc<renkei_provider::Provider>,
    /// Where the providers' tasks run.
    providers_runtime: tokio::runtime::Handle,
    /// The provider's public key: answers are opened as a service opens them, verified.
    provider_keys: renkei_protocol::keys::Jwks,
}

impl Bench {
    /// A grant for one random resident, signed with the hub's key as the hub would.
    fn sign_grant(&self, rng: &mut impl Rng) -> anyhow::Result<String> {
        self.sign_grant_for(rng).map(|(grant, _)| grant)
    }

    /// A grant and the request id it names.
    fn sign_grant_for(&self, rng: &mut impl Rng) -> anyhow::Result<(String, RequestId)> {
        let request_id = RequestId::from_uuid(uuid::Uuid::now_v7());
        let resident = &self.residents[rng.random_range(0..self.residents.len())];
        let now = Utc::now().timestamp();
        let claims = GrantClaims {
            iss: self.hub_url.clone(),
            aud: self.provider.clone(),
            sub: resident.reference.clone(),
            jti: uuid::Uuid::new_v4(),
            iat: now,
            exp: now + MAX_GRANT_LIFETIME_SECS,
            request_id,
            service: self.service.clone(),
            purpose: self.purpose.clone(),
            purpose_version: self.purpose_version,
            categories: self.categories.clone(),
            service_hpke_key: self.service_keys.public_b64(),
            consent: Some(resident.consent),
            emergency: None,
            basis: format!("consent:{}", resident.consent),
            location: Default::default(),
        };
        let grant =
            sign_grant(&self.hub.keys().signing_key(), &claims).context("signing a grant")?;
        Ok((grant, request_id))
    }
}

/// Grants for the direct phase: pre-signed, then signed on the fly if they run out.
struct GrantPool {
    grants: Vec<String>,
    next: AtomicUsize,
    signed_on_the_fly: AtomicUsize,
}

impl GrantPool {
    fn new(grants: Vec<String>) -> Self {
        Self {
            grants,
            next: AtomicUsize::new(0),
            signed_on_the_fly: AtomicUsize::new(0),
        }
    }

    fn take(&self, bench: &Bench) -> anyhow::Result<String> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        match self.grants.get(i) {
            Some(g) => Ok(g.clone()),
            None => {
                self.signed_on_the_fly.fetch_add(1, Ordering::Relaxed);
                bench.sign_grant(&mut rand::rng())
            }
        }
    }
}

/// What a phase sends.
enum Load {
    /// An empty handler: what the load generator and loopback HTTP can do at most.
    Ceiling(String),
    /// `POST /renkei/v1/fetch` at the provider with a fresh grant each time.
    Direct(String, GrantPool),
    /// `POST /v1/data-requests` at the hub.
    Hub(String),
}

/// One worker's (and then one phase's) count.
struct Tally {
    latency_us: Histogram<u64>,
    ok: u64,
    errors: BTreeMap<String, u64>,
}

impl Tally {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            latency_us: Histogram::new_with_bounds(1, 60_000_000, 3)
                .context("creating a histogram")?,
            ok: 0,
            errors: BTreeMap::new(),
        })
    }

    fn add(&mut self, other: &Tally) -> anyhow::Result<()> {
        self.latency_us
            .add(&other.latency_us)
            .context("merging histograms")?;
        self.ok += other.ok;
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        Ok(())
    }

    fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// A finished phase.
struct PhaseResult {
    tally: Tally,
    elapsed: Duration,
    /// Process CPU time used during the phase (all threads: hub, provider, load generator).
    cpu: Option<Duration>,
    /// CPU time of the hub's threads and of the others during the phase.
    sides: Option<(Duration, Duration)>,
    /// CPU time the hypervisor gave to others meanwhile (all cores; see [`stolen`]).
    stolen: Option<Duration>,
}

impl PhaseResult {
    /// Nothing measured yet: what slices are added to.
    fn empty() -> anyhow::Result<Self> {
        Ok(Self {
            tally: Tally::new()?,
            elapsed: Duration::ZERO,
            cpu: Some(Duration::ZERO),
            sides: Some((Duration::ZERO, Duration::ZERO)),
            stolen: Some(Duration::ZERO),
        })
    }

    /// Adds `other`'s requests, time and CPU to this one's (slices of one phase).
    fn add(&mut self, other: &PhaseResult) -> anyhow::Result<()> {
        self.tally.add(&other.tally)?;
        self.elapsed += other.elapsed;
        self.cpu = self.cpu.zip(other.cpu).map(|(a, b)| a + b);
        self.sides = self
            .sides
            .zip(other.sides)
            .map(|((h0, w0), (h1, w1))| (h0 + h1, w0 + w1));
        self.stolen = self.stolen.zip(other.stolen).map(|(a, b)| a + b);
        Ok(())
    }

    fn rate(&self) -> f64 {
        self.tally.ok as f64 / self.elapsed.as_secs_f64()
    }
    fn p50_ms(&self) -> f64 {
        self.tally.latency_us.value_at_quantile(0.50) as f64 / 1000.0
    }
    fn p99_ms(&self) -> f64 {
        self.tally.latency_us.value_at_quantile(0.99) as f64 / 1000.0
    }
    fn max_ms(&self) -> f64 {
        self.tally.latency_us.max() as f64 / 1000.0
    }
    fn cores(&self) -> Option<f64> {
        self.cpu
            .map(|c| c.as_secs_f64() / self.elapsed.as_secs_f64())
    }
    /// CPU microseconds per answered request: the hub's threads, then the others'.
    fn cpu_per_request_us(&self) -> Option<(f64, f64)> {
        let answered = (self.tally.ok + self.tally.error_count()).max(1) as f64;
        self.sides.map(|(hub, world)| {
            (
                hub.as_secs_f64() * 1e6 / answered,
                world.as_secs_f64() * 1e6 / answered,
            )
        })
    }
}

/// What one wake-up round trip between two threads costs on this machine: CPU time (both
/// threads) and wall time, with the two on one core and on two cores. A brokered request
/// crosses between the hub's core and the others' four times; a direct fetch never does.
struct WakeUpCost {
    one_core_cpu_us: f64,
    two_cores_cpu_us: f64,
    two_cores_wall_us: f64,
}

/// Two threads pass a byte back and forth over a socket pair, pinned to `a` and `b`; returns
/// CPU time and wall time per round trip.
fn ping_pong(a: usize, b: usize) -> anyhow::Result<(f64, f64)> {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    const ROUND_TRIPS: u32 = 20_000;
    fn pin(cpu: usize) -> anyhow::Result<()> {
        let mut set = nix::sched::CpuSet::new();
        set.set(cpu)?;
        nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
            .context("pinning a thread")?;
        Ok(())
    }
    let (mut here, mut there) = UnixStream::pair().context("creating a socket pair")?;
    let echo = std::thread::spawn(move || -> anyhow::Result<()> {
        pin(b)?;
        let mut byte = [0u8; 1];
        for _ in 0..ROUND_TRIPS {
            there.read_exact(&mut byte)?;
            there.write_all(&byte)?;
        }
        Ok(())
    });
    pin(a)?;
    let mut byte = [0u8; 1];
    let cpu_before = process_cpu();
    let started = Instant::now();
    for _ in 0..ROUND_TRIPS {
        here.write_all(&byte)?;
        here.read_exact(&mut byte)?;
    }
    let wall = started.elapsed();
    echo.join()
        .map_err(|_| anyhow::anyhow!("the echo thread panicked"))??;
    let cpu = cpu_before
        .zip(process_cpu())
        .map(|(before, after)| after.saturating_sub(before))
        .context("reading this process's CPU time")?;
    let per = |d: Duration| d.as_secs_f64() * 1e6 / f64::from(ROUND_TRIPS);
    Ok((per(cpu), per(wall)))
}

/// Measures [`WakeUpCost`] on the first two CPUs this process may use (`None` with one),
/// then lets this thread run anywhere again.
fn wake_up_cost() -> anyhow::Result<Option<WakeUpCost>> {
    let (cpus, _) = cpus_for(Placement::Shared)?;
    let [a, b, ..] = cpus[..] else {
        return Ok(None);
    };
    let (one_core_cpu_us, _) = ping_pong(a, a)?;
    let (two_cores_cpu_us, two_cores_wall_us) = ping_pong(a, b)?;
    let mut all = nix::sched::CpuSet::new();
    for &c in &cpus {
        all.set(c)?;
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &all)
        .context("unpinning the main thread")?;
    Ok(Some(WakeUpCost {
        one_core_cpu_us,
        two_cores_cpu_us,
        two_cores_wall_us,
    }))
}

/// User + system CPU time of this process so far (Linux; `None` elsewhere).
fn process_cpu() -> Option<Duration> {
    cpu_of("/proc/self/stat")
}

/// The unit of `/proc`'s CPU times: USER_HZ is 100 on every Linux this runs on.
const USER_HZ_TICK: Duration = Duration::from_millis(10);

/// CPU time the hypervisor has given to others while this machine's CPUs had work, so far
/// (Linux's `steal`; zero on bare metal, `None` where `/proc/stat` is missing).
fn stolen() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    Some(USER_HZ_TICK * u32::try_from(renkei_bench::stolen_ticks(&stat)).ok()?)
}

/// A stolen time in whole milliseconds, `?` where unknown.
fn ms(d: Option<Duration>) -> String {
    d.map_or_else(|| "?".to_owned(), |d| d.as_millis().to_string())
}

/// User + system CPU time from a `stat(5)` file of a process or thread.
fn cpu_of(path: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(path).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat(5) (utime, stime), counted from `state` (field 3).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(USER_HZ_TICK * u32::try_from(utime + stime).ok()?)
}

/// A short label for why a request failed: the HTTP status and problem type, or the
/// transport error's kind.
fn failure(status: StatusCode, body: &[u8]) -> String {
    let kind = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default();
    format!("HTTP {} {kind}", status.as_u16()).trim().to_owned()
}

fn transport_failure(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else {
        "request"
    };
    format!("transport error ({kind})")
}

/// One in-flight slot: sends, waits for the whole answer, records, repeats until `deadline`.
async fn worker(bench: Arc<Bench>, load: Arc<Load>, deadline: Instant) -> anyhow::Result<Tally> {
    let mut tally = Tally::new()?;
    let mut token: Option<(String, Instant)> = None;
    while Instant::now() < deadline {
        let request = match load.as_ref() {
            Load::Ceiling(url) => bench.client.post(url),
            Load::Direct(url, pool) => bench.client.post(url).bearer_auth(pool.take(&bench)?),
            Load::Hub(url) => {
                let current = match &token {
                    Some((t, at)) if at.elapsed() < TOKEN_REFRESH => t.clone(),
                    _ => {
                        let t = bench
                            .hub
                            .keys()
                            .issue_service_token(&bench.service, Utc::now())
                            .context("issuing a service token")?;
                        token = Some((t.clone(), Instant::now()));
                        t
                    }
                };
                let resident = &bench.residents[rand::random_range(0..bench.residents.len())];
                bench
                    .client
                    .post(url)
                    .bearer_auth(current)
                    .header(CONTENT_TYPE, "application/json")
                    .body(resident.hub_body.clone())
            }
        };
        let started = Instant::now();
        let outcome = match request.send().await {
            Ok(response) => {
                let status = response.status();
                match response.bytes().await {
                    Ok(_) if status == StatusCode::OK => Ok(()),
                    Ok(body) => Err(failure(status, &body)),
                    Err(e) => Err(transport_failure(&e)),
                }
            }
            Err(e) => Err(transport_failure(&e)),
        };
        match outcome {
            Ok(()) => {
                let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                tally.latency_us.saturating_record(us.max(1));
                tally.ok += 1;
            }
            Err(why) => *tally.errors.entry(why).or_default() += 1,
        }
    }
    Ok(tally)
}

/// Holds [`in_flight`] requests in flight for `duration`.
async fn drive(
    bench: &Arc<Bench>,
    load: &Arc<Load>,
    duration: Duration,
) -> anyhow::Result<PhaseResult> {
    let cpu_before = process_cpu();
    let sides_before = cpu_by_side();
    let stolen_before = stolen();
    let started = Instant::now();
    let deadline = started + duration;
    let mut workers = JoinSet::new();
    for _ in 0..in_flight() {
        workers.spawn(worker(bench.clone(), load.clone(), deadline));
    }
    let mut tally = Tally::new()?;
    while let Some(done) = workers.join_next().await {
        tally.add(&done.context("a load worker stopped")??)?;
    }
    let elapsed = started.elapsed();
    let cpu = cpu_before
        .zip(process_cpu())
        .map(|(a, b)| b.saturating_sub(a));
    let sides = sides_before
        .zip(cpu_by_side())
        .map(|((h0, w0), (h1, w1))| (h1.saturating_sub(h0), w1.saturating_sub(w0)));
    Ok(PhaseResult {
        tally,
        elapsed,
        cpu,
        sides,
        stolen: stolen_before
            .zip(stolen())
            .map(|(b, a)| a.saturating_sub(b)),
    })
}

/// Runs `load` for [`WARM_UP`]; fails if no request succeeded.
async fn warm_up(name: &str, bench: &Arc<Bench>, load: &Arc<Load>) -> anyhow::Result<PhaseResult> {
    progress(name, "warming up");
    let warm = drive(bench, load, WARM_UP).await?;
    if warm.tally.ok == 0 {
        bail!(
            "{name}: no request succeeded during the warm-up: {:?}",
            warm.tally.errors
        );
    }
    Ok(warm)
}

/// Warms up, then measures; aborts if more than 1% of the measured requests failed.
async fn phase(
    name: &str,
    bench: &Arc<Bench>,
    load: &Arc<Load>,
    duration: Duration,
) -> anyhow::Result<PhaseResult> {
    warm_up(name, bench, load).await?;
    progress(name, "measuring");
    let result = drive(bench, load, duration).await?;
    check_errors(name, &result)?;
    Ok(result)
}

/// Progress on stderr, so a long run shows where it is (stdout keeps the tables).
fn progress(name: &str, what: &str) {
    eprintln!("[{}] {name}: {what}", Utc::now().format("%H:%M:%S%.3f"));
}

fn check_errors(name: &str, result: &PhaseResult) -> anyhow::Result<()> {
    let errors = result.tally.error_count();
    let total = result.tally.ok + errors;
    if errors > 0 {
        println!("  {name}: {errors} of {total} requests failed:");
        for (why, n) in &result.tally.errors {
            println!("    {n:>8}  {why}");
        }
    }
    if total == 0 || errors as f64 > MAX_ERROR_RATE * total as f64 {
        bail!(
            "{name}: {errors} of {total} requests failed (more than {:.0}%); the figures would be meaningless",
            MAX_ERROR_RATE * 100.0
        );
    }
    Ok(())
}

fn cat(s: &str) -> anyhow::Result<CategoryId> {
    CategoryId::new(s).with_context(|| format!("category {s}"))
}

/// What the provider holds about resident `i`: a health check and a few payments.
fn record(rng: &mut StdRng, i: usize) -> Map<String, Value> {
    let shops = [
        "ひかり台スーパー",
        "ドラッグストアみなと",
        "ひかり台駅売店",
        "青空ベーカリー",
    ];
    let purchases: Vec<Value> = (0..rng.random_range(2..6))
        .map(|_| {
            json!({
                "date": format!("2026-11-{:02}", rng.random_range(1..=22)),
                "shop": shops[rng.random_range(0..shops.len())],
                "amount_jpy": rng.random_range(150..8000),
            })
        })
        .collect();
    let mut m = Map::new();
    m.insert(
        "health.checkup".into(),
        json!({
            "date": format!("2026-{:02}-{:02}", rng.random_range(4..=10), rng.random_range(1..=28)),
            "height_cm": rng.random_range(145..185),
            "weight_kg": rng.random_range(40..95),
            "systolic_mmHg": rng.random_range(100..170),
            "hba1c_percent": f64::from(rng.random_range(48..75)) / 10.0,
            "patient": format!("BENCH-{:06}", i + 1),
        }),
    );
    m.insert("payment.history".into(), json!(purchases));
    m
}

/// Serves `router` on a loopback port from the runtime this is called on.
async fn serve(router: axum::Router) -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding a loopback port")?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            eprintln!("server on {addr} stopped: {e}");
        }
    });
    Ok(format!("http://{addr}"))
}

/// Serves `router` on a loopback port from `runtime`.
async fn serve_on(
    runtime: &tokio::runtime::Handle,
    router: axum::Router,
) -> anyhow::Result<String> {
    runtime
        .spawn(serve(router))
        .await
        .context("a server's start-up task stopped")?
}

/// A bare relay on the hub's runtime: it forwards each fetch, grant and all, to the provider
/// at `provider_url` with the hub's own HTTP client and relays the answer's bytes. It
/// decides nothing, signs nothing and records nothing: what forwarding alone costs (two more
/// loopback hops and a side that must be woken). No floor: its core sleeps more than the
/// hub's, and waking it costs the other core more.
async fn serve_relay(
    hub_runtime: &tokio::runtime::Handle,
    client: reqwest::Client,
    provider_url: &str,
) -> anyhow::Result<String> {
    use axum::http::{HeaderMap, header::AUTHORIZATION};
    let target = format!("{provider_url}/renkei/v1/fetch");
    let relay = move |headers: HeaderMap| {
        let (client, target) = (client.clone(), target.clone());
        async move {
            let mut request = client.post(target);
            if let Some(grant) = headers.get(AUTHORIZATION) {
                request = request.header(AUTHORIZATION, grant);
            }
            match request.send().await {
                Ok(answer) => {
                    let status = answer.status();
                    let body = answer.bytes().await.unwrap_or_default();
                    (status, body)
                }
                Err(_) => (StatusCode::BAD_GATEWAY, Default::default()),
            }
        }
    };
    serve_on(
        hub_runtime,
        axum::Router::new().route("/renkei/v1/fetch", post(relay)),
    )
    .await
}

/// The hub (its store, tasks and HTTP server on the hub's runtime), its catalogue, the
/// residents and their consents; returns the bench and the providers' URLs (5 ms, immediate).
async fn set_up(
    dir: &std::path::Path,
    runtimes: &Runtimes,
) -> anyhow::Result<(Arc<Bench>, String, String)> {
    let hub_runtime = &runtimes.hub;
    let db = dir.join("hub.db");
    let (store, hub, hub_url) = hub_runtime
        .spawn(async move {
            let store: Arc<dyn Store> = Arc::new(
                SqliteStore::open(&db)
                    .await
                    .context("opening the hub's SQLite store")?,
            );
            let hub_listener = TcpListener::bind("127.0.0.1:0")
                .await
                .context("binding the hub's port")?;
            let hub_url = format!("http://{}", hub_listener.local_addr()?);
            // The bench's providers listen on 127.0.0.1.
            let mut config = HubConfig::new(hub_url.clone(), renkei_hub::kek::Kek::generate());
            config.allow_local_network = true;
            // The figure is the hub's throughput, not its per-service data-request limit.
            config.limits = renkei_hub::limits::RateLimits::GENEROUS;
            let hub = Hub::start(config, store.clone())
                .await
                .context("starting the hub")?;
            let router = renkei_hub::router(hub.clone());
            tokio::spawn(async move {
                let app = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
                if let Err(e) = axum::serve(hub_listener, app).await {
                    eprintln!("hub stopped: {e}");
                }
            });
            anyhow::Ok((store, hub, hub_url))
        })
        .await
        .context("the hub's start-up task stopped")??;

    let provider = ProviderId::new(PROVIDER)?;
    let mut rng = StdRng::seed_from_u64(20_261_123);
    let references: Vec<String> = (0..RESIDENTS)
        .map(|i| format!("BENCH-{:06}", i + 1))
        .collect();
    let records: HashMap<String, Map<String, Value>> = references
        .iter()
        .enumerate()
        .map(|(i, r)| (r.clone(), record(&mut rng, i)))
        .collect();
    let records = Arc::new(MemoryRecords(records));
    // Providers sign every answer (a service verifies it); the bench opens none.
    let signing_key = renkei_protocol::keys::SigningKey::generate()?;
    let slow = renkei_provider::Provider::with_delay(
        provider.clone(),
        hub.keys().jwks(),
        signing_key.clone(),
        records.clone(),
        SLOW_PROVIDER,
    );
    let provider_keys = renkei_protocol::keys::Jwks::from_signing_keys([&signing_key]);
    let outbound_provider = renkei_provider::Provider::with_delay(
        provider.clone(),
        hub.keys().jwks(),
        signing_key.clone(),
        records.clone(),
        SLOW_PROVIDER,
    );
    let fast = renkei_provider::Provider::with_delay(
        provider.clone(),
        hub.keys().jwks(),
        signing_key,
        records,
        Duration::ZERO,
    );
    let slow_url = serve_on(&runtimes.providers, renkei_provider::router(slow)).await?;
    let fast_url = serve_on(&runtimes.providers, renkei_provider::router(fast)).await?;

    let now = Utc::now();
    let categories: Vec<CategoryId> = CATEGORIES
        .iter()
        .map(|c| cat(c))
        .collect::<anyhow::Result<_>>()?;
    for (c, ja, en) in [
        (&categories[0], "健康診断結果", "Health check results"),
        (&categories[1], "決済履歴", "Payment history"),
    ] {
        store
            .put_category(&DataCategory {
                id: c.clone(),
                name: LocalizedText::new(ja, en),
                special_care: c.as_str() == "health.checkup",
                location: false,
            })
            .await?;
    }
    store
        .put_provider(&renkei_domain::Provider {
            id: provider.clone(),
            name: LocalizedText::new("ベンチ医療・決済", "Bench provider"),
            connection: renkei_domain::ProviderConnection::Inbound {
                endpoint: slow_url.clone(),
            },
            categories: categories.iter().cloned().collect(),
            max_answer_bytes: None,
            signing_keys: Default::default(),
            contact: None,
            status: renkei_domain::ProviderStatus::Approved,
        })
        .await?;
    let service_keys = ServiceKeyPair::generate()?;
    let service = ServiceId::new(SERVICE)?;
    store
        .put_service(
            &Service {
                id: service.clone(),
                name: LocalizedText::new("ベンチサービス", "Bench service"),
                sector: "health".into(),
                hpke_public_key: service_keys.public_b64(),
                webhook_url: None,
                status: ServiceStatus::Approved,
            },
            &renkei_hub::auth::hash_client_secret("bench-secret"),
        )
        .await?;
    let purpose_id = PurposeId::new(PURPOSE)?;
    let purpose = store
        .publish_purpose(
            &PurposeDraft {
                service: service.clone(),
                id: purpose_id.clone(),
                title: LocalizedText::new("健康アドバイス", "Health advice"),
                description: LocalizedText::new(
                    "健康診断結果と決済履歴から助言します。",
                    "Advice from your health check and payments.",
                ),
                categories: categories.iter().cloned().collect::<BTreeSet<_>>(),
                retention_days: 365,
                legal_basis: LegalBasis::Consent,
                emergency_only: false,
                location: None,
            },
            now,
        )
        .await?;

    let ids: Vec<ResidentId> = (0..RESIDENTS)
        .map(|_| ResidentId::from_uuid(uuid::Uuid::new_v4()))
        .collect();
    let mut locators = Vec::with_capacity(RESIDENTS * categories.len());
    for (id, reference) in ids.iter().zip(&references) {
        store.add_resident(*id, now).await?;
        for c in &categories {
            locators.push(Locator {
                resident: *id,
                category: c.clone(),
                provider: provider.clone(),
                reference: reference.clone(),
            });
        }
    }
    store.put_locators(&locators).await?;

    // Every resident says yes, through the hub's own flow (receipt and pairwise subject).
    let mut grants = JoinSet::new();
    for (i, id) in ids.iter().enumerate() {
        let hub = hub.clone();
        let id = *id;
        grants.spawn(async move {
            let body = GrantConsentBody {
                service: SERVICE.into(),
                purpose: PURPOSE.into(),
                valid_days: None,
            };
            let granted = hub
                .grant_consent(id, body, ConsentChannel::Portal, Actor::Resident)
                .await;
            (i, granted)
        });
    }
    let mut consents: Vec<Option<(ConsentId, String)>> = vec![None; RESIDENTS];
    while let Some(joined) = grants.join_next().await {
        let (i, granted) = joined.context("a consent task stopped")?;
        let granted = granted.context("granting a consent")?;
        let consent: ConsentId = granted.consent.id.parse()?;
        consents[i] = Some((consent, granted.subject));
    }
    let mut residents = Vec::with_capacity(RESIDENTS);
    for (reference, consent) in references.into_iter().zip(consents) {
        let (consent, subject) = consent.context("a consent was not granted")?;
        let hub_body = serde_json::to_string(&DataRequestBody {
            subject: subject.clone(),
            purpose: PURPOSE.into(),
            categories: CATEGORIES.iter().map(|c| (*c).to_owned()).collect(),
        })?;
        residents.push(Resident {
            reference,
            consent,
            subject: ServiceSubject::new(subject)?,
            hub_body,
        });
    }

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(in_flight() * 2)
        .timeout(Duration::from_secs(10))
        .build()
        .context("building the load generator's HTTP client")?;
    let bench = Arc::new(Bench {
        hub,
        store,
        hub_url,
        service,
        service_keys,
        provider,
        purpose: purpose_id,
        purpose_version: purpose.version,
        categories,
        residents,
        client,
        outbound_provider,
        providers_runtime: runtimes.providers.clone(),
        provider_keys,
    });
    Ok((bench, slow_url, fast_url))
}

/// Points the hub at one of the two provider servers (same provider id and records).
async fn use_provider(bench: &Bench, url: &str) -> anyhow::Result<()> {
    bench
        .store
        .put_provider(&renkei_domain::Provider {
            id: bench.provider.clone(),
            name: LocalizedText::new("ベンチ医療・決済", "Bench provider"),
            connection: renkei_domain::ProviderConnection::Inbound {
                endpoint: url.to_owned(),
            },
            categories: bench.categories.iter().cloned().collect(),
            max_answer_bytes: None,
            signing_keys: Default::default(),
            contact: None,
            status: renkei_domain::ProviderStatus::Approved,
        })
        .await?;
    Ok(())
}

/// One request each way, opened with the service's key: the data really flows.
async fn check_answers(bench: &Bench, provider_url: &str) -> anyhow::Result<()> {
    let (grant, request) = bench.sign_grant_for(&mut rand::rng())?;
    let response = bench
        .client
        .post(format!("{provider_url}/renkei/v1/fetch"))
        .bearer_auth(&grant)
        .send()
        .await?;
    let status = response.status();
    let body = response.bytes().await?;
    if status != StatusCode::OK {
        bail!(
            "the provider refused a direct fetch: {}",
            failure(status, &body)
        );
    }
    let sealed: SealedPayload = serde_json::from_slice(&body)?;
    let context = EnvelopeContext {
        provider: bench.provider.clone(),
        request,
    };
    let plain = open_verified(
        &bench.service_keys,
        &bench.service,
        &context,
        &bench.provider_keys,
        &sealed,
    )
    .context("opening a direct answer")?
    .data;
    if plain["data"]["health.checkup"].is_null() || plain["data"]["payment.history"].is_null() {
        bail!("a direct answer lacks the requested data: {plain}");
    }

    let token = bench
        .hub
        .keys()
        .issue_service_token(&bench.service, Utc::now())?;
    let response = bench
        .client
        .post(format!("{}/v1/data-requests", bench.hub_url))
        .bearer_auth(token)
        .header(CONTENT_TYPE, "application/json")
        .body(bench.residents[0].hub_body.clone())
        .send()
        .await?;
    let status = response.status();
    let body = response.bytes().await?;
    if status != StatusCode::OK {
        bail!("the hub refused a data request: {}", failure(status, &body));
    }
    let answer: DataResponse = serde_json::from_slice(&body)?;
    let view = answer
        .results
        .first()
        .and_then(|r| r.payload.clone())
        .with_context(|| format!("the hub's answer has no payload: {answer:?}"))?;
    let sealed = SealedPayload {
        suite: view.suite,
        enc: view.enc,
        ciphertext: view.ciphertext,
    };
    let context = EnvelopeContext {
        provider: bench.provider.clone(),
        request: answer.request_id.parse()?,
    };
    let plain = open_verified(
        &bench.service_keys,
        &bench.service,
        &context,
        &bench.provider_keys,
        &sealed,
    )
    .context("opening a hub answer")?
    .data;
    if plain["reference"] != json!(bench.residents[0].reference) || !answer.complete {
        bail!("the hub relayed the wrong resident's data or an incomplete answer");
    }
    Ok(())
}

/// Signs `n` grants on both cores.
fn presign(bench: &Bench, n: usize) -> anyhow::Result<Vec<String>> {
    let threads = std::thread::available_parallelism().map_or(1, |p| p.get());
    let per = n.div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mut rng = StdRng::seed_from_u64(t as u64);
                    (0..per)
                        .map(|_| bench.sign_grant(&mut rng))
                        .collect::<anyhow::Result<Vec<_>>>()
                })
            })
            .collect();
        let mut all = Vec::with_capacity(per * threads);
        for h in handles {
            match h.join() {
                Ok(grants) => all.extend(grants?),
                Err(_) => bail!("a signing thread stopped"),
            }
        }
        Ok(all)
    })
}

/// A warmed-up direct load at `provider_url` whose grants for `measured` of fetches are
/// signed before anything is timed, when the last of them is used within `span` of signing
/// (otherwise, and if they run out, grants are signed on the fly).
async fn direct_load(
    name: &str,
    bench: &Arc<Bench>,
    provider_url: &str,
    measured: Duration,
    span: Duration,
    notes: &mut Vec<String>,
) -> anyhow::Result<Arc<Load>> {
    let url = format!("{provider_url}/renkei/v1/fetch");
    let warm_load = Arc::new(Load::Direct(url.clone(), GrantPool::new(Vec::new())));
    let warm = warm_up(name, bench, &warm_load).await?;
    let pool = if span.as_secs() <= MAX_PRESIGNED_PHASE_SECS {
        // Pre-signed grants run faster than the warm-up (which signed on the fly): 2x margin.
        let wanted = (warm.rate() * 2.0 * measured.as_secs_f64()) as usize + in_flight();
        let started = Instant::now();
        let bench2 = bench.clone();
        let grants = tokio::task::spawn_blocking(move || presign(&bench2, wanted))
            .await
            .context("the signing task stopped")??;
        notes.push(format!(
            "{name}: {} grants pre-signed in {:.1} s ({:.1} us each on {} threads)",
            grants.len(),
            started.elapsed().as_secs_f64(),
            started.elapsed().as_secs_f64() * 1e6 / grants.len() as f64
                * std::thread::available_parallelism().map_or(1.0, |p| p.get() as f64),
            std::thread::available_parallelism().map_or(1, |p| p.get()),
        ));
        grants
    } else {
        notes.push(format!(
            "{name}: its fetches span over {MAX_PRESIGNED_PHASE_SECS} s, longer than a grant lives, so every grant is signed on the fly by the load generator"
        ));
        Vec::new()
    };
    Ok(Arc::new(Load::Direct(url, GrantPool::new(pool))))
}

/// Notes a direct load whose pre-signed grants ran out (then its figures include signing).
fn note_pool(name: &str, load: &Load, notes: &mut Vec<String>) {
    if let Load::Direct(_, pool) = load {
        let on_the_fly = pool.signed_on_the_fly.load(Ordering::Relaxed);
        if on_the_fly > 0 && !pool.grants.is_empty() {
            notes.push(format!(
                "{name}: the pool ran out; {on_the_fly} grants were signed on the fly"
            ));
        }
    }
}

/// The direct phase: warm up signing on the fly, pre-sign the grants, then measure.
async fn direct_phase(
    name: &str,
    bench: &Arc<Bench>,
    provider_url: &str,
    duration: Duration,
    notes: &mut Vec<String>,
) -> anyhow::Result<PhaseResult> {
    let load = direct_load(name, bench, provider_url, duration, duration, notes).await?;
    progress(name, "measuring");
    let result = drive(bench, &load, duration).await?;
    note_pool(name, &load, notes);
    check_errors(name, &result)?;
    Ok(result)
}

/// Slices a phase's measured time is cut into when direct and hub phases take turns.
const ROUNDS: u32 = 5;

/// The most CPU time the hypervisor may have stolen from a slice, as a share of the slice's
/// time on every core, for its round to count as quiet.
const QUIET_STEAL_SHARE: f64 = 0.01;

/// Direct and hub results measured in turns.
struct Turns {
    direct: PhaseResult,
    hub: PhaseResult,
    /// The direct phase measured a second time in every round, after the hub's slice: set
    /// against `direct`, what the machine's noise alone makes of two identical phases.
    direct_again: PhaseResult,
    /// The same, from only the rounds in which the hypervisor took (almost) nothing from
    /// either slice, and how many those were; `None` if none was, or steal cannot be read.
    quiet: Option<(PhaseResult, PhaseResult, u32)>,
}

/// Direct fetches from `provider_url` and the same through the hub, measured in turns:
/// [`ROUNDS`] rounds of a direct slice, a hub slice and a direct slice again, so a machine
/// whose speed drifts during the run (other tenants of the host) slows both alike, and the
/// two direct halves show how far identical phases differ here; each result adds up its
/// slices.
async fn direct_and_hub(
    label: &str,
    bench: &Arc<Bench>,
    provider_url: &str,
    duration: Duration,
    notes: &mut Vec<String>,
) -> anyhow::Result<Turns> {
    let (direct_name, hub_name) = (format!("{label} direct"), format!("{label} via hub"));
    let slice = duration / ROUNDS;
    // Two direct slices a round; the last ends about three phases after the grants were
    // signed.
    let direct = direct_load(
        &direct_name,
        bench,
        provider_url,
        duration * 2,
        duration * 3 + WARM_UP,
        notes,
    )
    .await?;
    let hub = Arc::new(Load::Hub(format!("{}/v1/data-requests", bench.hub_url)));
    warm_up(&hub_name, bench, &hub).await?;
    let mut records = 0;
    let (mut direct_result, mut hub_result) = (PhaseResult::empty()?, PhaseResult::empty()?);
    let mut direct_again = PhaseResult::empty()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let quiet_limit = (slice * u32::try_from(cores)?).mul_f64(QUIET_STEAL_SHARE);
    let (mut quiet_direct, mut quiet_hub, mut quiet_rounds) =
        (PhaseResult::empty()?, PhaseResult::empty()?, 0);
    for round in 1..=ROUNDS {
        progress(label, &format!("measuring, round {round} of {ROUNDS}"));
        let d = drive(bench, &direct, slice).await?;
        let before = bench.store.log_size().await?;
        let h = drive(bench, &hub, slice).await?;
        records += bench.store.log_size().await?.saturating_sub(before);
        let again = drive(bench, &direct, slice).await?;
        // Each slice's figures on stderr: whether a tail comes from one slice or all, and
        // whether the hypervisor took the CPUs away meanwhile.
        let figures = |r: &PhaseResult| {
            format!(
                "{:.0} req/s p50 {:.2} p99 {:.2} ms, {} ms stolen",
                r.rate(),
                r.p50_ms(),
                r.p99_ms(),
                ms(r.stolen)
            )
        };
        progress(
            label,
            &format!(
                "round {round}: direct {}; hub {}; direct again {}",
                figures(&d),
                figures(&h),
                figures(&again),
            ),
        );
        direct_result.add(&d)?;
        hub_result.add(&h)?;
        direct_again.add(&again)?;
        if d.stolen
            .zip(h.stolen)
            .is_some_and(|(d, h)| d.max(h) <= quiet_limit)
        {
            quiet_direct.add(&d)?;
            quiet_hub.add(&h)?;
            quiet_rounds += 1;
        }
    }
    note_pool(&direct_name, &direct, notes);
    notes.push(format!(
        "{hub_name}: {records} access records appended durably for {} requests answered",
        hub_result.tally.ok + hub_result.tally.error_count()
    ));
    notes.push(format!(
        "{label}: CPU time the hypervisor gave to others (steal, all cores): {} ms in the direct slices, {} ms in the hub's, {} ms in the direct ones again",
        ms(direct_result.stolen),
        ms(hub_result.stolen),
        ms(direct_again.stolen)
    ));
    check_errors(&direct_name, &direct_result)?;
    check_errors(&hub_name, &hub_result)?;
    check_errors(&format!("{direct_name} again"), &direct_again)?;
    Ok(Turns {
        direct: direct_result,
        hub: hub_result,
        direct_again,
        quiet: (quiet_rounds > 0).then_some((quiet_direct, quiet_hub, quiet_rounds)),
    })
}

/// The hub's own steps, each timed alone on the otherwise idle process, to show where a
/// brokered request's time goes.
async fn hub_costs(bench: &Bench) -> anyhow::Result<HubSteps> {
    let mut rng = StdRng::seed_from_u64(7);
    let mut inputs = |n: usize| -> Vec<DecisionInput> {
        (0..n)
            .map(|_| {
                let r = &bench.residents[rng.random_range(0..bench.residents.len())];
                DecisionInput {
                    request: DataRequest {
                        id: RequestId::from_uuid(uuid::Uuid::now_v7()),
                        service: bench.service.clone(),
                        purpose: bench.purpose.clone(),
                        categories: bench.categories.iter().cloned().collect(),
                    },
                    subject: r.subject.clone(),
                    token_id: None,
                }
            })
            .collect()
    };
    let row = |what: &str, per_request_us: f64, note: String| {
        println!("  {what:<58} {per_request_us:>9.1} us  {note}");
    };
    println!("Where a brokered request's time goes (each step timed alone, after the phases):");
    println!("  {:<58} {:>12}", "step", "per request");

    const BATCH: usize = TARGET_IN_FLIGHT;
    const BATCHES: usize = 30;
    let mut elapsed = Duration::ZERO;
    for _ in 0..BATCHES {
        let batch = inputs(BATCH);
        let started = Instant::now();
        let decided = bench.store.decide_and_record(&batch, Utc::now()).await?;
        elapsed += started.elapsed();
        if decided.len() != BATCH {
            bail!("decide_and_record answered {} of {BATCH}", decided.len());
        }
    }
    let per_batch = elapsed.as_secs_f64() / BATCHES as f64;
    let per_decision = per_batch / BATCH as f64;
    row(
        &format!("decide + record, batches of {BATCH} (one writer, one commit)"),
        per_decision * 1e6,
        format!(
            "{:.1} ms per batch; ceiling {:.0} decisions/s",
            per_batch * 1e3,
            1.0 / per_decision
        ),
    );

    const SINGLES: usize = 200;
    let started = Instant::now();
    for _ in 0..SINGLES {
        bench
            .store
            .decide_and_record(&inputs(1), Utc::now())
            .await?;
    }
    let single = started.elapsed().as_secs_f64() / SINGLES as f64;
    row(
        "decide + record, one per commit",
        single * 1e6,
        format!("ceiling {:.0} decisions/s", 1.0 / single),
    );

    const SIGNS: usize = 2_000;
    let started = Instant::now();
    for _ in 0..SIGNS {
        bench.sign_grant(&mut rng)?;
    }
    let sign = started.elapsed().as_secs_f64() / SIGNS as f64;
    row("signing the grant (Ed25519 JWS)", sign * 1e6, String::new());
    Ok(HubSteps {
        decide_and_record_us: per_decision * 1e6,
        sign_grant_us: sign * 1e6,
    })
}

/// The steps a brokered request adds to a bare relay, each timed alone (microseconds).
struct HubSteps {
    decide_and_record_us: f64,
    sign_grant_us: f64,
}

/// The hub's CPU per request (microseconds of its threads) through the hub and through the
/// bare relay, with the 5 ms provider.
struct HubCpu {
    via_hub_us: f64,
    via_relay_us: f64,
}

impl HubCpu {
    /// The CPU target: no overhead beyond the intrinsic work, i.e. what a hop costs plus the
    /// steps only the hub takes.
    fn print_verdict(&self, steps: &HubSteps) {
        let budget = self.via_relay_us + steps.decide_and_record_us + steps.sign_grant_us;
        let met = self.via_hub_us <= budget;
        println!(
            "Hub CPU per brokered request, own core: {:.0} us; bare relay {:.0} + decide and record {:.0} + grant {:.0} = {budget:.0} us: {}",
            self.via_hub_us,
            self.via_relay_us,
            steps.decide_and_record_us,
            steps.sign_grant_us,
            if met { "MET" } else { "NOT MET" }
        );
    }
}

fn print_row(name: &str, r: &PhaseResult) {
    let cores = r.cores().map_or("-".to_owned(), |c| format!("{c:.2}"));
    let split = r
        .cpu_per_request_us()
        .map_or("-".to_owned(), |(hub, world)| {
            format!("{hub:.0}+{world:.0}")
        });
    println!(
        "  {name:<28} {:>10.0} {:>8.2} {:>8.2} {:>8.2} {:>7} {:>9} {:>6} {:>15}",
        r.rate(),
        r.p50_ms(),
        r.p99_ms(),
        r.max_ms(),
        r.tally.error_count(),
        r.tally.ok + r.tally.error_count(),
        cores,
        split,
    );
}

/// The phases under one placement of the threads, and their table.
async fn measure(
    bench: &Arc<Bench>,
    placement: Placement,
    [ceiling_url, slow_url, fast_url, relay_url]: [&str; 4],
    duration: Duration,
    notes: &mut Vec<String>,
) -> anyhow::Result<Option<HubCpu>> {
    let ceiling_time = duration.min(Duration::from_secs(3));
    place_threads(placement)?;
    let ceiling = phase(
        "ceiling",
        bench,
        &Arc::new(Load::Ceiling(format!("{ceiling_url}/"))),
        ceiling_time,
    )
    .await?;
    use_provider(bench, slow_url).await?;
    place_threads(placement)?;
    let slow = direct_and_hub("5 ms", bench, slow_url, duration, notes).await?;
    let (slow_direct, slow_hub) = (&slow.direct, &slow.hub);
    place_threads(placement)?;
    let slow_relay = direct_phase("5 ms via bare relay", bench, relay_url, duration, notes).await?;
    place_threads(placement)?;
    let slow_outbound = outbound::phase_outbound(bench, duration).await?;
    use_provider(bench, fast_url).await?;
    check_answers(bench, fast_url).await?;
    place_threads(placement)?;
    let fast = direct_and_hub("0 ms", bench, fast_url, duration, notes).await?;
    let (fast_direct, fast_hub) = (&fast.direct, &fast.hub);
    use_provider(bench, slow_url).await?;

    println!(
        "  {:<28} {:>10} {:>8} {:>8} {:>8} {:>7} {:>9} {:>6} {:>15}",
        "phase",
        "req/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "errors",
        "requests",
        "cores",
        "CPU us/req h+w"
    );
    print_row(
        &format!("empty handler ({} s)", ceiling_time.as_secs()),
        &ceiling,
    );
    print_row("5 ms provider, direct", slow_direct);
    print_row("5 ms provider, direct again", &slow.direct_again);
    print_row("5 ms provider, via bare relay", &slow_relay);
    print_row("5 ms provider, via hub", slow_hub);
    print_row("5 ms provider, hub, outbound", &slow_outbound);
    print_row("0 ms provider, direct", fast_direct);
    print_row("0 ms provider, direct again", &fast.direct_again);
    print_row("0 ms provider, via hub", fast_hub);
    println!();
    println!(
        "  {:<14} {:>16} {:>11} {:>11}   target",
        "provider", "hub/direct req/s", "added p50", "added p99"
    );
    // `untargeted` says why a row has no target.
    let compare =
        |name: &str, direct: &PhaseResult, hub: &PhaseResult, untargeted: Option<&str>| {
            let ratio = hub.rate() / direct.rate();
            let p50 = hub.p50_ms() - direct.p50_ms();
            let p99 = hub.p99_ms() - direct.p99_ms();
            let verdict = match (untargeted, Target::of_run(placement)) {
                (Some(why), _) => format!("none ({why})"),
                (None, Some(target)) => target.verdict(ratio, p99),
                (None, None) => {
                    "none (targets are for the hub on its own core at 8 and 64 in flight)"
                        .to_owned()
                }
            };
            println!("  {name:<14} {ratio:>15.2}x {p50:>+8.2} ms {p99:>+8.2} ms   {verdict}");
        };
    compare("5 ms", slow_direct, slow_hub, None);
    compare(
        "5 ms, relay",
        slow_direct,
        &slow_relay,
        Some("a bare relay: forwarding alone"),
    );
    compare(
        "5 ms, A/A",
        slow_direct,
        &slow.direct_again,
        Some("direct against direct again: the noise between two identical phases"),
    );
    if let Some((direct, hub, rounds)) = &slow.quiet {
        compare(
            &format!("5 ms, quiet {rounds}/{ROUNDS}"),
            direct,
            hub,
            Some(&format!(
                "only rounds whose slices lost <= {:.0} % of the cores' time to steal",
                QUIET_STEAL_SHARE * 100.0
            )),
        );
    }
    {
        let ratio = slow_outbound.rate() / slow_hub.rate();
        let p99 = slow_outbound.p99_ms() - slow_hub.p99_ms();
        let met = if ratio >= OUTBOUND_TARGET {
            "met"
        } else {
            "NOT MET"
        };
        println!(
            "  {:<14} {ratio:>15.2}x {:>11} {p99:>+8.2} ms   >= {OUTBOUND_TARGET}x the inbound mode's req/s: {met}",
            "outbound/in", ""
        );
    }
    compare("0 ms", fast_direct, fast_hub, Some("CPU-bound worst case"));
    compare(
        "0 ms, A/A",
        fast_direct,
        &fast.direct_again,
        Some("as above, with the 0 ms provider"),
    );
    let cpu = match (
        slow_hub.cpu_per_request_us(),
        slow_relay.cpu_per_request_us(),
    ) {
        (Some((via_hub_us, _)), Some((via_relay_us, _))) => Some(HubCpu {
            via_hub_us,
            via_relay_us,
        }),
        _ => None,
    };
    Ok(cpu.filter(|_| placement == Placement::HubOnOwnCore))
}

/// One placement: a fresh hub and town, the phases, and after the last placement the hub's
/// own steps timed alone.
async fn run(
    duration: Duration,
    placement: Placement,
    runtimes: Runtimes,
    last: bool,
) -> anyhow::Result<()> {
    let parent = match std::env::var_os("RENKEI_BENCH_DIR") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")),
    };
    std::fs::create_dir_all(&parent)?;
    let dir = tempfile::Builder::new()
        .prefix("renkei-bench-")
        .tempdir_in(&parent)
        .with_context(|| format!("creating the hub's data directory in {}", parent.display()))?;

    println!("Placement: {}", placement.describe());
    let (hub_cpus, world_cpus) = cpus_for(placement)?;
    let disk = disk_interrupt_cpu().map_or_else(|| "unknown".to_owned(), |c| c.to_string());
    println!(
        "  CPUs: hub {hub_cpus:?}, providers and load generator {world_cpus:?}; the disk's interrupts on CPU {disk}"
    );
    let started = Instant::now();
    let (bench, slow_url, fast_url) = set_up(dir.path(), &runtimes).await?;
    println!(
        "  seeded {RESIDENTS} residents and consents in {:.1} s (hub database in {})",
        started.elapsed().as_secs_f64(),
        dir.path().display()
    );
    check_answers(&bench, &slow_url).await?;
    println!("  checked: one direct and one brokered answer open with the service's key");

    let mut notes = Vec::new();
    let ceiling_url = serve_on(
        &runtimes.providers,
        axum::Router::new().route("/", post(|| async { "{}" })),
    )
    .await?;
    let relay_url = serve_relay(&runtimes.hub, bench.hub.http().clone(), &slow_url).await?;
    let cpu = measure(
        &bench,
        placement,
        [&ceiling_url, &slow_url, &fast_url, &relay_url],
        duration,
        &mut notes,
    )
    .await?;
    println!("  notes:");
    for n in &notes {
        println!("    {n}");
    }
    println!();
    if last {
        place_threads(Placement::Shared)?;
        let steps = hub_costs(&bench).await?;
        println!();
        if let Some(cpu) = cpu {
            cpu.print_verdict(&steps);
            println!();
        }
        println!("Notes:");
        println!(
            "  latencies are of successful requests, measured by the load generator (send to last byte)"
        );
        println!(
            "  cores = process CPU time / wall time (hub + providers + load generator together)"
        );
        println!(
            "  CPU us/req h+w = CPU time per answered request of the hub's threads + of the others'"
        );
        println!(
            "  empty handler = the load generator's own ceiling (reqwest, HTTP/1.1, {} pooled connections)",
            in_flight()
        );
        println!(
            "  bare relay = a server on the hub's runtime and cores that forwards each direct fetch (grant and all)"
        );
        println!(
            "    to the provider and relays its answer: no decision, grant, record or JSON; what the hop alone costs"
        );
        println!(
            "  direct again = each round runs direct, hub, direct again; A/A sets the two direct halves against each"
        );
        println!(
            "    other: how far two identical phases differ on this machine, the resolution of the comparison above"
        );
    }
    Ok(())
}
