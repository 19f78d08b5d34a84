//! The transparency log, hub side (flow 4): the integrator that turns new leaves into stored
//! Merkle hashes and a signed checkpoint at least once a second, refusing to sign one that is
//! not consistent with the last, and the public log endpoints (checkpoints, tiles, proofs).

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use renkei_log::checkpoint::Checkpoint;
use renkei_log::merkle::{self, Hash};
use renkei_log::note::Signer;
use renkei_store::{Store, StoreError, StoredCheckpoint};

use crate::{Hub, HubError};

/// The most leaves folded into one checkpoint.
const MAX_LEAVES_PER_CHECKPOINT: u32 = 65_536;
/// How often the integrator looks for new leaves: well inside the one-second promise.
const INTEGRATE_EVERY: Duration = Duration::from_millis(200);

/// The log's identity: its origin line and the key that signs its checkpoints.
pub struct LogIdentity {
    pub origin: String,
    pub signer: Signer,
}

impl LogIdentity {
    /// The origin is the issuer without its scheme, plus `/log` (C2SP checkpoints name the
    /// log by a schema-less URL).
    pub fn new(issuer: &str, seed: &[u8]) -> Result<Self, HubError> {
        let host = issuer
            .split_once("://")
            .map_or(issuer, |(_, rest)| rest)
            .trim_end_matches('/');
        let origin = format!("{host}/log");
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| HubError::internal("the log signing seed is not 32 bytes"))?;
        let signer = Signer::from_seed(&origin, &seed)
            .map_err(|e| HubError::internal(format!("log signer: {e}")))?;
        Ok(Self { origin, signer })
    }

    /// The verifier key in C2SP signed-note text form.
    pub fn verifier_key(&self) -> String {
        self.signer.verifier().to_string()
    }
}

fn merkle_error(e: impl std::fmt::Display) -> HubError {
    HubError::internal(format!("log: {e}"))
}

/// Reads the stored hashes among `indexes` that `known` lacks into `known`.
async fn fetch_missing(
    store: &dyn Store,
    known: &mut BTreeMap<u64, Hash>,
    indexes: &[u64],
) -> Result<(), HubError> {
    let missing: Vec<u64> = indexes
        .iter()
        .copied()
        .filter(|i| !known.contains_key(i))
        .collect();
    if !missing.is_empty() {
        let hashes = store.read_log_hashes(&missing).await?;
        known.extend(missing.into_iter().zip(hashes));
    }
    Ok(())
}

/// Folds the leaves appended since the last checkpoint into the tree and signs a new
/// checkpoint. Returns its size, or `None` when there was nothing new.
pub async fn integrate_once(
    store: &dyn Store,
    identity: &LogIdentity,
) -> Result<Option<u64>, HubError> {
    Ok(integrate(store, identity).await?.map(|done| done.size))
}

/// What one integration did.
struct Integrated {
    size: u64,
    /// Whether it folded as many leaves as one checkpoint takes (more may be waiting).
    full: bool,
}

