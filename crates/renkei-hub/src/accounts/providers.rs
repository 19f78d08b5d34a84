//! The operators' provider registry and the category vocabulary: adding a data category,
//! registering a provider (its connection, the categories it serves, the public keys it
//! signs its answers with, whom to contact), and approving or suspending it. Each act is an
//! operator entry of the log; only an approved provider is sent grants.

use std::collections::BTreeSet;

use renkei_domain::{
    CategoryId, ControllerContact, DataCategory, LocalizedText, OperatorAction, OperatorId,
    Provider, ProviderConnection, ProviderId, ProviderKeys, ProviderStatus,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::malformed;
use crate::{Hub, HubError};

/// A data category as an operator adds it to the vocabulary.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryRegistration {
    /// `resident.address`, `health.checkup`: 1 to 64 of a-z, 0-9, `.`, `_`, `-`.
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub id: String,
    #[schema(min_length = 1, max_length = 200)]
    pub name_ja: String,
    #[schema(min_length = 1, max_length = 200)]
    pub name_en: String,
    /// 要配慮個人情報 (APPI art. 2(3)): medical history, disability and the like. Services
    /// asking for it are flagged at review, and residents are told.
    pub special_care: bool,
    /// The category holds a location (a point or a trace): released only at the precision
    /// each purpose declares, coarsened by the provider.
    #[serde(default)]
    pub location: bool,
}

/// A provider as an operator registers it (pending until approved).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderRegistration {
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub id: String,
    #[schema(min_length = 1, max_length = 200)]
    pub name_ja: String,
    #[schema(min_length = 1, max_length = 200)]
    pub name_en: String,
    /// The base URL the hub sends grants to (`<endpoint>/renkei/v1/fetch`): https on a
    /// public address (http and local addresses only on a hub configured for the demo or
    /// tests). Left out with `outbound`.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The provider accepts no connection (三層分離) and connects to the hub itself; it has
    /// no endpoint.
    #[serde(default)]
    pub outbound: bool,
    /// The categories it serves, each in the vocabulary.
    pub categories: Vec<String>,
    /// The public keys it signs its answers with: a JWK Set of Ed25519 keys (`kty` OKP,
    /// `crv` Ed25519, `x`, a distinct `kid` each), at least one. `renkei provider keygen`
    /// writes a key and prints its public JWK.
    #[schema(value_type = Object)]
    pub signing_keys: serde_json::Value,
    /// Whom the city contacts about the provider.
    #[schema(value_type = super::ControllerContactSchema)]
    pub contact: ControllerContact,
}

/// A registered provider, as an operator reviews it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProviderRegistrationView {
    pub id: String,
    pub name_ja: String,
    pub name_en: String,
    /// `pending`, `approved` or `suspended`.
    pub status: String,
    /// `inbound` or `outbound`.
    pub connection: String,
    pub endpoint: Option<String>,
    pub categories: Vec<String>,
    /// Its public keys, as a JWK Set.
    #[schema(value_type = Object)]
    pub signing_keys: serde_json::Value,
    #[schema(value_type = Option<super::ControllerContactSchema>)]
    pub contact: Option<ControllerContact>,
}

impl From<Provider> for ProviderRegistrationView {
    fn from(p: Provider) -> Self {
        Self {
            id: p.id.to_string(),
            endpoint: p.endpoint().map(str::to_owned),
            connection: p.connection.mode().to_owned(),
            name_ja: p.name.ja,
            name_en: p.name.en,
            status: p.status.as_str().to_owned(),
            categories: p.categories.iter().map(ToString::to_string).collect(),
            signing_keys: p.signing_keys.to_json(),
            contact: p.contact,
        }
    }
}

/// Names a person sees: given, and at most 200 characters.
fn name(field: &str, value: String) -> Result<String, HubError> {
    let value = value.trim().to_owned();
    if value.is_empty() || value.chars().count() > 200 {
        return Err(HubError::InvalidField {
            field: field.to_owned(),
            detail: format!("`{field}` must be 1 to 200 characters"),
        });
    }
    Ok(value)
}

impl Hub {
    /// Adds a category to the vocabulary; an id already there is refused (the vocabulary's
    /// meaning never changes under the consents given against it).
    pub async fn register_category(
        &self,
        operator: &OperatorId,
        registration: CategoryRegistration,
    ) -> Result<DataCategory, HubError> {
        let id = CategoryId::new(registration.id).map_err(malformed)?;
        let category = DataCategory {
            name: LocalizedText::new(
                name("name_ja", registration.name_ja)?,
                name("name_en", registration.name_en)?,
            ),
            id,
            special_care: registration.special_care,
            location: registration.location,
        };
        if self
            .store()
            .categories()
            .await?
            .iter()
            .any(|c| c.id == category.id)
        {
            return Err(HubError::Malformed(format!(
                "category `{}` is already in the vocabulary",
                category.id
            )));
        }
        self.store().put_category(&category).await?;
        self.audit(
            operator,
            OperatorAction::PutCategory {
                category: category.id.clone(),
                special_care: category.special_care,
            },
        )
        .await?;
        Ok(category)
    }

