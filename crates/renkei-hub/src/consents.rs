//! Flows 1 and 2: granting a consent per purpose (with its signed receipt) and revoking it.
//!
//! Reading and revoking go through the session ([`ResidentSession`]): a proxy reads the
//! consents of the services their scope covers, with a permission that allows it (managing
//! consents or viewing the history), and revokes only those, with the permission to manage
//! them; a consent outside the scope is "not found", as another resident's is.

use chrono::{DateTime, TimeDelta, Utc};
use renkei_domain::{
    Actor, Consent, ConsentChannel, ConsentId, FormReference, Purpose, PurposeId, ResidentId,
    Service, ServiceId, ServiceStatus, ServiceSubject,
};
use renkei_protocol::event::ConsentEventClaims;
use renkei_protocol::receipt::{ConsentReceipt, ReceiptInput, sign_receipt};
use renkei_store::OutboxMessage;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{ProxyPermission, ResidentSession};
use crate::{Hub, HubError};

/// Consents last a year unless the resident chooses otherwise.
const DEFAULT_CONSENT_DAYS: u32 = 365;
/// The longest a consent may be given for.
const MAX_CONSENT_DAYS: u32 = 3 * 365;

/// A resident's yes to one purpose of one service.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantConsentBody {
    #[schema(value_type = crate::schemas::Slug)]
    pub service: String,
    #[schema(value_type = crate::schemas::Slug)]
    pub purpose: String,
    /// How long the consent lasts (1 to 1095 days; default 365).
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(minimum = 1, maximum = 1095)]
    pub valid_days: Option<u32>,
}

/// A consent as the resident sees it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConsentView {
    pub id: String,
    pub service: String,
    pub purpose: String,
    pub purpose_version: u32,
    pub categories: Vec<String>,
    pub legal_basis: String,
    /// `active`, `revoked` or `expired`.
    pub state: String,
    pub granted_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// `portal`, `sign_in_screen`, `proxy`, `counter` or `demo`.
    pub given_via: String,
    /// Who gave it: `{"kind": "resident"}`, a proxy, or for a counter consent the staff
    /// member who took it (`{"kind": "provider_staff", "provider": …, "staff_id": …}`).
    #[schema(value_type = Object)]
    pub given_by: serde_json::Value,
    /// The paper form signed at a counter, as the provider files it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form_reference: Option<String>,
}

impl ConsentView {
    pub fn of(c: &Consent, now: DateTime<Utc>) -> Self {
        Self {
            id: c.id.to_string(),
            service: c.purpose.service.to_string(),
            purpose: c.purpose.purpose.to_string(),
            purpose_version: c.purpose.version,
            categories: c.categories.iter().map(|c| c.to_string()).collect(),
            legal_basis: c.legal_basis.as_str().to_owned(),
            state: c.state_at(now).as_str().to_owned(),
            granted_at: c.granted_at,
            expires_at: c.expires_at,
            revoked_at: c.revoked_at,
            given_via: c.given_via.as_str().to_owned(),
            given_by: serde_json::to_value(&c.given_by).unwrap_or_default(),
            form_reference: c.form_reference.as_ref().map(ToString::to_string),
        }
    }
}

/// A whole number given as any JSON number: JSON has one number type, and to a JSON Schema
/// validator (and so to the API document) `426.0` is the integer 426.
pub(crate) fn whole_number<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<u32>, D::Error> {
    use serde::de::Error;
    let Some(n) = Option::<f64>::deserialize(d)? else {
        return Ok(None);
    };
    if n.fract() != 0.0 || !(0.0..=f64::from(u32::MAX)).contains(&n) {
        return Err(D::Error::custom(format!(
            "`{n}` is not a whole number from 0 to {}",
            u32::MAX
        )));
    }
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a whole number from 0 to u32::MAX, checked above"
    )]
    Ok(Some(n as u32))
}

