//! A batch of decisions assembled from what storage read, with no SQL in it: what the
//! decision cache lacks for the batch, each request's facts for `renkei_domain::decide` (which
//! alone judges them), and the access records and leaves the decisions come to.
//! `sql/decisions.rs` does the reading and writing around it, in the batch's transaction.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use renkei_domain::{
    AccessBasis, AccessOutcome, AccessRecord, Consent, Decision, DecisionFacts, Locator, LogEntry,
    Provider, PurposeId, ResidentId, ServiceId,
};

use crate::codec::{self, NewLeaf};
use crate::decision_cache::DecisionCache;
use crate::{DecisionInput, RecordedDecision, StoreResult};

/// One request's decision, and the resident its subject named (if it named one).
#[derive(Debug)]
pub(crate) struct Decided {
    pub decision: Decision,
    pub resident: Option<ResidentId>,
}

impl Decided {
    fn granted(&self) -> bool {
        matches!(self.decision, Decision::Granted(_))
    }
}

/// The decisions of a batch as recorded, and the leaves of their access records.
pub(crate) struct Assembled {
    pub decisions: Vec<RecordedDecision>,
    /// One per decision, in the same order.
    pub leaves: Vec<NewLeaf>,
}

/// The services the batch names that the cache has not read, each once.
pub(crate) fn services_to_read(cache: &DecisionCache, batch: &[DecisionInput]) -> Vec<ServiceId> {
    unique(
        batch
            .iter()
            .map(|i| &i.request.service)
            .filter(|s| !cache.services.contains_key(*s))
            .cloned(),
    )
}

/// The (service, purpose) pairs the batch names whose current purpose the cache has not read.
pub(crate) fn purposes_to_read(
    cache: &DecisionCache,
    batch: &[DecisionInput],
) -> Vec<(ServiceId, PurposeId)> {
    unique(
        batch
            .iter()
            .map(|i| (i.request.service.clone(), i.request.purpose.clone()))
            .filter(|key| !cache.purposes.contains_key(key)),
    )
}

/// Per sector, the subjects whose residents the cache lacks, sorted, each once. A request
/// from a service that is not registered has no sector, so no subject to resolve.
pub(crate) fn subjects_to_read(
    cache: &DecisionCache,
    batch: &[DecisionInput],
) -> HashMap<String, Vec<String>> {
    let mut by_sector: HashMap<String, Vec<String>> = HashMap::new();
    for input in batch {
        let Some(Some(service)) = cache.services.get(&input.request.service) else {
            continue;
        };
        let key = (service.sector.clone(), input.subject.as_str().to_owned());
        if !cache.residents.contains_key(&key) {
            by_sector.entry(key.0).or_default().push(key.1);
        }
    }
    for subjects in by_sector.values_mut() {
        subjects.sort();
        subjects.dedup();
    }
    by_sector
}

/// The token ids the batch was asked under whose revocation the cache has not read, sorted.
pub(crate) fn tokens_to_read(cache: &DecisionCache, batch: &[DecisionInput]) -> Vec<String> {
    let mut tokens: Vec<String> = batch
        .iter()
        .filter_map(|i| i.token_id.clone())
        .filter(|t| !cache.revoked_tokens.contains_key(t))
        .collect();
    tokens.sort();
    tokens.dedup();
    tokens
}

/// The residents the batch's subjects name whose consents the cache has not read, sorted.
pub(crate) fn consents_to_read(cache: &DecisionCache, batch: &[DecisionInput]) -> Vec<ResidentId> {
    let mut residents: Vec<ResidentId> = batch
        .iter()
        .filter_map(|i| resident_of(cache, i))
        .filter(|r| !cache.consents.contains_key(r))
        .collect();
    residents.sort();
    residents.dedup();
    residents
}

/// Keeps `consent` if it is its resident's latest to its purpose so far (see
/// [`Consent::is_later_than`]): the one a decision reads.
pub(crate) fn keep_if_latest(cache: &mut DecisionCache, consent: Consent) {
    let latest = cache.consents.entry(consent.resident).or_default();
    let key = (
        consent.purpose.service.clone(),
        consent.purpose.purpose.clone(),
    );
    if latest
        .get(&key)
        .is_none_or(|old| consent.is_later_than(old))
    {
        latest.insert(key, consent);
    }
}

/// The resident a request's subject names in its service's sector, as the cache holds it.
fn resident_of(cache: &DecisionCache, input: &DecisionInput) -> Option<ResidentId> {
    let service = cache.services.get(&input.request.service)?.as_ref()?;
    let key = (service.sector.clone(), input.subject.as_str().to_owned());
    cache.residents.get(&key).copied().flatten()
}

