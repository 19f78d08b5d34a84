//! The security events the hub tells the city's SOC: Security Event Tokens (RFC 8417) like
//! the consent events (same `typ`, same keys), each with exactly one event of the
//! `urn:renkei:secevent:` types below, pushed to the SOC's receiver (RFC 8935) or polled by
//! it (RFC 8936).
//!
//! INVARIANT: no event names a resident or a subject. What a SOC needs to act is a service,
//! a provider, a client id or an address, a count, a declaration or a key id: nothing more.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use renkei_domain::{DeclarationId, ProviderId, ServiceId};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{EVENT_TYP, EventError};
use crate::jws::{self, SignError};
use crate::keys::{Jwks, SigningKey};

/// Repeated authentication failures from one address or for one client id.
pub const AUTHENTICATION_FAILURES: &str = "urn:renkei:secevent:authentication-failures";
/// A provider refused a grant as one it had already answered.
pub const GRANT_REPLAYED: &str = "urn:renkei:secevent:grant-replayed";
/// A provider refused a grant whose signature did not verify.
pub const GRANT_BAD_SIGNATURE: &str = "urn:renkei:secevent:grant-bad-signature";
/// A caller ran into a rate limit.
pub const RATE_LIMITED: &str = "urn:renkei:secevent:rate-limited";
/// A service asked for far more residents in an hour than its baseline.
pub const REQUEST_SURGE: &str = "urn:renkei:secevent:request-surge";
/// The log integrator found the tree not consistent with the last signed checkpoint.
pub const LOG_INCONSISTENT: &str = "urn:renkei:secevent:log-inconsistent";
/// The hub began publishing a signing key it did not publish before.
pub const KEY_ROTATED: &str = "urn:renkei:secevent:key-rotated";
/// An operator declared an emergency (the first of its two steps).
pub const EMERGENCY_DECLARED: &str = "urn:renkei:secevent:emergency-declared";
/// A second operator confirmed a declaration: it takes effect.
pub const EMERGENCY_CONFIRMED: &str = "urn:renkei:secevent:emergency-confirmed";
/// An operator ended a declaration early.
pub const EMERGENCY_ENDED: &str = "urn:renkei:secevent:emergency-ended";

/// Every event type URI the hub raises.
pub const SECURITY_EVENT_TYPES: [&str; 10] = [
    AUTHENTICATION_FAILURES,
    GRANT_REPLAYED,
    GRANT_BAD_SIGNATURE,
    RATE_LIMITED,
    REQUEST_SURGE,
    LOG_INCONSISTENT,
    KEY_ROTATED,
    EMERGENCY_DECLARED,
    EMERGENCY_CONFIRMED,
    EMERGENCY_ENDED,
];

/// Who failed to authenticate, or ran into a limit: an address (an IPv6 one as its /64), or
/// the client id it claimed (a service's or a provider's).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Offender {
    Address(String),
    Client(String),
}

/// One security event: its type and its claims (serialised as the claims alone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum SecurityEvent {
    AuthenticationFailures {
        #[serde(flatten)]
        offender: Offender,
        /// Failures counted within the window.
        failures: u32,
        window_seconds: u64,
    },
    GrantReplayed {
        provider: ProviderId,
        /// The service whose request the grant was for.
        service: ServiceId,
    },
    GrantBadSignature {
        provider: ProviderId,
        service: ServiceId,
    },
    RateLimited {
        /// Which limit: `ceremonies`, `oauth` or `data-requests`.
        limit: &'static str,
        #[serde(flatten)]
        offender: Offender,
        /// Further trips of the same caller within this many seconds raise no event.
        window_seconds: u64,
    },
    RequestSurge {
        service: ServiceId,
        /// Requests naming a resident within the last hour.
        residents_last_hour: u64,
        /// What the service asked for in an hour before (see the operating guide).
        baseline_per_hour: u64,
    },
    LogInconsistent {
        /// The last signed checkpoint's size.
        checkpoint_size: u64,
        /// The size of the tree that does not extend it.
        tree_size: u64,
    },
    KeyRotated {
        /// The new key's id, as the JWKS publishes it.
        kid: String,
    },
    EmergencyDeclared {
        declaration: DeclarationId,
        legal_basis: String,
    },
    EmergencyConfirmed {
        declaration: DeclarationId,
    },
    EmergencyEnded {
        declaration: DeclarationId,
    },
}

