//! RFC 9162 §2.1 Merkle tree hashing, proofs and their verification.
//!
//! Hashing: `leaf = SHA-256(0x00 || data)`, `node = SHA-256(0x01 || left || right)`, and the
//! empty tree's root is `SHA-256("")`.
//!
//! # Stored hashes
//!
//! A storage layer keeps every node hash of the tree in one append-only sequence, in the
//! order of Go's `golang.org/x/mod/sumdb/tlog` "stored hash" numbering: appending leaf
//! `m` writes its leaf hash, then the hash of every perfect subtree that the leaf completes,
//! lowest first ([`stored_hashes_for_append`]). The node at `level` covering leaves
//! `[n·2^level, (n+1)·2^level)` lives at [`stored_hash_index`]`(level, n)`. Stored hashes
//! never change once written, so the sequence of a large tree answers for every smaller
//! size too.
//!
//! Roots and proofs are built from `O(log n)` stored hashes, read with one
//! [`HashReader::read_hashes`] call. A reader that cannot block (for example an async
//! database) can first ask which hashes are needed ([`tree_hash_indexes`],
//! [`inclusion_proof_indexes`], [`consistency_proof_indexes`]), fetch them, and hand them
//! over in a `BTreeMap<u64, Hash>`, which is a [`HashReader`].

use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest, Sha256};

/// Size of a hash in bytes (SHA-256).
pub const HASH_SIZE: usize = 32;

/// Largest tree size (number of leaves) that the stored-hash numbering supports: 2^62.
pub const MAX_TREE_SIZE: u64 = 1 << 62;

/// A SHA-256 hash: a leaf hash, a node hash or a tree root.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash(pub [u8; HASH_SIZE]);

impl Hash {
    /// Takes a hash from a byte slice of exactly [`HASH_SIZE`] bytes.
    ///
    /// # Errors
    /// [`MerkleError::HashLength`] when the slice has another length.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, MerkleError> {
        <[u8; HASH_SIZE]>::try_from(bytes)
            .map(Hash)
            .map_err(|_| MerkleError::HashLength { len: bytes.len() })
    }

    /// The hash's bytes.
    pub fn as_bytes(&self) -> &[u8; HASH_SIZE] {
        &self.0
    }
}

impl AsRef<[u8]> for Hash {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for Hash {
    /// Lowercase hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({self})")
    }
}

/// What went wrong while hashing, proving or verifying.
#[derive(Debug, thiserror::Error)]
pub enum MerkleError {
    /// A hash was given with the wrong number of bytes.
    #[error("a hash must be 32 bytes, not `{len}`")]
    HashLength {
        /// The length that was given.
        len: usize,
    },
    /// A leaf index is not inside the tree.
    #[error("leaf index `{index}` is not below tree size `{size}`")]
    IndexOutOfRange {
        /// The leaf index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The first tree of a consistency proof is larger than the second.
    #[error("tree size `{size1}` is larger than tree size `{size2}`")]
    SizesOutOfOrder {
        /// The first (older) tree size.
        size1: u64,
        /// The second (newer) tree size.
        size2: u64,
    },
    /// A consistency proof from the empty tree was asked for or offered.
    #[error("a consistency proof from the empty tree proves nothing")]
    EmptyTreeConsistency,
    /// A tree size or node position is beyond [`MAX_TREE_SIZE`].
    #[error("tree position `{0}` is beyond the largest supported tree")]
    TooLarge(u64),
    /// The proof has more hashes than the tree sizes need.
    #[error("the proof has more hashes than the tree needs")]
    ProofTooLong,
    /// The proof has fewer hashes than the tree sizes need.
    #[error("the proof has fewer hashes than the tree needs")]
    ProofTooShort,
    /// The proof does not lead to the given (newer) root.
    #[error("the proof does not lead to the given root")]
    RootMismatch,
    /// The consistency proof does not lead to the given older root.
    #[error("the proof does not lead to the given older root")]
    OldRootMismatch,
    /// A hash reader has no hash at a stored-hash index.
    #[error("stored hash `{index}` is missing")]
    HashNotStored {
        /// The stored-hash index.
        index: u64,
    },
    /// A hash reader answered with the wrong number of hashes.
    #[error("the hash reader returned {got} hashes for {want} indexes")]
    ReaderCount {
        /// How many were asked for.
        want: usize,
        /// How many came back.
        got: usize,
    },
    /// The storage behind a hash reader failed.
    #[error("reading stored hashes failed")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Reads stored hashes by their stored-hash index (see the module docs).
pub trait HashReader {
    /// Returns the hashes at `indexes`, in the same order.
    ///
    /// # Errors
    /// [`MerkleError::HashNotStored`] for an index not (yet) stored, or
    /// [`MerkleError::Storage`] wrapping the storage's own error.
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, MerkleError>;
}

/// The whole stored-hash sequence in memory: element `i` is stored hash `i`.
impl HashReader for [Hash] {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, MerkleError> {
        indexes
            .iter()
            .map(|&index| {
                usize::try_from(index)
                    .ok()
                    .and_then(|i| self.get(i))
                    .copied()
                    .ok_or(MerkleError::HashNotStored { index })
            })
            .collect()
    }
}

impl HashReader for Vec<Hash> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, MerkleError> {
        self.as_slice().read_hashes(indexes)
    }
}

/// Some stored hashes, keyed by stored-hash index (for example the ones a caller fetched
/// after asking [`inclusion_proof_indexes`]).
impl HashReader for BTreeMap<u64, Hash> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, MerkleError> {
        indexes
            .iter()
            .map(|&index| {
                self.get(&index)
                    .copied()
                    .ok_or(MerkleError::HashNotStored { index })
            })
            .collect()
    }
}

