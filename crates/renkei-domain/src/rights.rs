//! Residents' rights reaching the data (APPI 第34・35条): a correction, deletion or suspension
//! request about a service or a data category goes to whoever holds that data, namely the
//! services that received it and may still keep it (within their purpose's retention, as the
//! log's access records say) and the providers whose locators point at it; each recipient
//! answers (done, refused, partly done), and the request stands where those answers put it.
//! Every request has a due date for a first answer, which an operator may move only with a
//! reason the resident reads.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::access::{AccessOutcome, AccessRecord};
use crate::catalog::Locator;
use crate::identity::{ResidentRequest, ResidentRequestKind, ResidentRequestStatus};
use crate::ids::{CategoryId, ProviderId, PurposeId, ResidentId, ResidentRequestId, ServiceId};

/// How many days a first answer is due in when the city set nothing (個人情報保護法 lets a
/// municipality take 30 days for a disclosure; cities commit to less for a first answer).
pub const DEFAULT_ANSWER_DAYS: u32 = 14;
/// The longest note a recipient or an operator's extension reason may be.
pub const MAX_NOTE_CHARS: usize = 2000;

/// Who a routed request went to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Recipient {
    /// A service that received the data.
    Service(ServiceId),
    /// A provider that keeps it.
    Provider(ProviderId),
}

impl Recipient {
    /// `service` or `provider`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Service(_) => "service",
            Self::Provider(_) => "provider",
        }
    }

    /// The service's or provider's id.
    pub fn id(&self) -> &str {
        match self {
            Self::Service(s) => s.as_str(),
            Self::Provider(p) => p.as_str(),
        }
    }
}

/// What a recipient said, or that it has not yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecipientAnswer {
    Pending,
    Done,
    /// Refused, with a reason.
    Refused,
    /// Partly done, with a note of what was and was not.
    Partly,
}

impl RecipientAnswer {
    pub const ALL: [Self; 4] = [Self::Pending, Self::Done, Self::Refused, Self::Partly];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Done => "done",
            Self::Refused => "refused",
            Self::Partly => "partly",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// Why an answer or an extension is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RightsError {
    #[error("an answer is `done`, `refused` or `partly`")]
    NotAnAnswer,
    #[error("a refusal or a partial answer needs a note saying why")]
    NoteNeeded,
    #[error("a note is at most 2000 characters")]
    NoteTooLong,
    #[error("an extension needs a reason the resident can read")]
    ReasonNeeded,
    #[error("an extension moves the due date later")]
    NotLater,
    #[error("the request is already closed")]
    Closed,
}

/// Checks a recipient's answer: a final one, and a note where the resident needs to read why.
pub fn check_answer(answer: RecipientAnswer, note: Option<&str>) -> Result<(), RightsError> {
    let note = note.map(str::trim).filter(|n| !n.is_empty());
    if note.is_some_and(|n| n.chars().count() > MAX_NOTE_CHARS) {
        return Err(RightsError::NoteTooLong);
    }
    match answer {
        RecipientAnswer::Pending => Err(RightsError::NotAnAnswer),
        RecipientAnswer::Done => Ok(()),
        RecipientAnswer::Refused | RecipientAnswer::Partly if note.is_none() => {
            Err(RightsError::NoteNeeded)
        }
        RecipientAnswer::Refused | RecipientAnswer::Partly => Ok(()),
    }
}

/// One recipient of a routed request and its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecipient {
    pub request: ResidentRequestId,
    pub recipient: Recipient,
    /// The categories the request concerns at this recipient.
    pub categories: BTreeSet<CategoryId>,
    pub routed_at: DateTime<Utc>,
    pub answer: RecipientAnswer,
    /// The recipient's reason or note, as the resident reads it.
    pub note: Option<String>,
    pub answered_at: Option<DateTime<Utc>>,
}

/// Where a routed request stands once its recipients answered: in progress while any is
/// pending (received while none answered), rejected when every one refused, otherwise
/// completed. With no recipients it stays where an operator put it.
pub fn status_after_answers(
    current: ResidentRequestStatus,
    recipients: &[RequestRecipient],
) -> ResidentRequestStatus {
    if recipients.is_empty() {
        return current;
    }
    let pending = recipients
        .iter()
        .filter(|r| r.answer == RecipientAnswer::Pending)
        .count();
    if pending == recipients.len() {
        current
    } else if pending > 0 {
        ResidentRequestStatus::InProgress
    } else if recipients
        .iter()
        .all(|r| r.answer == RecipientAnswer::Refused)
    {
        ResidentRequestStatus::Rejected
    } else {
        ResidentRequestStatus::Completed
    }
}

