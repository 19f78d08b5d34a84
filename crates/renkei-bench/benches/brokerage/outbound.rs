//! The outbound-only mode's phase (issue 23; target ≥ 0.9× the inbound mode's brokered
//! throughput): the same 5 ms provider, registered as outbound-only, takes its grants by
//! polling the hub with the kit's pollers and posts its answers back, instead of being
//! called on its port.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use chrono::Utc;
use renkei_domain::ProviderId;
use renkei_hub::Hub;
use renkei_provider::kit::outbound::HubCredentials;

use super::{Bench, Load, PhaseResult, phase};

/// Provider tokens issued by the hub's own keys: what a client assertion would get, without
/// the token endpoint's round trip (which the kit pays once every few minutes).
struct Issued {
    hub: Hub,
    provider: ProviderId,
}

#[async_trait::async_trait]
impl HubCredentials for Issued {
    async fn bearer(&self) -> Result<String, String> {
        self.hub
            .keys()
            .issue_provider_token(&self.provider, Utc::now())
            .map_err(|e| e.to_string())
    }
}

/// Registers the bench's provider as outbound-only, starts its pollers on the providers'
/// runtime, and measures brokered requests through them for `duration`.
pub async fn phase_outbound(bench: &Arc<Bench>, duration: Duration) -> anyhow::Result<PhaseResult> {
    let mut provider = bench
        .store
        .provider(&bench.provider)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the bench's provider is not registered"))?;
    provider.connection = renkei_domain::ProviderConnection::Outbound;
    bench.store.put_provider(&provider).await?;
    let credentials = Arc::new(Issued {
        hub: bench.hub.clone(),
        provider: bench.provider.clone(),
    });
    let (answering, client, hub_url) = (
        bench.outbound_provider.clone(),
        bench.client.clone(),
        bench.hub_url.clone(),
    );
    let polls = bench
        .providers_runtime
        .spawn(async move {
            renkei_provider::kit::outbound::start(
                client,
                hub_url,
                &answering,
                credentials,
                renkei_provider::kit::POLLERS,
            )
        })
        .await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !bench.hub.outbound_connected(&bench.provider) {
        if Instant::now() > deadline {
            bail!("the outbound provider's polls never reached the hub");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let hub = Arc::new(Load::Hub(format!("{}/v1/data-requests", bench.hub_url)));
    let result = phase("5 ms via hub, outbound", bench, &hub, duration).await;
    for poll in polls {
        poll.abort();
    }
    result
}