/// The root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Hash(Sha256::digest([]).into())
}

/// The hash of a leaf with these bytes: `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    Hash(h.finalize().into())
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left.0);
    h.update(right.0);
    Hash(h.finalize().into())
}

/// The Merkle Tree Hash (RFC 9162 §2.1.1) of a tree with these leaf hashes, in memory.
pub fn root_hash(leaf_hashes: &[Hash]) -> Hash {
    // Keep the roots of the perfect subtrees seen so far (left to right, sizes strictly
    // decreasing); merge equal-sized neighbours as leaves arrive, then fold right to left.
    let mut stack: Vec<(u32, Hash)> = Vec::new();
    for leaf in leaf_hashes {
        let mut entry = (0u32, *leaf);
        while let Some(&(level, left)) = stack.last() {
            if level != entry.0 {
                break;
            }
            stack.pop();
            entry = (level + 1, node_hash(&left, &entry.1));
        }
        stack.push(entry);
    }
    fold_right(stack.iter().map(|(_, h)| *h)).unwrap_or_else(empty_root)
}

/// `node(h1, node(h2, ... node(hk-1, hk)))`: the hash of consecutive perfect subtrees of
/// strictly decreasing size; `None` for no hashes.
fn fold_right(hashes: impl DoubleEndedIterator<Item = Hash>) -> Option<Hash> {
    hashes.rev().reduce(|right, left| node_hash(&left, &right))
}

/// `2m - popcount(m)`: how many hashes are stored for a tree of `m` leaves, which is also
/// where leaf `m`'s hash is stored. Needs `m <= MAX_TREE_SIZE`.
fn stored_before(m: u64) -> u64 {
    2 * m - u64::from(m.count_ones())
}

/// The stored-hash index of the node at `level` (0 for leaves) covering leaves
/// `[n·2^level, (n+1)·2^level)`.
///
/// # Errors
/// [`MerkleError::TooLarge`] when the node reaches past [`MAX_TREE_SIZE`] leaves.
pub fn stored_hash_index(level: u8, n: u64) -> Result<u64, MerkleError> {
    let end = n
        .checked_add(1)
        .and_then(|n1| n1.checked_mul(1u64.checked_shl(u32::from(level))?))
        .filter(|&end| end <= MAX_TREE_SIZE)
        .ok_or(MerkleError::TooLarge(n))?;
    // The node is written right after the leaf hash of its last leaf, `level` places on.
    Ok(stored_before(end - 1) + u64::from(level))
}

/// The inverse of [`stored_hash_index`]: the `(level, n)` of the node stored at `index`.
///
/// # Errors
/// [`MerkleError::TooLarge`] when `index` is beyond the largest supported tree.
pub fn split_stored_hash_index(index: u64) -> Result<(u8, u64), MerkleError> {
    if index >= stored_before(MAX_TREE_SIZE) {
        return Err(MerkleError::TooLarge(index));
    }
    // Find the leaf m whose append wrote `index`: the largest m with stored_before(m) <= index.
    // stored_before(m) lies in [m, 2m], so m starts at index/2 and is at most 64 steps on.
    let mut m = index / 2;
    loop {
        let next = stored_before(m) + 1 + u64::from((m + 1).trailing_zeros());
        if next > index {
            break;
        }
        m += 1;
    }
    let level = index - stored_before(m);
    // level <= trailing_zeros(m + 1) < 64, so it fits a u8.
    let level = u8::try_from(level).map_err(|_| MerkleError::TooLarge(index))?;
    Ok((level, m >> level))
}

