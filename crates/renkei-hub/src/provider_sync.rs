//! Providers authenticate to the hub and keep their own locators current.
//!
//! Authentication is RFC 7523 `private_key_jwt` at the token endpoint: the provider signs a
//! short assertion (`iss` = `sub` = its id, `aud` the token endpoint or the issuer, `exp` at
//! most five minutes ahead, a `jti` used once) with an Ed25519 key it registered, and gets a
//! bearer token for the provider routes. Chosen over mutual TLS (RFC 8705) because the
//! provider already holds that key (it signs its answers with it), the hub already keeps its
//! public half, and nothing in front of the hub has to pass client certificates through.
//!
//! With the token a provider syncs batches of locator changes and reads its own locators
//! back, both named by its pairwise subjects (`renkei_domain::ProviderSubject`). A resident
//! learns their subject at each provider from [`Hub::provider_codes`] (the portal shows it)
//! and gives it to the provider.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use renkei_domain::locator_sync::provider_sector;
use renkei_domain::{
    CategoryId, LocatorBatch, LocatorBatchId, LocatorRemoval, LocatorUpsert, ProviderId,
    ProviderSubject, ResidentId,
};
use renkei_store::LocatorCursor;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::bearer;
use crate::error::{OAuthError, OAuthErrorCode};
use crate::limits::PeerAddr;
use crate::problem::{ApiJson, ApiQuery, Problem};
use crate::{Hub, HubError};

/// `client_assertion_type` of RFC 7523 §2.2.
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// How long a provider's access token lasts.
pub const PROVIDER_TOKEN_SECONDS: i64 = 300;
/// The longest an assertion may be valid for, from now: a short life keeps the set of spent
/// `jti`s small and a leaked assertion nearly useless.
pub const MAX_ASSERTION_SECONDS: i64 = 300;
/// Clock skew allowed between the provider and the hub.
const LEEWAY_SECONDS: u64 = 5;
/// The most locators a page of `GET /v1/provider/locators` holds.
pub const MAX_PAGE: u32 = 10_000;

/// The claims of a client assertion the hub reads (RFC 7523 §3).
#[derive(Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    exp: i64,
    jti: String,
}

/// Why an assertion was refused, as the token endpoint says (`invalid_client`).
fn refused(why: &str) -> HubError {
    HubError::OAuth {
        error: OAuthErrorCode::InvalidClient,
        description: format!("client assertion refused: {why}"),
    }
}

/// The issuer an assertion claims, read before its signature is checked, only to find the
/// key that must have signed it.
fn claimed_issuer(assertion: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Issuer {
        iss: String,
    }
    let payload = assertion.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<Issuer>(&bytes).ok().map(|i| i.iss)
}

impl Hub {
    /// The provider a client assertion proves, if it holds: an approved provider's, signed
    /// with a key it registered (`kid`), for this hub, unexpired and valid for at most
    /// [`MAX_ASSERTION_SECONDS`], its `jti` never seen before (spent here, on any replica).
    /// Every attempt counts against the rate limits of `from` and of the provider it names.
    pub(crate) async fn authenticate_provider(
        &self,
        from: PeerAddr,
        assertion: &str,
        now: DateTime<Utc>,
    ) -> Result<ProviderId, HubError> {
        let checked = self.check_provider_assertion(from, assertion, now).await;
        // A refused assertion counts towards a security event (storage failures and rate
        // limits do not), under the provider it claims if that is a provider id.
        if matches!(checked, Err(HubError::OAuth { .. })) {
            let claimed = claimed_issuer(assertion)
                .and_then(|iss| ProviderId::new(iss).ok())
                .map_or("-".to_owned(), |id| id.to_string());
            self.authentication_failed(from.0, &claimed);
        }
        checked
    }

