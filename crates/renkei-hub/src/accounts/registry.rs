//! The operators' service registry: registering a service (its OpenID client, purposes and
//! controller contact), the approval checklist, approval once every flagged risk is
//! acknowledged, and suspension.

use std::collections::{BTreeMap, BTreeSet};

use renkei_domain::review::{self, RiskFlag};
use renkei_domain::{
    CategoryId, ControllerContact, LegalBasis, LocalizedText, OperatorAction, OperatorId,
    PurposeId, Service, ServiceClient, ServiceId, ServiceStatus, SigningAlg,
};
use renkei_store::PurposeDraft;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::malformed;
use crate::auth::new_client_secret;
use crate::consents::now_ms;
use crate::{Hub, HubError};

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
    /// Applies only while a declared emergency is in force (dual mode); its requests are
    /// denied `not-in-emergency` otherwise.
    #[serde(default)]
    pub emergency_only: bool,
    /// The precision of location data the purpose needs: `exact`, `100m`, `1km-mesh` or
    /// `municipality`; providers release nothing finer. Without it, location categories go
    /// to the purpose at `municipality`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub location_precision: Option<renkei_domain::LocationPrecision>,
    /// How long the service may keep location data received under the purpose, in days
    /// (with `location_precision`; its `retention_days` if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location_retention_days: Option<u32>,
}

/// A registered service and, once, its client secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RegisteredService {
    pub id: String,
    pub status: String,
    /// Shown once; the hub keeps only its hash.
    pub client_secret: String,
}

impl Hub {
    /// Registers a service as pending review; returns its client secret, once.
    pub async fn register_service(
        &self,
        operator: &OperatorId,
        registration: ServiceRegistration,
    ) -> Result<RegisteredService, HubError> {
        let id = ServiceId::new(registration.id).map_err(malformed)?;
        // The data subject is the recipient of their own disclosures: no service is it.
        if id.is_data_subject() {
            return Err(HubError::Malformed(format!(
                "service id `{id}` is reserved for the data subject's own disclosures"
            )));
        }
        if self.store().service(&id).await?.is_some() {
            return Err(HubError::Malformed(format!(
                "service `{id}` is already registered"
            )));
        }
        let allow_local = self.config().allow_local_network;
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
            drafts.push(self.purpose_draft(&id, p).await?);
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
        self.store().put_service(&service, &hash).await?;
        let now = now_ms();
        for draft in &drafts {
            self.store().publish_purpose(draft, now).await?;
        }
        self.store()
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

    /// A declared purpose as storage publishes it, its categories checked against the
    /// vocabulary.
    async fn purpose_draft(
        &self,
        service: &ServiceId,
        p: PurposeDeclaration,
    ) -> Result<PurposeDraft, HubError> {
        let categories = p
            .categories
            .into_iter()
            .map(CategoryId::new)
            .collect::<Result<BTreeSet<_>, _>>()
            .map_err(malformed)?;
        self.check_categories(&categories.iter().map(|c| c.to_string()).collect::<Vec<_>>())
            .await?;
        Ok(PurposeDraft {
            service: service.clone(),
            id: PurposeId::new(p.id).map_err(malformed)?,
            title: LocalizedText::new(p.title_ja, p.title_en),
            description: LocalizedText::new(p.description_ja, p.description_en),
            categories,
            retention_days: p.retention_days,
            legal_basis: p.legal_basis,
            emergency_only: p.emergency_only,
            location: p
                .location_precision
                .map(|precision| renkei_domain::LocationUse {
                    precision,
                    retention_days: p.location_retention_days.unwrap_or(p.retention_days),
                }),
        })
    }

    /// Publishes a purpose of a registered service: version 1 of a new purpose, the next
    /// version when anything the resident is asked changed, or the current one unchanged
    /// (logged only when a version was published).
    pub async fn publish_purpose(
        &self,
        operator: &OperatorId,
        service: &ServiceId,
        declaration: PurposeDeclaration,
    ) -> Result<renkei_domain::Purpose, HubError> {
        if self.store().service(service).await?.is_none() {
            return Err(HubError::NotFound(format!("service `{service}`")));
        }
        let draft = self.purpose_draft(service, declaration).await?;
        let before = self.store().current_purpose(service, &draft.id).await?;
        let published = self.store().publish_purpose(&draft, now_ms()).await?;
        if before.map(|p| p.version) != Some(published.version) {
            self.audit(
                operator,
                OperatorAction::PublishPurpose {
                    service: service.clone(),
                    purpose: published.id.clone(),
                    version: published.version,
                },
            )
            .await?;
        }
        Ok(published)
    }

    /// The approval checklist of a service: the risks an operator must confirm (a shared
    /// sector first, then its purposes').
    pub async fn review_service(&self, id: &ServiceId) -> Result<Vec<RiskFlag>, HubError> {
        let service = self
            .store()
            .service(id)
            .await?
            .ok_or_else(|| HubError::UnknownService(id.to_string()))?;
        let purposes = self.store().purposes(id).await?;
        let vocabulary = self.store().categories().await?;
        let services = self.store().services().await?;
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
            .store()
            .service(id)
            .await?
            .ok_or_else(|| HubError::UnknownService(id.to_string()))?;
        Ok((service, self.store().service_client(id).await?))
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
        self.store()
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
        self.store()
            .set_service_status(id, ServiceStatus::Suspended)
            .await?;
        self.owe_location_deletions(id).await?;
        self.audit(
            operator,
            OperatorAction::SuspendService {
                service: id.clone(),
            },
        )
        .await
    }
}
