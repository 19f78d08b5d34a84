//! A resident's history: who asked for their data (access records) and their entries in the
//! signed log with inclusion proofs, paged from either end and, for a proxy, limited to the
//! services their scope covers. The API (`GET /v1/me/access-records`, `GET /v1/me/log`) and
//! the portal's history page read it through the same [`Hub`] methods.

use axum::Json;
use axum::extract::State;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use renkei_domain::{AccessOutcome, AccessRecord, ResidentId, ServiceId};
use renkei_store::{AccessQuery, LogOrder};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{ProxyPermission, ResidentCaller, ResidentSession};
use crate::problem::{ApiQuery, Problem};
use crate::{Hub, HubError};

/// Which page of a resident's history to read: `GET /v1/me/access-records` and
/// `GET /v1/me/log` take it as their query.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AccessFilter {
    /// Only this service's requests.
    #[param(value_type = Option<crate::schemas::Slug>, inline)]
    pub service: Option<String>,
    /// Only entries at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Only entries before this time (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    /// Paging cursor forward in time: `next_after` of the previous page (oldest first only).
    pub after: Option<u64>,
    /// Paging cursor back in time: `next_before` of the previous page; without `order`, it
    /// means `order=newest`. With both cursors a page holds entries between them.
    pub before: Option<u64>,
    /// Which end the pages start from: `oldest` (the default; paged on with `after`) or
    /// `newest` (entries newest first, paged on with `before`).
    #[param(inline)]
    pub order: Option<PageOrder>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// The order of a page, and so which end of the log the first page starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PageOrder {
    /// Oldest first; the next page is `after=<next_after>`.
    Oldest,
    /// Newest first; the next (older) page is `before=<next_before>`.
    Newest,
}

// The views' comments are plain ones where they had none: a doc comment would become the
// schema's description in the API document, which says as much as clients have always read.

// One access record naming the resident.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccessRecordView {
    pub seq: u64,
    pub request_id: String,
    pub at: DateTime<Utc>,
    pub service: String,
    pub purpose: String,
    pub purpose_version: Option<u32>,
    pub categories: Vec<String>,
    /// `{"kind":"consent","consent":"…"}` or `{"kind":"none"}`.
    #[schema(value_type = Object)]
    pub basis: serde_json::Value,
    /// `granted` or `denied`.
    pub outcome: String,
    /// The denial's problem code, when denied.
    pub reason: Option<String>,
    pub providers: Vec<String>,
}

impl From<AccessRecord> for AccessRecordView {
    fn from(r: AccessRecord) -> Self {
        let (outcome, reason) = match r.outcome {
            AccessOutcome::Granted => ("granted".to_owned(), None),
            AccessOutcome::Denied { reason } => ("denied".to_owned(), Some(reason)),
        };
        Self {
            seq: r.seq,
            request_id: r.request.to_string(),
            at: r.at,
            service: r.service.to_string(),
            purpose: r.purpose.to_string(),
            purpose_version: r.purpose_version,
            categories: r.categories.iter().map(|c| c.to_string()).collect(),
            basis: serde_json::to_value(&r.basis).unwrap_or_default(),
            outcome,
            reason,
            providers: r.providers.iter().map(|p| p.to_string()).collect(),
        }
    }
}

// A page of access records.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccessPage {
    pub records: Vec<AccessRecordView>,
    /// Oldest-first pages: pass as `after` for the next page; absent on the last page.
    pub next_after: Option<u64>,
    /// Newest-first pages: pass as `before` for the next (older) page; absent when no older
    /// entry remains.
    pub next_before: Option<u64>,
}

/// One of my log entries, with what a client needs to check it is in the signed log:
/// leaf hash = SHA-256(0x00 ‖ salt ‖ entry), and the inclusion proof against `checkpoint`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LogEntryView {
    pub seq: u64,
    /// `access`, `consent`, `fulfilment` (what a granted request came to, provider by
    /// provider, when any provider did not deliver), or `operator` (an operator's search of
    /// the log that named me, with its reason).
    pub kind: String,
    /// The entry's canonical JSON, exactly the bytes the leaf commits to.
    pub entry: String,
    /// Base64.
    pub salt: String,
    /// Base64.
    pub leaf_hash: String,
    /// Inclusion proof against the page's checkpoint; absent while the entry is newer than it
    /// (checkpoints follow within a second).
    pub proof: Option<Vec<String>>,
}

// A page of the resident's history in the signed log.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LogPage {
    /// The signed checkpoint the proofs are against.
    pub checkpoint: String,
    /// The log's verifier key.
    pub verifier_key: String,
    /// Newest first with `order=newest` or `before`, otherwise oldest first.
    pub entries: Vec<LogEntryView>,
    /// Oldest-first pages: pass as `after` for the next page; absent on the last page.
    pub next_after: Option<u64>,
    /// Newest-first pages: pass as `before` for the next (older) page; absent when no older
    /// entry remains.
    pub next_before: Option<u64>,
}

