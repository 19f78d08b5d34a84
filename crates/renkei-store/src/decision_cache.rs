//! What a batch of decisions reads from storage, kept in memory for the next batch while the
//! decision clock shows that nothing it depends on has changed.
//!
//! Every change to the tables a decision reads (services, purposes, subjects, consents,
//! locators, providers, revoked tokens, declarations) moves the `decision_clock` row forward, by trigger, in
//! the transaction that makes the change (migrations 0010 and 0021). A batch reads the clock first,
//! inside its own transaction; if it still shows the value this cache was filled at, every
//! entry here is what the batch would read from the tables, so only what is missing is read.
//! If the clock moved, everything is forgotten. So a decision never rests on anything older
//! than the state its transaction sees, on every replica, whoever changed the tables.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use renkei_domain::{
    Consent, Declaration, Locator, Provider, ProviderId, Purpose, PurposeId, ResidentId, Service,
    ServiceId,
};

/// Entries kept before the cache starts over (a few hundred bytes to a few kB each).
const MAX_ENTRIES: usize = 200_000;

/// The latest consent of one resident per (service, purpose), as the decision reads them.
pub(crate) type LatestConsents = HashMap<(ServiceId, PurposeId), Consent>;

/// What decisions read, as of one value of the decision clock. `None` values record that
/// storage holds nothing (an unregistered service, an unknown subject).
#[derive(Debug, Default)]
pub(crate) struct DecisionCache {
    clock: Option<i64>,
    pub services: HashMap<ServiceId, Option<Service>>,
    pub purposes: HashMap<(ServiceId, PurposeId), Option<Purpose>>,
    /// (sector, pairwise subject) → resident.
    pub residents: HashMap<(String, String), Option<ResidentId>>,
    /// Token id → whether the service revoked it.
    pub revoked_tokens: HashMap<String, bool>,
    pub consents: HashMap<ResidentId, LatestConsents>,
    pub locators: HashMap<ResidentId, Vec<Locator>>,
    /// Every provider, once a batch needed them.
    pub providers: Option<HashMap<ProviderId, Provider>>,
    /// The declarations not over when read, once a batch read them. Kept while the clock
    /// stands still although time passes: decisions judge each window at their own `now`.
    pub declarations: Option<Vec<Declaration>>,
}

impl DecisionCache {
    /// Makes the cache valid at `clock`: kept if it was filled at that value, emptied if the
    /// clock moved (or it has grown past its bound).
    pub fn at_clock(&mut self, clock: i64) {
        if self.clock != Some(clock) || self.len() > MAX_ENTRIES {
            *self = Self {
                clock: Some(clock),
                ..Self::default()
            };
        }
    }

    fn len(&self) -> usize {
        self.services.len()
            + self.purposes.len()
            + self.residents.len()
            + self.revoked_tokens.len()
            + self.consents.len()
            + self.locators.len()
    }
}

/// The cache beside a store. A batch takes it out and puts it back when its reads are done,
/// so no lock is held across storage calls; a batch that fails midway leaves it empty.
#[derive(Debug, Default)]
pub(crate) struct SharedDecisionCache(Mutex<DecisionCache>);

impl SharedDecisionCache {
    pub fn take(&self) -> DecisionCache {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn put_back(&self, cache: DecisionCache) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = cache;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(clock: i64) -> DecisionCache {
        let mut cache = DecisionCache::default();
        cache.at_clock(clock);
        cache.residents.insert(
            ("health".into(), "s-1".into()),
            Some(ResidentId::from_uuid(uuid::Uuid::new_v4())),
        );
        cache.revoked_tokens.insert("jti-1".into(), false);
        cache
    }

    #[test]
    fn entries_survive_while_the_clock_stands_still() {
        let mut cache = filled(7);
        cache.at_clock(7);
        assert_eq!(cache.residents.len(), 1);
        assert_eq!(cache.revoked_tokens.get("jti-1"), Some(&false));
    }

    #[test]
    fn everything_is_forgotten_once_the_clock_moves() {
        let mut cache = filled(7);
        cache.at_clock(8);
        assert!(cache.residents.is_empty());
        assert!(cache.revoked_tokens.is_empty());
        // And it is valid at the new value from then on.
        cache.revoked_tokens.insert("jti-2".into(), true);
        cache.at_clock(8);
        assert_eq!(cache.revoked_tokens.get("jti-2"), Some(&true));
    }

    #[test]
    fn a_cache_taken_out_is_empty_until_put_back() {
        let shared = SharedDecisionCache::default();
        shared.put_back(filled(3));
        let taken = shared.take();
        assert_eq!(taken.residents.len(), 1);
        assert!(shared.take().residents.is_empty());
        shared.put_back(taken);
        assert_eq!(shared.take().clock, Some(3));
    }
}