/// Where a request goes: the services that received the data and may still keep it, and the
/// providers that hold it, each with the categories it concerns there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routing {
    pub services: BTreeMap<ServiceId, BTreeSet<CategoryId>>,
    pub providers: BTreeMap<ProviderId, BTreeSet<CategoryId>>,
}

impl Routing {
    pub fn is_empty(&self) -> bool {
        self.services.is_empty() && self.providers.is_empty()
    }

    /// Every recipient with its categories, services first.
    pub fn recipients(&self) -> Vec<(Recipient, BTreeSet<CategoryId>)> {
        self.services
            .iter()
            .map(|(s, c)| (Recipient::Service(s.clone()), c.clone()))
            .chain(
                self.providers
                    .iter()
                    .map(|(p, c)| (Recipient::Provider(p.clone()), c.clone())),
            )
            .collect()
    }
}

/// Where `request` goes, from the resident's access records and locators. A service is a
/// recipient when a granted record sent it the data (of the named service, or with the named
/// category) within the retention of the purpose version it was sent for (`retention_days`
/// says it; a version it cannot find keeps the record out); a provider when one of the
/// resident's locators for the categories concerned names it. A disclosure, or a request
/// about the hub itself, goes nowhere.
pub fn route(
    request: &ResidentRequest,
    records: &[AccessRecord],
    retention_days: impl Fn(&ServiceId, &PurposeId, u32) -> Option<u32>,
    locators: &[Locator],
    now: DateTime<Utc>,
) -> Routing {
    let mut routing = Routing::default();
    if !request.kind.is_routed() {
        return routing;
    }
    let about = |r: &AccessRecord| match (&request.service, &request.category) {
        (Some(s), Some(c)) => &r.service == s && r.categories.contains(c),
        (Some(s), None) => &r.service == s,
        (None, Some(c)) => r.categories.contains(c),
        (None, None) => false,
    };
    let mut concerned: BTreeSet<CategoryId> = request.category.iter().cloned().collect();
    for r in records {
        if r.resident != Some(request.resident) || r.outcome != AccessOutcome::Granted || !about(r)
        {
            continue;
        }
        let Some(version) = r.purpose_version else {
            continue;
        };
        let Some(days) = retention_days(&r.service, &r.purpose, version) else {
            continue;
        };
        if r.at + TimeDelta::days(i64::from(days)) < now {
            continue;
        }
        let categories: BTreeSet<CategoryId> = match &request.category {
            Some(c) => [c.clone()].into(),
            None => r.categories.clone(),
        };
        concerned.extend(categories.iter().cloned());
        routing
            .services
            .entry(r.service.clone())
            .or_default()
            .extend(categories);
    }
    for l in locators {
        if l.resident == request.resident && concerned.contains(&l.category) {
            routing
                .providers
                .entry(l.provider.clone())
                .or_default()
                .insert(l.category.clone());
        }
    }
    routing
}

/// Whether a provider's answer removes its locators of the request's categories: a deletion
/// it says it carried out (the hub no longer points at what is gone).
pub fn removes_locators(
    kind: ResidentRequestKind,
    recipient: &Recipient,
    answer: RecipientAnswer,
) -> bool {
    kind == ResidentRequestKind::Deletion
        && matches!(recipient, Recipient::Provider(_))
        && answer == RecipientAnswer::Done
}

/// Whether a recipient that answered `current` may answer again: while pending, or after a
/// partial answer (to say it finished); done and refused are final.
pub fn may_answer(current: RecipientAnswer) -> bool {
    matches!(current, RecipientAnswer::Pending | RecipientAnswer::Partly)
}

/// When a request filed at `filed_at` is due, `days` later.
pub fn due_at(filed_at: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    filed_at + TimeDelta::days(i64::from(days))
}

/// Checks an operator's extension of `request` to `until`, for `reason`: an open request,
/// a later date, and a reason the resident can read. Returns the reason as kept.
pub fn check_extension(
    request: &ResidentRequest,
    until: DateTime<Utc>,
    reason: &str,
) -> Result<String, RightsError> {
    if !request.status.is_open() {
        return Err(RightsError::Closed);
    }
    if until <= request.due_at {
        return Err(RightsError::NotLater);
    }
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(RightsError::ReasonNeeded);
    }
    if reason.chars().count() > MAX_NOTE_CHARS {
        return Err(RightsError::NoteTooLong);
    }
    Ok(reason.to_owned())
}

/// What the log records of a routed request: ids and counts, never the resident's words nor
/// a recipient's note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RightsEvent {
    /// The request went to these recipients.
    Routed {
        services: BTreeSet<ServiceId>,
        providers: BTreeSet<ProviderId>,
        /// How many of the resident's consents a suspension revoked.
        consents_revoked: u32,
    },
    /// One recipient answered; a provider's `done` to a deletion removed its locators.
    Answered {
        recipient: Recipient,
        answer: RecipientAnswer,
        locators_removed: u64,
    },
}

