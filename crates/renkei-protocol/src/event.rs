//! The webhook payload a service receives when a resident's consent changes: a Security
//! Event Token (RFC 8417), signed by the hub as a compact JWS (EdDSA, `typ`
//! `secevent+jwt`), with one event, `urn:renkei:event:consent-granted` or
//! `urn:renkei:event:consent-revoked`.
//!
//! A resident's notice of releases under a declared emergency reaches the services they chose
//! as another event type of the same format: [`notice`]; a resident's correction, deletion or
//! suspension request reaches the services that received the data likewise: [`rights`].
//!
//! A SET does not expire: webhooks may be retried. A receiver should remember the `jti`s it
//! has handled, and act on a revocation at once whatever its `iat`.

use chrono::{DateTime, Utc};
use renkei_domain::{ConsentId, PurposeId, ServiceId, ServiceSubject};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::jws::{self, JwsError, SignError};
use crate::keys::{Jwks, SigningKey};

pub mod notice;
pub mod rights;
pub mod security;

/// The JWS `typ` of a Security Event Token (RFC 8417 §2.3).
pub const EVENT_TYP: &str = "secevent+jwt";
/// The event type of a consent given.
pub const CONSENT_GRANTED: &str = "urn:renkei:event:consent-granted";
/// The event type of a consent revoked.
pub const CONSENT_REVOKED: &str = "urn:renkei:event:consent-revoked";

/// What happened to the consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsentChange {
    Granted,
    Revoked,
}

impl ConsentChange {
    /// The event type URI.
    pub fn uri(self) -> &'static str {
        match self {
            Self::Granted => CONSENT_GRANTED,
            Self::Revoked => CONSENT_REVOKED,
        }
    }
}

/// The claims of one consent event: which consent, for which of the service's users, under
/// which purpose version, and when it changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentEventClaims {
    pub consent: ConsentId,
    /// The resident as this service knows them (pairwise).
    pub subject: ServiceSubject,
    pub purpose: PurposeId,
    pub purpose_version: u32,
    /// When the consent changed (unix seconds).
    pub at: i64,
}

/// The `events` claim: event type URI → event claims. Event types this crate does not know
/// are ignored when reading.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentEvents {
    #[serde(
        rename = "urn:renkei:event:consent-granted",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub granted: Option<ConsentEventClaims>,
    #[serde(
        rename = "urn:renkei:event:consent-revoked",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub revoked: Option<ConsentEventClaims>,
}

/// A consent Security Event Token's claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentEventToken {
    /// The hub's URL.
    pub iss: String,
    /// Issued at (unix seconds).
    pub iat: i64,
    /// The token's id: a receiver handles each id once.
    pub jti: Uuid,
    /// The service the event is for.
    pub aud: ServiceId,
    pub events: ConsentEvents,
}

impl ConsentEventToken {
    /// A token carrying one event, with a fresh `jti`.
    pub fn new(
        iss: impl Into<String>,
        aud: ServiceId,
        change: ConsentChange,
        claims: ConsentEventClaims,
        issued_at: DateTime<Utc>,
    ) -> Self {
        let mut events = ConsentEvents::default();
        match change {
            ConsentChange::Granted => events.granted = Some(claims),
            ConsentChange::Revoked => events.revoked = Some(claims),
        }
        Self {
            iss: iss.into(),
            iat: issued_at.timestamp(),
            jti: Uuid::new_v4(),
            aud,
            events,
        }
    }

    /// The one event the token carries, or `None` if it carries none or both.
    pub fn change(&self) -> Option<(ConsentChange, &ConsentEventClaims)> {
        match (&self.events.granted, &self.events.revoked) {
            (Some(claims), None) => Some((ConsentChange::Granted, claims)),
            (None, Some(claims)) => Some((ConsentChange::Revoked, claims)),
            _ => None,
        }
    }
}

/// Why a consent event token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("the event token is malformed: {0}")]
    Malformed(&'static str),
    #[error("the event token's signature does not verify")]
    BadSignature,
    #[error("the event token is signed with unknown key `{0}`")]
    UnknownKey(String),
    #[error("the event token is addressed to another service")]
    WrongAudience,
}

impl EventError {
    /// A stable identifier of the kind of refusal.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "event-malformed",
            Self::BadSignature => "event-bad-signature",
            Self::UnknownKey(_) => "event-unknown-key",
            Self::WrongAudience => "event-wrong-audience",
        }
    }
}