    async fn check_provider_assertion(
        &self,
        from: PeerAddr,
        assertion: &str,
        now: DateTime<Utc>,
    ) -> Result<ProviderId, HubError> {
        let header = jsonwebtoken::decode_header(assertion).map_err(|_| refused("malformed"))?;
        if header.alg != Algorithm::EdDSA {
            return Err(refused("only EdDSA assertions are taken"));
        }
        let kid = header.kid.ok_or_else(|| refused("no `kid`"))?;
        let id = claimed_issuer(assertion)
            .and_then(|iss| ProviderId::new(iss).ok())
            .ok_or_else(|| refused("no provider `iss`"))?;
        self.limit_oauth(from, id.as_str())?;
        let provider = self
            .store()
            .provider(&id)
            .await?
            .filter(renkei_domain::Provider::receives_grants)
            .ok_or_else(|| refused("not an approved provider"))?;
        let key = provider
            .signing_keys
            .keys()
            .iter()
            .find(|k| k.kid() == kid)
            .ok_or_else(|| refused("unknown key"))?;
        let decoding = DecodingKey::from_ed_components(&URL_SAFE_NO_PAD.encode(key.public_key()))
            .map_err(|_| refused("unusable key"))?;
        let issuer = &self.config().issuer;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[format!("{issuer}/oauth/token"), issuer.clone()]);
        validation.set_issuer(&[id.as_str()]);
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        validation.leeway = LEEWAY_SECONDS;
        let claims = jsonwebtoken::decode::<AssertionClaims>(assertion, &decoding, &validation)
            .map_err(|e| refused(&format!("{:?}", e.kind()).to_lowercase()))?
            .claims;
        if claims.sub != claims.iss {
            return Err(refused("`sub` must be the provider"));
        }
        if claims.exp > now.timestamp() + MAX_ASSERTION_SECONDS + LEEWAY_SECONDS as i64 {
            return Err(refused("valid for too long"));
        }
        if claims.jti.is_empty() || claims.jti.len() > 200 {
            return Err(refused("`jti` must be 1 to 200 characters"));
        }
        let expires = DateTime::from_timestamp(claims.exp, 0).unwrap_or(now);
        if !self
            .store()
            .spend_client_assertion(id.as_str(), &claims.jti, expires, now)
            .await?
        {
            return Err(refused("`jti` already used"));
        }
        Ok(id)
    }

    /// A resident's code at each approved provider (their pairwise subject there), recorded
    /// as issued so that the provider's syncs resolve it. The resident gives it to the
    /// provider; no one else learns it from the hub.
    pub async fn provider_codes(
        &self,
        resident: ResidentId,
    ) -> Result<Vec<ProviderCode>, HubError> {
        let mut codes = Vec::new();
        for provider in self.store().providers().await? {
            if !provider.receives_grants() {
                continue;
            }
            let code = self.provider_subject(&provider.id, resident).await?;
            codes.push(ProviderCode {
                provider: provider.id.to_string(),
                name_ja: provider.name.ja.clone(),
                name_en: provider.name.en.clone(),
                code: code.to_string(),
            });
        }
        Ok(codes)
    }

    /// The resident's subject at `provider`, recorded as issued.
    pub async fn provider_subject(
        &self,
        provider: &ProviderId,
        resident: ResidentId,
    ) -> Result<ProviderSubject, HubError> {
        let subject = self.keys().subject(&provider_sector(provider), resident);
        let subject = ProviderSubject::new(subject.as_str())
            .map_err(|e| HubError::internal(format!("provider subject: {e}")))?;
        self.store()
            .link_provider_subject(provider, &subject, resident)
            .await?;
        Ok(subject)
    }
}

/// The provider a request's bearer token was issued to (checked by the route's guard, see
/// `routes.rs`): still registered and approved.
#[derive(Debug, Clone)]
pub struct ProviderCaller(pub ProviderId);

