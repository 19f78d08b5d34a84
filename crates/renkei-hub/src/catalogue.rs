//! The catalogue anyone may read: the data-category vocabulary, the registered services
//! with the current version of each of their purposes, and the approved providers with the
//! keys they sign their answers with, as `GET /v1/categories`, `GET /v1/services` and
//! `GET /v1/providers` answer them and the portal shows them.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::{Hub, HubError};

// The views' comments are plain ones: a doc comment would become the schema's description
// in the API document, which says as much as clients have always read.

// One category of the vocabulary.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CategoryView {
    pub id: String,
    pub name_ja: String,
    pub name_en: String,
    /// 要配慮個人情報 (special-care personal information).
    pub special_care: bool,
    /// It holds a location, released at each purpose's declared precision.
    pub location: bool,
}

// A registered service and its purposes.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ServiceView {
    pub id: String,
    pub name_ja: String,
    pub name_en: String,
    /// `pending`, `approved` or `suspended`.
    pub status: String,
    pub purposes: Vec<PurposeView>,
}

// The current version of one purpose of a service.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PurposeView {
    pub id: String,
    pub version: u32,
    pub title_ja: String,
    pub title_en: String,
    pub description_ja: String,
    pub description_en: String,
    pub categories: Vec<String>,
    pub retention_days: u32,
    pub legal_basis: String,
    /// Applies only while a declared emergency is in force (dual mode).
    pub emergency_only: bool,
    /// The precision of location data it receives (`exact`, `100m`, `1km-mesh`,
    /// `municipality`), if it declared one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location_precision: Option<String>,
    /// How long the service may keep that location data, in days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location_retention_days: Option<u32>,
}

impl From<renkei_domain::Purpose> for PurposeView {
    fn from(p: renkei_domain::Purpose) -> Self {
        Self {
            id: p.id.to_string(),
            version: p.version,
            title_ja: p.title.ja,
            title_en: p.title.en,
            description_ja: p.description.ja,
            description_en: p.description.en,
            categories: p.categories.iter().map(|c| c.to_string()).collect(),
            retention_days: p.retention_days,
            legal_basis: p.legal_basis.as_str().to_owned(),
            emergency_only: p.emergency_only,
            location_precision: p.location.map(|l| l.precision.as_str().to_owned()),
            location_retention_days: p.location.map(|l| l.retention_days),
        }
    }
}

/// An approved provider: what it serves and the keys its answers verify with.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProviderView {
    pub id: String,
    pub name_ja: String,
    pub name_en: String,
    pub categories: Vec<String>,
    /// The public keys the provider signs its answers with (a JWK Set of Ed25519 keys):
    /// a service accepts an answer only if it verifies with one of them.
    #[schema(value_type = Object)]
    pub signing_keys: serde_json::Value,
}

impl Hub {
    /// The approved providers and their public signing keys.
    pub async fn providers(&self) -> Result<Vec<ProviderView>, HubError> {
        Ok(self
            .store()
            .providers()
            .await?
            .into_iter()
            .filter(renkei_domain::Provider::receives_grants)
            .map(|p| ProviderView {
                id: p.id.to_string(),
                name_ja: p.name.ja,
                name_en: p.name.en,
                categories: p.categories.iter().map(ToString::to_string).collect(),
                signing_keys: p.signing_keys.to_json(),
            })
            .collect())
    }

    /// The data-category vocabulary.
    pub async fn categories(&self) -> Result<Vec<CategoryView>, HubError> {
        let list = self.store().categories().await?;
        Ok(list
            .into_iter()
            .map(|c| CategoryView {
                id: c.id.to_string(),
                name_ja: c.name.ja,
                name_en: c.name.en,
                special_care: c.special_care,
                location: c.location,
            })
            .collect())
    }

    /// Registered services and the current version of each of their purposes.
    pub async fn services(&self) -> Result<Vec<ServiceView>, HubError> {
        let store = self.store();
        let mut out = Vec::new();
        for s in store.services().await? {
            let purposes = store
                .purposes(&s.id)
                .await?
                .into_iter()
                .map(PurposeView::from)
                .collect();
            out.push(ServiceView {
                id: s.id.to_string(),
                name_ja: s.name.ja,
                name_en: s.name.en,
                status: s.status.as_str().to_owned(),
                purposes,
            });
        }
        Ok(out)
    }
}

/// The data-category vocabulary.
#[utoipa::path(get, path = "/v1/categories", responses((status = 200, body = Vec<CategoryView>)))]
pub(crate) async fn categories(
    State(hub): State<Hub>,
) -> Result<Json<Vec<CategoryView>>, HubError> {
    Ok(Json(hub.categories().await?))
}

/// Registered services and the current version of each of their purposes.
#[utoipa::path(get, path = "/v1/services", responses((status = 200, body = Vec<ServiceView>)))]
pub(crate) async fn services(State(hub): State<Hub>) -> Result<Json<Vec<ServiceView>>, HubError> {
    Ok(Json(hub.services().await?))
}

/// The approved providers, the categories each serves and the public keys it signs its
/// answers with: services verify every answer against them.
#[utoipa::path(get, path = "/v1/providers", responses((status = 200, body = Vec<ProviderView>)))]
pub(crate) async fn providers(State(hub): State<Hub>) -> Result<Json<Vec<ProviderView>>, HubError> {
    Ok(Json(hub.providers().await?))
}