impl Hub {
    /// Who asked for the resident's data: every request naming them, granted or denied, a
    /// page as `filter` says. A proxy entrusted with the history sees the requests of the
    /// services their scope covers (and is refused one outside it).
    pub async fn access_history(
        &self,
        me: &ResidentSession,
        filter: AccessFilter,
    ) -> Result<AccessPage, HubError> {
        let page = access_query(me.resident, filter)?;
        let services = history_services(me, page.query.service.as_ref())?;
        let store = self.store().clone();
        let mut records = per_service(
            &page.query,
            services,
            |r: &AccessRecord| r.seq,
            |q| {
                let store = store.clone();
                async move { store.access_records(&q).await }
            },
        )
        .await?;
        let (next_after, next_before) = page.cursors(&mut records, |r| r.seq);
        Ok(AccessPage {
            records: records.into_iter().map(Into::into).collect(),
            next_after,
            next_before,
        })
    }

    /// The resident's history in the signed log, a page as `filter` says, each entry with
    /// its inclusion proof against the latest checkpoint. A proxy entrusted with the history
    /// sees the entries of the services their scope covers (and is refused one outside it).
    pub async fn signed_history(
        &self,
        me: &ResidentSession,
        filter: AccessFilter,
    ) -> Result<LogPage, HubError> {
        let page = access_query(me.resident, filter)?;
        let services = history_services(me, page.query.service.as_ref())?;
        let me = me.resident;
        let checkpoint = self
            .store()
            .latest_checkpoint()
            .await?
            .ok_or_else(|| HubError::internal("no checkpoint yet"))?;
        let store = self.store().clone();
        let mut rows = per_service(
            &page.query,
            services,
            |(_, leaf): &(renkei_domain::LogEntry, renkei_store::StoredLeaf)| leaf.seq,
            |q| {
                let store = store.clone();
                async move { store.resident_log(me, &q).await }
            },
        )
        .await?;
        let (next_after, next_before) = page.cursors(&mut rows, |(_, leaf)| leaf.seq);
        let indexes: Vec<u64> = rows
            .iter()
            .filter(|(_, l)| l.seq < checkpoint.size)
            .map(|(_, l)| l.seq)
            .collect();
        let mut proofs =
            crate::log::inclusion_proofs(self.store().as_ref(), &indexes, checkpoint.size)
                .await?
                .into_iter();
        let mut entries = Vec::with_capacity(rows.len());
        for (entry, leaf) in rows {
            let proof = if leaf.seq < checkpoint.size {
                proofs.next()
            } else {
                None
            };
            entries.push(entry_view(&entry, leaf, proof.as_ref()));
        }
        Ok(LogPage {
            checkpoint: checkpoint.note,
            verifier_key: self.keys().log.verifier_key(),
            entries,
            next_after,
            next_before,
        })
    }
}

/// A log entry as the resident reads it, with its inclusion proof when it has one.
pub(crate) fn entry_view(
    entry: &renkei_domain::LogEntry,
    leaf: renkei_store::StoredLeaf,
    proof: Option<&Vec<renkei_log::Hash>>,
) -> LogEntryView {
    LogEntryView {
        seq: leaf.seq,
        kind: leaf.kind,
        entry: String::from_utf8(entry.canonical()).unwrap_or_default(),
        salt: STANDARD.encode(&leaf.salt),
        leaf_hash: STANDARD.encode(&leaf.leaf_hash),
        proof: proof.map(|p| p.iter().map(crate::log::b64).collect()),
    }
}

