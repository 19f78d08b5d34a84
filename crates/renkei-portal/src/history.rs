//! "Who used my data": the resident's history in the signed log, 100 entries a page, newest
//! on top, each entry with what the page's script needs to check it against the signed
//! checkpoint.

use askama::Template;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, Utc};
use renkei_hub::HubError;
use renkei_hub::auth::ProxyPermission;
use renkei_hub::catalogue::{CategoryView, ServiceView};
use renkei_hub::history::{AccessFilter, LogEntryView, PageOrder};
use serde::Deserialize;

use crate::PortalState;
use crate::ctx::Ctx;
use crate::error::PortalError;
use crate::extract::Query;
use crate::i18n::Tr;
use crate::resident::{
    CategoryChip, chips, covers, purpose_title, render, service_name, signed_in,
};
use crate::time::{tokyo, tokyo_iso};

/// Where a page of the resident's signed history starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogPageAt {
    /// The newest entries, newest first.
    Newest,
    /// The entries before this log position, newest first.
    Before(u64),
    /// The entries after this log position, oldest first.
    After(u64),
}

impl LogPageAt {
    /// What the hub is asked for: at most `limit` entries from here, of `service` only if
    /// given.
    fn filter(self, service: Option<&str>, limit: u32) -> AccessFilter {
        let mut filter = AccessFilter {
            service: service.map(str::to_owned),
            limit: Some(limit),
            ..AccessFilter::default()
        };
        match self {
            Self::Newest => filter.order = Some(PageOrder::Newest),
            Self::Before(before) => filter.before = Some(before),
            Self::After(after) => filter.after = Some(after),
        }
        filter
    }
}

pub struct HistoryRow {
    pub seq: u64,
    pub kind: String,
    pub when: String,
    pub when_iso: String,
    pub service: String,
    pub service_id: String,
    pub purpose: String,
    /// What happened, in words (granted / denied: reason / consent given …).
    pub what: String,
    /// `granted`, `denied`, `consent`, `released-none`, `released-part`, or `looked` (an
    /// operator's search that named the resident).
    pub outcome: String,
    pub basis: String,
    pub emergency: bool,
    /// The declaration an emergency release was made under, or during which a dual-mode
    /// consent applied: the page links to it.
    pub declaration: Option<String>,
    /// Whether the resident has a notice of this declaration (the page links to it).
    pub noticed: bool,
    pub categories: Vec<CategoryChip>,
    pub entry: String,
    pub salt: String,
    pub leaf_hash: String,
    pub proof: String,
    pub has_proof: bool,
}

#[derive(Template)]
#[template(path = "portal/history.html")]
struct HistoryPage {
    ctx: Ctx,
    rows: Vec<HistoryRow>,
    checkpoint: String,
    verifier_key: String,
    /// Links to the page of newer and of older entries, when there is one.
    newer: Option<String>,
    older: Option<String>,
    services: Vec<(String, String)>,
    filter: String,
}

#[derive(Deserialize)]
pub struct HistoryQuery {
    #[serde(default)]
    service: Option<String>,
    /// The page holds the entries before this log position (the older page).
    #[serde(default)]
    before: Option<u64>,
    /// The page holds the entries after this log position (the newer page).
    #[serde(default)]
    after: Option<u64>,
}

/// The history page starting `at`, for the service filter `service` (empty: all).
fn history_href(service: &str, at: LogPageAt) -> String {
    let mut q: Vec<(&str, String)> = Vec::new();
    if !service.is_empty() {
        q.push(("service", service.to_owned()));
    }
    match at {
        LogPageAt::Newest => {}
        LogPageAt::Before(b) => q.push(("before", b.to_string())),
        LogPageAt::After(a) => q.push(("after", a.to_string())),
    }
    let q = serde_urlencoded::to_string(&q).unwrap_or_default();
    if q.is_empty() {
        "/portal/history".to_owned()
    } else {
        format!("/portal/history?{q}")
    }
}

fn text_of(v: &serde_json::Value, key: &str) -> String {
    v.get(key)
        .and_then(|x| x.as_str())
        .unwrap_or_default()
        .to_owned()
}