async fn integrate(
    store: &dyn Store,
    identity: &LogIdentity,
) -> Result<Option<Integrated>, HubError> {
    let latest = store.latest_checkpoint().await?;
    let old_size = latest.as_ref().map_or(0, |c| c.size);
    let leaves = store
        .log_leaf_hashes(old_size, MAX_LEAVES_PER_CHECKPOINT)
        .await?;
    if leaves.is_empty() && latest.is_some() {
        return Ok(None);
    }
    let full = leaves.len() == MAX_LEAVES_PER_CHECKPOINT as usize;
    let mut known = BTreeMap::new();
    fetch_missing(
        store,
        &mut known,
        &merkle::tree_hash_indexes(old_size).map_err(merkle_error)?,
    )
    .await?;
    let mut new_hashes = Vec::new();
    for (n, leaf) in (old_size..).zip(&leaves) {
        let hashes = merkle::stored_hashes_for_append(n, *leaf, &known).map_err(merkle_error)?;
        let first = merkle::stored_hash_index(0, n).map_err(merkle_error)?;
        for (idx, hash) in (first..).zip(hashes) {
            known.insert(idx, hash);
            new_hashes.push((idx, hash));
        }
    }
    let new_size = old_size + leaves.len() as u64;
    fetch_missing(
        store,
        &mut known,
        &merkle::tree_hash_indexes(new_size).map_err(merkle_error)?,
    )
    .await?;
    let root = merkle::tree_hash(new_size, &known).map_err(merkle_error)?;
    // The consistency monitor: never sign a tree that does not extend the last signed one.
    if let Some(previous) = &latest
        && previous.size > 0
    {
        let indexes =
            merkle::consistency_proof_indexes(previous.size, new_size).map_err(merkle_error)?;
        fetch_missing(store, &mut known, &indexes).await?;
        let proof =
            merkle::consistency_proof(previous.size, new_size, &known).map_err(merkle_error)?;
        merkle::verify_consistency(previous.size, new_size, &proof, &previous.root, &root)
            .map_err(|e| {
                HubError::internal_from(
                    format!(
                        "refusing to sign checkpoint {new_size}: not consistent with checkpoint {}",
                        previous.size
                    ),
                    e.to_string(),
                    Inconsistent {
                        checkpoint: previous.size,
                        tree: new_size,
                    },
                )
            })?;
    }
    let note = Checkpoint::new(&identity.origin, new_size, root)
        .and_then(|c| c.sign(&[&identity.signer]))
        .map_err(merkle_error)?;
    store
        .integrate(
            &new_hashes,
            &StoredCheckpoint {
                size: new_size,
                root,
                note,
                signed_at: Utc::now(),
            },
        )
        .await?;
    Ok(Some(Integrated {
        size: new_size,
        full,
    }))
}

/// The tree in storage does not extend the last signed checkpoint: the log was rewritten
/// or truncated beneath the hub (the source of the integrator's error, for the SOC's event).
#[derive(Debug, thiserror::Error)]
#[error("the tree of {tree} leaves does not extend checkpoint {checkpoint}")]
pub struct Inconsistent {
    pub checkpoint: u64,
    pub tree: u64,
}

impl Inconsistent {
    /// The inconsistency behind `e`, if that is what it is.
    pub fn of(e: &HubError) -> Option<&Self> {
        match e {
            HubError::Internal(internal) => std::error::Error::source(internal)?.downcast_ref(),
            _ => None,
        }
    }
}

pub(crate) fn start_integrator(hub: &Hub) {
    let weak = hub.downgrade();
    tokio::spawn(async move {
        loop {
            let Some(hub) = weak.upgrade() else { return };
            let result = integrate(hub.store().as_ref(), &hub.keys().log).await;
            if let Err(e) = &result
                && let Some(found) = Inconsistent::of(e)
            {
                hub.log_inconsistent(found).await;
            }
            drop(hub);
            match result {
                // A backlog: go on at once.
                Ok(Some(Integrated { full: true, .. })) => continue,
                // Otherwise wait, even after signing: each integration takes the one SQLite
                // writer for a commit of its own, so integrating after every append batch
                // would halve the appends' throughput; one checkpoint per interval still
                // keeps the one-second promise.
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "log integration failed"),
            }
            tokio::time::sleep(INTEGRATE_EVERY).await;
        }
    });
}