impl SecurityEvent {
    /// The event type URI.
    pub fn uri(&self) -> &'static str {
        match self {
            Self::AuthenticationFailures { .. } => AUTHENTICATION_FAILURES,
            Self::GrantReplayed { .. } => GRANT_REPLAYED,
            Self::GrantBadSignature { .. } => GRANT_BAD_SIGNATURE,
            Self::RateLimited { .. } => RATE_LIMITED,
            Self::RequestSurge { .. } => REQUEST_SURGE,
            Self::LogInconsistent { .. } => LOG_INCONSISTENT,
            Self::KeyRotated { .. } => KEY_ROTATED,
            Self::EmergencyDeclared { .. } => EMERGENCY_DECLARED,
            Self::EmergencyConfirmed { .. } => EMERGENCY_CONFIRMED,
            Self::EmergencyEnded { .. } => EMERGENCY_ENDED,
        }
    }
}

/// The `events` claim: the one event type URI → its claims (a map of one entry by
/// construction, so a token never carries none or two).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneEvent(pub SecurityEvent);

impl Serialize for OneEvent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(self.0.uri(), &self.0)?;
        map.end()
    }
}

/// A security event token's claims, as the hub signs them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecurityEventToken {
    /// The hub's URL.
    pub iss: String,
    /// Issued at (unix seconds): when the event was raised.
    pub iat: i64,
    /// The token's id: RFC 8936 acknowledges by it, and a receiver handles each once.
    pub jti: Uuid,
    /// The SOC's event stream (the hub's `/v1/soc/events`).
    pub aud: String,
    pub events: OneEvent,
}

impl SecurityEventToken {
    /// A token carrying `event`, with a fresh `jti`.
    pub fn new(
        iss: impl Into<String>,
        aud: impl Into<String>,
        event: SecurityEvent,
        issued_at: DateTime<Utc>,
    ) -> Self {
        Self {
            iss: iss.into(),
            iat: issued_at.timestamp(),
            jti: Uuid::new_v4(),
            aud: aud.into(),
            events: OneEvent(event),
        }
    }
}

/// Signs a security event token (EdDSA, `typ` `secevent+jwt`).
pub fn sign_security_event(
    key: &SigningKey,
    token: &SecurityEventToken,
) -> Result<String, SignError> {
    jws::sign(key, EVENT_TYP, token)
}

/// A security event token as a receiver reads it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ReceivedSecurityEvent {
    pub iss: String,
    pub iat: i64,
    pub jti: Uuid,
    pub aud: String,
    pub events: BTreeMap<String, serde_json::Value>,
}

impl ReceivedSecurityEvent {
    /// The one event: its type URI and claims.
    pub fn event(&self) -> Option<(&str, &serde_json::Value)> {
        match self.events.iter().next() {
            Some((uri, claims)) if self.events.len() == 1 => Some((uri, claims)),
            _ => None,
        }
    }
}

/// Checks a security event token against the hub's published keys, and that it carries
/// exactly one event.
pub fn verify_security_event(
    token: &str,
    jwks: &Jwks,
) -> Result<ReceivedSecurityEvent, EventError> {
    let received: ReceivedSecurityEvent = jws::verify(token, jwks, EVENT_TYP)?;
    if received.event().is_none() {
        return Err(EventError::Malformed("not exactly one event"));
    }
    Ok(received)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_keyed_by_its_uri_with_its_claims_flat() {
        let token = SecurityEventToken::new(
            "https://hub.example.jp",
            "https://hub.example.jp/v1/soc/events",
            SecurityEvent::RateLimited {
                limit: "oauth",
                offender: Offender::Address("192.0.2.7".into()),
                window_seconds: 60,
            },
            Utc::now(),
        );
        let json = serde_json::to_value(&token).unwrap();
        let events = json["events"].as_object().unwrap();
        assert_eq!(events.len(), 1);
        let claims = &events[RATE_LIMITED];
        assert_eq!(claims["address"], "192.0.2.7");
        assert_eq!(claims["limit"], "oauth");
    }

    #[test]
    fn a_signed_event_verifies_against_the_keys_and_a_forged_one_does_not() {
        let key = SigningKey::generate().unwrap();
        let jwks = Jwks {
            keys: vec![key.public_jwk()],
        };
        let token = SecurityEventToken::new(
            "https://hub.example.jp",
            "soc",
            SecurityEvent::KeyRotated { kid: "k2".into() },
            Utc::now(),
        );
        let signed = sign_security_event(&key, &token).unwrap();
        let read = verify_security_event(&signed, &jwks).unwrap();
        assert_eq!(read.jti, token.jti);
        assert_eq!(read.event().unwrap().0, KEY_ROTATED);
        let other = SigningKey::generate().unwrap();
        let forged = sign_security_event(&other, &token).unwrap();
        assert!(verify_security_event(&forged, &jwks).is_err());
    }

    #[test]
    fn every_event_type_is_distinct() {
        let set: std::collections::BTreeSet<_> = SECURITY_EVENT_TYPES.iter().collect();
        assert_eq!(set.len(), SECURITY_EVENT_TYPES.len());
    }
}
