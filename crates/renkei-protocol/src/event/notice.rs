//! The webhook event a service a resident chose receives when a declaration under which
//! that resident's data was released is over: a Security Event Token (RFC 8417) like the
//! consent events (same `typ`, same keys), with one event,
//! `urn:renkei:event:emergency-release-notice`.
//!
//! Only a service the resident named in the portal is sent one, naming the resident by that
//! service's own pairwise subject: the event carries what the resident's notice says (which
//! declaration, which responder services, which categories, when), so the service can tell
//! the resident where they already are. It carries no data that was released.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use renkei_domain::{CategoryId, DeclarationId, ServiceId, ServiceSubject};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{EVENT_TYP, EventError};
use crate::jws::{self, SignError};
use crate::keys::{Jwks, SigningKey};

/// The event type of a notice of releases under a declaration.
pub const EMERGENCY_RELEASE_NOTICE: &str = "urn:renkei:event:emergency-release-notice";

/// One release, as the event lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeRelease {
    /// The responder service the data went to.
    pub service: ServiceId,
    pub categories: BTreeSet<CategoryId>,
    /// When (unix seconds).
    pub at: i64,
}

/// The claims of one notice event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeEventClaims {
    /// The resident as this service knows them (pairwise).
    pub subject: ServiceSubject,
    pub declaration: DeclarationId,
    /// The declaration's legal basis, as `GET /v1/declarations/{id}` names it.
    pub legal_basis: String,
    pub releases: Vec<NoticeRelease>,
    /// Where the resident reads the notice and can file a request about it.
    pub notice_url: String,
}

/// The `events` claim: the one event type URI → its claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeEvents {
    #[serde(rename = "urn:renkei:event:emergency-release-notice")]
    pub notice: NoticeEventClaims,
}

/// A notice Security Event Token's claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeEventToken {
    pub iss: String,
    pub iat: i64,
    /// A receiver handles each id once.
    pub jti: Uuid,
    /// The service the event is for.
    pub aud: ServiceId,
    pub events: NoticeEvents,
}

impl NoticeEventToken {
    /// A token carrying `claims`, with a fresh `jti`.
    pub fn new(
        iss: impl Into<String>,
        aud: ServiceId,
        claims: NoticeEventClaims,
        issued_at: DateTime<Utc>,
    ) -> Self {
        Self {
            iss: iss.into(),
            iat: issued_at.timestamp(),
            jti: Uuid::new_v4(),
            aud,
            events: NoticeEvents { notice: claims },
        }
    }
}

/// Signs a notice event token.
pub fn sign_notice_event(key: &SigningKey, token: &NoticeEventToken) -> Result<String, SignError> {
    jws::sign(key, EVENT_TYP, token)
}

#[derive(Deserialize)]
struct WireNotice {
    iss: String,
    iat: i64,
    jti: Uuid,
    aud: serde_json::Value,
    events: NoticeEvents,
}

/// Checks a notice event token against the hub's published keys, and that it is addressed
/// to `service`.
pub fn verify_notice_event(
    token: &str,
    jwks: &Jwks,
    service: &ServiceId,
) -> Result<NoticeEventToken, EventError> {
    let wire: WireNotice = jws::verify(token, jwks, EVENT_TYP)?;
    match wire.aud {
        serde_json::Value::String(aud) if aud == service.as_str() => {}
        serde_json::Value::String(_) | serde_json::Value::Array(_) => {
            return Err(EventError::WrongAudience);
        }
        _ => return Err(EventError::Malformed("`aud` is not a service id")),
    }
    Ok(NoticeEventToken {
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

    fn token(aud: &str) -> NoticeEventToken {
        NoticeEventToken::new(
            "https://hub.example.jp",
            ServiceId::new(aud).unwrap(),
            NoticeEventClaims {
                subject: ServiceSubject::new("abcdefghijklmnopqrstuvwxyz012345").unwrap(),
                declaration: DeclarationId::from_uuid(Uuid::from_u128(7)),
                legal_basis: "disaster_act49_11".into(),
                releases: vec![NoticeRelease {
                    service: ServiceId::new("fire-dept").unwrap(),
                    categories: [CategoryId::new("care.register").unwrap()].into(),
                    at: 1_780_000_000,
                }],
                notice_url: "https://hub.example.jp/portal/notices".into(),
            },
            Utc::now(),
        )
    }

    #[test]
    fn a_notice_event_verifies_for_its_service_only() {
        let key = SigningKey::generate().unwrap();
        let jwks = Jwks::from_signing_keys([&key]);
        let signed = sign_notice_event(&key, &token("city-app")).unwrap();
        let read =
            verify_notice_event(&signed, &jwks, &ServiceId::new("city-app").unwrap()).unwrap();
        assert_eq!(read.events.notice.releases.len(), 1);
        let json = serde_json::to_value(&read).unwrap();
        assert!(json["events"][EMERGENCY_RELEASE_NOTICE].is_object());
        assert_eq!(
            verify_notice_event(&signed, &jwks, &ServiceId::new("other").unwrap()),
            Err(EventError::WrongAudience)
        );
    }
}
