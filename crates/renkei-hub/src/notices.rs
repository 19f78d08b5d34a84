//! Residents told afterwards (事後通知): once a declared emergency is over, each resident whose
//! data was released under it gets one notice of what went to whom, in the portal, through
//! `GET /v1/me/notices`, and through the webhook of each service they chose to hear of it.
//!
//! A background task (every replica runs one) writes the notices of each declaration that is
//! over, and `Hub::end_emergency` starts a round at once. A background task rather than a
//! check when someone reads: the webhook events must go out even if nobody opens a page, and
//! a declaration's notices should not wait on its residents' visits. The task finds the
//! declarations that are over and have no notices yet, reads the records under each, lets
//! `renkei_domain::EmergencyNotice` decide what they say, and writes them, with their webhook
//! messages, in one transaction that happens once per declaration, whichever replica gets
//! there first (`renkei_store::NoticeStore::record_notices`). Natural ends wait
//! [`HubConfig::notice_grace`](crate::HubConfig) first (see `Declaration::notices_due_at`).
//!
//! "Where they asked for it": the release is about the resident, and whether they are on a
//! register of people who need help is itself sensitive, so no service hears of it unless
//! the resident named it (`notice_channels`); the responder services already know what they
//! received, and are not told again.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use renkei_domain::{Declaration, EmergencyNotice, ResidentId, Service, ServiceId};
use renkei_protocol::event::notice::{NoticeEventClaims, NoticeRelease};
use renkei_store::OutboxMessage;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{ProxyPermission, ResidentCaller, ResidentSession};
use crate::consents::now_ms;
use crate::problem::{ApiJson, Problem};
use crate::{Hub, HubError};

/// How many declarations one round of the task takes on.
const ROUND: u32 = 16;

// One release under a declaration, as a notice lists it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NoticeReleaseView {
    /// The access record's position in the log (the history page's entry).
    pub seq: u64,
    pub at: DateTime<Utc>,
    /// The responder service the data went to.
    pub service: String,
    pub categories: Vec<String>,
    pub providers: Vec<String>,
}

// A notice: what was released to whom under which declaration.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NoticeView {
    pub declaration: String,
    /// Why the city declared it, as published.
    pub reason: String,
    pub legal_basis: String,
    pub legal_basis_ja: String,
    pub legal_basis_en: String,
    pub starts_at: DateTime<Utc>,
    /// When it ended: early, or at its end time.
    pub ended_at: DateTime<Utc>,
    /// When the notice was written.
    pub at: DateTime<Utc>,
    /// Oldest first.
    pub releases: Vec<NoticeReleaseView>,
}

impl NoticeView {
    fn new(n: EmergencyNotice, d: &Declaration, me: &ResidentSession) -> Option<Self> {
        let releases: Vec<NoticeReleaseView> = n
            .releases
            .into_iter()
            // A proxy sees only the services their scope covers, as in the history.
            .filter(|r| me.covers(Some(&r.service)))
            .map(|r| NoticeReleaseView {
                seq: r.seq,
                at: r.at,
                service: r.service.to_string(),
                categories: r.categories.iter().map(ToString::to_string).collect(),
                providers: r.providers.iter().map(ToString::to_string).collect(),
            })
            .collect();
        (!releases.is_empty()).then(|| Self {
            declaration: d.id.to_string(),
            reason: d.reason.clone(),
            legal_basis: d.legal_basis.as_str().to_owned(),
            legal_basis_ja: d.legal_basis.citation_ja().to_owned(),
            legal_basis_en: d.legal_basis.citation_en().to_owned(),
            starts_at: d.starts_at,
            ended_at: d.ended.as_ref().map_or(d.ends_at, |s| s.at.min(d.ends_at)),
            at: n.at,
            releases,
        })
    }
}

/// A service that can tell a resident of their notices, and whether they chose it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NoticeChannelView {
    pub service: String,
    pub chosen: bool,
}

/// A service a resident wants told of their notices, or no longer.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoticeChannelBody {
    #[schema(value_type = crate::schemas::Slug)]
    pub service: String,
    /// `true` to be told through it, `false` to stop.
    pub on: bool,
}

