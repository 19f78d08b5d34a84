//! Providers keep their own locators current: a batch of upserts and removals, named by
//! the provider's pairwise subject for each resident ([`ProviderSubject`]), never by the
//! hub's resident id or anything another provider could know.
//!
//! A [`LocatorBatch`] is well-formed by construction (bounded, no item twice, references
//! of a sane shape); [`LocatorBatch::check_categories`] is the rule storage applies inside
//! the transaction that writes it: a provider writes locators only for the categories it
//! is registered for.

use std::collections::{BTreeSet, HashSet};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::{CategoryId, LocatorBatchId, ProviderId, ProviderSubject};

/// The most items (upserts and removals together) one batch may carry: large enough that a
/// registry of a city's size syncs in a few hundred batches, small enough that one batch is
/// one transaction of bounded size and one bounded request body.
pub const MAX_BATCH_ITEMS: usize = 10_000;

/// The longest provider reference (a patient number, a member id) the hub keeps, in bytes.
pub const MAX_REFERENCE_BYTES: usize = 256;

/// Why a batch of locator changes was refused; nothing of it was applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocatorBatchError {
    #[error("a batch carries at most {max} items, not {count}")]
    TooLarge { count: usize, max: usize },
    #[error("category `{category}` of one resident appears more than once in the batch")]
    Repeated { category: CategoryId },
    #[error("a reference must be 1 to {MAX_REFERENCE_BYTES} bytes without control characters")]
    BadReference,
    #[error("provider `{provider}` is not registered for category `{category}`")]
    NotRegistered {
        provider: ProviderId,
        category: CategoryId,
    },
    #[error("batch `{batch}` was already applied with other content: a new batch needs a new id")]
    IdReused { batch: LocatorBatchId },
}

impl LocatorBatchError {
    /// A stable code for the problem type the API answers with.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "batch-too-large",
            Self::Repeated { .. } => "batch-item-repeated",
            Self::BadReference => "bad-reference",
            Self::NotRegistered { .. } => "category-not-registered",
            Self::IdReused { .. } => "batch-id-reused",
        }
    }
}

/// "This resident's data of this category is at this provider under `reference`."
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocatorUpsert {
    pub subject: ProviderSubject,
    pub category: CategoryId,
    /// The provider's own key for the resident's record (kept by the hub, never read by it).
    pub reference: String,
}

/// "This provider no longer holds this resident's data of this category."
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocatorRemoval {
    pub subject: ProviderSubject,
    pub category: CategoryId,
}

/// One provider's batch of locator changes, checked to be well-formed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocatorBatch {
    provider: ProviderId,
    id: LocatorBatchId,
    upserts: Vec<LocatorUpsert>,
    removals: Vec<LocatorRemoval>,
}

impl LocatorBatch {
    /// Checks the batch's shape. An item is one resident's category: it may appear once, as
    /// an upsert or a removal, so the outcome does not depend on the order of the items.
    pub fn new(
        provider: ProviderId,
        id: LocatorBatchId,
        upserts: Vec<LocatorUpsert>,
        removals: Vec<LocatorRemoval>,
    ) -> Result<Self, LocatorBatchError> {
        let count = upserts.len().saturating_add(removals.len());
        if count > MAX_BATCH_ITEMS {
            return Err(LocatorBatchError::TooLarge {
                count,
                max: MAX_BATCH_ITEMS,
            });
        }
        if upserts.iter().any(|u| !reference_ok(&u.reference)) {
            return Err(LocatorBatchError::BadReference);
        }
        let mut seen = HashSet::with_capacity(count);
        let keys = upserts
            .iter()
            .map(|u| (&u.subject, &u.category))
            .chain(removals.iter().map(|r| (&r.subject, &r.category)));
        for (subject, category) in keys {
            if !seen.insert((subject, category)) {
                return Err(LocatorBatchError::Repeated {
                    category: category.clone(),
                });
            }
        }
        Ok(Self {
            provider,
            id,
            upserts,
            removals,
        })
    }

    pub fn provider(&self) -> &ProviderId {
        &self.provider
    }

    pub fn id(&self) -> LocatorBatchId {
        self.id
    }

    pub fn upserts(&self) -> &[LocatorUpsert] {
        &self.upserts
    }

    pub fn removals(&self) -> &[LocatorRemoval] {
        &self.removals
    }