impl From<JwsError> for EventError {
    fn from(e: JwsError) -> Self {
        match e {
            JwsError::Malformed(why) => Self::Malformed(why),
            JwsError::BadSignature => Self::BadSignature,
            JwsError::UnknownKey(kid) => Self::UnknownKey(kid),
        }
    }
}

/// The claims as they arrive, before the audience is checked.
#[derive(Deserialize)]
struct WireEvent {
    iss: String,
    iat: i64,
    jti: Uuid,
    aud: serde_json::Value,
    events: ConsentEvents,
}

/// Checks what the type system cannot: one event, and a well-formed subject.
fn check_events(events: &ConsentEvents) -> Result<(), &'static str> {
    let claims = match (&events.granted, &events.revoked) {
        (Some(claims), None) | (None, Some(claims)) => claims,
        (None, None) => return Err("no consent event"),
        (Some(_), Some(_)) => return Err("more than one consent event"),
    };
    ServiceSubject::new(claims.subject.as_str())
        .map(|_| ())
        .map_err(|_| "the subject is not a pairwise subject identifier")
}

/// Signs a consent event token. It must carry exactly one event.
pub fn sign_event(key: &SigningKey, token: &ConsentEventToken) -> Result<String, SignError> {
    check_events(&token.events).map_err(SignError::InvalidClaims)?;
    jws::sign(key, EVENT_TYP, token)
}

/// Checks a consent event token against the hub's published keys, and that it is addressed
/// to `service`.
pub fn verify_event(
    token: &str,
    jwks: &Jwks,
    service: &ServiceId,
) -> Result<ConsentEventToken, EventError> {
    let wire: WireEvent = jws::verify(token, jwks, EVENT_TYP)?;
    let aud = match wire.aud {
        serde_json::Value::String(aud) if aud == service.as_str() => service.clone(),
        serde_json::Value::String(_) | serde_json::Value::Array(_) => {
            return Err(EventError::WrongAudience);
        }
        _ => return Err(EventError::Malformed("`aud` is not a service id")),
    };
    check_events(&wire.events).map_err(EventError::Malformed)?;
    Ok(ConsentEventToken {
        iss: wire.iss,
        iat: wire.iat,
        jti: wire.jti,
        aud,
        events: wire.events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> ConsentEventClaims {
        ConsentEventClaims {
            consent: ConsentId::from_uuid(Uuid::from_u128(3)),
            subject: ServiceSubject::new("abcdefghijklmnopqrstuvwxyz012345").unwrap(),
            purpose: PurposeId::new("advice").unwrap(),
            purpose_version: 1,
            at: 1_780_000_000,
        }
    }

    fn service() -> ServiceId {
        ServiceId::new("health-advice").unwrap()
    }

    #[test]
    fn the_events_claim_is_keyed_by_event_type_uri() {
        let token = ConsentEventToken::new(
            "https://hub.example.jp",
            service(),
            ConsentChange::Revoked,
            claims(),
            Utc::now(),
        );
        let json = serde_json::to_value(&token).unwrap();
        let events = json["events"].as_object().unwrap();
        assert_eq!(
            events.keys().collect::<Vec<_>>(),
            vec!["urn:renkei:event:consent-revoked"]
        );
        assert_eq!(
            events["urn:renkei:event:consent-revoked"]["subject"],
            "abcdefghijklmnopqrstuvwxyz012345"
        );
        assert_eq!(json["aud"], "health-advice");
    }

    #[test]
    fn a_token_with_no_event_or_two_is_not_signed() {
        let key = SigningKey::generate().unwrap();
        let mut token = ConsentEventToken::new(
            "https://hub.example.jp",
            service(),
            ConsentChange::Granted,
            claims(),
            Utc::now(),
        );
        token.events.revoked = Some(claims());
        assert!(token.change().is_none());
        assert!(matches!(
            sign_event(&key, &token),
            Err(SignError::InvalidClaims(_))
        ));
        token.events = ConsentEvents::default();
        assert!(sign_event(&key, &token).is_err());
    }

    #[test]
    fn error_codes_are_distinct() {
        let codes: std::collections::HashSet<_> = [
            EventError::Malformed("x"),
            EventError::BadSignature,
            EventError::UnknownKey("k".into()),
            EventError::WrongAudience,
        ]
        .iter()
        .map(EventError::code)
        .collect();
        assert_eq!(codes.len(), 4);
    }
}