/// A routed request's step as the log records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RightsLogEntry {
    /// Position in the log (shared with every other entry).
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub request: ResidentRequestId,
    pub resident: ResidentId,
    /// The request's kind (`kind` is the log entry's own tag).
    pub request_kind: ResidentRequestKind,
    #[serde(flatten)]
    pub event: RightsEvent,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::AccessBasis;
    use crate::consent::Actor;
    use crate::ids::{ConsentId, RequestId};

    fn svc(s: &str) -> ServiceId {
        ServiceId::new(s).unwrap()
    }

    fn cat(s: &str) -> CategoryId {
        CategoryId::new(s).unwrap()
    }

    fn alice() -> ResidentId {
        ResidentId::from_uuid(uuid::Uuid::from_u128(1))
    }

    fn request(
        kind: ResidentRequestKind,
        service: Option<&str>,
        category: Option<&str>,
    ) -> ResidentRequest {
        let now = Utc::now();
        ResidentRequest {
            id: ResidentRequestId::from_uuid(uuid::Uuid::from_u128(9)),
            resident: alice(),
            kind,
            service: service.map(svc),
            details: String::new(),
            status: ResidentRequestStatus::Received,
            filed_by: Actor::Resident,
            filed_at: now,
            updated_at: now,
            response: None,
            category: category.map(cat),
            due_at: due_at(now, DEFAULT_ANSWER_DAYS),
            extension_reason: None,
        }
    }

    fn record(service: &str, categories: &[&str], days_ago: i64, granted: bool) -> AccessRecord {
        AccessRecord {
            seq: 0,
            request: RequestId::from_uuid(uuid::Uuid::new_v4()),
            at: Utc::now() - TimeDelta::days(days_ago),
            service: svc(service),
            resident: Some(alice()),
            purpose: PurposeId::new("advice").unwrap(),
            purpose_version: Some(1),
            categories: categories.iter().map(|c| cat(c)).collect(),
            basis: AccessBasis::Consent {
                consent: ConsentId::from_uuid(uuid::Uuid::nil()),
                during: None,
            },
            outcome: if granted {
                AccessOutcome::Granted
            } else {
                AccessOutcome::Denied {
                    reason: "no-consent".into(),
                }
            },
            providers: BTreeSet::new(),
        }
    }

    fn locator(category: &str, provider: &str) -> Locator {
        Locator {
            resident: alice(),
            category: cat(category),
            provider: ProviderId::new(provider).unwrap(),
            reference: "R-1".into(),
        }
    }

    fn thirty_days(_: &ServiceId, _: &PurposeId, _: u32) -> Option<u32> {
        Some(30)
    }

    #[test]
    fn a_deletion_about_a_service_goes_to_it_and_to_the_providers_of_what_it_received() {
        let records = [
            record("health-advice", &["health.checkup"], 3, true),
            record("town-mobility", &["payment.history"], 3, true),
        ];
        let locators = [
            locator("health.checkup", "clinic"),
            locator("payment.history", "payments"),
        ];
        let r = request(ResidentRequestKind::Deletion, Some("health-advice"), None);
        let routing = route(&r, &records, thirty_days, &locators, Utc::now());
        let checkup: BTreeSet<CategoryId> = [cat("health.checkup")].into();
        assert_eq!(
            routing.services,
            [(svc("health-advice"), checkup.clone())].into()
        );
        assert_eq!(
            routing.providers,
            [(ProviderId::new("clinic").unwrap(), checkup)].into()
        );
    }

    #[test]
    fn a_request_about_a_category_reaches_every_service_that_received_it_within_retention() {
        let records = [
            record("health-advice", &["health.checkup"], 3, true),
            record("checkup-reminder", &["health.checkup"], 40, true),
            record("town-mobility", &["health.checkup"], 1, false),
        ];
        let locators = [locator("health.checkup", "clinic")];
        let r = request(
            ResidentRequestKind::Correction,
            None,
            Some("health.checkup"),
        );
        let routing = route(&r, &records, thirty_days, &locators, Utc::now());
        // The reminder's copy is past its 30 days; the denied record sent nothing.
        let recipients: Vec<Recipient> = routing.recipients().into_iter().map(|(r, _)| r).collect();
        assert_eq!(
            recipients,
            vec![
                Recipient::Service(svc("health-advice")),
                Recipient::Provider(ProviderId::new("clinic").unwrap())
            ]
        );
    }

    #[test]
    fn a_disclosure_or_a_request_about_the_hub_goes_nowhere() {
        let records = [record("health-advice", &["health.checkup"], 1, true)];
        let locators = [locator("health.checkup", "clinic")];
        for r in [
            request(ResidentRequestKind::Disclosure, Some("health-advice"), None),
            request(ResidentRequestKind::Deletion, None, None),
        ] {
            assert!(route(&r, &records, thirty_days, &locators, Utc::now()).is_empty());
        }
    }

    #[test]
    fn a_rights_entry_encodes_under_its_own_kind_with_ids_and_counts_only() {
        let entry = crate::LogEntry::Rights(RightsLogEntry {
            seq: 4,
            at: DateTime::UNIX_EPOCH,
            request: ResidentRequestId::from_uuid(uuid::Uuid::nil()),
            resident: alice(),
            request_kind: ResidentRequestKind::Deletion,
            event: RightsEvent::Answered {
                recipient: Recipient::Provider(ProviderId::new("clinic").unwrap()),
                answer: RecipientAnswer::Done,
                locators_removed: 1,
            },
        });
        let json: serde_json::Value = serde_json::from_slice(&entry.canonical()).unwrap();
        assert_eq!(json["kind"], "rights");
        assert_eq!(json["request_kind"], "deletion");
        assert_eq!(json["event"], "answered");
        assert_eq!(json["recipient"]["id"], "clinic");
        let back: crate::LogEntry = serde_json::from_value(json).unwrap();
        assert_eq!(back, entry);
    }

    fn recipient(answer: RecipientAnswer) -> RequestRecipient {
        RequestRecipient {
            request: ResidentRequestId::from_uuid(uuid::Uuid::nil()),
            recipient: Recipient::Service(svc("health-advice")),
            categories: BTreeSet::new(),
            routed_at: Utc::now(),
            answer,
            note: None,
            answered_at: None,
        }
    }

    #[test]
    fn a_request_is_completed_once_every_recipient_answered_and_rejected_if_all_refused() {
        use RecipientAnswer::*;
        use ResidentRequestStatus as S;
        let status = |answers: &[RecipientAnswer]| {
            let rs: Vec<_> = answers.iter().map(|a| recipient(*a)).collect();
            status_after_answers(S::Received, &rs)
        };
        assert_eq!(status(&[]), S::Received);
        assert_eq!(status(&[Pending, Pending]), S::Received);
        assert_eq!(status(&[Done, Pending]), S::InProgress);
        assert_eq!(status(&[Done, Partly]), S::Completed);
        assert_eq!(status(&[Refused, Refused]), S::Rejected);
        assert_eq!(status(&[Refused, Done]), S::Completed);
    }

    #[test]
    fn only_a_providers_done_to_a_deletion_removes_its_locators_and_done_is_final() {
        let clinic = Recipient::Provider(ProviderId::new("clinic").unwrap());
        let service = Recipient::Service(svc("health-advice"));
        use RecipientAnswer::*;
        assert!(removes_locators(
            ResidentRequestKind::Deletion,
            &clinic,
            Done
        ));
        assert!(!removes_locators(
            ResidentRequestKind::Deletion,
            &clinic,
            Partly
        ));
        assert!(!removes_locators(
            ResidentRequestKind::Deletion,
            &service,
            Done
        ));
        assert!(!removes_locators(
            ResidentRequestKind::Correction,
            &clinic,
            Done
        ));
        assert!(may_answer(Pending) && may_answer(Partly));
        assert!(!may_answer(Done) && !may_answer(Refused));
    }

    #[test]
    fn a_refusal_needs_a_reason_and_pending_is_no_answer() {
        assert_eq!(check_answer(RecipientAnswer::Done, None), Ok(()));
        assert_eq!(
            check_answer(RecipientAnswer::Refused, Some("  ")),
            Err(RightsError::NoteNeeded)
        );
        assert_eq!(
            check_answer(RecipientAnswer::Partly, Some("address kept: tax law")),
            Ok(())
        );
        assert_eq!(
            check_answer(RecipientAnswer::Pending, None),
            Err(RightsError::NotAnAnswer)
        );
    }

    #[test]
    fn a_request_is_overdue_only_while_open_and_an_extension_needs_a_later_date_and_a_reason() {
        let mut r = request(ResidentRequestKind::Deletion, Some("health-advice"), None);
        let after = r.due_at + TimeDelta::seconds(1);
        assert!(!r.is_overdue(r.due_at));
        assert!(r.is_overdue(after));
        assert_eq!(
            check_extension(&r, r.due_at, "more time"),
            Err(RightsError::NotLater)
        );
        assert_eq!(
            check_extension(&r, after, " "),
            Err(RightsError::ReasonNeeded)
        );
        assert_eq!(
            check_extension(&r, after, " the clinic's archive is off-site "),
            Ok("the clinic's archive is off-site".to_owned())
        );
        r.status = ResidentRequestStatus::Completed;
        assert!(!r.is_overdue(after));
        assert_eq!(check_extension(&r, after, "late"), Err(RightsError::Closed));
    }
}