    /// What the batch asks for, as a SHA-256 digest (base64url), whatever the order of its
    /// items: the order changes nothing the batch does ([`LocatorBatch::new`]), so a retry
    /// that lists them otherwise is the same batch. Storage keeps it beside the batch's entry
    /// to tell a retry from another batch under a reused id ([`LocatorBatch::check_retry`]).
    pub fn digest(&self) -> String {
        let mut upserts: Vec<_> = self
            .upserts
            .iter()
            .map(|u| {
                (
                    u.subject.as_str(),
                    u.category.as_str(),
                    u.reference.as_str(),
                )
            })
            .collect();
        upserts.sort_unstable();
        let mut removals: Vec<_> = self
            .removals
            .iter()
            .map(|r| (r.subject.as_str(), r.category.as_str()))
            .collect();
        removals.sort_unstable();
        let mut hash = Sha256::new();
        // Each field is length-prefixed, so no two different batches write the same bytes.
        let mut field = |s: &str| {
            hash.update((s.len() as u64).to_be_bytes());
            hash.update(s.as_bytes());
        };
        field("upserts");
        for (subject, category, reference) in upserts {
            field(subject);
            field(category);
            field(reference);
        }
        field("removals");
        for (subject, category) in removals {
            field(subject);
            field(category);
        }
        URL_SAFE_NO_PAD.encode(hash.finalize())
    }

    /// The rule for a batch id the provider used before, whose content had `recorded` as its
    /// [`LocatorBatch::digest`]: the same content is a retry, answered as the first time;
    /// other content under the same id is refused, for answering it as the first time would
    /// tell the provider that changes were applied which never were. A batch recorded before
    /// digests were kept (`None`) is taken as a retry, as it was then.
    pub fn check_retry(&self, recorded: Option<&str>) -> Result<(), LocatorBatchError> {
        match recorded {
            Some(digest) if digest != self.digest() => {
                Err(LocatorBatchError::IdReused { batch: self.id })
            }
            _ => Ok(()),
        }
    }

    /// The rule: a provider writes locators only for categories it is registered for
    /// (`registered`, as the deciding transaction read them). Removals are not checked: they
    /// only ever delete the provider's own locators, and a provider no longer registered for
    /// a category must still be able to withdraw what it wrote for it.
    pub fn check_categories(
        &self,
        registered: &BTreeSet<CategoryId>,
    ) -> Result<(), LocatorBatchError> {
        match self
            .upserts
            .iter()
            .find(|u| !registered.contains(&u.category))
        {
            Some(u) => Err(LocatorBatchError::NotRegistered {
                provider: self.provider.clone(),
                category: u.category.clone(),
            }),
            None => Ok(()),
        }
    }
}

fn reference_ok(reference: &str) -> bool {
    (1..=MAX_REFERENCE_BYTES).contains(&reference.len()) && !reference.chars().any(char::is_control)
}

/// What one batch did, item by item counted (never which items: counts only reach the log).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocatorSyncCounts {
    /// Locators written: new, or with a new reference.
    pub upserted: u64,
    /// Locators deleted.
    pub removed: u64,
    /// Items that were already as asked: the same reference kept, or nothing to remove.
    pub unchanged: u64,
    /// Items not applied: a subject the hub never issued to this provider, or (for an
    /// upsert) a resident's category whose locator another provider holds.
    pub not_applied: u64,
}

impl LocatorSyncCounts {
    /// Adds another chunk's counts.
    pub fn add(&mut self, other: Self) {
        self.upserted = self.upserted.saturating_add(other.upserted);
        self.removed = self.removed.saturating_add(other.removed);
        self.unchanged = self.unchanged.saturating_add(other.unchanged);
        self.not_applied = self.not_applied.saturating_add(other.not_applied);
    }
}

/// One of a provider's locators, as the provider names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderLocator {
    pub subject: ProviderSubject,
    pub category: CategoryId,
    pub reference: String,
}

