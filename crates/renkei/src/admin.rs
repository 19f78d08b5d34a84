//! An operator's client of a hub's API: signing in for an operator session, and the
//! registry's acts (categories, providers, services, their approval). The `renkei category`,
//! `renkei provider add|approve` and `renkei operator sign-in` commands use it, and so does the
//! demo, which builds its town through the same API a city would.

use std::path::Path;

use anyhow::{Context, bail};
use renkei_hub::accounts::{CategoryRegistration, ProviderRegistration, ServiceRegistration};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

/// A hub's API, called as one operator.
pub struct OperatorClient {
    hub: String,
    token: Zeroizing<String>,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
}

#[derive(Deserialize)]
struct Challenge {
    id: uuid::Uuid,
    challenge: String,
}

/// A registered service, with the client secret the hub shows once.
#[derive(Debug, Deserialize)]
pub struct RegisteredService {
    pub id: String,
    pub client_secret: String,
}

#[derive(Deserialize)]
struct Risk {
    key: String,
}

fn http() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .context("making an HTTP client")
}

/// The hub's answer, or an error carrying its problem's `detail`.
async fn answer<T: DeserializeOwned>(what: &str, response: reqwest::Response) -> anyhow::Result<T> {
    let status = response.status();
    let body = response.bytes().await.with_context(|| what.to_owned())?;
    if !status.is_success() {
        bail!("{what}: the hub answered {status}: {}", problem_text(&body));
    }
    serde_json::from_slice(&body).with_context(|| format!("{what}: the hub's answer"))
}

/// A problem document's `type` and `detail`, or the body as text.
fn problem_text(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Problem {
        r#type: Option<String>,
        detail: Option<String>,
    }
    match serde_json::from_slice::<Problem>(body) {
        Ok(p) => format!(
            "{} ({})",
            p.detail.unwrap_or_default(),
            p.r#type.unwrap_or_default()
        ),
        Err(_) => String::from_utf8_lossy(body).chars().take(300).collect(),
    }
}

/// Trades a resident session for an operator session (the identity must hold an operator
/// account).
async fn operator_session(
    http: &reqwest::Client,
    hub: &str,
    resident_token: &str,
) -> anyhow::Result<String> {
    let response = http
        .post(format!("{hub}/v1/operator/session"))
        .bearer_auth(resident_token)
        .send()
        .await
        .context("asking for an operator session")?;
    let token: TokenAnswer = answer("asking for an operator session", response).await?;
    Ok(token.access_token)
}

impl OperatorClient {
    /// A client with an operator token already at hand (`--operator-token-file`).
    pub fn new(hub: &str, token: &str) -> anyhow::Result<Self> {
        Ok(Self {
            hub: hub.trim_end_matches('/').to_owned(),
            token: Zeroizing::new(token.trim().to_owned()),
            http: http()?,
        })
    }

    /// A client with the operator token read from a file (owner-only, as `renkei operator
    /// sign-in` writes it).
    pub fn from_token_file(hub: &str, path: &Path) -> anyhow::Result<Self> {
        let token = Zeroizing::new(
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        );
        Self::new(hub, &token)
    }