/// The answer to a grant: the consent, its signed receipt, and how the service will know
/// the resident.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GrantedConsent {
    pub consent: ConsentView,
    /// A compact JWS (Kantara Consent Receipt v1.1 claims), verifiable with `/.well-known/jwks.json`.
    pub receipt: String,
    /// The resident's pairwise subject at this service.
    pub subject: String,
}

/// A consent and what happened to it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConsentDetail {
    pub consent: ConsentView,
    pub history: Vec<ConsentEventView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConsentEventView {
    /// `granted`, `revoked` or `superseded`.
    pub kind: String,
    pub at: DateTime<Utc>,
    #[schema(value_type = Object)]
    pub actor: serde_json::Value,
}

/// Both kinds of consent change a service hears about.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Change {
    Granted,
    Revoked,
}

/// What the webhook outbox keeps for one message (signed when sent).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OutboxEvent {
    pub change: Change,
    pub claims: ConsentEventClaims,
}

/// Millisecond precision, as stored, so what a caller is answered equals what is kept.
/// Now, to the millisecond storage keeps, so what is returned equals what is read back.
pub(crate) fn now_ms() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

/// How a new consent is given: everything but the purpose it is given to.
pub(crate) struct ConsentTerms {
    pub resident: ResidentId,
    /// From [`consent_days`].
    pub days: u32,
    pub via: ConsentChannel,
    pub by: Actor,
    pub form_reference: Option<FormReference>,
}

impl ConsentTerms {
    /// A new consent to the purpose's version, from now.
    pub fn consent(self, purpose: &Purpose) -> Consent {
        let now = now_ms();
        Consent {
            id: ConsentId::from_uuid(uuid::Uuid::new_v4()),
            resident: self.resident,
            purpose: purpose.reference(),
            categories: purpose.categories.clone(),
            legal_basis: purpose.legal_basis,
            granted_at: now,
            expires_at: Some(now + TimeDelta::days(i64::from(self.days))),
            given_via: self.via,
            given_by: self.by,
            form_reference: self.form_reference,
            revoked_at: None,
        }
    }
}

/// How many days a consent asked for with `valid_days` lasts: 1 to [`MAX_CONSENT_DAYS`],
/// [`DEFAULT_CONSENT_DAYS`] if absent.
pub(crate) fn consent_days(valid_days: Option<u32>) -> Result<u32, HubError> {
    let days = valid_days.unwrap_or(DEFAULT_CONSENT_DAYS);
    if !(1..=MAX_CONSENT_DAYS).contains(&days) {
        return Err(HubError::Malformed(format!(
            "`valid_days` must be 1 to {MAX_CONSENT_DAYS}, not `{days}`"
        )));
    }
    Ok(days)
}

impl Hub {
    pub async fn grant_consent(
        &self,
        resident: ResidentId,
        body: GrantConsentBody,
        via: ConsentChannel,
        by: Actor,
    ) -> Result<GrantedConsent, HubError> {
        let service_id =
            ServiceId::new(body.service).map_err(|e| HubError::Malformed(e.to_string()))?;
        let purpose_id =
            PurposeId::new(body.purpose).map_err(|e| HubError::Malformed(e.to_string()))?;
        let days = consent_days(body.valid_days)?;
        let service = self.approved_service(&service_id).await?;
        let purpose = self.current_purpose(&service_id, &purpose_id).await?;
        self.check_capacity(resident, &purpose, &by).await?;
        let consent = ConsentTerms {
            resident,
            days,
            via,
            by,
            form_reference: None,
        }
        .consent(&purpose);
        let subject = self.record_consent(&service, &consent).await?;
        let receipt = self
            .sign_receipt(&consent, &service, consent.granted_at)
            .await?;
        Ok(GrantedConsent {
            consent: ConsentView::of(&consent, consent.granted_at),
            receipt,
            subject: subject.to_string(),
        })
    }

