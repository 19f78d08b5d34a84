//! Tells services about consent changes, the services residents chose about their
//! emergency notices (`notices.rs`), and the services that received data about residents'
//! requests routed to them (`rights.rs`): signed Security Event Tokens (RFC 8417) POSTed to the
//! service's webhook, from a durable outbox, retried with exponential backoff.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use renkei_protocol::event::notice::{NoticeEventToken, sign_notice_event};
use renkei_protocol::event::rights::{RightsEventToken, sign_rights_event};
use renkei_protocol::event::{ConsentChange, ConsentEventToken, sign_event};
use renkei_store::{DeliveryOutcome, DueMessage};
use serde::Deserialize;

use crate::Hub;
use crate::consents::{Change, OutboxEvent};
use crate::notices::NoticeOutboxEvent;
use crate::rights::RightsOutboxEvent;

/// Every kind of message the outbox keeps, told apart by their fields (consent messages
/// written before notices existed read as they always did).
#[derive(Deserialize)]
#[serde(untagged)]
enum StoredEvent {
    Consent(OutboxEvent),
    Notice(NoticeOutboxEvent),
    Rights(RightsOutboxEvent),
}

/// After this many failed attempts (about a day and a half of backoff) a message is dropped.
const MAX_ATTEMPTS: u32 = 16;
/// How long one replica holds a message it is sending before another may try.
const LEASE: TimeDelta = TimeDelta::seconds(30);

/// The wait before attempt `attempts + 1`: 1 s, 2 s, 4 s, … capped at one hour.
pub fn backoff(attempts: u32) -> TimeDelta {
    TimeDelta::seconds(1_i64 << attempts.min(12)).min(TimeDelta::hours(1))
}

pub(crate) fn start_sender(hub: Hub) {
    let weak = hub.downgrade();
    let wake = hub.outbox_written().clone();
    drop(hub);
    tokio::spawn(async move {
        loop {
            let Some(hub) = weak.upgrade() else { return };
            let now = Utc::now();
            match hub.store().take_due_messages(now, now + LEASE, 32).await {
                Ok(due) => {
                    for message in due {
                        hub.deliver(message).await;
                    }
                }
                Err(e) => tracing::error!(error = %e, "reading the webhook outbox failed"),
            }
            drop(hub);
            let _ = tokio::time::timeout(Duration::from_millis(500), wake.notified()).await;
        }
    });
}

impl Hub {
    async fn deliver(&self, due: DueMessage) {
        let id = due.message.id;
        let (outcome, error) = match self.try_deliver(&due).await {
            Ok(()) => (DeliveryOutcome::Delivered, None),
            Err(error) if due.attempts + 1 >= MAX_ATTEMPTS => {
                (DeliveryOutcome::GiveUp, Some(error))
            }
            Err(error) => (
                DeliveryOutcome::RetryAt(Utc::now() + backoff(due.attempts)),
                Some(error),
            ),
        };
        if let Some(e) = &error {
            tracing::warn!(message = %id, service = %due.message.service, attempt = due.attempts + 1, error = %e, "webhook delivery failed");
        }
        if let Err(e) = self
            .store()
            .record_delivery(id, outcome, error.as_deref(), Utc::now())
            .await
        {
            tracing::error!(error = %e, "recording a webhook delivery failed");
        }
    }

    async fn try_deliver(&self, due: &DueMessage) -> Result<(), String> {
        let service = self
            .store()
            .service(&due.message.service)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the service is gone")?;
        let url = service.webhook_url.ok_or("the service has no webhook")?;
        // Checked again at each delivery: the URL may predate registration checks, and the
        // client's resolver refuses internal addresses whatever its name resolves to now.
        let url = reqwest::Url::parse(&url).map_err(|_| "the webhook URL is not a URL")?;
        crate::egress::check_destination(&url, self.config().allow_local_network)
            .map_err(|e| format!("refused to deliver: {e}"))?;
        let event: StoredEvent =
            serde_json::from_value(due.message.event.clone()).map_err(|e| e.to_string())?;
        let issuer = self.config().issuer.clone();
        let now = Utc::now();
        let signed = match event {
            StoredEvent::Consent(event) => {
                let change = match event.change {
                    Change::Granted => ConsentChange::Granted,
                    Change::Revoked => ConsentChange::Revoked,
                };
                let token =
                    ConsentEventToken::new(issuer, service.id.clone(), change, event.claims, now);
                self.keys()
                    .sign_with(move |key| sign_event(key, &token))
                    .await
            }
            StoredEvent::Notice(event) => {
                let token = NoticeEventToken::new(issuer, service.id.clone(), event.notice, now);
                self.keys()
                    .sign_with(move |key| sign_notice_event(key, &token))
                    .await
            }
            StoredEvent::Rights(event) => {
                let token = RightsEventToken::new(issuer, service.id.clone(), event.rights, now);
                self.keys()
                    .sign_with(move |key| sign_rights_event(key, &token))
                    .await
            }
        };
        let jws = signed
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let response = self
            .http()
            .post(url)
            .header("content-type", "application/secevent+jwt")
            .body(jws)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    "timed out".to_owned()
                } else {
                    "could not connect".to_owned()
                }
            })?;
        // Only the status is used: the body is never read, and dropping the response closes
        // the connection, so a receiver's answer costs the hub nothing however long it is.
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {}", response.status().as_u16()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_stops_at_an_hour() {
        assert_eq!(backoff(0), TimeDelta::seconds(1));
        assert_eq!(backoff(3), TimeDelta::seconds(8));
        assert_eq!(backoff(30), TimeDelta::hours(1));
    }
}
