//! Who is signed in: a resident, or a proxy acting for one (the cookie holds the bearer token
//! the hub issued), or a city operator (the cookie holds the hub's operator token). Tokens are
//! checked by the hub's own operations (`Hub::resident_session`, `Hub::operator_session`),
//! never re-implemented here.

use axum::http::HeaderMap;
use renkei_domain::{OperatorId, ResidentId};
use renkei_hub::{Hub, HubError};

use crate::error::PortalError;
use crate::security::{OPERATOR_COOKIE, OWN_SESSION_COOKIE, SESSION_COOKIE, cookie};

/// A signed-in resident and the token that proves it.
#[derive(Debug, Clone)]
pub struct ResidentSession {
    pub id: ResidentId,
    pub token: String,
    /// The hub's view of the session: who acts (the resident or their proxy), and may.
    pub hub: renkei_hub::auth::ResidentSession,
    /// When a proxy acts for the resident: how the pages name that resident.
    pub acting_for: Option<String>,
}

/// The resident the request's session cookie names, if its token still holds.
pub async fn resident(hub: &Hub, headers: &HeaderMap) -> Option<ResidentSession> {
    let token = cookie(headers, SESSION_COOKIE)?;
    let session = hub.resident_session(token).await.ok()?;
    let acting_for = match &session.proxy {
        Some(_) => Some(resident_name(hub, session.resident).await),
        None => None,
    };
    Some(ResidentSession {
        id: session.resident,
        token: token.to_owned(),
        hub: session,
        acting_for,
    })
}

/// How pages name a resident to someone else (their proxy): the name their card proved, or
/// the start of their id when they never enrolled with a card (the demo town's residents).
pub async fn resident_name(hub: &Hub, resident: ResidentId) -> String {
    match hub.verified_name(resident).await {
        Ok(Some(name)) => name,
        _ => {
            let id = resident.to_string();
            format!("{}…", &id[..8.min(id.len())])
        }
    }
}

/// Demo mode: the hub's session token for any resident of the demo town, without proof
/// (`Hub::demo_sign_in`); `None` when there is no such resident (or the hub is not in demo
/// mode), for the sign-in form to say so.
pub async fn demo_session(hub: &Hub, resident: ResidentId) -> Result<Option<String>, PortalError> {
    match hub.demo_sign_in(resident).await {
        Ok(token) => Ok(Some(token)),
        Err(HubError::NotFound(_) | HubError::DemoOnly) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Whether a proxy's session for someone stopped holding (the appointment ended) while the
/// proxy's own session, kept aside, still does: the pages then return them to it.
pub async fn acting_ended(hub: &Hub, headers: &HeaderMap) -> bool {
    let Some(own) = cookie(headers, OWN_SESSION_COOKIE) else {
        return false;
    };
    let acting = cookie(headers, SESSION_COOKIE).unwrap_or_default();
    hub.resident_session(acting).await.is_err() && hub.resident_session(own).await.is_ok()
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

/// The staff member the request's console cookie names, counter staff or operator alike (the
/// counter's pages admit both), if its token still holds.
pub async fn staff(hub: &Hub, headers: &HeaderMap) -> Option<OperatorId> {
    let token = cookie(headers, OPERATOR_COOKIE)?;
    hub.staff_session(token).await.ok()
}