/// One log entry as the page shows it; `None` if the entry is not one the page knows.
pub fn history_row(
    e: &LogEntryView,
    catalogue: &[ServiceView],
    vocabulary: &[CategoryView],
    t: &Tr,
) -> Option<HistoryRow> {
    let lang = t.lang;
    let v: serde_json::Value = serde_json::from_str(&e.entry).ok()?;
    let at: DateTime<Utc> = serde_json::from_value(v.get("at")?.clone()).ok()?;
    let service_id = text_of(&v, "service");
    let purpose_id = text_of(&v, "purpose");
    let basis_kind = v
        .get("basis")
        .and_then(|b| b.get("kind"))
        .and_then(|k| k.as_str())
        .unwrap_or("none")
        .to_owned();
    let emergency = basis_kind.contains("emergency");
    let declaration = v.get("basis").and_then(|b| {
        b.get("declaration")
            .or_else(|| b.get("during"))
            .and_then(|d| d.as_str())
            .map(str::to_owned)
    });
    let (what, outcome, basis, categories) = match text_of(&v, "kind").as_str() {
        "access" => {
            let cats: Vec<String> = v
                .get("categories")
                .and_then(|c| serde_json::from_value(c.clone()).ok())
                .unwrap_or_default();
            // `{"outcome": {"outcome": "denied", "reason": "…"}}` (a tagged enum in a field).
            let detail = v.get("outcome").cloned().unwrap_or_default();
            let outcome = text_of(&detail, "outcome");
            let what = if outcome == "granted" {
                t.get("history-granted")
            } else {
                let reason = text_of(&detail, "reason");
                t.arg(
                    "history-denied",
                    "reason",
                    &t.get_or(&format!("reason-{reason}"), "reason-other"),
                )
            };
            let basis = t.get_or(
                &format!("basis-{}", basis_kind.replace('_', "-")),
                "basis-other",
            );
            (what, outcome, basis, chips(&cats, vocabulary, lang))
        }
        "consent" => {
            let change = text_of(&v, "change");
            let actor = v
                .get("actor")
                .and_then(|a| a.get("kind"))
                .and_then(|k| k.as_str())
                .unwrap_or("resident");
            let what = t.get_or(&format!("consent-change-{change}"), "consent-change-other");
            let basis = match v.get("actor").and_then(|a| a.get("staff_id")) {
                // The city's counter: which staff member, as the resident's history says.
                Some(staff) if actor == "staff" => {
                    t.arg("actor-staff", "staff", &staff.as_str().unwrap_or_default())
                }
                _ => t.get_or(&format!("actor-{}", actor.replace('_', "-")), "actor-other"),
            };
            (what, "consent".to_owned(), basis, Vec::new())
        }
        "fulfilment" => {
            let f: renkei_domain::FulfilmentLogEntry = serde_json::from_value(v.clone()).ok()?;
            let (what, outcome) = fulfilment_what(&f, t);
            (what, outcome.to_owned(), String::new(), Vec::new())
        }
        "operator" => {
            let o: renkei_domain::OperatorLogEntry = serde_json::from_value(v.clone()).ok()?;
            (
                looked_what(&o, t)?,
                "looked".to_owned(),
                String::new(),
                Vec::new(),
            )
        }
        _ => return None,
    };
    // A disclosure's recipient is the resident: the page says so rather than a service id.
    let disclosure = basis_kind == "data_subject_access";
    let (service, purpose) = if disclosure {
        (
            t.get("history-disclosure-recipient"),
            t.get("history-disclosure-purpose"),
        )
    } else if e.kind == "operator" {
        (t.get("history-city"), String::new())
    } else {
        (
            service_name(catalogue, &service_id, lang),
            purpose_title(catalogue, &text_of(&v, "service"), &purpose_id, lang),
        )
    };
    let what = if disclosure {
        t.get("history-disclosure-what")
    } else {
        what
    };
    Some(HistoryRow {
        seq: e.seq,
        kind: e.kind.clone(),
        when: tokyo(at, lang),
        when_iso: tokyo_iso(at),
        service,
        service_id,
        purpose,
        what,
        outcome,
        basis,
        emergency,
        declaration,
        noticed: false,
        categories,
        entry: e.entry.clone(),
        salt: e.salt.clone(),
        leaf_hash: e.leaf_hash.clone(),
        proof: e.proof.clone().unwrap_or_default().join(","),
        has_proof: e.proof.is_some(),
    })
}

/// What an operator's search naming the resident says: who looked, and why. `None` for an
/// act of another kind (none names a resident today).
fn looked_what(o: &renkei_domain::OperatorLogEntry, t: &Tr) -> Option<String> {
    use renkei_domain::{OperatorAction, OperatorActor};
    let OperatorAction::SearchAccessLog { reason, .. } = &o.action else {
        return None;
    };
    let who = match &o.actor {
        OperatorActor::Operator { id } => t.arg("history-looked-operator", "id", id),
        OperatorActor::CommandLine => t.get("audit-actor-command-line"),
    };
    let why = reason
        .clone()
        .unwrap_or_else(|| t.get("history-looked-no-reason"));
    Some(t.arg2("history-looked", ("who", &who), ("why", &why)))
}

