//! `renkei decrypt`: opens a data response (read from standard input) as the service would,
//! with its private key, and accepts each answer only as its provider's: signed with a key
//! that provider registered (as the hub publishes them at `GET /v1/providers`, or as given),
//! for this service and this request. An answer that does not verify is an error: the hub,
//! or anyone between, could have sealed it.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use anyhow::{Context, bail};
use renkei_domain::{ProviderId, ProviderKeys, ServiceId};
use renkei_hub::broker::DataResponse;
use renkei_protocol::envelope::{EnvelopeContext, SealedPayload, ServiceKeyPair};
use renkei_protocol::keys::Jwks;
use renkei_protocol::payload::open_verified;
use serde::Deserialize;

/// One provider as `GET /v1/providers` lists it.
#[derive(Deserialize)]
struct PublishedProvider {
    id: ProviderId,
    name_ja: String,
    signing_keys: ProviderKeys,
}

/// Whose keys an answer must verify with, and what to call each provider.
type Keyring = BTreeMap<ProviderId, (Jwks, String)>;

async fn published(hub: &str) -> anyhow::Result<Keyring> {
    let url = format!("{}/v1/providers", hub.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    let response = client
        .get(&url)
        .send()
        .await
        .with_context(|| format!("reading {url}"))?;
    if !response.status().is_success() {
        bail!("{url} answered {}", response.status());
    }
    let providers: Vec<PublishedProvider> = response
        .json()
        .await
        .with_context(|| format!("{url} is not a list of providers"))?;
    Ok(providers
        .into_iter()
        .map(|p| (p.id, (Jwks::from_provider_keys(&p.signing_keys), p.name_ja)))
        .collect())
}

/// `PROVIDER=FILE` pairs: a JWK Set, or one JWK, per provider.
fn given(pairs: &[String]) -> anyhow::Result<Keyring> {
    let mut ring = Keyring::new();
    for pair in pairs {
        let (id, file) = pair
            .split_once('=')
            .with_context(|| format!("--provider-keys `{pair}` is not PROVIDER=FILE"))?;
        let id = ProviderId::new(id)?;
        let text =
            std::fs::read_to_string(Path::new(file)).with_context(|| format!("reading {file}"))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{file} is not JSON"))?;
        let set = if value.get("keys").is_some() {
            value
        } else {
            serde_json::json!({ "keys": [value] })
        };
        let keys = ProviderKeys::parse(&set).with_context(|| file.to_owned())?;
        ring.insert(
            id.clone(),
            (Jwks::from_provider_keys(&keys), id.to_string()),
        );
    }
    Ok(ring)
}

pub async fn run(
    service: &str,
    key: &Path,
    hub: Option<&str>,
    provider_keys: &[String],
) -> anyhow::Result<()> {
    let service = ServiceId::new(service)?;
    let key_text =
        std::fs::read_to_string(key).with_context(|| format!("reading {}", key.display()))?;
    let keys =
        ServiceKeyPair::from_private_b64(key_text.trim()).context("reading the private key")?;
    let ring = match hub {
        Some(hub) if provider_keys.is_empty() => published(hub).await?,
        _ => given(provider_keys)?,
    };
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    let response: DataResponse =
        serde_json::from_str(&input).context("standard input is not a data response")?;
    let request = response.request_id.parse().context("request_id")?;
    for result in response.results {
        let Some(payload) = result.payload else {
            println!("{}: {}", result.provider, result.status);
            continue;
        };
        let provider: ProviderId = result.provider.parse().context("provider id")?;
        let Some((jwks, name)) = ring.get(&provider) else {
            bail!(
                "{provider}'s answer cannot be verified: the hub publishes no keys for it \
                 (not an approved provider)"
            );
        };
        let context = EnvelopeContext {
            provider: provider.clone(),
            request,
        };
        let sealed = SealedPayload {
            suite: payload.suite,
            enc: payload.enc,
            ciphertext: payload.ciphertext,
        };
        let claims = open_verified(&keys, &service, &context, jwks, &sealed)
            .with_context(|| format!("{provider}'s answer does not verify: refused"))?;
        println!(
            "{provider} ({name}): verified, signed by the provider for {service} (request {})\n{}",
            claims.request_id,
            serde_json::to_string_pretty(&claims.data)?
        );
    }
    Ok(())
}