/// Decides every request of the batch from what the cache holds, which by now is everything
/// the batch's transaction read for it.
pub(crate) fn decide(
    cache: &DecisionCache,
    batch: &[DecisionInput],
    now: DateTime<Utc>,
) -> Vec<Decided> {
    batch
        .iter()
        .map(|input| {
            let req = &input.request;
            let key = (req.service.clone(), req.purpose.clone());
            let resident = resident_of(cache, input);
            let facts = DecisionFacts {
                token_revoked: input
                    .token_id
                    .as_ref()
                    .is_some_and(|t| cache.revoked_tokens.get(t) == Some(&true)),
                service: cache.services.get(&req.service).and_then(Option::as_ref),
                resident,
                purpose: cache.purposes.get(&key).and_then(Option::as_ref),
                consent: resident
                    .and_then(|r| cache.consents.get(&r))
                    .and_then(|latest| latest.get(&key)),
                declarations: cache.declarations.as_deref().unwrap_or_default(),
            };
            Decided {
                decision: renkei_domain::decide(req, facts, now),
                resident,
            }
        })
        .collect()
}

/// The granted residents whose locators the cache has not read, sorted.
pub(crate) fn locators_to_read(cache: &DecisionCache, decided: &[Decided]) -> Vec<ResidentId> {
    let mut residents: Vec<ResidentId> = decided
        .iter()
        .filter(|d| d.granted())
        .filter_map(|d| d.resident)
        .filter(|r| !cache.locators.contains_key(r))
        .collect();
    residents.sort();
    residents.dedup();
    residents
}

/// Whether the batch needs the providers and the cache has not read them.
pub(crate) fn providers_to_read(cache: &DecisionCache, decided: &[Decided]) -> bool {
    cache.providers.is_none() && decided.iter().any(Decided::granted)
}