/// An inclusion proof of leaf `index` in the tree of `size` (≤ the latest checkpoint).
pub async fn inclusion_proof(
    store: &dyn Store,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, HubError> {
    let indexes = merkle::inclusion_proof_indexes(index, size)
        .map_err(|e| HubError::Malformed(e.to_string()))?;
    let mut known = BTreeMap::new();
    fetch_missing(store, &mut known, &indexes).await?;
    merkle::inclusion_proof(index, size, &known).map_err(merkle_error)
}

/// Inclusion proofs of several leaves in the tree of `size`, reading every hash they need
/// in one go (a history page needs fifty).
pub async fn inclusion_proofs(
    store: &dyn Store,
    leaves: &[u64],
    size: u64,
) -> Result<Vec<Vec<Hash>>, HubError> {
    let mut needed = Vec::new();
    for &index in leaves {
        needed.extend(
            merkle::inclusion_proof_indexes(index, size)
                .map_err(|e| HubError::Malformed(e.to_string()))?,
        );
    }
    needed.sort_unstable();
    needed.dedup();
    let mut known = BTreeMap::new();
    fetch_missing(store, &mut known, &needed).await?;
    leaves
        .iter()
        .map(|&index| merkle::inclusion_proof(index, size, &known).map_err(merkle_error))
        .collect()
}

/// A consistency proof between the trees of `from` and `to` leaves.
pub async fn consistency_proof(
    store: &dyn Store,
    from: u64,
    to: u64,
) -> Result<Vec<Hash>, HubError> {
    let indexes = merkle::consistency_proof_indexes(from, to)
        .map_err(|e| HubError::Malformed(e.to_string()))?;
    let mut known = BTreeMap::new();
    fetch_missing(store, &mut known, &indexes).await?;
    merkle::consistency_proof(from, to, &known).map_err(merkle_error)
}

/// A hash tile's bytes (C2SP tlog-tiles), if the latest checkpoint covers it.
pub async fn tile(store: &dyn Store, path: &str) -> Result<Vec<u8>, HubError> {
    // Tiles are static resources (a CDN serves them as files): a path that names no tile is
    // not found, as a file server would answer.
    let tile: renkei_log::tile::Tile = path.parse().map_err(|e: renkei_log::tile::TileError| {
        HubError::NotFound(format!("tile `{path}`: {e}"))
    })?;
    let size = store.latest_checkpoint().await?.map_or(0, |c| c.size);
    if !tile.is_within(size) {
        return Err(HubError::NotFound(format!("tile `{path}`")));
    }
    let indexes = tile.stored_hash_indexes().map_err(merkle_error)?;
    let mut known = BTreeMap::new();
    fetch_missing(store, &mut known, &indexes).await?;
    tile.read_data(&known).map_err(merkle_error)
}

pub fn b64(hash: &Hash) -> String {
    STANDARD.encode(hash.as_bytes())
}

/// What `renkei log verify` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub entries: u64,
    pub checkpoints: u64,
    /// The first entry that was altered, removed or reordered, and how it shows.
    pub first_bad_entry: Option<(u64, String)>,
    /// Checkpoints that do not match the entries or are not validly signed.
    pub bad_checkpoints: Vec<String>,
    /// Inclusion promises given that are not validly signed by the log's key.
    pub bad_promises: Vec<String>,
    /// Stored state a decision reads (consents) that disagrees with the log's entries.
    pub state_mismatches: Vec<String>,
}

impl VerifyReport {
    /// Records why entry `seq` is bad, unless an earlier one was named already.
    fn blame(&mut self, seq: u64, why: impl Into<String>) {
        if self.first_bad_entry.is_none() {
            self.first_bad_entry = Some((seq, why.into()));
        }
    }

    pub fn ok(&self) -> bool {
        self.first_bad_entry.is_none()
            && self.bad_checkpoints.is_empty()
            && self.bad_promises.is_empty()
            && self.state_mismatches.is_empty()
    }
}

/// Roots of a growing tree from its leaves alone, in O(log n) memory (the tree's frontier).
#[derive(Default)]
struct Frontier(Vec<(u32, Hash)>);

impl Frontier {
    fn push(&mut self, leaf: Hash) {
        let mut node = (0u32, leaf);
        while let Some(&(height, left)) = self.0.last() {
            if height != node.0 {
                break;
            }
            self.0.pop();
            node = (height + 1, merkle::node_hash(&left, &node.1));
        }
        self.0.push(node);
    }

    fn root(&self) -> Hash {
        let mut nodes = self.0.iter().rev();
        match nodes.next() {
            None => merkle::empty_root(),
            Some(&(_, last)) => {
                nodes.fold(last, |right, &(_, left)| merkle::node_hash(&left, &right))
            }
        }
    }
}