    /// The current version of a purpose of a service.
    pub(crate) async fn current_purpose(
        &self,
        service: &ServiceId,
        purpose: &PurposeId,
    ) -> Result<Purpose, HubError> {
        self.store()
            .current_purpose(service, purpose)
            .await?
            .ok_or_else(|| HubError::UnknownPurpose(service.to_string(), purpose.to_string()))
    }

    /// Stores a new consent (with its log entry and the service's webhook message, in one
    /// transaction) and answers the resident's subject at the service.
    pub(crate) async fn record_consent(
        &self,
        service: &Service,
        consent: &Consent,
    ) -> Result<ServiceSubject, HubError> {
        let subject = self.keys().subject(&service.sector, consent.resident);
        self.store()
            .link_subject(&service.sector, &subject, consent.resident)
            .await?;
        let notify = self.outbox_message(service, Change::Granted, consent, consent.granted_at);
        self.store().grant_consent(consent, notify.as_ref()).await?;
        self.outbox_written().notify_one();
        Ok(subject)
    }

    /// Revokes at once: when this returns, the revocation is durable and every data request
    /// decided from then on sees it. A proxy revokes only consents of the services entrusted
    /// to them, whatever a caller (a page's form, an API path) names.
    pub async fn revoke_consent(
        &self,
        session: &ResidentSession,
        id: ConsentId,
    ) -> Result<ConsentView, HubError> {
        self.revoke_consent_by(session, id, session.actor()).await
    }

    /// [`Hub::revoke_consent`], recorded as done `by` someone the session does not name:
    /// counter staff, with the resident before them.
    pub(crate) async fn revoke_consent_by(
        &self,
        session: &ResidentSession,
        id: ConsentId,
        by: Actor,
    ) -> Result<ConsentView, HubError> {
        let consent = self
            .consent_in_session(session, id, ProxyPermission::ManageConsents)
            .await?;
        let now = now_ms();
        let revoked = self.revoke_now(&consent, &by, now).await?;
        Ok(ConsentView::of(&revoked, now))
    }

    /// Revokes `consent` as `by`, durable when this returns, and tells its service: the one
    /// path every revocation takes (a resident's, and a suspension request's, `rights.rs`).
    pub(crate) async fn revoke_now(
        &self,
        consent: &Consent,
        by: &Actor,
        now: DateTime<Utc>,
    ) -> Result<Consent, HubError> {
        let service = self.store().service(&consent.purpose.service).await?;
        let notify = service
            .as_ref()
            .and_then(|s| self.outbox_message(s, Change::Revoked, consent, now));
        let revoked = self
            .store()
            .revoke_consent(consent.resident, consent.id, by, now, notify.as_ref())
            .await?;
        self.outbox_written().notify_one();
        Ok(revoked)
    }

    /// The session's consents, newest first: a proxy's, only those of services in scope.
    pub async fn consents(&self, session: &ResidentSession) -> Result<Vec<ConsentView>, HubError> {
        session.require(ProxyPermission::ViewConsents, None)?;
        let now = Utc::now();
        Ok(self
            .store()
            .consents_of(session.resident)
            .await?
            .iter()
            .filter(|c| session.covers(Some(&c.purpose.service)))
            .map(|c| ConsentView::of(c, now))
            .collect())
    }

    pub async fn consent_detail(
        &self,
        session: &ResidentSession,
        id: ConsentId,
    ) -> Result<ConsentDetail, HubError> {
        let consent = self
            .consent_in_session(session, id, ProxyPermission::ViewConsents)
            .await?;
        let history = self
            .store()
            .consent_history(id)
            .await?
            .into_iter()
            .map(|e| ConsentEventView {
                kind: e.kind.as_str().to_owned(),
                at: e.at,
                actor: serde_json::to_value(&e.actor).unwrap_or_default(),
            })
            .collect();
        Ok(ConsentDetail {
            consent: ConsentView::of(&consent, Utc::now()),
            history,
        })
    }

