//! A cache of the log's upper Merkle node hashes, beside each store.
//!
//! A stored node hash never changes (the table refuses edits, and the integrator writes each
//! once), so caching it cannot serve a stale value. An inclusion proof at ten million entries
//! needs about 24 hashes; all but the lowest few sit on levels that are shared by many proofs
//! and few in number, so keeping those in memory turns most of a history page's B-tree
//! searches into map look-ups.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use renkei_log::Hash;
use renkei_log::merkle::split_stored_hash_index;

/// Levels below this are read from storage each time: they are many and rarely shared.
/// (A level-6 node covers 64 leaves: about n/32 nodes at this level and above.)
const LOWEST_CACHED_LEVEL: u8 = 6;
/// At most this many hashes are kept (≈ 30 MB; the whole upper tree up to ~16 M entries).
const MAX_CACHED: usize = 1 << 19;

#[derive(Debug, Default)]
pub struct UpperHashes(RwLock<HashMap<u64, Hash>>);

impl UpperHashes {
    /// The cached hashes of `indexes`; `None` where not cached.
    pub fn get(&self, indexes: &[u64]) -> Vec<Option<Hash>> {
        let map = self.0.read().unwrap_or_else(PoisonError::into_inner);
        indexes.iter().map(|i| map.get(i).copied()).collect()
    }

    /// Keeps the hashes of upper levels just read from storage, while there is room.
    pub fn keep(&self, read: &[(u64, Hash)]) {
        let upper: Vec<&(u64, Hash)> = read
            .iter()
            .filter(|(i, _)| {
                split_stored_hash_index(*i).is_ok_and(|(level, _)| level >= LOWEST_CACHED_LEVEL)
            })
            .collect();
        if upper.is_empty() {
            return;
        }
        let mut map = self.0.write().unwrap_or_else(PoisonError::into_inner);
        for (i, h) in upper {
            if map.len() >= MAX_CACHED {
                return;
            }
            map.insert(*i, *h);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use renkei_log::merkle::stored_hash_index;

    #[test]
    fn only_upper_level_hashes_are_kept_and_read_back()
    -> Result<(), renkei_log::merkle::MerkleError> {
        let cache = UpperHashes::default();
        let low = stored_hash_index(0, 5)?;
        let high = stored_hash_index(LOWEST_CACHED_LEVEL, 3)?;
        let (a, b) = (Hash([1; 32]), Hash([2; 32]));
        cache.keep(&[(low, a), (high, b)]);
        assert_eq!(cache.get(&[low, high]), [None, Some(b)]);
        Ok(())
    }
}