/// Writes the notices due now, then every [`crate::HubConfig::notice_interval`].
pub(crate) fn start_notifier(hub: &Hub) {
    let weak = hub.downgrade();
    let interval = hub.config().notice_interval.max(Duration::from_millis(10));
    tokio::spawn(async move {
        loop {
            let Some(hub) = weak.upgrade() else { return };
            let result = hub.write_due_notices(Utc::now()).await;
            drop(hub);
            let pause = match result {
                Ok(n) if n >= ROUND as usize => Duration::ZERO,
                Ok(_) => interval,
                Err(e) => {
                    tracing::error!(error = %e, "writing emergency notices failed");
                    interval
                }
            };
            tokio::time::sleep(pause).await;
        }
    });
}

impl Hub {
    /// Writes the notices of every declaration over at `now` whose notices are not written
    /// yet; returns how many declarations it looked at. Safe to run anywhere, any number of
    /// times: each declaration's notices are written once.
    pub async fn write_due_notices(&self, now: DateTime<Utc>) -> Result<usize, HubError> {
        let grace = chrono::TimeDelta::from_std(self.config().notice_grace)
            .unwrap_or(chrono::TimeDelta::days(1));
        let candidates = self
            .store()
            .declarations_awaiting_notices(now, ROUND)
            .await?;
        let seen = candidates.len();
        let mut written = false;
        for d in candidates.iter().filter(|d| d.notices_due_at(now, grace)) {
            let records = self.store().records_under_declaration(d.id).await?;
            let at = now_ms();
            let notices = EmergencyNotice::from_records(d.id, &records, at);
            let messages = self.notice_messages(d, &notices).await?;
            let any = !messages.is_empty();
            if self
                .store()
                .record_notices(d.id, &notices, &messages, at)
                .await?
            {
                tracing::info!(declaration = %d.id, notices = notices.len(), "emergency notices written");
                written |= any;
            }
        }
        if written {
            self.outbox_written().notify_one();
        }
        Ok(seen)
    }

    /// One webhook message per notice and service its resident chose (with a webhook).
    async fn notice_messages(
        &self,
        d: &Declaration,
        notices: &[EmergencyNotice],
    ) -> Result<Vec<OutboxMessage>, HubError> {
        let residents: Vec<ResidentId> = notices.iter().map(|n| n.resident).collect();
        let mut channels: BTreeMap<ResidentId, Vec<ServiceId>> = BTreeMap::new();
        for (resident, service) in self.store().notice_channels(&residents).await? {
            channels.entry(resident).or_default().push(service);
        }
        let mut services: HashMap<ServiceId, Option<Service>> = HashMap::new();
        let notice_url = format!(
            "{}/portal/notices",
            self.config().issuer.trim_end_matches('/')
        );
        let mut messages = Vec::new();
        for n in notices {
            for id in channels.get(&n.resident).into_iter().flatten() {
                let service = match services.entry(id.clone()) {
                    Entry::Occupied(e) => e.into_mut(),
                    Entry::Vacant(v) => v.insert(self.store().service(id).await?),
                };
                let Some(service) = service else {
                    continue;
                };
                if service.webhook_url.is_none() {
                    continue;
                }
                let claims = NoticeEventClaims {
                    subject: self.keys().subject(&service.sector, n.resident),
                    declaration: d.id,
                    legal_basis: d.legal_basis.as_str().to_owned(),
                    releases: n
                        .releases
                        .iter()
                        .map(|r| NoticeRelease {
                            service: r.service.clone(),
                            categories: r.categories.clone(),
                            at: r.at.timestamp(),
                        })
                        .collect(),
                    notice_url: notice_url.clone(),
                };
                let event = serde_json::to_value(NoticeOutboxEvent { notice: claims })
                    .map_err(|e| HubError::internal(format!("notice event: {e}")))?;
                messages.push(OutboxMessage {
                    id: uuid::Uuid::new_v4(),
                    service: service.id.clone(),
                    event,
                });
            }
        }
        Ok(messages)
    }