/// How many hashes are stored for a tree of `size` leaves; the next append writes there.
///
/// # Errors
/// [`MerkleError::TooLarge`] when `size` is beyond [`MAX_TREE_SIZE`].
pub fn stored_hash_count(size: u64) -> Result<u64, MerkleError> {
    check_size(size)?;
    Ok(stored_before(size))
}

/// The hashes to append to the stored-hash sequence when leaf `n` (0-based, so the tree
/// grows from `n` to `n + 1` leaves) with hash `leaf` is added: the leaf hash, then one
/// node hash per perfect subtree the leaf completes. They belong at
/// [`stored_hash_count`]`(n)` onwards.
///
/// `reader` must hold the stored hashes of the tree of size `n`; only those of
/// [`tree_hash_indexes`]`(n)` are read, so a batch append can prefetch just those into a
/// `BTreeMap` and insert each new batch of hashes as it goes.
///
/// # Errors
/// [`MerkleError::TooLarge`] past the largest supported tree, or the reader's error.
pub fn stored_hashes_for_append<R: HashReader + ?Sized>(
    n: u64,
    leaf: Hash,
    reader: &R,
) -> Result<Vec<Hash>, MerkleError> {
    check_size(n.checked_add(1).ok_or(MerkleError::TooLarge(n))?)?;
    // Leaf n completes one perfect subtree per trailing one bit of n; at each such level the
    // left sibling is the perfect subtree just before it.
    let levels = n.trailing_ones();
    let mut indexes = Vec::with_capacity(levels as usize);
    for level in 0..levels {
        let level = level_u8(level)?;
        indexes.push(stored_hash_index(level, (n >> level) - 1)?);
    }
    let siblings = read_exact(reader, &indexes)?;
    let mut hashes = Vec::with_capacity(siblings.len() + 1);
    let mut h = leaf;
    hashes.push(h);
    for sibling in &siblings {
        h = node_hash(sibling, &h);
        hashes.push(h);
    }
    Ok(hashes)
}

/// The stored-hash indexes [`tree_hash`] reads for a tree of `size` leaves (the roots of the
/// tree's maximal perfect subtrees, left to right).
///
/// # Errors
/// [`MerkleError::TooLarge`] past the largest supported tree.
pub fn tree_hash_indexes(size: u64) -> Result<Vec<u64>, MerkleError> {
    check_size(size)?;
    Ok(Plan::tree(size)?.indexes)
}

/// The root hash of the tree of `size` leaves, from stored hashes.
///
/// # Errors
/// [`MerkleError::TooLarge`] past the largest supported tree, or the reader's error.
pub fn tree_hash<R: HashReader + ?Sized>(size: u64, reader: &R) -> Result<Hash, MerkleError> {
    check_size(size)?;
    if size == 0 {
        return Ok(empty_root());
    }
    let plan = Plan::tree(size)?;
    let hashes = plan.run(reader)?;
    hashes
        .into_iter()
        .next()
        .ok_or(MerkleError::ReaderCount { want: 1, got: 0 })
}

/// The stored-hash indexes [`inclusion_proof`] reads.
///
/// # Errors
/// As [`inclusion_proof`], without the reader's.
pub fn inclusion_proof_indexes(index: u64, size: u64) -> Result<Vec<u64>, MerkleError> {
    Ok(Plan::inclusion(index, size)?.indexes)
}

/// The inclusion proof (RFC 9162 §2.1.3.1) of leaf `index` in the tree of `size` leaves,
/// from the leaf's sibling upwards.
///
/// # Errors
/// [`MerkleError::IndexOutOfRange`] when `index >= size`, [`MerkleError::TooLarge`] past
/// the largest supported tree, or the reader's error.
pub fn inclusion_proof<R: HashReader + ?Sized>(
    index: u64,
    size: u64,
    reader: &R,
) -> Result<Vec<Hash>, MerkleError> {
    Plan::inclusion(index, size)?.run(reader)
}

/// The stored-hash indexes [`consistency_proof`] reads.
///
/// # Errors
/// As [`consistency_proof`], without the reader's.
pub fn consistency_proof_indexes(size1: u64, size2: u64) -> Result<Vec<u64>, MerkleError> {
    Ok(Plan::consistency(size1, size2)?.indexes)
}

