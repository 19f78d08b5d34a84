//! How the kit proves to the hub that it is its provider: an RFC 7523 client assertion
//! signed with the key the provider registered, exchanged at the hub's token endpoint for a
//! short-lived provider token, which is kept until shortly before it expires.
//!
//! The assertion's audience is the hub's issuer, read once from its OpenID discovery
//! document: the URL the kit reaches the hub by (through a proxy, on a private address) need
//! not be the one the hub calls itself.

use std::time::Duration;

use renkei_domain::ProviderId;
use renkei_protocol::keys::{AnySigningKey, SigningKey};
use serde::Deserialize;
use tokio::sync::{Mutex, OnceCell};
use tokio::time::Instant;

use super::outbound::HubCredentials;

/// `client_assertion_type` of RFC 7523 §2.2, form-encoded.
const ASSERTION_TYPE_FORM: &str =
    "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer";
/// How long an assertion is valid for (the hub takes at most five minutes).
const ASSERTION_SECONDS: i64 = 60;
/// A token is replaced this long before it expires, so no call carries one about to lapse.
const RENEW_BEFORE: Duration = Duration::from_secs(30);

/// Provider tokens from client assertions, one at a time.
pub struct ClientAssertion {
    client: reqwest::Client,
    /// Where the kit reaches the hub.
    hub: String,
    /// The hub's issuer, the assertion's audience.
    issuer: OnceCell<String>,
    provider: ProviderId,
    key: SigningKey,
    token: Mutex<Option<(String, Instant)>>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: u64,
}

impl ClientAssertion {
    pub fn new(client: reqwest::Client, hub: &str, provider: ProviderId, key: SigningKey) -> Self {
        Self {
            client,
            hub: hub.trim_end_matches('/').to_owned(),
            issuer: OnceCell::new(),
            provider,
            key,
            token: Mutex::new(None),
        }
    }

    async fn issuer(&self) -> Result<&str, String> {
        self.issuer
            .get_or_try_init(|| async {
                let url = format!("{}/.well-known/openid-configuration", self.hub);
                let response = self
                    .client
                    .get(&url)
                    .send()
                    .await
                    .map_err(|e| format!("the hub's discovery document: {e}"))?;
                if !response.status().is_success() {
                    return Err(format!(
                        "the hub's discovery document was answered {}",
                        response.status()
                    ));
                }
                let discovery: Discovery = response
                    .json()
                    .await
                    .map_err(|e| format!("the hub's discovery document: {e}"))?;
                Ok(discovery.issuer)
            })
            .await
            .map(String::as_str)
    }

    async fn fresh_token(&self) -> Result<(String, Instant), String> {
        let issuer = self.issuer().await?;
        let now = chrono::Utc::now().timestamp();
        let token_url = format!("{}/oauth/token", self.hub);
        let claims = serde_json::json!({
            "iss": self.provider.as_str(),
            "sub": self.provider.as_str(),
            "aud": issuer,
            "iat": now,
            "exp": now + ASSERTION_SECONDS,
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        let assertion = renkei_protocol::sign_jwt(AnySigningKey::EdDsa(&self.key), &claims)
            .map_err(|e| format!("signing a client assertion: {e}"))?;
        let response = self
            .client
            .post(&token_url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            // A compact JWS is base64url and dots, which form encoding leaves as they are.
            .body(format!(
                "grant_type=client_credentials&client_assertion_type={ASSERTION_TYPE_FORM}&client_assertion={assertion}"
            ))
            .send()
            .await
            .map_err(|e| format!("the hub's token endpoint: {e}"))?;
        if !response.status().is_success() {
            return Err(format!(
                "the hub refused the provider's client assertion: {}",
                response.status()
            ));
        }
        let answer: TokenAnswer = response
            .json()
            .await
            .map_err(|e| format!("the hub's token answer: {e}"))?;
        let renew_at =
            Instant::now() + Duration::from_secs(answer.expires_in).saturating_sub(RENEW_BEFORE);
        Ok((answer.access_token, renew_at))
    }
}

#[async_trait::async_trait]
impl HubCredentials for ClientAssertion {
    async fn bearer(&self) -> Result<String, String> {
        let mut token = self.token.lock().await;
        if let Some((bearer, renew_at)) = token.as_ref()
            && Instant::now() < *renew_at
        {
            return Ok(bearer.clone());
        }
        let (bearer, renew_at) = self.fresh_token().await?;
        *token = Some((bearer.clone(), renew_at));
        Ok(bearer)
    }
}
