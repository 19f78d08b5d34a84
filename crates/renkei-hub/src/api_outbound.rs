//! Outbound-only providers at the hub, the brokered request's side: a grant handed to the
//! provider's poll ([`crate::outbound`]), its answer classified as an inbound provider's
//! would be.

use renkei_domain::ProviderId;
use renkei_protocol::envelope::SealedPayload;
use renkei_protocol::outbound::GrantAnswer;

use crate::Hub;
use crate::broker::{FetchOutcome, not_sealed, refusal};
use crate::outbound::RelayError;

impl Hub {
    /// Asks an outbound provider through its poll, reading at most `limit` bytes of its
    /// answer: the same outcomes as [`Hub::fetch`] for an inbound one.
    pub(crate) async fn fetch_outbound(
        &self,
        provider: &ProviderId,
        grant: String,
        limit: u64,
    ) -> FetchOutcome {
        let timeout = self.config().provider_timeout;
        let body = self
            .outbound()
            .send(provider, grant, limit, timeout)
            .await
            .map_err(|e| match e {
                RelayError::NotConnected => (
                    "provider-unreachable",
                    "the provider is not connected to the hub".to_owned(),
                ),
                RelayError::Timeout => (
                    "provider-timeout",
                    format!("no answer within {} ms", timeout.as_millis()),
                ),
            })?;
        let answer: GrantAnswer = serde_json::from_slice(&body).map_err(|_| not_sealed())?;
        if !(200..300).contains(&answer.status) {
            return Err(refusal(answer.status, Some(&answer.body)));
        }
        serde_json::from_value::<SealedPayload>(answer.body).map_err(|_| not_sealed())
    }
}