/// Re-derives the whole tree from the stored entries and checks it against every checkpoint
/// the hub signed (signature, size, root) and against the stored leaf and node hashes. Names
/// the first entry that was altered, removed or reordered, and every stored consent whose
/// state the log's consent entries contradict.
///
/// `pinned` are checkpoint notes the auditor kept from earlier (`GET /log/checkpoint`): they
/// are checked like stored ones, so deleting later checkpoints from storage hides nothing.
/// `promises` are the inclusion promises of data-request answers (`log_promise`): the entry at
/// each promised position must still derive to the promised leaf, checkpoint or not.
pub async fn verify(
    store: &dyn Store,
    verifier: &renkei_log::note::Verifier,
    pinned: &[String],
    promises: &[String],
) -> Result<VerifyReport, HubError> {
    const CHUNK: u32 = 10_000;
    let mut report = VerifyReport::default();
    let mut checkpoints = store.checkpoints().await?;
    // Level-0 hashes exist only as far as storage says it integrated.
    let integrated = checkpoints.last().map_or(0, |c| c.size);
    for note in pinned {
        match Checkpoint::open(note.as_bytes(), verifier.name(), verifier) {
            Ok(c) => checkpoints.push(StoredCheckpoint {
                size: c.size(),
                root: *c.root(),
                note: note.clone(),
                signed_at: Utc::now(),
            }),
            Err(e) => report
                .bad_checkpoints
                .push(format!("a pinned checkpoint does not verify: {e}")),
        }
    }
    let mut promised: BTreeMap<u64, Vec<Hash>> = BTreeMap::new();
    for note in promises {
        match renkei_log::promise::Promise::open(note.as_bytes(), verifier.name(), verifier) {
            Ok(p) => promised.entry(p.seq()).or_default().push(*p.leaf()),
            Err(e) => report
                .bad_promises
                .push(format!("an inclusion promise does not verify: {e}")),
        }
    }
    checkpoints.sort_by_key(|c| c.size);
    report.checkpoints = checkpoints.len() as u64;
    let mut pending = checkpoints.iter().peekable();
    let size = store.log_size().await?;
    report.entries = size;
    let mut frontier = Frontier::default();
    let mut consents = crate::log_state::LoggedConsents::default();
    let mut last_good_checkpoint = 0;
    // The first checkpoint validly signed over other entries than are stored now.
    let mut first_mismatch: Option<u64> = None;
    // A checkpoint of size 0 covers nothing.
    while let Some(c) = pending.next_if(|c| c.size == 0) {
        check_checkpoint(&mut report, c, merkle::empty_root(), verifier);
    }
    let mut seq = 0;
    while seq < size.max(integrated) {
        let range = store.log_range(seq, CHUNK).await?;
        let level0: Vec<u64> = (seq..(seq + u64::from(CHUNK)).min(integrated)).collect();
        let level0_indexes: Vec<u64> = level0
            .iter()
            .map(|&n| merkle::stored_hash_index(0, n))
            .collect::<Result<_, _>>()
            .map_err(merkle_error)?;
        let stored_level0 = integrated_leaves(store, &level0_indexes).await?;
        let mut by_seq: BTreeMap<u64, renkei_store::StoredEntry> =
            range.into_iter().map(|e| (e.seq, e)).collect();
        let end = (seq + u64::from(CHUNK)).min(size.max(integrated));
        for n in seq..end {
            let derived = match by_seq.remove(&n) {
                None => {
                    report.blame(n, "the entry and its leaf are missing (removed)");
                    None
                }
                Some(stored) => {
                    if let Some(Ok(renkei_domain::LogEntry::Consent(c))) = &stored.entry {
                        consents.record(c);
                    }
                    derive_leaf(&stored, n, &mut report)
                }
            };
            let integrated_leaf = usize::try_from(n - seq)
                .ok()
                .and_then(|i| stored_level0.get(i).copied().flatten());
            if n < integrated && integrated_leaf.is_none() {
                report.blame(
                    n,
                    "the leaf hash the log integrated is missing or unreadable (removed)",
                );
            }
            if let (Some(leaf), Some(node)) = (derived, integrated_leaf)
                && node != leaf
            {
                report.blame(
                    n,
                    "the entry does not match the leaf hash the log integrated",
                );
            }
            if promised
                .remove(&n)
                .is_some_and(|leaves| leaves.iter().any(|l| Some(*l) != derived))
            {
                report.blame(
                    n,
                    "the entry is not the one the log promised at this position in an answer",
                );
            }
            // A missing or unreadable entry still takes its place in the tree: use the stored
            // leaf so later checkpoints are still checked against the rest.
            frontier.push(derived.or(integrated_leaf).unwrap_or(merkle::empty_root()));
            while let Some(c) = pending.next_if(|c| c.size == n + 1) {
                match check_checkpoint(&mut report, c, frontier.root(), verifier) {
                    Some(true) if report.first_bad_entry.is_none() && first_mismatch.is_none() => {
                        last_good_checkpoint = c.size;
                    }
                    Some(false) => {
                        first_mismatch.get_or_insert(c.size);
                    }
                    // Not validly signed: it says nothing about the entries.
                    _ => {}
                }
            }
        }
        seq = end;
    }
    if let Some((&seq, _)) = promised.first_key_value() {
        report.blame(
            seq,
            format!(
                "the log ends at {size} entries but promised an entry at this position in an answer (removed)"
            ),
        );
    }
    for c in pending {
        report.bad_checkpoints.push(format!(
            "checkpoint {} is beyond the log's {} entries (entries removed)",
            c.size, size
        ));
        first_mismatch.get_or_insert(c.size);
    }
    if report.first_bad_entry.is_none()
        && let Some(signed) = first_mismatch
    {
        let from = last_good_checkpoint;
        report.first_bad_entry = Some(
            match locate_in_stored_tree(store, from, signed.min(integrated), integrated).await? {
                Some((first, last)) if first == last => (
                    first,
                    "the entry was altered with its leaf hashes: the node the log stored above \
                     it does not match"
                        .to_owned(),
                ),
                Some((first, last)) => (
                    first,
                    format!(
                        "one of entries {first} to {last} was altered with its leaf hashes: the \
                         node the log stored over them does not match (an inclusion promise for \
                         one of them tells which)"
                    ),
                ),
                None => (
                    from,
                    format!(
                        "an entry from {from} to {} differs from what checkpoint {signed} signed",
                        signed.saturating_sub(1)
                    ),
                ),
            },
        );
    }
    // What decisions read must be what the log says happened to it.
    let mut after = None;
    loop {
        let page = store.consents_after(after, CHUNK).await?;
        for c in &page {
            report.state_mismatches.extend(consents.check(c));
        }
        match page.last() {
            Some(last) => after = Some(last.id),
            None => break,
        }
    }
    report.state_mismatches.extend(consents.missing());
    Ok(report)
}

