//! The hub's own secrets and the bearer tokens it issues to services and residents.
//!
//! Access tokens are only ever checked by the hub itself, so they are HS256 JWTs under a
//! key every replica shares through storage: cheap to check on every request. What a token
//! may do is decided afresh each time (consents, service status), never from the token.

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use renkei_domain::{ResidentId, ServiceId, ServiceSubject};
use renkei_protocol::keys::{Jwks, SigningKey};
use renkei_store::Store;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Hub;
use crate::HubError;

/// How long a service's access token lasts.
pub const SERVICE_TOKEN_SECONDS: i64 = 300;
/// How long a resident's (demo) session token lasts.
pub const RESIDENT_TOKEN_SECONDS: i64 = 3600;

const SERVICE_AUDIENCE: &str = "renkei:service";
const RESIDENT_AUDIENCE: &str = "renkei:resident";

/// The keys every replica shares (kept in storage, created on first start).
pub struct HubKeys {
    pub signing: SigningKey,
    pub jwks: Jwks,
    token_encoding: EncodingKey,
    token_decoding: DecodingKey,
    pairwise: Vec<u8>,
    /// Signs the transparency log's checkpoints.
    pub log: crate::log::LogIdentity,
}

impl HubKeys {
    pub async fn load(
        store: &dyn Store,
        issuer: &str,
        now: DateTime<Utc>,
    ) -> Result<Self, HubError> {
        renkei_protocol::keys::install_crypto_provider();
        let candidate = SigningKey::generate()
            .map_err(|e| HubError::Internal(format!("key generation: {e}")))?;
        let der = store
            .ensure_secret("jws-signing-key", candidate.pkcs8_der(), now)
            .await?;
        let signing = SigningKey::from_pkcs8_der(&der)
            .map_err(|e| HubError::Internal(format!("signing key: {e}")))?;
        let token = store
            .ensure_secret("access-token-key", &random_bytes(), now)
            .await?;
        let pairwise = store
            .ensure_secret("pairwise-subject-key", &random_bytes(), now)
            .await?;
        let jwks = Jwks::from_signing_keys([&signing]);
        let log_seed = store
            .ensure_secret("log-signing-seed", &random_bytes(), now)
            .await?;
        let log = crate::log::LogIdentity::new(issuer, &log_seed)?;
        Ok(Self {
            log,
            signing,
            jwks,
            token_encoding: EncodingKey::from_secret(&token),
            token_decoding: DecodingKey::from_secret(&token),
            pairwise,
        })
    }

    /// The resident's pairwise subject for services of `sector`: stable within a sector,
    /// unlinkable across sectors without the hub's key.
    pub fn subject(&self, sector: &str, resident: ResidentId) -> ServiceSubject {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.pairwise)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(sector.as_bytes());
        mac.update(&[0]);
        mac.update(resident.as_uuid().as_bytes());
        let encoded = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        ServiceSubject::new(encoded)
            .unwrap_or_else(|_| unreachable!("43 base64url characters are a valid subject"))
    }

    pub fn issue_service_token(
        &self,
        service: &ServiceId,
        now: DateTime<Utc>,
    ) -> Result<String, HubError> {
        self.issue(
            service.as_str(),
            SERVICE_AUDIENCE,
            now,
            SERVICE_TOKEN_SECONDS,
        )
    }

    pub fn issue_resident_token(
        &self,
        resident: ResidentId,
        now: DateTime<Utc>,
    ) -> Result<String, HubError> {
        self.issue(
            &resident.to_string(),
            RESIDENT_AUDIENCE,
            now,
            RESIDENT_TOKEN_SECONDS,
        )
    }

    fn issue(
        &self,
        sub: &str,
        aud: &str,
        now: DateTime<Utc>,
        seconds: i64,
    ) -> Result<String, HubError> {
        let claims = AccessClaims {
            sub: sub.to_owned(),
            aud: aud.to_owned(),
            iat: now.timestamp(),
            exp: now.timestamp() + seconds,
            jti: uuid::Uuid::new_v4().to_string(),
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.token_encoding,
        )
        .map_err(|e| HubError::Internal(format!("token signing: {e}")))
    }

    fn check(&self, token: &str, aud: &str) -> Result<String, HubError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[aud]);
        validation.leeway = 5;
        jsonwebtoken::decode::<AccessClaims>(token, &self.token_decoding, &validation)
            .map(|data| data.claims.sub)
            .map_err(|_| HubError::Unauthorized)
    }
}

#[derive(Serialize, Deserialize)]
struct AccessClaims {
    sub: String,
    aud: String,
    iat: i64,
    exp: i64,
    jti: String,
}

fn random_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// A new client secret (shown once) and the hash the hub keeps.
pub fn new_client_secret() -> (String, String) {
    let secret = URL_SAFE_NO_PAD.encode(random_bytes());
    let hash = hash_client_secret(&secret);
    (secret, hash)
}

/// Client secrets are 256-bit random strings, so a plain SHA-256 is enough to keep them
/// useless to whoever reads the database.
pub fn hash_client_secret(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn bearer(parts: &Parts) -> Result<&str, HubError> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or(HubError::Unauthorized)
}

/// The service a request comes from, proven by its bearer token.
pub struct ServiceCaller(pub ServiceId);

impl FromRequestParts<Hub> for ServiceCaller {
    type Rejection = HubError;

    async fn from_request_parts(parts: &mut Parts, hub: &Hub) -> Result<Self, HubError> {
        let sub = hub.keys.check(bearer(parts)?, SERVICE_AUDIENCE)?;
        ServiceId::new(sub)
            .map(Self)
            .map_err(|_| HubError::Unauthorized)
    }
}

/// The resident a request comes from, proven by their bearer token.
pub struct ResidentCaller(pub ResidentId);

impl FromRequestParts<Hub> for ResidentCaller {
    type Rejection = HubError;

    async fn from_request_parts(parts: &mut Parts, hub: &Hub) -> Result<Self, HubError> {
        let sub = hub.keys.check(bearer(parts)?, RESIDENT_AUDIENCE)?;
        sub.parse().map(Self).map_err(|_| HubError::Unauthorized)
    }
}