impl ProviderCaller {
    pub(crate) async fn authenticate(hub: &Hub, headers: &HeaderMap) -> Result<Self, HubError> {
        let claims = hub
            .keys()
            .check(bearer(headers)?, crate::auth::PROVIDER_AUDIENCE)?;
        let id = ProviderId::new(claims.sub).map_err(|_| HubError::Unauthorized)?;
        match hub.store().provider(&id).await? {
            Some(p) if p.receives_grants() => Ok(Self(id)),
            _ => Err(HubError::Unauthorized),
        }
    }
}

impl FromRequestParts<Hub> for ProviderCaller {
    type Rejection = HubError;

    async fn from_request_parts(parts: &mut Parts, _: &Hub) -> Result<Self, HubError> {
        crate::auth::admitted(parts, "provider")
    }
}

/// A resident's code at one provider.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProviderCode {
    pub provider: String,
    pub name_ja: String,
    pub name_en: String,
    /// What the resident gives the provider (their pairwise subject there).
    pub code: String,
}

/// One locator as a provider sends or reads it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LocatorItem {
    /// The resident's code at this provider.
    pub subject: String,
    pub category: String,
    /// The provider's own key for the record; absent in a removal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// A batch of locator changes (at most 10,000 items).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LocatorSyncBody {
    /// Chosen by the provider, fresh for each batch and the same on a retry.
    pub batch_id: uuid::Uuid,
    #[serde(default)]
    pub upserts: Vec<LocatorItem>,
    #[serde(default)]
    pub removals: Vec<LocatorItem>,
}

/// What a batch did (the same answer for a retried batch).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LocatorSyncAnswer {
    pub batch_id: uuid::Uuid,
    /// The batch's entry in the log.
    pub log_position: u64,
    pub upserted: u64,
    pub removed: u64,
    pub unchanged: u64,
    pub not_applied: u64,
}

/// A page of the provider's own locators, in subject then category order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LocatorPage {
    pub locators: Vec<LocatorItem>,
    /// Pass as `after_subject` and `after_category` for the next page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<LocatorItem>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LocatorPageQuery {
    after_subject: Option<String>,
    after_category: Option<String>,
    /// At most 10,000; 1,000 if absent.
    limit: Option<u32>,
}

fn field(name: &str, detail: impl std::fmt::Display) -> HubError {
    HubError::InvalidField {
        field: name.to_owned(),
        detail: detail.to_string(),
    }
}

fn key(item: &LocatorItem) -> Result<(ProviderSubject, CategoryId), HubError> {
    Ok((
        ProviderSubject::new(item.subject.clone()).map_err(|e| field("subject", e))?,
        CategoryId::new(item.category.clone()).map_err(|e| field("category", e))?,
    ))
}

/// Applies a batch of the calling provider's locator changes (one log entry of counts).
/// A batch id used before changes nothing: sent again with the same items (in any order) it
/// is answered as the first time; with other items it is refused (`invalid-field`, field
/// `batch_id`).
#[utoipa::path(post, path = "/v1/provider/locators/sync", request_body = LocatorSyncBody, security(("provider" = [])),
    responses((status = 200, body = LocatorSyncAnswer), (status = 400, description = "Malformed, or a batch id already used for other items: nothing applied", body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"), (status = 403, description = "A category the provider is not registered for: nothing applied", body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Storage unavailable: nothing applied; send the same batch again", body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u32, description = "Seconds to wait before trying again")))))]
