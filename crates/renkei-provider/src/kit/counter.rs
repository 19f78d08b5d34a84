//! Counter consents from the kit (`renkei provider consent …`): a provider's staff record a
//! consent a resident gave at the counter, on the provider's paper form, at the hub
//! (`POST /v1/provider/consents`), authenticated as the provider by a client assertion
//! ([`super::credentials`]). The resident is named by the code the hub gave them for this
//! provider, which they bring to the counter.

use std::time::Duration;

use serde::Serialize;

use super::KitError;
use super::config::KitConfig;
use super::credentials::ClientAssertion;
use super::outbound::HubCredentials;

/// One paper form, as the staff member enters it.
#[derive(Debug, Clone, Serialize)]
pub struct CounterForm {
    /// The resident's code at this provider.
    pub subject: String,
    pub service: String,
    pub purpose: String,
    /// The staff member, as the provider numbers its staff.
    pub staff_id: String,
    /// The form's reference, as the provider files it.
    pub form_reference: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_days: Option<u32>,
}

/// Records `form` at the hub the kit's configuration names; the hub's answer (the consent
/// recorded, or the one the same form recorded before).
pub async fn record_counter_consent(
    config: &KitConfig,
    form: &CounterForm,
) -> Result<serde_json::Value, KitError> {
    let error = |message: String| KitError::Hub {
        url: config.hub.clone(),
        message,
    };
    let key = super::read_signing_key(&config.signing_key)?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| error(e.to_string()))?;
    let credentials =
        ClientAssertion::new(client.clone(), &config.hub, config.provider.clone(), key);
    let bearer = credentials.bearer().await.map_err(error)?;
    let response = client
        .post(format!(
            "{}/v1/provider/consents",
            config.hub.trim_end_matches('/')
        ))
        .bearer_auth(bearer)
        .json(form)
        .send()
        .await
        .map_err(|e| error(e.to_string()))?;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .map_err(|e| error(format!("the hub's answer: {e}")))?;
    if !status.is_success() {
        let detail = body
            .get("detail")
            .and_then(|d| d.as_str())
            .unwrap_or_default();
        return Err(error(format!("refused ({status}): {detail}")));
    }
    Ok(body)
}
