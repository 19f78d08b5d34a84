//! The webhook event a service receives when a resident asks for the correction, deletion or
//! suspension of data it received (APPI 第34・35条): a Security Event Token (RFC 8417) like
//! the consent events (same `typ`, same keys), with one event,
//! `urn:renkei:event:rights-request`.
//!
//! It names the resident by the service's own pairwise subject, says what is asked about
//! which categories and by when a first answer is due, and where to answer
//! (`POST /v1/service/rights-requests/{id}/answer` with the service's client-credentials
//! token). It carries neither the resident's own words (the service reads them, with its
//! other open requests, from `GET /v1/service/rights-requests`) nor any data.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use renkei_domain::{CategoryId, ResidentRequestId, ServiceId, ServiceSubject};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{EVENT_TYP, EventError};
use crate::jws::{self, SignError};
use crate::keys::{Jwks, SigningKey};

/// The event type of a resident's request routed to a service.
pub const RIGHTS_REQUEST: &str = "urn:renkei:event:rights-request";

/// The claims of one rights-request event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RightsEventClaims {
    /// The request's id: the answer names it.
    pub request: ResidentRequestId,
    /// The resident as this service knows them (pairwise).
    pub subject: ServiceSubject,
    /// `correction`, `deletion` or `suspension`.
    pub kind: String,
    /// The categories it concerns at this service.
    pub categories: BTreeSet<CategoryId>,
    /// When a first answer is due (unix seconds).
    pub due: i64,
    /// Where to answer.
    pub answer_url: String,
}

/// The `events` claim: the one event type URI → its claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RightsEvents {
    #[serde(rename = "urn:renkei:event:rights-request")]
    pub request: RightsEventClaims,
}

/// A rights-request Security Event Token's claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RightsEventToken {
    pub iss: String,
    pub iat: i64,
    /// A receiver handles each id once.
    pub jti: Uuid,
    /// The service the event is for.
    pub aud: ServiceId,
    pub events: RightsEvents,
}

impl RightsEventToken {
    /// A token carrying `claims`, with a fresh `jti`.
    pub fn new(
        iss: impl Into<String>,
        aud: ServiceId,
        claims: RightsEventClaims,
        issued_at: DateTime<Utc>,
    ) -> Self {
        Self {
            iss: iss.into(),
            iat: issued_at.timestamp(),
            jti: Uuid::new_v4(),
            aud,
            events: RightsEvents { request: claims },
        }
    }
}

/// Signs a rights-request event token.
pub fn sign_rights_event(key: &SigningKey, token: &RightsEventToken) -> Result<String, SignError> {
    jws::sign(key, EVENT_TYP, token)
}

#[derive(Deserialize)]
struct WireRights {
    iss: String,
    iat: i64,
    jti: Uuid,
    aud: serde_json::Value,
    events: RightsEvents,
}

/// Checks a rights-request event token against the hub's published keys, and that it is
/// addressed to `service`.
pub fn verify_rights_event(
    token: &str,
    jwks: &Jwks,
    service: &ServiceId,
) -> Result<RightsEventToken, EventError> {
    let wire: WireRights = jws::verify(token, jwks, EVENT_TYP)?;
    match wire.aud {
        serde_json::Value::String(aud) if aud == service.as_str() => {}
        serde_json::Value::String(_) | serde_json::Value::Array(_) => {
            return Err(EventError::WrongAudience);
        }
        _ => return Err(EventError::Malformed("`aud` is not a service id")),
    }
    Ok(RightsEventToken {
        iss: wire.iss,
        iat: wire.iat,
        jti: wire.jti,
        aud: service.clone(),
        events: wire.events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rights_event_verifies_for_its_service_only() {
        let key = SigningKey::generate().unwrap();
        let jwks = Jwks::from_signing_keys([&key]);
        let token = RightsEventToken::new(
            "https://hub.example.jp",
            ServiceId::new("city-app").unwrap(),
            RightsEventClaims {
                request: ResidentRequestId::from_uuid(Uuid::from_u128(3)),
                subject: ServiceSubject::new("abcdefghijklmnopqrstuvwxyz012345").unwrap(),
                kind: "deletion".into(),
                categories: [CategoryId::new("health.checkup").unwrap()].into(),
                due: 1_780_000_000,
                answer_url: "https://hub.example.jp/v1/service/rights-requests/x/answer".into(),
            },
            Utc::now(),
        );
        let signed = sign_rights_event(&key, &token).unwrap();
        let read =
            verify_rights_event(&signed, &jwks, &ServiceId::new("city-app").unwrap()).unwrap();
        assert_eq!(read, token);
        let json = serde_json::to_value(&read).unwrap();
        assert!(json["events"][RIGHTS_REQUEST].is_object());
        assert_eq!(
            verify_rights_event(&signed, &jwks, &ServiceId::new("other").unwrap()),
            Err(EventError::WrongAudience)
        );
    }
}
