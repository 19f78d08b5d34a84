//! Who is signed in: a resident (the cookie holds the bearer token the hub issued them) or an
//! operator (demo mode: a short-lived token signed with the hub's key for the console).
//! Tokens are checked by the hub's own extractors and keys, never re-implemented here.

use axum::http::HeaderMap;
use chrono::Utc;
use jsonwebtoken::{Algorithm, Header, Validation};
use renkei_domain::ResidentId;
use renkei_hub::Hub;
use serde::{Deserialize, Serialize};

use crate::security::{OPERATOR_COOKIE, SESSION_COOKIE, cookie};

/// A signed-in resident and the token that proves it (passed on to the hub's API).
#[derive(Debug, Clone)]
pub struct ResidentSession {
    pub id: ResidentId,
    pub token: String,
}

/// The resident the request's session cookie names, if its token still holds.
pub async fn resident(hub: &Hub, headers: &HeaderMap) -> Option<ResidentSession> {
    let token = cookie(headers, SESSION_COOKIE)?;
    let session = hub.resident_session(token).await.ok()?;
    Some(ResidentSession {
        id: session.resident,
        token: token.to_owned(),
    })
}

/// The audience of the console's operator tokens.
const OPERATOR_AUDIENCE: &str = "renkei:portal-operator";
/// How long an operator stays signed in.
pub const OPERATOR_SESSION_SECONDS: i64 = 8 * 3600;

#[derive(Serialize, Deserialize)]
struct OperatorClaims {
    sub: String,
    aud: String,
    iss: String,
    iat: i64,
    exp: i64,
}

/// A signed-in city operator.
#[derive(Debug, Clone)]
pub struct OperatorSession {
    /// The operator's name as shown and audited.
    pub name: String,
}

/// A token for an operator session, signed with the hub's key (EdDSA).
pub fn issue_operator_token(hub: &Hub, name: &str) -> Option<String> {
    let now = Utc::now().timestamp();
    let claims = OperatorClaims {
        sub: name.to_owned(),
        aud: OPERATOR_AUDIENCE.to_owned(),
        iss: hub.config.issuer.clone(),
        iat: now,
        exp: now + OPERATOR_SESSION_SECONDS,
    };
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(hub.keys.signing.kid().to_owned());
    jsonwebtoken::encode(&header, &claims, hub.keys.signing.encoding_key()).ok()
}

/// The operator the request's console cookie names, if its token still holds.
pub fn operator(hub: &Hub, headers: &HeaderMap) -> Option<OperatorSession> {
    let token = cookie(headers, OPERATOR_COOKIE)?;
    let kid = jsonwebtoken::decode_header(token).ok()?.kid?;
    let key = hub.keys.jwks.decoding_key(&kid).ok()?;
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&[OPERATOR_AUDIENCE]);
    validation.set_issuer(&[hub.config.issuer.as_str()]);
    validation.leeway = 5;
    let data = jsonwebtoken::decode::<OperatorClaims>(token, &key, &validation).ok()?;
    Some(OperatorSession {
        name: data.claims.sub,
    })
}