    /// The signed receipt of one of the resident's consents, issued anew (same content).
    pub async fn receipt(
        &self,
        session: &ResidentSession,
        id: ConsentId,
    ) -> Result<String, HubError> {
        let consent = self
            .consent_in_session(session, id, ProxyPermission::ViewConsents)
            .await?;
        let service = self
            .store()
            .service(&consent.purpose.service)
            .await?
            .ok_or_else(|| HubError::UnknownService(consent.purpose.service.to_string()))?;
        self.sign_receipt(&consent, &service, consent.granted_at)
            .await
    }

    /// One of the session's resident's consents, for an act that needs `permission` of a
    /// proxy. Without the permission at all, refused before anything is read; a consent of a
    /// service outside the proxy's scope is "not found": its existence was not entrusted.
    async fn consent_in_session(
        &self,
        session: &ResidentSession,
        id: ConsentId,
        permission: ProxyPermission,
    ) -> Result<Consent, HubError> {
        session.require(permission, None)?;
        let consent = self.own_consent(session.resident, id).await?;
        if !session.covers(Some(&consent.purpose.service)) {
            return Err(HubError::NotFound(format!("consent `{id}`")));
        }
        session.require(permission, Some(&consent.purpose.service))?;
        Ok(consent)
    }

    async fn own_consent(&self, resident: ResidentId, id: ConsentId) -> Result<Consent, HubError> {
        match self.store().consent(id).await? {
            // Another resident's consent is "not found": its existence is theirs alone.
            Some(c) if c.resident == resident => Ok(c),
            _ => Err(HubError::NotFound(format!("consent `{id}`"))),
        }
    }

    pub(crate) async fn approved_service(&self, id: &ServiceId) -> Result<Service, HubError> {
        let service = self
            .store()
            .service(id)
            .await?
            .ok_or_else(|| HubError::UnknownService(id.to_string()))?;
        if service.status != ServiceStatus::Approved {
            return Err(HubError::ServiceNotApproved(id.to_string()));
        }
        Ok(service)
    }

    pub(crate) async fn sign_receipt(
        &self,
        consent: &Consent,
        service: &Service,
        at: DateTime<Utc>,
    ) -> Result<String, HubError> {
        let purpose = self
            .store()
            .purpose_version(&consent.purpose)
            .await?
            .ok_or_else(|| {
                HubError::internal("a consent names a purpose version that is not stored")
            })?;
        let vocabulary = self.store().categories().await?;
        let controller = self
            .store()
            .service_client(&service.id)
            .await?
            .and_then(|c| c.controller);
        let receipt = ConsentReceipt::build(&ReceiptInput {
            issuer: &self.config().issuer,
            policy_url: &format!("{}/v1/services/{}", self.config().issuer, service.id),
            consent,
            service,
            purpose: &purpose,
            controller: controller.as_ref(),
            vocabulary: &vocabulary,
            issued_at: at,
        })
        .map_err(|e| HubError::internal(format!("receipt: {e}")))?;
        self.keys()
            .sign_with(move |key| sign_receipt(key, &receipt))
            .await?
            .map_err(|e| HubError::internal(format!("receipt signing: {e}")))
    }

    fn outbox_message(
        &self,
        service: &Service,
        change: Change,
        consent: &Consent,
        at: DateTime<Utc>,
    ) -> Option<OutboxMessage> {
        service.webhook_url.as_ref()?;
        let event = OutboxEvent {
            change,
            claims: ConsentEventClaims {
                consent: consent.id,
                subject: self.keys().subject(&service.sector, consent.resident),
                purpose: consent.purpose.purpose.clone(),
                purpose_version: consent.purpose.version,
                at: at.timestamp(),
            },
        };
        Some(OutboxMessage {
            id: uuid::Uuid::new_v4(),
            service: service.id.clone(),
            event: serde_json::to_value(event).ok()?,
        })
    }
}