/// The consistency proof (RFC 9162 §2.1.4.1) between the trees of `size1` and `size2`
/// leaves. It is empty when the sizes are equal.
///
/// # Errors
/// [`MerkleError::EmptyTreeConsistency`] when `size1` is 0,
/// [`MerkleError::SizesOutOfOrder`] when `size1 > size2`, [`MerkleError::TooLarge`] past
/// the largest supported tree, or the reader's error.
pub fn consistency_proof<R: HashReader + ?Sized>(
    size1: u64,
    size2: u64,
    reader: &R,
) -> Result<Vec<Hash>, MerkleError> {
    Plan::consistency(size1, size2)?.run(reader)
}

/// Verifies an inclusion proof as RFC 9162 §2.1.3.2 says: that the leaf with hash `leaf`
/// is leaf `index` of the tree of `size` leaves whose root is `root`.
///
/// # Errors
/// [`MerkleError::IndexOutOfRange`], [`MerkleError::ProofTooLong`],
/// [`MerkleError::ProofTooShort`] or [`MerkleError::RootMismatch`]: the proof does not hold.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), MerkleError> {
    // 1. leaf_index must be below tree_size.
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    // 2. fn = leaf_index, sn = tree_size - 1. 3. r = hash.
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    // 4. For each p in inclusion_path:
    for p in proof {
        if snode == 0 {
            return Err(MerkleError::ProofTooLong);
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    // 5. sn must be 0 and r must be root_hash.
    if snode != 0 {
        return Err(MerkleError::ProofTooShort);
    }
    if r != *root {
        return Err(MerkleError::RootMismatch);
    }
    Ok(())
}

/// Verifies a consistency proof as RFC 9162 §2.1.4.2 says: that the tree of `size2`
/// leaves with root `root2` extends the tree of `size1` leaves with root `root1`.
///
/// Beyond the RFC's `0 < size1 < size2`: equal sizes hold with an empty proof and equal
/// roots; `size1 == 0` is refused, since every tree extends the empty one and no proof
/// can say so.
///
/// # Errors
/// [`MerkleError::SizesOutOfOrder`], [`MerkleError::EmptyTreeConsistency`],
/// [`MerkleError::ProofTooLong`], [`MerkleError::ProofTooShort`],
/// [`MerkleError::OldRootMismatch`] or [`MerkleError::RootMismatch`]: the proof does not
/// hold.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    proof: &[Hash],
    root1: &Hash,
    root2: &Hash,
) -> Result<(), MerkleError> {
    if size1 > size2 {
        return Err(MerkleError::SizesOutOfOrder { size1, size2 });
    }
    if size1 == 0 {
        return Err(MerkleError::EmptyTreeConsistency);
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(MerkleError::ProofTooLong);
        }
        if root1 != root2 {
            return Err(MerkleError::RootMismatch);
        }
        return Ok(());
    }
    // 1. An empty consistency_path fails.
    let Some((first, rest)) = proof.split_first() else {
        return Err(MerkleError::ProofTooShort);
    };
    // 2. If first is an exact power of 2, prepend first_hash to the path.
    let (seed, path) = if size1.is_power_of_two() {
        (root1, proof)
    } else {
        (first, rest)
    };
    // 3. fn = first - 1, sn = second - 1.
    let (mut fnode, mut snode) = (size1 - 1, size2 - 1);
    // 4. If LSB(fn) is set, right-shift both until it is not.
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    // 5. fr = sr = the first value of the path.
    let (mut fr, mut sr) = (*seed, *seed);
    // 6. For each subsequent value c:
    for c in path {
        if snode == 0 {
            return Err(MerkleError::ProofTooLong);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    // 7. fr must be first_hash, sr second_hash, and sn 0.
    if snode != 0 {
        return Err(MerkleError::ProofTooShort);
    }
    if fr != *root1 {
        return Err(MerkleError::OldRootMismatch);
    }
    if sr != *root2 {
        return Err(MerkleError::RootMismatch);
    }
    Ok(())
}

fn check_size(size: u64) -> Result<(), MerkleError> {
    if size > MAX_TREE_SIZE {
        return Err(MerkleError::TooLarge(size));
    }
    Ok(())
}

fn level_u8(level: u32) -> Result<u8, MerkleError> {
    u8::try_from(level).map_err(|_| MerkleError::TooLarge(u64::from(level)))
}

/// Reads `indexes` and checks that the reader answered one hash per index.
fn read_exact<R: HashReader + ?Sized>(
    reader: &R,
    indexes: &[u64],
) -> Result<Vec<Hash>, MerkleError> {
    if indexes.is_empty() {
        return Ok(Vec::new());
    }
    let hashes = reader.read_hashes(indexes)?;
    if hashes.len() != indexes.len() {
        return Err(MerkleError::ReaderCount {
            want: indexes.len(),
            got: hashes.len(),
        });
    }
    Ok(hashes)
}

/// Which stored hashes make up each hash of a result (a root, or each element of a proof).
struct Plan {
    /// All stored-hash indexes to read, result by result.
    indexes: Vec<u64>,
    /// How many of `indexes` each result folds together.
    groups: Vec<usize>,
}

impl Plan {
    fn new() -> Self {
        Plan {
            indexes: Vec::new(),
            groups: Vec::new(),
        }
    }

    /// The plan for the root of `[0, size)`.
    fn tree(size: u64) -> Result<Self, MerkleError> {
        let mut plan = Plan::new();
        if size > 0 {
            plan.push_subtree(0, size)?;
        }
        Ok(plan)
    }

    /// RFC 9162 §2.1.3.1 `PATH(index, D[0:size])`, unrolled top-down and then reversed.
    fn inclusion(index: u64, size: u64) -> Result<Self, MerkleError> {
        if index >= size {
            return Err(MerkleError::IndexOutOfRange { index, size });
        }
        check_size(size)?;
        let mut ranges = Vec::new();
        let (mut lo, mut hi) = (0, size);
        while hi - lo > 1 {
            let k = split_point(hi - lo);
            if index < lo + k {
                ranges.push((lo + k, hi));
                hi = lo + k;
            } else {
                ranges.push((lo, lo + k));
                lo += k;
            }
        }
        Plan::from_ranges(ranges.into_iter().rev())
    }

    /// RFC 9162 §2.1.4.1 `PROOF(size1, D[0:size2])`, unrolled top-down and then reversed.
    fn consistency(size1: u64, size2: u64) -> Result<Self, MerkleError> {
        if size1 > size2 {
            return Err(MerkleError::SizesOutOfOrder { size1, size2 });
        }
        if size1 == 0 {
            return Err(MerkleError::EmptyTreeConsistency);
        }
        check_size(size2)?;
        let mut ranges = Vec::new();
        let (mut m, mut lo, mut hi, mut whole) = (size1, 0, size2, true);
        while m < hi - lo {
            let k = split_point(hi - lo);
            if m <= k {
                ranges.push((lo + k, hi));
                hi = lo + k;
            } else {
                ranges.push((lo, lo + k));
                m -= k;
                lo += k;
                whole = false;
            }
        }
        // SUBPROOF(m, D[m], b) is empty when b is true, else MTH(D[m]).
        if !whole {
            ranges.push((lo, hi));
        }
        Plan::from_ranges(ranges.into_iter().rev())
    }

    fn from_ranges(ranges: impl Iterator<Item = (u64, u64)>) -> Result<Self, MerkleError> {
        let mut plan = Plan::new();
        for (lo, hi) in ranges {
            plan.push_subtree(lo, hi)?;
        }
        Ok(plan)
    }

    /// Adds one result: `MTH(D[lo:hi])` for a range that RFC 9162's recursion produces,
    /// where `lo` is a multiple of the smallest power of two `>= hi - lo`. Such a range is
    /// the perfect subtrees of the binary digits of `hi - lo`, largest first.
    fn push_subtree(&mut self, mut lo: u64, hi: u64) -> Result<(), MerkleError> {
        let start = self.indexes.len();
        while lo < hi {
            let level = (hi - lo).ilog2();
            self.indexes
                .push(stored_hash_index(level_u8(level)?, lo >> level)?);
            lo += 1 << level;
        }
        self.groups.push(self.indexes.len() - start);
        Ok(())
    }

    /// Reads the planned hashes and folds each group into one hash.
    fn run<R: HashReader + ?Sized>(&self, reader: &R) -> Result<Vec<Hash>, MerkleError> {
        let hashes = read_exact(reader, &self.indexes)?;
        let mut rest = hashes.as_slice();
        let mut out = Vec::with_capacity(self.groups.len());
        for &count in &self.groups {
            let (group, tail) = rest.split_at(count);
            rest = tail;
            out.push(
                fold_right(group.iter().copied()).ok_or(MerkleError::ReaderCount {
                    want: self.indexes.len(),
                    got: hashes.len(),
                })?,
            );
        }
        Ok(out)
    }
}

/// The largest power of two strictly below `n` (for `n >= 2`).
fn split_point(n: u64) -> u64 {
    1 << (n - 1).ilog2()
}

#[cfg(test)]
mod tests;
