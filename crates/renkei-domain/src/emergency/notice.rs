//! Residents told afterwards (事後通知): once a declaration is over, each resident whose data
//! was released under it is given one notice saying what went to whom, and when.
//!
//! A declaration that is over cannot change any more (no step is taken after the end), so
//! the releases under it are final once every decision that could still rest on it is
//! recorded: at once for an early end (every batch that read the declaration as live took
//! the log's head before the end step could, and committed before it), and after a grace
//! period for an end by time (a batch's `now` is read a little before its transaction).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::Declaration;
use crate::access::{AccessBasis, AccessOutcome, AccessRecord};
use crate::ids::{CategoryId, DeclarationId, ProviderId, ResidentId, ServiceId};

/// One release under a declaration, as the resident's notice lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeRelease {
    /// The access record's position in the log, so the notice links to the verified entry.
    pub seq: u64,
    pub at: DateTime<Utc>,
    /// The responder service the data went to.
    pub service: ServiceId,
    pub categories: BTreeSet<CategoryId>,
    /// The providers that were sent grants.
    pub providers: BTreeSet<ProviderId>,
}

/// What a resident is told once a declaration is over: every release of their data under it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmergencyNotice {
    pub declaration: DeclarationId,
    pub resident: ResidentId,
    /// When the notice was written.
    pub at: DateTime<Utc>,
    /// Oldest first; never empty.
    pub releases: Vec<NoticeRelease>,
}

impl EmergencyNotice {
    /// The notices a declaration's access records call for: one per resident with at least
    /// one granted record under `declaration`, listing those records. Other records (another
    /// basis, another declaration, denied, no resident) are not releases under it.
    pub fn from_records<'a>(
        declaration: DeclarationId,
        records: impl IntoIterator<Item = &'a AccessRecord>,
        at: DateTime<Utc>,
    ) -> Vec<Self> {
        let mut by_resident: BTreeMap<ResidentId, Vec<NoticeRelease>> = BTreeMap::new();
        for r in records {
            let under = r.basis == AccessBasis::Emergency { declaration };
            let (true, AccessOutcome::Granted, Some(resident)) = (under, &r.outcome, r.resident)
            else {
                continue;
            };
            by_resident
                .entry(resident)
                .or_default()
                .push(NoticeRelease {
                    seq: r.seq,
                    at: r.at,
                    service: r.service.clone(),
                    categories: r.categories.clone(),
                    providers: r.providers.clone(),
                });
        }
        by_resident
            .into_iter()
            .map(|(resident, mut releases)| {
                releases.sort_by_key(|r| r.seq);
                Self {
                    declaration,
                    resident,
                    at,
                    releases,
                }
            })
            .collect()
    }

    /// The services the data went to.
    pub fn services(&self) -> BTreeSet<&ServiceId> {
        self.releases.iter().map(|r| &r.service).collect()
    }

    /// Every category released, over all releases.
    pub fn categories(&self) -> BTreeSet<&CategoryId> {
        self.releases.iter().flat_map(|r| &r.categories).collect()
    }
}

impl Declaration {
    /// Whether the releases under it are final at `now`, so its notices may be written: ended
    /// early (at once), or `grace` past its end time. Never while it may still release.
    pub fn notices_due_at(&self, now: DateTime<Utc>, grace: TimeDelta) -> bool {
        self.ended.is_some()
            || self
                .ends_at
                .checked_add_signed(grace)
                .is_some_and(|due| due <= now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{PurposeId, RequestId};
    use uuid::Uuid;

    fn record(seq: u64, resident: u128, basis: AccessBasis, granted: bool) -> AccessRecord {
        AccessRecord {
            seq,
            request: RequestId::from_uuid(Uuid::from_u128(u128::from(seq) + 100)),
            at: DateTime::from_timestamp(1_780_000_000 + i64::try_from(seq).unwrap(), 0).unwrap(),
            service: ServiceId::new("fire-dept").unwrap(),
            resident: Some(ResidentId::from_uuid(Uuid::from_u128(resident))),
            purpose: PurposeId::new("rescue").unwrap(),
            purpose_version: None,
            categories: [CategoryId::new("care.register").unwrap()].into(),
            basis,
            outcome: if granted {
                AccessOutcome::Granted
            } else {
                AccessOutcome::Denied {
                    reason: "consent-missing".into(),
                }
            },
            providers: BTreeSet::new(),
        }
    }

    #[test]
    fn each_resident_released_under_the_declaration_gets_one_notice_of_all_their_releases() {
        let d = DeclarationId::from_uuid(Uuid::from_u128(1));
        let other = DeclarationId::from_uuid(Uuid::from_u128(2));
        let under = AccessBasis::Emergency { declaration: d };
        let records = [
            record(7, 10, under.clone(), true),
            record(3, 10, under.clone(), true),
            record(4, 11, under.clone(), true),
            // Not releases under `d`: another declaration, a denial, a consent.
            record(5, 12, AccessBasis::Emergency { declaration: other }, true),
            record(6, 13, AccessBasis::None, false),
            record(
                8,
                14,
                AccessBasis::Consent {
                    consent: crate::ids::ConsentId::from_uuid(Uuid::from_u128(9)),
                    during: Some(d),
                },
                true,
            ),
        ];
        let notices = EmergencyNotice::from_records(d, &records, Utc::now());
        assert_eq!(notices.len(), 2);
        let seqs: Vec<Vec<u64>> = notices
            .iter()
            .map(|n| n.releases.iter().map(|r| r.seq).collect())
            .collect();
        assert_eq!(seqs, vec![vec![3, 7], vec![4]]);
        assert!(notices.iter().all(|n| n.declaration == d));
    }

    #[test]
    fn notices_are_due_at_once_after_an_early_end_and_a_grace_after_an_end_by_time() {
        use crate::emergency::{Area, DeclarationDraft, EmergencyLegalBasis};
        use crate::ids::OperatorId;
        let now = DateTime::from_timestamp(1_780_000_000, 0).unwrap();
        let draft = DeclarationDraft {
            reason: "大雨".into(),
            legal_basis: EmergencyLegalBasis::DisasterAct49_11,
            categories: [CategoryId::new("care.register").unwrap()].into(),
            services: [ServiceId::new("fire-dept").unwrap()].into(),
            area: Area::parse(["5339"]).unwrap(),
            starts_at: now,
            ends_at: now + TimeDelta::hours(1),
        };
        let id = DeclarationId::from_uuid(Uuid::from_u128(1));
        let declared =
            Declaration::declare(id, draft, OperatorId::new("sato").unwrap(), now).unwrap();
        let grace = TimeDelta::seconds(30);
        let end = declared.ends_at;
        assert!(!declared.notices_due_at(now, grace));
        assert!(
            !declared.notices_due_at(end, grace),
            "not while a late batch may still record"
        );
        assert!(declared.notices_due_at(end + grace, grace));
        let ended = declared
            .end(OperatorId::new("suzuki").unwrap(), now)
            .unwrap();
        assert!(ended.notices_due_at(now, grace));
    }
}