/// Narrows a change the signed checkpoints caught in `from..to` (`to` at most `integrated`,
/// the entries the stored tree holds) using the stored node hashes: the lowest stored node whose stored children do
/// not hash to it covers the altered entry. Returns the first and last entry of that node
/// within `from..to`, or `None` when the stored tree agrees with itself (rewritten whole: only
/// the signatures tell) or the range is too wide to search.
///
/// Sound only once every entry matched its stored level-0 hash: the children of a level-1
/// node are then the entries themselves.
async fn locate_in_stored_tree(
    store: &dyn Store,
    from: u64,
    to: u64,
    integrated: u64,
) -> Result<Option<(u64, u64)>, HubError> {
    /// The most nodes of one level read to narrow a change (about 3 MB of hashes).
    const MAX_NODES: u64 = 1 << 15;
    if from >= to {
        return Ok(None);
    }
    for level in 1u8..64 {
        let width = 1u64 << level;
        // Only complete subtrees are stored.
        let (first, end) = (from / width, (to - 1) / width + 1);
        let end = end.min(integrated / width);
        if first >= end {
            return Ok(None);
        }
        if end - first > MAX_NODES {
            continue;
        }
        let mut indexes = Vec::new();
        for k in first..end {
            for (l, n) in [(level, k), (level - 1, 2 * k), (level - 1, 2 * k + 1)] {
                indexes.push(merkle::stored_hash_index(l, n).map_err(merkle_error)?);
            }
        }
        let hashes = integrated_leaves(store, &indexes).await?;
        for (k, node) in (first..end).zip(hashes.chunks(3)) {
            if let [Some(parent), Some(left), Some(right)] = node
                && merkle::node_hash(left, right) != *parent
            {
                let first = (k * width).max(from);
                let last = ((k + 1) * width).min(to) - 1;
                return Ok(Some((first, last)));
            }
        }
    }
    Ok(None)
}