/// The access records of the batch's decisions, at log positions from `first_seq` on, with
/// where to fetch what was granted (only the categories asked for) and their new leaves.
pub(crate) fn assemble(
    cache: &DecisionCache,
    batch: &[DecisionInput],
    decided: Vec<Decided>,
    first_seq: i64,
    now: DateTime<Utc>,
) -> StoreResult<Assembled> {
    let mut decisions = Vec::with_capacity(batch.len());
    let mut leaves = Vec::with_capacity(batch.len());
    for ((offset, input), Decided { decision, resident }) in (0_i64..).zip(batch).zip(decided) {
        let req = &input.request;
        let locators: Vec<Locator> = match (&decision, resident) {
            (Decision::Granted(_), Some(r)) => cache
                .locators
                .get(&r)
                .map(|ls| {
                    // INVARIANT: a grant goes only to a provider an operator approved
                    // (`Provider::receives_grants`); the others' data is not held, for
                    // this request, and the record names no provider that was not asked.
                    ls.iter()
                        .filter(|l| {
                            req.categories.contains(&l.category)
                                && cache
                                    .providers
                                    .as_ref()
                                    .and_then(|all| all.get(&l.provider))
                                    .is_some_and(Provider::receives_grants)
                        })
                        .cloned()
                        .collect()
                })
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let (basis, outcome) = match &decision {
            Decision::Granted(grounds) => (grounds.basis(), AccessOutcome::Granted),
            Decision::Denied(reason) => (
                AccessBasis::None,
                AccessOutcome::Denied {
                    reason: reason.code().to_owned(),
                },
            ),
        };
        let purpose_version = cache
            .purposes
            .get(&(req.service.clone(), req.purpose.clone()))
            .and_then(|p| p.as_ref().map(|p| p.version));
        let record = AccessRecord {
            seq: codec::seq_u64(first_seq + offset)?,
            request: req.id,
            at: now,
            service: req.service.clone(),
            resident,
            purpose: req.purpose.clone(),
            purpose_version,
            categories: req.categories.clone(),
            basis,
            outcome,
            providers: locators.iter().map(|l| l.provider.clone()).collect(),
        };
        let providers = record
            .providers
            .iter()
            .filter_map(|p| cache.providers.as_ref().and_then(|all| all.get(p)).cloned())
            .collect();
        let leaf = codec::new_leaf(&LogEntry::Access(record.clone()));
        decisions.push(RecordedDecision {
            decision,
            leaf: leaf.hash,
            record,
            locators,
            service: cache.services.get(&req.service).cloned().flatten(),
            providers,
        });
        leaves.push(leaf);
    }
    Ok(Assembled { decisions, leaves })
}

/// The items in first-seen order, each once.
fn unique<T: Clone + Eq + std::hash::Hash>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut seen = HashSet::new();
    items.filter(|i| seen.insert(i.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use renkei_domain::{
        ConsentId, DataRequest, LegalBasis, LocalizedText, ProviderId, Purpose, RequestId, Service,
        ServiceStatus, ServiceSubject,
    };
    use uuid::Uuid;

    fn service() -> Service {
        Service {
            id: ServiceId::new("health-advice").unwrap(),
            name: LocalizedText::new("健康", "Health"),
            sector: "health".into(),
            hpke_public_key: "A".repeat(43),
            webhook_url: None,
            status: ServiceStatus::Approved,
        }
    }

    fn purpose() -> Purpose {
        Purpose {
            service: service().id,
            id: PurposeId::new("advice").unwrap(),
            version: 1,
            title: LocalizedText::new("t", "t"),
            description: LocalizedText::new("d", "d"),
            categories: ["health.checkup".parse().unwrap()].into(),
            retention_days: 30,
            legal_basis: LegalBasis::Consent,
            emergency_only: false,
            location: None,
        }
    }

    fn consent(resident: ResidentId, at: DateTime<Utc>) -> Consent {
        Consent {
            id: ConsentId::from_uuid(Uuid::new_v4()),
            resident,
            purpose: purpose().reference(),
            categories: purpose().categories,
            legal_basis: LegalBasis::Consent,
            granted_at: at,
            expires_at: None,
            given_via: renkei_domain::ConsentChannel::Portal,
            given_by: renkei_domain::Actor::Resident,
            form_reference: None,
            revoked_at: None,
        }
    }

    /// A pairwise subject (at least 16 characters) made from a short name.
    fn pairwise(name: &str) -> String {
        format!("pairwise-subject-{name}")
    }

    fn input(subject: &str, token: Option<&str>) -> DecisionInput {
        DecisionInput {
            request: DataRequest {
                id: RequestId::from_uuid(Uuid::new_v4()),
                service: service().id,
                purpose: purpose().id,
                categories: purpose().categories,
            },
            subject: ServiceSubject::new(pairwise(subject)).unwrap(),
            token_id: token.map(str::to_owned),
        }
    }

    /// A cache holding the service, its purpose, subject `s-1` naming `resident` with a
    /// consent, and `s-2` naming nobody.
    fn warmed(resident: ResidentId, now: DateTime<Utc>) -> DecisionCache {
        let mut cache = DecisionCache::default();
        cache.services.insert(service().id, Some(service()));
        cache
            .purposes
            .insert((service().id, purpose().id), Some(purpose()));
        cache
            .residents
            .insert(("health".into(), pairwise("s-1")), Some(resident));
        cache
            .residents
            .insert(("health".into(), pairwise("s-2")), None);
        keep_if_latest(&mut cache, consent(resident, now));
        cache
    }

    fn codes(decided: &[Decided]) -> Vec<Option<&'static str>> {
        decided
            .iter()
            .map(|d| match &d.decision {
                Decision::Granted(_) => None,
                Decision::Denied(r) => Some(r.code()),
            })
            .collect()
    }

    #[test]
    fn what_the_cache_holds_is_not_read_again_and_what_it_lacks_is_read_once() {
        let resident = ResidentId::from_uuid(Uuid::new_v4());
        let now = Utc::now();
        let cache = warmed(resident, now);
        let batch = [
            input("s-1", Some("jti-1")),
            input("s-3", Some("jti-1")),
            input("s-3", None),
        ];
        assert!(services_to_read(&cache, &batch).is_empty());
        assert!(purposes_to_read(&cache, &batch).is_empty());
        assert_eq!(
            subjects_to_read(&cache, &batch),
            HashMap::from([("health".to_owned(), vec![pairwise("s-3")])])
        );
        assert_eq!(tokens_to_read(&cache, &batch), ["jti-1"]);
        assert!(consents_to_read(&cache, &batch).is_empty());
        let empty = DecisionCache::default();
        assert_eq!(services_to_read(&empty, &batch), [service().id]);
        assert!(
            subjects_to_read(&empty, &batch).is_empty(),
            "no sector before the service is read"
        );
    }

    #[test]
    fn each_request_is_decided_on_its_own_facts() {
        let resident = ResidentId::from_uuid(Uuid::new_v4());
        let now = Utc::now();
        let mut cache = warmed(resident, now);
        cache.revoked_tokens.insert("revoked".into(), true);
        cache.revoked_tokens.insert("live".into(), false);
        let batch = [
            input("s-1", Some("live")),
            input("s-1", Some("revoked")),
            input("s-2", None),
        ];
        let decided = decide(&cache, &batch, now);
        assert_eq!(
            codes(&decided),
            [None, Some("token-revoked"), Some("unknown-subject")]
        );
        assert_eq!(
            decided.iter().map(|d| d.resident).collect::<Vec<_>>(),
            [Some(resident), Some(resident), None]
        );
        assert_eq!(locators_to_read(&cache, &decided), [resident]);
        assert!(providers_to_read(&cache, &decided));
    }

    #[test]
    fn a_later_consent_replaces_an_earlier_one_and_never_the_other_way() {
        let resident = ResidentId::from_uuid(Uuid::new_v4());
        let now = Utc::now();
        let mut cache = DecisionCache::default();
        let later = consent(resident, now + chrono::TimeDelta::seconds(1));
        keep_if_latest(&mut cache, later.clone());
        keep_if_latest(&mut cache, consent(resident, now));
        let key = (service().id, purpose().id);
        assert_eq!(cache.consents[&resident][&key].id, later.id);
    }

    #[test]
    fn records_take_consecutive_positions_and_only_the_asked_categories_locators() {
        let resident = ResidentId::from_uuid(Uuid::new_v4());
        let now = Utc::now();
        let mut cache = warmed(resident, now);
        let clinic = ProviderId::new("clinic").unwrap();
        let locator = |category: &str| Locator {
            resident,
            category: category.parse().unwrap(),
            provider: clinic.clone(),
            reference: format!("R-{category}"),
        };
        cache.locators.insert(
            resident,
            vec![locator("health.checkup"), locator("payment.history")],
        );
        cache.providers = Some([(clinic.clone(), provider(&clinic, true))].into());
        let batch = [input("s-1", None), input("s-2", None)];
        let decided = decide(&cache, &batch, now);
        let assembled = assemble(&cache, &batch, decided, 7, now).unwrap();
        let [granted, denied] = &assembled.decisions[..] else {
            panic!("two decisions")
        };
        assert_eq!((granted.record.seq, denied.record.seq), (7, 8));
        assert_eq!(granted.locators, [locator("health.checkup")]);
        assert_eq!(granted.record.providers, [clinic].into());
        assert!(denied.locators.is_empty() && denied.record.providers.is_empty());
        assert_eq!(
            denied.record.outcome,
            AccessOutcome::Denied {
                reason: "unknown-subject".into()
            }
        );
        assert_eq!(assembled.leaves.len(), 2);
        assert_eq!(assembled.leaves[0].hash, granted.leaf);
    }

    fn provider(id: &ProviderId, approved: bool) -> Provider {
        Provider {
            id: id.clone(),
            name: LocalizedText::new("クリニック", "Clinic"),
            connection: renkei_domain::ProviderConnection::Outbound,
            categories: Default::default(),
            max_answer_bytes: None,
            signing_keys: Default::default(),
            contact: None,
            status: if approved {
                renkei_domain::ProviderStatus::Approved
            } else {
                renkei_domain::ProviderStatus::Pending
            },
        }
    }

    #[test]
    fn a_granted_request_is_served_only_by_approved_providers() {
        let resident = ResidentId::from_uuid(Uuid::new_v4());
        let now = Utc::now();
        let mut cache = warmed(resident, now);
        let (clinic, pending) = (
            ProviderId::new("clinic").unwrap(),
            ProviderId::new("pending").unwrap(),
        );
        let locator = |provider: &ProviderId| Locator {
            resident,
            category: "health.checkup".parse().unwrap(),
            provider: provider.clone(),
            reference: "R-1".into(),
        };
        cache
            .locators
            .insert(resident, vec![locator(&clinic), locator(&pending)]);
        cache.providers = Some(
            [
                (clinic.clone(), provider(&clinic, true)),
                (pending.clone(), provider(&pending, false)),
            ]
            .into(),
        );
        let batch = [input("s-1", None)];
        let decided = decide(&cache, &batch, now);
        let assembled = assemble(&cache, &batch, decided, 1, now).unwrap();
        let [granted] = &assembled.decisions[..] else {
            panic!("one decision")
        };
        assert_eq!(granted.locators, [locator(&clinic)]);
        assert_eq!(granted.record.providers, [clinic].into());
    }
}
