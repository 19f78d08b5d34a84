//! The people around a resident's data: proxies (代理人) a resident appoints, operators who
//! register, approve and suspend services, and the disclosure, correction, deletion and
//! suspension requests (開示・訂正・削除・利用停止) residents file.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, Utc};
use renkei_domain::review::{self, RiskFlag};
use renkei_domain::{
    Actor, CategoryId, ConsentEventKind, ControllerContact, LegalBasis, LocalizedText, Operator,
    OperatorAction, OperatorActor, OperatorId, OperatorLogEntry, ProxyAppointment, ProxyId,
    ProxyScope, PurposeId, ResidentId, ResidentRequest, ResidentRequestId, ResidentRequestKind,
    ResidentRequestStatus, Service, ServiceClient, ServiceId, ServiceStatus, SigningAlg,
};
use renkei_store::{Ceremony, PurposeDraft, Store};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{ProxyPermission, ResidentSession, new_client_secret};
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

/// A service as an operator registers it, with its OpenID client and purposes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ServiceRegistration {
    pub id: String,
    pub name_ja: String,
    pub name_en: String,
    /// The sector the operator assigns: services of one sector know a resident by the same
    /// pairwise subject, so they can join their records. Left out, the service has a sector
    /// of its own (its id). A sector another service has is flagged in the review, naming
    /// those services, and approval waits until the operator confirms it.
    #[serde(default)]
    pub sector: Option<String>,
    /// X25519 public key, base64url without padding (32 bytes): providers encrypt to it.
    pub hpke_public_key: String,
    /// Where consent events are POSTed: https on a public address (http and local addresses
    /// only on a hub configured for the demo or tests).
    pub webhook_url: Option<String>,
    /// Where residents return after sign-in, under the same rules as `webhook_url`.
    pub redirect_uris: Vec<String>,
    pub purposes: Vec<PurposeDeclaration>,
    /// Privacy-impact answers, question id → answer.
    #[serde(default)]
    pub privacy_impact: BTreeMap<String, String>,
    /// How the service's ID tokens are signed: `RS256` (the default, what OpenID Connect
    /// relying-party libraries accept out of the box) or `EdDSA`.
    #[serde(default)]
    #[schema(value_type = String, example = "RS256")]
    pub id_token_signed_response_alg: SigningAlg,
    /// Whom residents contact about their data at the service: shown to the operator at
    /// review and carried into every consent receipt (Kantara `piiControllers[]`).
    #[schema(value_type = ControllerContactSchema)]
    pub controller: ControllerContact,
}

/// How to reach the service about residents' data (the JSON of [`ControllerContact`]).
#[derive(ToSchema)]
#[schema(as = ControllerContact)]
#[expect(dead_code, reason = "describes the JSON in the API document only")]
pub(crate) struct ControllerContactSchema {
    /// A person or office to contact, e.g. "個人情報保護窓口".
    #[schema(min_length = 1, max_length = 200)]
    contact: String,
    address: PostalAddressSchema,
    #[schema(min_length = 3, max_length = 200, example = "privacy@example.jp")]
    email: String,
    /// Digits, with `+`, `-`, spaces or parentheses.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[0-9+() -]*[0-9][0-9+() -]*$",
        example = "+81-3-0000-0000"
    )]
    phone: String,
}

/// A postal address (the JSON of [`renkei_domain::PostalAddress`]).
#[derive(ToSchema)]
#[schema(as = PostalAddress)]
#[expect(dead_code, reason = "describes the JSON in the API document only")]
pub(crate) struct PostalAddressSchema {
    /// ISO 3166-1 alpha-2.
    #[schema(pattern = "^[A-Z]{2}$", example = "JP")]
    country: String,
    /// 郵便番号.
    #[schema(min_length = 1, max_length = 200, example = "999-0001")]
    postal_code: String,
    /// 都道府県.
    #[schema(min_length = 1, max_length = 200)]
    region: String,
    /// 市区町村.
    #[schema(min_length = 1, max_length = 200)]
    locality: String,
    /// 町名・番地・建物名.
    #[schema(min_length = 1, max_length = 200)]
    street_address: String,
}

/// One purpose as a service declares it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PurposeDeclaration {
    pub id: String,
    pub title_ja: String,
    pub title_en: String,
    pub description_ja: String,
    pub description_en: String,
    pub categories: Vec<String>,
    pub retention_days: u32,
    #[schema(value_type = String)]
    pub legal_basis: LegalBasis,
}

/// A registered service and, once, its client secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RegisteredService {
    pub id: String,
    pub status: String,
    /// Shown once; the hub keeps only its hash.
    pub client_secret: String,
}