    /// Registers a provider as pending review; it is sent no grant until approved.
    pub async fn register_provider(
        &self,
        operator: &OperatorId,
        registration: ProviderRegistration,
    ) -> Result<Provider, HubError> {
        let id = ProviderId::new(registration.id).map_err(malformed)?;
        if self.store().provider(&id).await?.is_some() {
            return Err(HubError::Malformed(format!(
                "provider `{id}` is already registered"
            )));
        }
        let connection = match (registration.endpoint, registration.outbound) {
            (Some(endpoint), false) => {
                crate::egress::check_registered_url(
                    "endpoint",
                    &endpoint,
                    self.config().allow_local_network,
                )
                .await?;
                ProviderConnection::Inbound { endpoint }
            }
            (None, true) => ProviderConnection::Outbound,
            (Some(_), true) => {
                return Err(HubError::InvalidField {
                    field: "endpoint".into(),
                    detail: "an `outbound` provider has no `endpoint`".into(),
                });
            }
            (None, false) => {
                return Err(HubError::InvalidField {
                    field: "endpoint".into(),
                    detail:
                        "give the provider's `endpoint`, or `outbound` if it accepts no connection"
                            .into(),
                });
            }
        };
        if registration.categories.is_empty() {
            return Err(HubError::InvalidField {
                field: "categories".into(),
                detail: "a provider serves at least one category".into(),
            });
        }
        self.check_categories(&registration.categories).await?;
        let categories = registration
            .categories
            .into_iter()
            .map(CategoryId::new)
            .collect::<Result<BTreeSet<_>, _>>()
            .map_err(malformed)?;
        let signing_keys = ProviderKeys::parse(&registration.signing_keys).map_err(|e| {
            HubError::InvalidField {
                field: "signing_keys".into(),
                detail: e.to_string(),
            }
        })?;
        if signing_keys.is_empty() {
            return Err(HubError::InvalidField {
                field: "signing_keys".into(),
                detail: "register at least one key: services verify every answer with it".into(),
            });
        }
        let contact = registration
            .contact
            .checked()
            .map_err(|e| HubError::InvalidField {
                field: format!("contact.{}", e.field()),
                detail: e.to_string(),
            })?;
        let provider = Provider {
            id: id.clone(),
            name: LocalizedText::new(
                name("name_ja", registration.name_ja)?,
                name("name_en", registration.name_en)?,
            ),
            connection,
            categories,
            max_answer_bytes: None,
            signing_keys,
            contact: Some(contact),
            status: ProviderStatus::Pending,
        };
        self.store().put_provider(&provider).await?;
        self.audit(
            operator,
            OperatorAction::RegisterProvider {
                provider: id,
                categories: provider.categories.clone(),
                kids: provider
                    .signing_keys
                    .keys()
                    .iter()
                    .map(|k| k.kid().to_owned())
                    .collect(),
                connection: provider.connection.mode().to_owned(),
            },
        )
        .await?;
        Ok(provider)
    }

    /// Every registered provider, whatever its status (what operators review).
    pub async fn provider_registrations(&self) -> Result<Vec<Provider>, HubError> {
        Ok(self.store().providers().await?)
    }

    /// Approves a provider: it is sent grants from the next decision on.
    pub async fn approve_provider(
        &self,
        operator: &OperatorId,
        id: &ProviderId,
    ) -> Result<(), HubError> {
        self.store()
            .set_provider_status(id, ProviderStatus::Approved)
            .await?;
        self.audit(
            operator,
            OperatorAction::ApproveProvider {
                provider: id.clone(),
            },
        )
        .await
    }

    /// Suspends a provider: no decision from now on sends it a grant, because every one
    /// reads the provider's status in its own transaction.
    pub async fn suspend_provider(
        &self,
        operator: &OperatorId,
        id: &ProviderId,
    ) -> Result<(), HubError> {
        self.store()
            .set_provider_status(id, ProviderStatus::Suspended)
            .await?;
        self.audit(
            operator,
            OperatorAction::SuspendProvider {
                provider: id.clone(),
            },
        )
        .await
    }
}