fn derive_leaf(
    stored: &renkei_store::StoredEntry,
    n: u64,
    report: &mut VerifyReport,
) -> Option<Hash> {
    let Some(leaf) = &stored.leaf else {
        report.blame(n, "the entry's leaf is missing");
        return None;
    };
    let entry = match &stored.entry {
        None => {
            report.blame(n, "the entry is missing (removed)");
            return None;
        }
        Some(Err(why)) => {
            report.blame(n, format!("the entry is unreadable (altered): {why}"));
            return None;
        }
        Some(Ok(entry)) => entry,
    };
    let derived = merkle::leaf_hash(&entry.leaf_data(&leaf.salt));
    if derived.as_bytes()[..] != leaf.leaf_hash[..] {
        report.blame(
            n,
            "the entry does not match its leaf hash (altered or reordered)",
        );
    }
    Some(derived)
}

/// The level-0 hashes the log integrated at `indexes`, `None` where one was removed or is
/// unreadable (the rest are still checked).
async fn integrated_leaves(
    store: &dyn Store,
    indexes: &[u64],
) -> Result<Vec<Option<Hash>>, HubError> {
    match store.read_log_hashes(indexes).await {
        Ok(hashes) => Ok(hashes.into_iter().map(Some).collect()),
        Err(StoreError::NotFound(_) | StoreError::Corrupt(_)) => {
            let mut out = Vec::with_capacity(indexes.len());
            for &i in indexes {
                out.push(match store.read_log_hashes(&[i]).await {
                    Ok(hashes) => hashes.first().copied(),
                    Err(StoreError::NotFound(_) | StoreError::Corrupt(_)) => None,
                    Err(e) => return Err(e.into()),
                });
            }
            Ok(out)
        }
        Err(e) => Err(e.into()),
    }
}

/// Checks one signed checkpoint against the root re-derived at its size, adding what is wrong
/// to the report: `Some(true)` when the stored entries are what it signed, `Some(false)` when
/// it was signed over other entries, `None` when it cannot tell (not validly signed).
fn check_checkpoint(
    report: &mut VerifyReport,
    c: &StoredCheckpoint,
    derived_root: Hash,
    verifier: &renkei_log::note::Verifier,
) -> Option<bool> {
    let origin = verifier.name().to_owned();
    let signed = match Checkpoint::open(c.note.as_bytes(), &origin, verifier) {
        Ok(signed) if signed.size() == c.size => signed,
        Ok(_) => {
            report.bad_checkpoints.push(format!(
                "checkpoint {}: the signed note is of another size",
                c.size
            ));
            return None;
        }
        Err(e) => {
            report
                .bad_checkpoints
                .push(format!("checkpoint {}: {e}", c.size));
            return None;
        }
    };
    if *signed.root() != c.root {
        report.bad_checkpoints.push(format!(
            "checkpoint {}: the stored root is not the one signed",
            c.size
        ));
    }
    if *signed.root() != derived_root {
        report.bad_checkpoints.push(format!(
            "checkpoint {} was signed over other entries than are stored now",
            c.size
        ));
        return Some(false);
    }
    Some(true)
}