/// A resident's request as filed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResidentRequestBody {
    #[schema(value_type = RequestKind)]
    pub kind: String,
    /// The service it concerns; none for the hub itself.
    #[schema(value_type = Option<crate::schemas::Slug>)]
    pub service: Option<String>,
    #[schema(max_length = 2000)]
    pub details: String,
}

/// What a resident asks (開示, 訂正, 削除, 利用停止).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[expect(dead_code, reason = "describes the JSON in the API document only")]
pub(crate) enum RequestKind {
    Disclosure,
    Correction,
    Deletion,
    Suspension,
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

fn malformed(e: impl std::fmt::Display) -> HubError {
    HubError::Malformed(e.to_string())
}

impl Hub {
    // --- proxies ---

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
        self.store
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
            .store
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
        };
        self.store.appoint_proxy(&appointment).await?;
        Ok(appointment)
    }

    /// The appointments a resident made, ended ones too.
    pub async fn proxies(
        &self,
        session: &ResidentSession,
    ) -> Result<Vec<ProxyAppointment>, HubError> {
        session.require(ProxyPermission::ManageAccount, None)?;
        Ok(self.store.proxies_of(session.resident).await?)
    }

    /// The residents someone may act for.
    pub async fn acting_for(&self, proxy: ResidentId) -> Result<Vec<ProxyAppointment>, HubError> {
        Ok(self.store.proxy_for(proxy).await?)
    }

    /// A session token in which `proxy` acts for the resident of `appointment`.
    pub async fn proxy_session_token(
        &self,
        proxy: &ResidentSession,
        appointment: ProxyId,
    ) -> Result<String, HubError> {
        proxy.require(ProxyPermission::ManageAccount, None)?;
        match self.store.proxy_appointment(appointment).await? {
            Some(a) if a.is_active() && a.proxy == proxy.resident => {
                self.keys.issue_proxy_token(&a, Utc::now())
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
        Ok(self.store.end_proxy(session.resident, id, now_ms()).await?)
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
            .store
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
        for consent in self.store.consents_of(session.resident).await? {
            for event in self.store.consent_history(consent.id).await? {
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
        for request in self.store.requests_of(session.resident).await? {
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

    // --- resident requests ---

    pub async fn file_request(
        &self,
        session: &ResidentSession,
        body: ResidentRequestBody,
    ) -> Result<ResidentRequest, HubError> {
        let kind = ResidentRequestKind::parse(&body.kind).ok_or_else(|| {
            HubError::Malformed(format!(
                "`kind` must be disclosure, correction, deletion or suspension, not `{}`",
                body.kind
            ))
        })?;
        let service = body
            .service
            .map(ServiceId::new)
            .transpose()
            .map_err(malformed)?;
        // A request about the hub itself concerns every service: beyond a narrower scope.
        session.require_about(ProxyPermission::FileRequests, service.as_ref())?;
        if let Some(s) = &service
            && self.store.service(s).await?.is_none()
        {
            return Err(HubError::UnknownService(s.to_string()));
        }
        let details = body.details.trim().to_owned();
        if body.details.chars().count() > 2000 {
            return Err(HubError::Malformed(
                "`details` must be at most 2000 characters".into(),
            ));
        }
        let now = now_ms();
        let request = ResidentRequest {
            id: ResidentRequestId::from_uuid(uuid::Uuid::new_v4()),
            resident: session.resident,
            kind,
            service,
            details,
            status: ResidentRequestStatus::Received,
            filed_by: session.actor(),
            filed_at: now,
            updated_at: now,
            response: None,
        };
        self.store.file_request(&request).await?;
        Ok(request)
    }

    /// The resident's requests; a proxy's, only those about services their scope covers
    /// (about the hub itself only with a scope over every service).
    pub async fn requests_of(
        &self,
        session: &ResidentSession,
    ) -> Result<Vec<ResidentRequest>, HubError> {
        session.require(ProxyPermission::FileRequests, None)?;
        let mut requests = self.store.requests_of(session.resident).await?;
        requests.retain(|r| session.covers(r.service.as_ref()));
        Ok(requests)
    }

    /// The operators' queue: every resident request, or those of one status, oldest first.
    pub async fn resident_requests(
        &self,
        _operator: &OperatorId,
        status: Option<ResidentRequestStatus>,
    ) -> Result<Vec<ResidentRequest>, HubError> {
        Ok(self.store.requests(status).await?)
    }

    /// An operator answers a request.
    pub async fn answer_request(
        &self,
        operator: &OperatorId,
        id: ResidentRequestId,
        status: ResidentRequestStatus,
        response: Option<&str>,
    ) -> Result<ResidentRequest, HubError> {
        let answered = self
            .store
            .update_request(id, status, response, now_ms())
            .await?;
        self.audit(
            operator,
            OperatorAction::AnswerRequest {
                request: id,
                status: status.as_str().to_owned(),
            },
        )
        .await?;
        Ok(answered)
    }

    /// Appends an operator's act to the log (DESIGN: operators are audited too), right after
    /// it took effect.
    pub(crate) async fn audit(
        &self,
        operator: &OperatorId,
        action: OperatorAction,
    ) -> Result<(), HubError> {
        let actor = OperatorActor::Operator {
            id: operator.clone(),
        };
        self.store
            .record_operator_action(&actor, &action, now_ms())
            .await?;
        Ok(())
    }

    /// Operators' acts, newest first (before log position `before`, if given).
    pub async fn operator_log(
        &self,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<OperatorLogEntry>, HubError> {
        Ok(self.store.operator_log(before, limit.min(500)).await?)
    }

    // --- operators and services ---

    /// The operator account of an enrolled identity, if it has one.
    pub async fn operator_of(&self, identity: ResidentId) -> Result<Option<Operator>, HubError> {
        Ok(self.store.operator_by_identity(identity).await?)
    }

    /// An operator token for a signed-in identity that is an operator.
    pub async fn operator_token(&self, identity: &ResidentSession) -> Result<String, HubError> {
        identity.require(ProxyPermission::ManageAccount, None)?;
        let operator = self
            .operator_of(identity.resident)
            .await?
            .ok_or_else(|| HubError::Forbidden("this identity is not an operator".into()))?;
        self.keys.issue_operator_token(&operator.id, Utc::now())
    }

    /// Registers a service as pending review; returns its client secret, once.
    pub async fn register_service(
        &self,
        operator: &OperatorId,
        registration: ServiceRegistration,
    ) -> Result<RegisteredService, HubError> {
        let id = ServiceId::new(registration.id).map_err(malformed)?;
        if self.store.service(&id).await?.is_some() {
            return Err(HubError::Malformed(format!(
                "service `{id}` is already registered"
            )));
        }
        let allow_local = self.config.allow_local_network;
        if let Some(url) = &registration.webhook_url {
            crate::egress::check_registered_url("webhook_url", url, allow_local).await?;
        }
        for (i, uri) in registration.redirect_uris.iter().enumerate() {
            crate::egress::check_registered_url(&format!("redirect_uris[{i}]"), uri, allow_local)
                .await?;
        }
        if renkei_protocol::envelope::check_recipient_key(&registration.hpke_public_key).is_err() {
            return Err(HubError::InvalidField {
                field: "hpke_public_key".into(),
                detail: "`hpke_public_key` must be an X25519 public key: 32 bytes in base64url without padding, not a low-order point".into(),
            });
        }
        let sector = match registration.sector {
            None => id.to_string(),
            Some(sector) => {
                ServiceId::new(sector.as_str()).map_err(|_| HubError::InvalidField {
                    field: "sector".into(),
                    detail: format!("`sector` must be 1 to 64 characters from a-z, 0-9, `.`, `_` and `-`, not `{sector}`"),
                })?;
                sector
            }
        };
        let controller = registration
            .controller
            .checked()
            .map_err(|e| HubError::InvalidField {
                field: format!("controller.{}", e.field()),
                detail: e.to_string(),
            })?;
        if registration.purposes.is_empty() {
            return Err(HubError::Malformed(
                "a service declares at least one purpose".into(),
            ));
        }
        let mut drafts = Vec::new();
        for p in registration.purposes {
            let categories = p
                .categories
                .into_iter()
                .map(CategoryId::new)
                .collect::<Result<BTreeSet<_>, _>>()
                .map_err(malformed)?;
            self.check_categories(&categories.iter().map(|c| c.to_string()).collect::<Vec<_>>())
                .await?;
            drafts.push(PurposeDraft {
                service: id.clone(),
                id: PurposeId::new(p.id).map_err(malformed)?,
                title: LocalizedText::new(p.title_ja, p.title_en),
                description: LocalizedText::new(p.description_ja, p.description_en),
                categories,
                retention_days: p.retention_days,
                legal_basis: p.legal_basis,
            });
        }
        let service = Service {
            id: id.clone(),
            name: LocalizedText::new(registration.name_ja, registration.name_en),
            sector,
            hpke_public_key: registration.hpke_public_key,
            webhook_url: registration.webhook_url,
            status: ServiceStatus::Pending,
        };
        let (secret, hash) = new_client_secret();
        self.store.put_service(&service, &hash).await?;
        let now = now_ms();
        for draft in &drafts {
            self.store.publish_purpose(draft, now).await?;
        }
        self.store
            .put_service_client(&ServiceClient {
                service: id.clone(),
                redirect_uris: registration.redirect_uris,
                privacy_impact: registration.privacy_impact,
                registered_at: now,
                id_token_signed_response_alg: registration.id_token_signed_response_alg,
                controller: Some(controller),
            })
            .await?;
        self.audit(
            operator,
            OperatorAction::RegisterService {
                service: id.clone(),
            },
        )
        .await?;
        Ok(RegisteredService {
            id: id.to_string(),
            status: ServiceStatus::Pending.as_str().to_owned(),
            client_secret: secret,
        })
    }

    /// The approval checklist of a service: the risks an operator must confirm (a shared
    /// sector first, then its purposes').
    pub async fn review_service(&self, id: &ServiceId) -> Result<Vec<RiskFlag>, HubError> {
        let service = self
            .store
            .service(id)
            .await?
            .ok_or_else(|| HubError::UnknownService(id.to_string()))?;
        let purposes = self.store.purposes(id).await?;
        let vocabulary = self.store.categories().await?;
        let services = self.store.services().await?;
        let mut flags: Vec<RiskFlag> = review::shared_sector(&service, &services)
            .into_iter()
            .collect();
        flags.extend(review::review(&purposes, &vocabulary));
        Ok(flags)
    }

    /// What an operator reviews besides the purposes: the service as registered (sector,
    /// key, webhook) and its OpenID client (redirect URIs), if it has one.
    pub async fn service_registration(
        &self,
        id: &ServiceId,
    ) -> Result<(Service, Option<ServiceClient>), HubError> {
        let service = self
            .store
            .service(id)
            .await?
            .ok_or_else(|| HubError::UnknownService(id.to_string()))?;
        Ok((service, self.store.service_client(id).await?))
    }

    /// Approves a service once every flagged risk is acknowledged (by its key).
    pub async fn approve_service(
        &self,
        operator: &OperatorId,
        id: &ServiceId,
        acknowledged: &BTreeSet<String>,
    ) -> Result<(), HubError> {
        let flags = self.review_service(id).await?;
        let open = review::unacknowledged(&flags, acknowledged);
        if !open.is_empty() {
            let keys: Vec<String> = open.iter().map(|f| f.key()).collect();
            return Err(HubError::Forbidden(format!(
                "confirm every flagged risk before approval: {}",
                keys.join(", ")
            )));
        }
        self.store
            .set_service_status(id, ServiceStatus::Approved)
            .await?;
        let acknowledged = flags.iter().map(|f| f.key()).collect();
        self.audit(
            operator,
            OperatorAction::ApproveService {
                service: id.clone(),
                acknowledged,
            },
        )
        .await
    }

    /// Suspends a service: its tokens, codes and data requests stop at once, because
    /// every one of them reads the service's status from storage.
    pub async fn suspend_service(
        &self,
        operator: &OperatorId,
        id: &ServiceId,
    ) -> Result<(), HubError> {
        self.store
            .set_service_status(id, ServiceStatus::Suspended)
            .await?;
        self.audit(
            operator,
            OperatorAction::SuspendService {
                service: id.clone(),
            },
        )
        .await
    }

    /// Adds an operator account for an enrolled identity (the `renkei operator add` command).
    pub async fn add_operator(
        &self,
        id: OperatorId,
        name: String,
        identity: ResidentId,
    ) -> Result<Operator, HubError> {
        if !self.store.resident_exists(identity).await? {
            return Err(HubError::NotFound(format!("identity `{identity}`")));
        }
        let operator = Operator {
            id,
            name,
            identity,
            added_at: now_ms(),
        };
        put_operator(self.store.as_ref(), &operator).await?;
        Ok(operator)
    }
}

/// Stores an operator account and logs it as an act of the `renkei` command: the one way an
/// operator is added, by the hub or by the command on storage directly.
pub async fn put_operator(store: &dyn Store, operator: &Operator) -> Result<(), HubError> {
    store.put_operator(operator).await?;
    let action = OperatorAction::AddOperator {
        operator: operator.id.clone(),
    };
    store
        .record_operator_action(&OperatorActor::CommandLine, &action, operator.added_at)
        .await?;
    Ok(())
}
