//! "Released in an emergency" (`/portal/notices`): the resident's notices of what was
//! released to whom under each declared emergency, written once the declaration is over
//! (`renkei_hub::notices`), each linked to its declaration, to the history's entries and to
//! a request about it; and the services the resident chose to be told through too.

use askama::Template;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use renkei_hub::HubError;
use renkei_hub::auth::ProxyPermission;
use renkei_hub::notices::{NoticeChannelBody, NoticeView};
use serde::Deserialize;

use crate::PortalState;
use crate::ctx::Ctx;
use crate::declarations::service_label;
use crate::error::PortalError;
use crate::extract::{Form, Query};
use crate::i18n::Tr;
use crate::resident::{CategoryChip, chips, render, signed_in};
use crate::time::{tokyo, tokyo_iso};

/// One release as the notice lists it.
pub struct ReleaseRow {
    pub when: String,
    pub when_iso: String,
    pub service: String,
    pub categories: Vec<CategoryChip>,
    /// The history page whose first entry is this release.
    pub history_href: String,
    pub seq: u64,
}

/// One notice as the page shows it.
pub struct NoticeRow {
    pub declaration: String,
    pub reason: String,
    pub legal_basis: String,
    /// When it was in force, in words.
    pub summary: String,
    pub releases: Vec<ReleaseRow>,
    /// A request about it, to the city, with the services it went to named.
    pub request_href: String,
}

/// A service the resident can be told through.
pub struct ChannelRow {
    pub id: String,
    pub name: String,
    pub chosen: bool,
}

#[derive(Template)]
#[template(path = "portal/notices.html")]
struct NoticesPage {
    ctx: Ctx,
    notices: Vec<NoticeRow>,
    /// Empty for a proxy: where the resident is told is theirs to choose.
    channels: Vec<ChannelRow>,
    may_choose: bool,
    done: bool,
}

fn notice_row(
    n: NoticeView,
    catalogue: &[renkei_hub::catalogue::ServiceView],
    vocabulary: &[renkei_hub::catalogue::CategoryView],
    t: &Tr,
) -> NoticeRow {
    let lang = t.lang;
    let request = serde_urlencoded::to_string([
        ("declaration", n.declaration.as_str()),
        (
            "service",
            n.releases.first().map_or("", |r| r.service.as_str()),
        ),
    ])
    .unwrap_or_default();
    NoticeRow {
        request_href: format!("/portal/requests?{request}#file-h"),
        reason: n.reason,
        legal_basis: t.pick(&n.legal_basis_ja, &n.legal_basis_en).to_owned(),
        summary: t.arg2(
            "notice-summary",
            ("started", &tokyo(n.starts_at, lang)),
            ("ended", &tokyo(n.ended_at, lang)),
        ),
        releases: n
            .releases
            .into_iter()
            .map(|r| ReleaseRow {
                when: tokyo(r.at, lang),
                when_iso: tokyo_iso(r.at),
                service: service_label(catalogue, &r.service, t),
                categories: chips(&r.categories, vocabulary, lang),
                history_href: format!("/portal/history?before={}", r.seq.saturating_add(1)),
                seq: r.seq,
            })
            .collect(),
        declaration: n.declaration,
    }
}

#[derive(Deserialize)]
pub struct NoticesQuery {
    #[serde(default)]
    done: Option<String>,
}

/// The resident's notices, the latest first, and where else they are told.
pub async fn notices(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
    Query(q): Query<NoticesQuery>,
) -> Result<Response, PortalError> {
    let me = signed_in(&state, &headers).await?;
    if me.hub.require(ProxyPermission::ViewHistory, None).is_err() {
        return Err(PortalError::NotEntrusted);
    }
    let catalogue = state.hub.services().await?;
    let vocabulary = state.hub.categories().await?;
    let t = ctx.t;
    let notices = state
        .hub
        .my_notices(&me.hub)
        .await?
        .into_iter()
        .map(|n| notice_row(n, &catalogue, &vocabulary, &t))
        .collect();
    let may_choose = me.hub.proxy.is_none();
    let channels = if may_choose {
        state
            .hub
            .notice_channels(&me.hub)
            .await?
            .into_iter()
            .map(|c| ChannelRow {
                name: service_label(&catalogue, &c.service, &t),
                id: c.service,
                chosen: c.chosen,
            })
            .collect()
    } else {
        Vec::new()
    };
    render(&NoticesPage {
        ctx: ctx.portal_for("notices-title", "/portal/notices", &me),
        notices,
        channels,
        may_choose,
        done: q.done.is_some(),
    })
}

#[derive(Deserialize)]
pub struct ChannelForm {
    service: String,
    /// `on` to be told through the service, anything else to stop.
    #[serde(default)]
    on: String,
}

/// The resident chooses (or stops) a service to be told through too.
pub async fn set_channel(
    State(state): State<PortalState>,
    headers: HeaderMap,
    Form(form): Form<ChannelForm>,
) -> Result<Response, PortalError> {
    let me = signed_in(&state, &headers).await?;
    let body = NoticeChannelBody {
        service: form.service,
        on: form.on == "on",
    };
    match state.hub.set_notice_channel(&me.hub, body).await {
        Ok(()) => Ok(Redirect::to("/portal/notices?done=1#channels-h").into_response()),
        Err(HubError::Malformed(_) | HubError::InvalidField { .. }) => Err(
            PortalError::BadRequest("not a service to be told through".into()),
        ),
        Err(e) => Err(e.into()),
    }
}
