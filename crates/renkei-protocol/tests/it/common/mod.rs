//! Fixtures shared by the behaviour tests: a hub key, a grant, and token surgery.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeZone, Utc};
use renkei_domain::{CategoryId, ConsentId, ProviderId, PurposeId, RequestId, ServiceId};
use renkei_protocol::{GrantClaims, Jwks, ServiceKeyPair, SigningKey};
use uuid::Uuid;

pub const HUB: &str = "https://hub.example.jp";
pub const NOW: i64 = 1_780_000_000;

pub fn now() -> DateTime<Utc> {
    Utc.timestamp_opt(NOW, 0).unwrap()
}

pub fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).unwrap()
}

pub fn hospital() -> ProviderId {
    ProviderId::new("city-hospital").unwrap()
}

pub fn bank() -> ProviderId {
    ProviderId::new("city-bank").unwrap()
}

pub fn service() -> ServiceId {
    ServiceId::new("health-advice").unwrap()
}

pub struct Hub {
    pub key: SigningKey,
    pub jwks: Jwks,
}

pub fn hub() -> Hub {
    let key = SigningKey::generate().unwrap();
    let jwks = Jwks::from_signing_keys([&key]);
    Hub { key, jwks }
}

/// A grant for the hospital, issued at `NOW`, living 30 seconds.
pub fn grant_claims(service_key: &ServiceKeyPair) -> GrantClaims {
    let consent = ConsentId::from_uuid(Uuid::new_v4());
    GrantClaims {
        iss: HUB.into(),
        aud: hospital(),
        sub: "patient-000123".into(),
        jti: Uuid::new_v4(),
        iat: NOW,
        exp: NOW + 30,
        request_id: RequestId::from_uuid(Uuid::new_v4()),
        service: service(),
        purpose: PurposeId::new("advice").unwrap(),
        purpose_version: 1,
        categories: vec![CategoryId::new("health.checkup").unwrap()],
        service_hpke_key: service_key.public_b64(),
        consent: Some(consent),
        emergency: None,
        basis: format!("consent:{consent}"),
        location: Default::default(),
    }
}

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The three parts of a compact JWS.
pub fn parts(token: &str) -> (String, String, String) {
    let mut it = token.split('.');
    (
        it.next().unwrap().to_owned(),
        it.next().unwrap().to_owned(),
        it.next().unwrap().to_owned(),
    )
}

/// The decoded JSON of a token part.
pub fn json_of(part: &str) -> serde_json::Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// Replaces the payload of `token` by `payload`, keeping header and signature.
pub fn with_payload(token: &str, payload: &serde_json::Value) -> String {
    let (header, _, signature) = parts(token);
    format!("{header}.{}.{signature}", b64(payload.to_string()))
}

/// Signs `payload` with a chosen header, as an attacker holding `key` could.
pub fn sign_raw(key: &SigningKey, typ: &str, payload: &serde_json::Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.typ = Some(typ.into());
    header.kid = Some(key.kid().into());
    jsonwebtoken::encode(&header, payload, key.encoding_key().unwrap()).unwrap()
}