/// What a fulfilment entry says, provider by provider, and its outcome class: `released-none`
/// when nothing reached the service, `released-part` otherwise.
pub fn fulfilment_what(f: &renkei_domain::FulfilmentLogEntry, t: &Tr) -> (String, &'static str) {
    use renkei_domain::ProviderDelivery;
    let providers = f
        .providers
        .iter()
        .map(|(provider, delivery)| match delivery {
            ProviderDelivery::Delivered => t.arg("delivery-delivered", "provider", provider),
            ProviderDelivery::Failed { reason } => t.arg2(
                "delivery-failed",
                ("provider", provider),
                (
                    "why",
                    &t.get_or(&format!("delivery-{reason}"), "delivery-other"),
                ),
            ),
        })
        .collect::<Vec<_>>()
        .join(&t.get("list-sep"));
    if f.released_anything() {
        (
            t.arg("history-fulfilment-partial", "providers", &providers),
            "released-part",
        )
    } else {
        (
            t.arg("history-fulfilment-none", "providers", &providers),
            "released-none",
        )
    }
}

/// The most entries one history page shows.
const HISTORY_LIMIT: u32 = 100;

pub async fn history(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
    Query(q): Query<HistoryQuery>,
) -> Result<Response, PortalError> {
    let me = signed_in(&state, &headers).await?;
    if me.hub.require(ProxyPermission::ViewHistory, None).is_err() {
        return Err(PortalError::NotEntrusted);
    }
    let catalogue = state.hub.services().await?;
    let vocabulary = state.hub.categories().await?;
    // A proxy's history holds only the services entrusted: so do the page's filters.
    let filter = q
        .service
        .filter(|s| catalogue.iter().any(|c| &c.id == s) && covers(&me, s))
        .unwrap_or_default();
    // The page opens on the newest entries and goes back with the API's `next_before`; a
    // newer page is the `after` cursor read forward, asking for one entry more than it shows
    // to know whether a still newer page exists. Pages before and after line up, since every
    // page but the oldest is full; links carry only a log position, so the way back needs
    // neither JavaScript nor server-side state.
    let at = match (q.after, q.before) {
        (Some(a), _) => LogPageAt::After(a),
        (None, Some(b)) => LogPageAt::Before(b),
        (None, None) => LogPageAt::Newest,
    };
    let limit = match at {
        LogPageAt::After(_) => HISTORY_LIMIT + 1,
        LogPageAt::Newest | LogPageAt::Before(_) => HISTORY_LIMIT,
    };
    let filtered = (!filter.is_empty()).then_some(filter.as_str());
    let mut page = state
        .hub
        .signed_history(&me.hub, at.filter(filtered, limit))
        .await
        .map_err(|e| match e {
            // What the page asked for (a cursor from the address bar, say) the hub refused:
            // the page says so.
            HubError::Malformed(why) => PortalError::BadRequest(why),
            e => e.into(),
        })?;
    let href = |at| history_href(&filter, at);
    let (newer, older) = match at {
        LogPageAt::After(after) => {
            let more = page.entries.len() > HISTORY_LIMIT as usize;
            page.entries.truncate(HISTORY_LIMIT as usize);
            // Newest on top, as on every page.
            page.entries.reverse();
            let newer = page
                .entries
                .first()
                .filter(|_| more)
                .map(|e| href(LogPageAt::After(e.seq)));
            // The cursor came from an entry of an older page, so older entries remain.
            let oldest = page
                .entries
                .last()
                .map_or(after.saturating_add(1), |e| e.seq);
            (newer, Some(href(LogPageAt::Before(oldest))))
        }
        LogPageAt::Before(_) | LogPageAt::Newest => {
            let newer = match (at, page.entries.first()) {
                (LogPageAt::Before(_), Some(top)) => Some(href(LogPageAt::After(top.seq))),
                (LogPageAt::Before(_), None) => Some(href(LogPageAt::Newest)),
                _ => None,
            };
            (newer, page.next_before.map(|b| href(LogPageAt::Before(b))))
        }
    };
    let t = ctx.t;
    // Emergency entries link to the notice written once their declaration was over.
    let noticed: Vec<String> = state
        .hub
        .my_notices(&me.hub)
        .await?
        .into_iter()
        .map(|n| n.declaration)
        .collect();
    let rows: Vec<HistoryRow> = page
        .entries
        .iter()
        .filter_map(|e| history_row(e, &catalogue, &vocabulary, &t))
        .map(|mut r| {
            r.noticed = r.declaration.as_ref().is_some_and(|d| noticed.contains(d));
            r
        })
        .collect();
    let services = catalogue
        .iter()
        .filter(|s| covers(&me, &s.id))
        .map(|s| {
            (
                s.id.clone(),
                ctx.lang.pick(&s.name_ja, &s.name_en).to_owned(),
            )
        })
        .collect();
    render(&HistoryPage {
        ctx: ctx.portal_for("history-title", "/portal/history", &me),
        rows,
        checkpoint: page.checkpoint,
        verifier_key: page.verifier_key,
        newer,
        older,
        services,
        filter,
    })
}