    /// The signed-in resident's notices, the latest first. A proxy entrusted with the history
    /// sees the releases to the services their scope covers.
    pub async fn my_notices(&self, me: &ResidentSession) -> Result<Vec<NoticeView>, HubError> {
        me.require(ProxyPermission::ViewHistory, None)?;
        let notices = self
            .store()
            .notices(me.resident, renkei_store::notices::MAX_NOTICES_LISTED)
            .await?;
        let mut declarations: HashMap<_, Declaration> = HashMap::new();
        let mut out = Vec::with_capacity(notices.len());
        for n in notices {
            let d = match declarations.entry(n.declaration) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(v) => v.insert(self.declaration(n.declaration).await?),
            };
            out.extend(NoticeView::new(n, d, me));
        }
        Ok(out)
    }

    /// The services that can tell the resident of their notices (approved, with a webhook),
    /// and whether the resident chose each.
    pub async fn notice_channels(
        &self,
        me: &ResidentSession,
    ) -> Result<Vec<NoticeChannelView>, HubError> {
        let chosen: Vec<ServiceId> = self
            .store()
            .notice_channels(&[me.resident])
            .await?
            .into_iter()
            .map(|(_, s)| s)
            .collect();
        Ok(self
            .store()
            .services()
            .await?
            .into_iter()
            .filter(|s| {
                s.webhook_url.is_some() && s.status == renkei_domain::ServiceStatus::Approved
            })
            .map(|s| NoticeChannelView {
                chosen: chosen.contains(&s.id),
                service: s.id.to_string(),
            })
            .collect())
    }

    /// Adds or removes a service the resident wants told of their notices: the resident's own
    /// choice (never a proxy's), of a registered service with a webhook.
    pub async fn set_notice_channel(
        &self,
        me: &ResidentSession,
        body: NoticeChannelBody,
    ) -> Result<(), HubError> {
        if me.proxy.is_some() {
            return Err(HubError::Forbidden(
                "only the resident chooses where they are told".into(),
            ));
        }
        let id = ServiceId::new(body.service.as_str())
            .map_err(|e| HubError::Malformed(e.to_string()))?;
        let service = self
            .store()
            .service(&id)
            .await?
            .ok_or_else(|| HubError::UnknownService(id.to_string()))?;
        // The request is well formed; the service cannot take it in its present state.
        if body.on && service.webhook_url.is_none() {
            return Err(HubError::Forbidden(format!(
                "`{id}` has no webhook: it cannot tell you of notices"
            )));
        }
        self.store()
            .set_notice_channel(me.resident, &id, body.on, now_ms())
            .await?;
        Ok(())
    }
}

/// What the webhook outbox keeps for a notice message (signed when sent).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct NoticeOutboxEvent {
    pub notice: NoticeEventClaims,
}

/// The signed-in resident's notices of releases under declared emergencies, the latest
/// first: each says what was released to whom under which declaration, once it is over.
#[utoipa::path(get, path = "/v1/me/notices", security(("resident" = [])),
    responses((status = 200, body = Vec<NoticeView>), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn my_notices(
    State(hub): State<Hub>,
    ResidentCaller(me): ResidentCaller,
) -> Result<Json<Vec<NoticeView>>, HubError> {
    Ok(Json(hub.my_notices(&me).await?))
}

/// Choose a service (one with a webhook) to be told of one's notices too, or stop: the
/// service is sent an `emergency-release-notice` event naming the resident by its own
/// pairwise subject. Only the resident chooses, never a proxy.
#[utoipa::path(post, path = "/v1/me/notice-channels", request_body = NoticeChannelBody, security(("resident" = [])),
    responses((status = 204, description = "Done"), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 415, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn set_my_notice_channel(
    State(hub): State<Hub>,
    ResidentCaller(me): ResidentCaller,
    ApiJson(body): ApiJson<NoticeChannelBody>,
) -> Result<axum::http::StatusCode, HubError> {
    hub.set_notice_channel(&me, body).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
