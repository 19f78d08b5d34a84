//! Who is signed in: a resident, or a proxy acting for one (the cookie holds the bearer token
//! the hub issued), or a city operator (the cookie holds the hub's operator token). Tokens are
//! checked by the hub's own operations (`Hub::resident_session`, `Hub::operator_session`),
//! never re-implemented here.

use axum::http::HeaderMap;
use renkei_domain::{OperatorId, ResidentId};
use renkei_hub::Hub;

use crate::security::{OPERATOR_COOKIE, SESSION_COOKIE, cookie};

/// A signed-in resident and the token that proves it (passed on to the hub's API).
#[derive(Debug, Clone)]
pub struct ResidentSession {
    pub id: ResidentId,
    pub token: String,
    /// The hub's view of the session: who acts (the resident or their proxy), and may.
    pub hub: renkei_hub::auth::ResidentSession,
}

/// The resident the request's session cookie names, if its token still holds.
pub async fn resident(hub: &Hub, headers: &HeaderMap) -> Option<ResidentSession> {
    let token = cookie(headers, SESSION_COOKIE)?;
    let session = hub.resident_session(token).await.ok()?;
    Some(ResidentSession {
        id: session.resident,
        token: token.to_owned(),
        hub: session,
    })
}

/// How long an operator stays signed in to the console (the hub's token lasts as long).
pub const OPERATOR_SESSION_SECONDS: i64 = renkei_hub::auth::RESIDENT_TOKEN_SECONDS;

/// A signed-in city operator.
#[derive(Debug, Clone)]
pub struct OperatorSession {
    pub id: OperatorId,
}

/// The operator the request's console cookie names, if its token still holds.
pub async fn operator(hub: &Hub, headers: &HeaderMap) -> Option<OperatorSession> {
    let token = cookie(headers, OPERATOR_COOKIE)?;
    let id = hub.operator_session(token).await.ok()?;
    Some(OperatorSession { id })
}
