//! Proxies (代理人): a resident invites someone with a one-time code, the invited person
//! accepts and then acts for the resident within the appointment's scope, and the resident
//! sees what each proxy did and ends an appointment at once.

use chrono::{DateTime, TimeDelta, Utc};
use renkei_domain::{
    Actor, ConsentEventKind, ProxyAppointment, ProxyId, ProxyScope, PurposeId, ResidentId,
    ResidentRequestKind, ServiceId,
};
use renkei_store::Ceremony;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{ProxyPermission, ResidentSession};
use crate::consents::now_ms;
use crate::{Hub, HubError};

/// How long a proxy invitation waits to be accepted.
pub const INVITATION_HOURS: i64 = 72;
const INVITATION: &str = "proxy-invitation";

/// What a resident asks of a new proxy.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProxyInvitationBody {
    /// What the resident calls them ("娘", "窓口 田中").
    #[schema(min_length = 1, max_length = 64, pattern = "\\S")]
    pub label: String,
    #[schema(value_type = ProxyScopeSchema)]
    pub scope: ProxyScope,
}

/// What a proxy may do for the resident (the JSON of [`ProxyScope`]).
#[derive(ToSchema)]
#[schema(as = ProxyScope)]
#[expect(dead_code, reason = "describes the JSON in the API document only")]
pub(crate) struct ProxyScopeSchema {
    /// The services the proxy may act on; empty or absent means all.
    #[schema(value_type = Vec<crate::schemas::Slug>, required = false)]
    services: Vec<String>,
    /// May grant and revoke consents (and so read them).
    manage_consents: bool,
    /// May read the access history (and so the consents).
    view_history: bool,
    /// May file disclosure, correction, deletion or suspension requests.
    file_requests: bool,
    /// May sign in to services as the resident (OpenID Connect), releasing what the
    /// resident's consents to them allow. Off unless given.
    #[schema(default = false, required = false)]
    sign_in_to_services: bool,
}

/// A one-time code the resident hands to the person they appoint.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProxyInvitation {
    pub code: uuid::Uuid,
    pub expires_at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
struct PendingAppointment {
    resident: ResidentId,
    label: String,
    scope: ProxyScope,
}

/// One thing a proxy did for the resident, as the hub recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyAction {
    /// A consent the proxy gave, revoked or replaced.
    Consent {
        at: DateTime<Utc>,
        service: ServiceId,
        purpose: PurposeId,
        change: ConsentEventKind,
    },
    /// A request the proxy filed.
    Request {
        at: DateTime<Utc>,
        kind: ResidentRequestKind,
        service: Option<ServiceId>,
    },
}

impl ProxyAction {
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Self::Consent { at, .. } | Self::Request { at, .. } => *at,
        }
    }
}

impl Hub {
    /// A resident (never a proxy) invites someone to act for them.
    pub async fn invite_proxy(
        &self,
        session: &ResidentSession,
        body: ProxyInvitationBody,
    ) -> Result<ProxyInvitation, HubError> {
        session.require(ProxyPermission::ManageAccount, None)?;
        // Counted before trimming, as the API document states the length.
        let label = body.label.trim().to_owned();
        if label.is_empty() || body.label.chars().count() > 64 {
            return Err(HubError::Malformed(
                "`label` must be 1 to 64 characters".into(),
            ));
        }
        let code = uuid::Uuid::new_v4();
        let expires_at = now_ms() + TimeDelta::hours(INVITATION_HOURS);
        let pending = PendingAppointment {
            resident: session.resident,
            label,
            scope: body.scope,
        };
        let state = serde_json::to_value(&pending)
            .map_err(|e| HubError::internal(format!("invitation: {e}")))?;
        self.store()
            .put_ceremony(
                code,
                INVITATION,
                &Ceremony {
                    resident: Some(session.resident),
                    state,
                },
                expires_at,
            )
            .await?;
        Ok(ProxyInvitation { code, expires_at })
    }