    /// Signs in the way an operator does without a browser: enrols with their card's
    /// certificate chain and a signature over the hub's challenge (`sign` makes it from the
    /// challenge's bytes), then trades that session for an operator session.
    pub async fn sign_in_with_card(
        hub: &str,
        certificate_chain: &str,
        sign: impl FnOnce(&[u8]) -> anyhow::Result<String>,
    ) -> anyhow::Result<Self> {
        use base64::Engine;
        let hub = hub.trim_end_matches('/');
        let http = http()?;
        let response = http
            .post(format!("{hub}/v1/enrolment/challenges"))
            .send()
            .await
            .context("asking for a challenge")?;
        let challenge: Challenge = answer("asking for a challenge", response).await?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&challenge.challenge)
            .context("the hub's challenge is not base64url")?;
        let body = serde_json::json!({
            "challenge_id": challenge.id,
            "certificate_chain": certificate_chain,
            "signature": sign(&bytes)?,
        });
        let response = http
            .post(format!("{hub}/v1/enrolment"))
            .json(&body)
            .send()
            .await
            .context("signing in with the card")?;
        let resident: TokenAnswer = answer("signing in with the card", response).await?;
        let token = operator_session(&http, hub, &resident.access_token).await?;
        Self::new(hub, &token)
    }

    /// Demo mode only: signs in as the demo town's operator identity without proof (the
    /// demo's sign-in), then trades that session for an operator session.
    pub async fn demo_sign_in(hub: &str, identity: &str) -> anyhow::Result<Self> {
        let hub = hub.trim_end_matches('/');
        let http = http()?;
        let response = http
            .post(format!("{hub}/demo/sign-in"))
            .json(&serde_json::json!({ "resident": identity }))
            .send()
            .await
            .context("signing in to the demo")?;
        let resident: TokenAnswer = answer("signing in to the demo", response).await?;
        let token = operator_session(&http, hub, &resident.access_token).await?;
        Self::new(hub, &token)
    }

    /// The operator token, for saving (`renkei operator sign-in --out`).
    pub fn token(&self) -> &str {
        &self.token
    }

    async fn post<T: DeserializeOwned>(
        &self,
        what: &str,
        path: &str,
        body: &impl serde::Serialize,
    ) -> anyhow::Result<T> {
        let response = self
            .http
            .post(format!("{}{path}", self.hub))
            .bearer_auth(self.token.as_str())
            .json(body)
            .send()
            .await
            .with_context(|| format!("{what}: reaching {}", self.hub))?;
        answer(what, response).await
    }

    /// A POST answered `204 No Content`.
    async fn act(&self, what: &str, path: &str, body: &serde_json::Value) -> anyhow::Result<()> {
        let response = self
            .http
            .post(format!("{}{path}", self.hub))
            .bearer_auth(self.token.as_str())
            .json(body)
            .send()
            .await
            .with_context(|| format!("{what}: reaching {}", self.hub))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.bytes().await.unwrap_or_default();
            bail!("{what}: the hub answered {status}: {}", problem_text(&body));
        }
        Ok(())
    }

    pub async fn add_category(&self, category: &CategoryRegistration) -> anyhow::Result<()> {
        let what = format!("adding category `{}`", category.id);
        self.post::<serde_json::Value>(&what, "/v1/operator/categories", category)
            .await
            .map(drop)
    }

    pub async fn add_provider(&self, provider: &ProviderRegistration) -> anyhow::Result<()> {
        let what = format!("registering provider `{}`", provider.id);
        self.post::<serde_json::Value>(&what, "/v1/operator/providers", provider)
            .await
            .map(drop)
    }

    pub async fn approve_provider(&self, id: &str) -> anyhow::Result<()> {
        let what = format!("approving provider `{id}`");
        self.act(
            &what,
            &format!("/v1/operator/providers/{id}/approve"),
            &serde_json::json!({}),
        )
        .await
    }

    pub async fn suspend_provider(&self, id: &str) -> anyhow::Result<()> {
        let what = format!("suspending provider `{id}`");
        self.act(
            &what,
            &format!("/v1/operator/providers/{id}/suspend"),
            &serde_json::json!({}),
        )
        .await
    }

    pub async fn add_service(
        &self,
        service: &ServiceRegistration,
    ) -> anyhow::Result<RegisteredService> {
        let what = format!("registering service `{}`", service.id);
        self.post(&what, "/v1/operator/services", service).await
    }

    /// Approves a service, confirming every risk its review flags: for an operator who has
    /// read them (the demo's, or the console's checklist).
    pub async fn approve_service_confirming_its_risks(&self, id: &str) -> anyhow::Result<()> {
        let what = format!("reviewing service `{id}`");
        let response = self
            .http
            .get(format!("{}/v1/operator/services/{id}/review", self.hub))
            .bearer_auth(self.token.as_str())
            .send()
            .await
            .with_context(|| format!("{what}: reaching {}", self.hub))?;
        let risks: Vec<Risk> = answer(&what, response).await?;
        let keys: Vec<String> = risks.into_iter().map(|r| r.key).collect();
        self.act(
            &format!("approving service `{id}`"),
            &format!("/v1/operator/services/{id}/approve"),
            &serde_json::json!({ "acknowledged": keys }),
        )
        .await
    }

    /// The residents and categories `service`'s granted requests reached between `from`
    /// and `to` (`GET /v1/operator/incidents/report`).
    pub async fn incident_report(
        &self,
        service: &str,
        from: chrono::DateTime<chrono::Utc>,
        to: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<renkei_hub::api_soc::IncidentReport> {
        let what = format!("reporting on service `{service}`");
        let url = reqwest::Url::parse_with_params(
            &format!("{}/v1/operator/incidents/report", self.hub),
            [
                ("service", service.to_owned()),
                ("from", from.to_rfc3339()),
                ("to", to.to_rfc3339()),
            ],
        )
        .with_context(|| format!("{what}: the hub's URL"))?;
        let response = self
            .http
            .get(url)
            .bearer_auth(self.token.as_str())
            .send()
            .await
            .with_context(|| format!("{what}: reaching {}", self.hub))?;
        answer(&what, response).await
    }
}