/// The sector of a provider's pairwise subjects. Service sectors are slugs, which never hold
/// a `:`, so no service shares it.
pub fn provider_sector(provider: &ProviderId) -> String {
    format!("provider:{provider}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn subject(n: u8) -> ProviderSubject {
        ProviderSubject::new(format!("subject-{n:0>20}")).unwrap()
    }

    fn cat(c: &str) -> CategoryId {
        CategoryId::new(c).unwrap()
    }

    fn upsert(n: u8, category: &str, reference: &str) -> LocatorUpsert {
        LocatorUpsert {
            subject: subject(n),
            category: cat(category),
            reference: reference.into(),
        }
    }

    fn batch(
        upserts: Vec<LocatorUpsert>,
        removals: Vec<LocatorRemoval>,
    ) -> Result<LocatorBatch, LocatorBatchError> {
        LocatorBatch::new(
            ProviderId::new("clinic").unwrap(),
            LocatorBatchId::from_uuid(uuid::Uuid::nil()),
            upserts,
            removals,
        )
    }

    #[test]
    fn a_resident_category_named_twice_in_one_batch_is_refused() {
        let twice = batch(
            vec![upsert(1, "health.checkup", "p-1")],
            vec![LocatorRemoval {
                subject: subject(1),
                category: cat("health.checkup"),
            }],
        );
        assert!(matches!(twice, Err(LocatorBatchError::Repeated { .. })));
        let other_category = batch(
            vec![
                upsert(1, "health.checkup", "p-1"),
                upsert(1, "health.vaccination", "p-1"),
            ],
            vec![],
        );
        assert!(other_category.is_ok());
    }

    #[test]
    fn a_reused_batch_id_is_a_retry_only_with_the_same_content_in_any_order() {
        let first = batch(
            vec![
                upsert(1, "health.checkup", "p-1"),
                upsert(2, "health.checkup", "p-2"),
            ],
            vec![],
        )
        .unwrap();
        let reordered = batch(
            vec![
                upsert(2, "health.checkup", "p-2"),
                upsert(1, "health.checkup", "p-1"),
            ],
            vec![],
        )
        .unwrap();
        assert_eq!(reordered.check_retry(Some(&first.digest())), Ok(()));
        let changed = batch(
            vec![
                upsert(1, "health.checkup", "p-1"),
                upsert(2, "health.checkup", "p-9"),
            ],
            vec![],
        )
        .unwrap();
        assert_eq!(
            changed.check_retry(Some(&first.digest())),
            Err(LocatorBatchError::IdReused { batch: first.id() })
        );
        // An upsert is not the removal of the same item, nor are fields run together.
        let removal = batch(
            vec![],
            vec![LocatorRemoval {
                subject: subject(1),
                category: cat("health.checkup"),
            }],
        )
        .unwrap();
        assert_ne!(removal.digest(), batch(vec![], vec![]).unwrap().digest());
        assert_ne!(
            batch(vec![upsert(1, "health.checkup", "p-1")], vec![])
                .unwrap()
                .digest(),
            batch(vec![upsert(1, "health.checku", "pp-1")], vec![])
                .unwrap()
                .digest()
        );
        assert_eq!(changed.check_retry(None), Ok(()), "recorded before digests");
    }

    #[test]
    fn a_batch_larger_than_the_limit_is_refused() {
        let removals = (0..=MAX_BATCH_ITEMS)
            .map(|i| LocatorRemoval {
                subject: ProviderSubject::new(format!("subject-{i:0>20}")).unwrap(),
                category: cat("health.checkup"),
            })
            .collect();
        assert!(matches!(
            batch(vec![], removals),
            Err(LocatorBatchError::TooLarge { .. })
        ));
    }

    #[test]
    fn empty_or_control_character_references_are_refused() {
        for bad in ["", "a\nb", &"x".repeat(MAX_REFERENCE_BYTES + 1)] {
            assert_eq!(
                batch(vec![upsert(1, "health.checkup", bad)], vec![]),
                Err(LocatorBatchError::BadReference),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn upserts_of_an_unregistered_category_are_refused_but_removals_are_not() {
        let registered: BTreeSet<_> = [cat("health.checkup")].into();
        let write = batch(vec![upsert(1, "payment.history", "m-1")], vec![]).unwrap();
        assert_eq!(
            write.check_categories(&registered),
            Err(LocatorBatchError::NotRegistered {
                provider: ProviderId::new("clinic").unwrap(),
                category: cat("payment.history"),
            })
        );
        let withdraw = batch(
            vec![upsert(2, "health.checkup", "p-2")],
            vec![LocatorRemoval {
                subject: subject(1),
                category: cat("payment.history"),
            }],
        )
        .unwrap();
        assert_eq!(withdraw.check_categories(&registered), Ok(()));
    }

    #[test]
    fn provider_sectors_are_never_service_sectors() {
        let sector = provider_sector(&ProviderId::new("hikari-clinic").unwrap());
        assert_eq!(sector, "provider:hikari-clinic");
        assert!(crate::ServiceId::new(sector).is_err());
    }

    proptest! {
        #[test]
        fn references_are_accepted_exactly_when_short_and_printable(s in "\\PC{0,10}|.{0,300}") {
            let accepted = batch(vec![upsert(1, "health.checkup", &s)], vec![]).is_ok();
            let printable = !s.is_empty() && s.len() <= MAX_REFERENCE_BYTES
                && !s.chars().any(char::is_control);
            prop_assert_eq!(accepted, printable);
        }
    }
}