    /// The invited person, signed in as themselves, accepts: the appointment starts.
    pub async fn accept_proxy_invitation(
        &self,
        proxy: &ResidentSession,
        code: uuid::Uuid,
    ) -> Result<ProxyAppointment, HubError> {
        proxy.require(ProxyPermission::ManageAccount, None)?;
        let ceremony = self
            .store()
            .take_ceremony(code, INVITATION, Utc::now())
            .await?
            .ok_or_else(|| HubError::NotFound("proxy invitation (used or expired)".into()))?;
        let pending: PendingAppointment = serde_json::from_value(ceremony.state)
            .map_err(|e| HubError::internal(format!("invitation: {e}")))?;
        if pending.resident == proxy.resident {
            return Err(HubError::Forbidden(
                "a resident cannot be their own proxy".into(),
            ));
        }
        let appointment = ProxyAppointment {
            id: ProxyId::from_uuid(uuid::Uuid::new_v4()),
            resident: pending.resident,
            proxy: proxy.resident,
            label: pending.label,
            scope: pending.scope,
            appointed_at: now_ms(),
            ended_at: None,
            representation: None,
        };
        self.store().appoint_proxy(&appointment).await?;
        Ok(appointment)
    }

    /// The appointments a resident made, ended ones too.
    pub async fn proxies(
        &self,
        session: &ResidentSession,
    ) -> Result<Vec<ProxyAppointment>, HubError> {
        session.require(ProxyPermission::ManageAccount, None)?;
        Ok(self.store().proxies_of(session.resident).await?)
    }

    /// The residents someone may act for.
    pub async fn acting_for(&self, proxy: ResidentId) -> Result<Vec<ProxyAppointment>, HubError> {
        Ok(self.store().proxy_for(proxy).await?)
    }

    /// A session token in which `proxy` acts for the resident of `appointment`.
    pub async fn proxy_session_token(
        &self,
        proxy: &ResidentSession,
        appointment: ProxyId,
    ) -> Result<String, HubError> {
        proxy.require(ProxyPermission::ManageAccount, None)?;
        match self.store().proxy_appointment(appointment).await? {
            Some(a)
                if a.proxy == proxy.resident && self.appointment_holds(&a, Utc::now()).await? =>
            {
                self.keys().issue_proxy_token(&a, Utc::now())
            }
            _ => Err(HubError::NotFound(format!(
                "proxy appointment `{appointment}`"
            ))),
        }
    }

    /// Ends an appointment at once: the proxy's sessions stop working with it.
    pub async fn end_proxy(
        &self,
        session: &ResidentSession,
        id: ProxyId,
    ) -> Result<ProxyAppointment, HubError> {
        session.require(ProxyPermission::ManageAccount, None)?;
        // A statutory representative is the law's, not the resident's: an operator ends it.
        if let Some(a) = self.store().proxy_appointment(id).await?
            && a.resident == session.resident
            && a.representation.is_some()
        {
            return Err(HubError::Forbidden(
                "a statutory representative is ended by the city, not by the resident".into(),
            ));
        }
        Ok(self
            .store()
            .end_proxy(session.resident, id, now_ms())
            .await?)
    }

    /// What the proxy of one of the resident's appointments did under it (consent changes
    /// and requests recorded with the proxy as actor, while it lasted), newest first.
    pub async fn proxy_actions(
        &self,
        session: &ResidentSession,
        id: ProxyId,
    ) -> Result<Vec<ProxyAction>, HubError> {
        session.require(ProxyPermission::ManageAccount, None)?;
        let appointment = self
            .store()
            .proxy_appointment(id)
            .await?
            .filter(|a| a.resident == session.resident)
            .ok_or_else(|| HubError::NotFound(format!("proxy appointment `{id}`")))?;
        // The same person may be appointed again later: only acts inside this appointment count.
        let during = |at: DateTime<Utc>| {
            at >= appointment.appointed_at && appointment.ended_at.is_none_or(|end| at <= end)
        };
        let by_proxy =
            |actor: &Actor| matches!(actor, Actor::Proxy { proxy } if *proxy == appointment.proxy);
        let mut actions = Vec::new();
        for consent in self.store().consents_of(session.resident).await? {
            for event in self.store().consent_history(consent.id).await? {
                if by_proxy(&event.actor) && during(event.at) {
                    actions.push(ProxyAction::Consent {
                        at: event.at,
                        service: consent.purpose.service.clone(),
                        purpose: consent.purpose.purpose.clone(),
                        change: event.kind,
                    });
                }
            }
        }
        for request in self.store().requests_of(session.resident).await? {
            if by_proxy(&request.filed_by) && during(request.filed_at) {
                actions.push(ProxyAction::Request {
                    at: request.filed_at,
                    kind: request.kind,
                    service: request.service,
                });
            }
        }
        actions.sort_by_key(|a| std::cmp::Reverse(a.at()));
        Ok(actions)
    }
}