/// Who asked for my data: every request naming the signed-in resident, granted or denied.
/// A proxy entrusted with the history sees the requests of the services their scope covers.
#[utoipa::path(get, path = "/v1/me/access-records", params(AccessFilter), security(("resident" = [])),
    responses((status = 200, body = AccessPage), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn my_access_records(
    State(hub): State<Hub>,
    ResidentCaller(me): ResidentCaller,
    ApiQuery(filter): ApiQuery<AccessFilter>,
) -> Result<Json<AccessPage>, HubError> {
    Ok(Json(hub.access_history(&me, filter).await?))
}

/// My history in the tamper-evident log: every access record naming me, what each granted
/// request came to where a provider did not deliver, every change to my consents, and every
/// operator's search of the log that named me (who, when, why: not on a page of one
/// service's entries), each
/// with its inclusion proof, filterable by service and time, paged from the oldest entry
/// forward (`after`) or from the newest back (`order=newest`, then `before`).
/// A proxy entrusted with the history sees the entries of the services their scope covers.
#[utoipa::path(get, path = "/v1/me/log", params(AccessFilter), security(("resident" = [])),
    responses((status = 200, body = LogPage), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn my_log(
    State(hub): State<Hub>,
    ResidentCaller(me): ResidentCaller,
    ApiQuery(filter): ApiQuery<AccessFilter>,
) -> Result<Json<LogPage>, HubError> {
    Ok(Json(hub.signed_history(&me, filter).await?))
}

/// The services a history page reads, one by one: `None` when the page reads as asked (the
/// resident; a proxy for every service; a proxy asking for one service of their scope),
/// otherwise each service of the proxy's scope. Refuses a proxy not entrusted with the
/// history, or asking for a service outside their scope.
fn history_services(
    me: &ResidentSession,
    asked: Option<&ServiceId>,
) -> Result<Option<Vec<ServiceId>>, HubError> {
    me.require(ProxyPermission::ViewHistory, asked)?;
    Ok(match (asked, me.services()) {
        (None, Some(scope)) => Some(scope.iter().cloned().collect()),
        _ => None,
    })
}

/// Reads one page with `read`, over `services` one at a time when given, merged into the
/// page one read over those services would give: every read starts from the same end with
/// the same limit, so the first `limit` of the merged rows are that page.
async fn per_service<T, Fut>(
    query: &AccessQuery,
    services: Option<Vec<ServiceId>>,
    seq: impl Fn(&T) -> u64,
    read: impl Fn(AccessQuery) -> Fut,
) -> Result<Vec<T>, HubError>
where
    Fut: std::future::Future<Output = renkei_store::StoreResult<Vec<T>>>,
{
    let Some(services) = services else {
        return Ok(read(query.clone()).await?);
    };
    let mut rows = Vec::new();
    for service in services {
        rows.extend(
            read(AccessQuery {
                service: Some(service),
                ..query.clone()
            })
            .await?,
        );
    }
    rows.sort_by_key(&seq);
    if query.order == LogOrder::NewestFirst {
        rows.reverse();
    }
    rows.truncate(query.limit as usize);
    Ok(rows)
}

/// A page as the store is asked for it: a newest-first page asks for one entry more than it
/// shows, so that `next_before` is given only when an older entry remains.
struct PageQuery {
    query: AccessQuery,
    /// The most entries the page shows.
    limit: u32,
}

impl PageQuery {
    /// Cuts the store's rows to the page and names the cursors of the next page:
    /// `(next_after, next_before)`. Oldest first keeps the API's first rule (a cursor
    /// whenever the page is full); newest first knows whether an older entry remains.
    fn cursors<T>(&self, rows: &mut Vec<T>, seq: impl Fn(&T) -> u64) -> (Option<u64>, Option<u64>) {
        let limit = self.limit as usize;
        match self.query.order {
            LogOrder::OldestFirst => {
                let next = (rows.len() == limit)
                    .then(|| rows.last().map(&seq))
                    .flatten();
                (next, None)
            }
            LogOrder::NewestFirst => {
                let more = rows.len() > limit;
                rows.truncate(limit);
                (None, more.then(|| rows.last().map(&seq)).flatten())
            }
        }
    }
}

fn access_query(me: ResidentId, f: AccessFilter) -> Result<PageQuery, HubError> {
    // Log positions are stored as 64-bit signed integers, as the document states them.
    for (name, cursor) in [("after", f.after), ("before", f.before)] {
        if cursor.is_some_and(|c| i64::try_from(c).is_err()) {
            return Err(HubError::Malformed(format!(
                "`{name}` must be a log position below 2^63"
            )));
        }
    }
    let limit = f.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(HubError::Malformed(format!(
            "`limit` must be 1 to 500, not `{limit}`"
        )));
    }
    // Either cursor bounds the page in either order (both: the entries between them); the
    // order given wins, and `before` alone means the newest first, as its pages go back.
    let order = match (f.order, f.before) {
        (Some(PageOrder::Newest), _) | (None, Some(_)) => LogOrder::NewestFirst,
        (Some(PageOrder::Oldest), _) | (None, None) => LogOrder::OldestFirst,
    };
    let service = f
        .service
        .map(ServiceId::new)
        .transpose()
        .map_err(|e| HubError::Malformed(e.to_string()))?;
    Ok(PageQuery {
        query: AccessQuery {
            resident: Some(me),
            service,
            after_seq: f.after,
            before_seq: f.before,
            order,
            since: f.since,
            until: f.until,
            limit: if order == LogOrder::NewestFirst {
                limit + 1
            } else {
                limit
            },
        },
        limit,
    })
}