pub(crate) async fn sync_locators(
    State(hub): State<Hub>,
    ProviderCaller(provider): ProviderCaller,
    ApiJson(body): ApiJson<LocatorSyncBody>,
) -> Result<Json<LocatorSyncAnswer>, HubError> {
    let upserts = body
        .upserts
        .iter()
        .map(|item| {
            let (subject, category) = key(item)?;
            let reference = item
                .reference
                .clone()
                .ok_or_else(|| field("reference", "an upsert needs a `reference`"))?;
            Ok(LocatorUpsert {
                subject,
                category,
                reference,
            })
        })
        .collect::<Result<Vec<_>, HubError>>()?;
    let removals = body
        .removals
        .iter()
        .map(|item| key(item).map(|(subject, category)| LocatorRemoval { subject, category }))
        .collect::<Result<Vec<_>, HubError>>()?;
    let batch = LocatorBatch::new(
        provider,
        LocatorBatchId::from_uuid(body.batch_id),
        upserts,
        removals,
    )
    .map_err(|e| HubError::Malformed(e.to_string()))?;
    let entry = hub.store().sync_locators(&batch, Utc::now()).await?;
    Ok(Json(LocatorSyncAnswer {
        batch_id: entry.batch.as_uuid(),
        log_position: entry.seq,
        upserted: entry.counts.upserted,
        removed: entry.counts.removed,
        unchanged: entry.counts.unchanged,
        not_applied: entry.counts.not_applied,
    }))
}

/// The calling provider's own locators, by its own codes, a page at a time.
#[utoipa::path(get, path = "/v1/provider/locators", params(LocatorPageQuery), security(("provider" = [])),
    responses((status = 200, body = LocatorPage), (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u32, description = "Seconds to wait before trying again")))))]
pub(crate) async fn provider_locators(
    State(hub): State<Hub>,
    ProviderCaller(provider): ProviderCaller,
    ApiQuery(q): ApiQuery<LocatorPageQuery>,
) -> Result<Json<LocatorPage>, HubError> {
    let limit = q.limit.unwrap_or(1_000).clamp(1, MAX_PAGE);
    let after = match (q.after_subject, q.after_category) {
        (Some(subject), Some(category)) => {
            let (subject, category) = key(&LocatorItem {
                subject,
                category,
                reference: None,
            })?;
            Some(LocatorCursor { subject, category })
        }
        (None, None) => None,
        _ => {
            return Err(field(
                "after_category",
                "give both `after_subject` and `after_category`, or neither",
            ));
        }
    };
    let page = hub
        .store()
        .provider_locators(&provider, after.as_ref(), limit)
        .await?;
    let full = page.len() == limit as usize;
    let locators: Vec<LocatorItem> = page
        .into_iter()
        .map(|l| LocatorItem {
            subject: l.subject.to_string(),
            category: l.category.to_string(),
            reference: Some(l.reference),
        })
        .collect();
    let next = full
        .then(|| locators.last())
        .flatten()
        .map(|l| LocatorItem {
            reference: None,
            ..l.clone()
        });
    Ok(Json(LocatorPage { locators, next }))
}

/// The signed-in resident's code at each provider, to give the provider (at its counter or
/// in its app) so that it can tell the hub where their data is.
#[utoipa::path(get, path = "/v1/me/provider-codes", security(("resident" = [])),
    responses((status = 200, body = Vec<ProviderCode>), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn my_provider_codes(
    State(hub): State<Hub>,
    crate::auth::ResidentCaller(session): crate::auth::ResidentCaller,
) -> Result<Json<Vec<ProviderCode>>, HubError> {
    Ok(Json(hub.provider_codes(session.resident).await?))
}

/// For the token endpoint: a provider's token for a valid assertion.
pub(crate) async fn provider_token(
    hub: &Hub,
    from: PeerAddr,
    assertion_type: Option<&str>,
    assertion: &str,
) -> Result<crate::api_identity::TokenResponse, OAuthError> {
    if assertion_type != Some(CLIENT_ASSERTION_TYPE) {
        return Err(HubError::oauth_request(format!(
            "`client_assertion_type` must be `{CLIENT_ASSERTION_TYPE}`"
        ))
        .into());
    }
    let now = Utc::now();
    let id = hub.authenticate_provider(from, assertion, now).await?;
    Ok(crate::api_identity::TokenResponse {
        access_token: hub.keys().issue_provider_token(&id, now)?,
        token_type: "Bearer".into(),
        expires_in: PROVIDER_TOKEN_SECONDS,
    })
}
