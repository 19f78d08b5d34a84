//! Identity in the portal (flow 6): enrolment with the certificate (身元確認) on a first
//! visit, signing in with a passkey (当人認証), "my passkeys", and the return path that brings
//! a resident back to the page that sent them to sign in (the OpenID consent page).
//!
//! Every check is the hub's (`Hub::enrol`, `Hub::finish_passkey_sign_in`, …); the portal
//! turns a proven resident into the same session cookie the other sign-ins set. The
//! WebAuthn ceremonies are JSON endpoints for `static/passkey.js`, CSRF-protected by the
//! `x-csrf-token` header like every other POST.

use askama::Template;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use renkei_domain::ResidentId;
use renkei_hub::HubError;
use renkei_hub::auth::ProxyPermission;
use renkei_hub::enrolment::{CHALLENGE_GONE, EnrolmentBody};
use renkei_hub::limits::PeerAddr;
use renkei_hub::passkeys::{PasskeyAssertion, PasskeyAttestation};
use serde::Deserialize;

use crate::PortalState;
use crate::ctx::Ctx;
use crate::error::PortalError;
use crate::extract::{Form, Query};
use crate::i18n::Tr;
use crate::resident::session_response;
use crate::security::{SESSION_COOKIE, set_cookie};
use crate::session::{ResidentSession, resident};
use crate::time::tokyo;

/// The longest return path kept (an authorization request with its PKCE challenge fits).
const MAX_NEXT: usize = 4096;

/// A return path that stays on this site: an absolute path (`/…`), never `//host` or
/// `/\host` (which browsers read as another host), no control characters. Anything else is
/// dropped, so a crafted link cannot send a resident elsewhere after signing in.
pub fn safe_next(next: Option<&str>) -> Option<String> {
    let next = next?.trim();
    let ok = next.len() <= MAX_NEXT
        && next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control);
    ok.then(|| next.to_owned())
}

/// `path` with `next` as a query parameter (when there is one to keep).
pub fn with_next(path: &str, next: Option<&str>) -> String {
    match next {
        Some(n) => {
            let sep = if path.contains('?') { '&' } else { '?' };
            let q = serde_urlencoded::to_string([("next", n)]).unwrap_or_default();
            format!("{path}{sep}{q}")
        }
        None => path.to_owned(),
    }
}

fn render(t: &impl Template, status: StatusCode) -> Result<Response, PortalError> {
    Ok((
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        t.render()?,
    )
        .into_response())
}

/// A JSON answer for `passkey.js`: `{"message": …}` in the page's language.
pub(crate) fn json_message(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "message": message }))).into_response()
}

/// The same session cookie as the other sign-ins, answered as JSON (`location` is where
/// the script goes next).
fn json_session(token: &str, location: &str) -> Response {
    let mut response = Json(serde_json::json!({ "location": location })).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            SESSION_COOKIE,
            token,
            Some(renkei_hub::auth::RESIDENT_TOKEN_SECONDS),
        ),
    );
    response
}

fn resident_token(state: &PortalState, resident: ResidentId) -> Result<String, PortalError> {
    Ok(state
        .hub
        .keys()
        .issue_resident_token(resident, Utc::now())?)
}

/// The message for a passkey ceremony the hub refused or cannot run.
fn passkey_problem(t: &Tr, e: &HubError) -> Response {
    match e {
        HubError::PasskeysUnavailable(_) => json_message(
            StatusCode::SERVICE_UNAVAILABLE,
            t.get("passkey-unavailable"),
        ),
        HubError::PasskeyRefused(_) | HubError::Malformed(_) => {
            json_message(StatusCode::BAD_REQUEST, t.get("passkey-refused"))
        }
        HubError::Unauthorized | HubError::TokenInactive => {
            json_message(StatusCode::UNAUTHORIZED, t.get("passkey-signed-out"))
        }
        HubError::Forbidden(_) => json_message(StatusCode::FORBIDDEN, t.get("passkey-not-proxy")),
        HubError::RateLimited { retry_after } => {
            let mut response =
                json_message(StatusCode::TOO_MANY_REQUESTS, t.get("passkey-too-many"));
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(*retry_after),
            );
            response
        }
        other => {
            tracing::error!(
                code = other.to_problem().code(),
                "a passkey ceremony failed"
            );
            json_message(StatusCode::INTERNAL_SERVER_ERROR, t.get("passkey-failed"))
        }
    }
}

// ---------------------------------------------------------------- passkey sign-in

/// Starts a passkey sign-in: the options for `navigator.credentials.get()`.
pub async fn passkey_sign_in_start(
    State(state): State<PortalState>,
    ctx: Ctx,
    from: PeerAddr,
) -> Response {
    match state.hub.start_passkey_sign_in(from).await {
        Ok(start) => Json(start).into_response(),
        Err(e) => passkey_problem(&ctx.t, &e),
    }
}

#[derive(Deserialize)]
struct SignInFinish {
    ceremony: uuid::Uuid,
    credential: PasskeyAssertion,
    #[serde(default)]
    next: Option<String>,
}

/// Finishes a passkey sign-in: on success the session cookie and where to go.
pub async fn passkey_sign_in_finish(
    State(state): State<PortalState>,
    ctx: Ctx,
    body: Bytes,
) -> Result<Response, PortalError> {
    let Ok(body) = serde_json::from_slice::<SignInFinish>(&body) else {
        return Ok(json_message(
            StatusCode::BAD_REQUEST,
            ctx.t.get("passkey-refused"),
        ));
    };
    match state
        .hub
        .finish_passkey_sign_in(body.ceremony, &body.credential)
        .await
    {
        Ok(resident) => {
            let token = resident_token(&state, resident)?;
            let to = safe_next(body.next.as_deref()).unwrap_or_else(|| "/portal".into());
            Ok(json_session(&token, &to))
        }
        Err(e) => Ok(passkey_problem(&ctx.t, &e)),
    }
}

// ---------------------------------------------------------------- enrolment

#[derive(Template)]
#[template(path = "portal/enrol.html")]
struct EnrolPage {
    ctx: Ctx,
    /// The hub's challenge: its id (sent back) and the bytes to sign (base64url).
    challenge: Option<(String, String)>,
    expires: String,
    /// Why the last attempt was refused, in plain words.
    refusal: Option<String>,
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: Option<String>,
}

async fn enrol_page(
    state: &PortalState,
    ctx: Ctx,
    from: PeerAddr,
    refusal: Option<String>,
    next: Option<String>,
    status: StatusCode,
) -> Result<Response, PortalError> {
    let lang = ctx.lang;
    let (challenge, expires, refusal) = match state.hub.enrolment_challenge(from).await {
        Ok(c) => (
            Some((c.id.to_string(), c.challenge)),
            tokyo(c.expires_at, lang),
            refusal,
        ),
        // No trust anchor configured: enrolment is not offered on this hub.
        Err(HubError::Forbidden(_)) => (None, String::new(), None),
        Err(e) => return Err(e.into()),
    };
    let signed_in = false;
    render(
        &EnrolPage {
            ctx: ctx.portal("enrol-title", "", signed_in),
            challenge,
            expires,
            refusal,
            next,
        },
        status,
    )
}

/// The enrolment page: a fresh single-use challenge and the form for the certificate chain
/// and the signature over it.
pub async fn enrol_form(
    State(state): State<PortalState>,
    ctx: Ctx,
    from: PeerAddr,
    Query(q): Query<NextQuery>,
) -> Result<Response, PortalError> {
    enrol_page(
        &state,
        ctx,
        from,
        None,
        safe_next(q.next.as_deref()),
        StatusCode::OK,
    )
    .await
}

#[derive(Deserialize)]
pub struct EnrolForm {
    challenge_id: String,
    #[serde(default)]
    certificate_chain: String,
    #[serde(default)]
    signature: String,
    #[serde(default)]
    next: Option<String>,
}

/// The refusal in plain words: the hub's stable reason, or the used-up challenge.
fn refusal_text(t: &Tr, e: &HubError) -> Option<String> {
    match e {
        HubError::EnrolmentRefused { detail, .. } if detail.contains(CHALLENGE_GONE) => {
            Some(t.get("enrol-refused-challenge-gone"))
        }
        HubError::EnrolmentRefused { reason, .. } => {
            Some(t.get_or(&format!("enrol-refused-{reason}"), "enrol-refused-other"))
        }
        _ => None,
    }
}

/// Enrols: `Hub::enrol` checks the chain and the signature; on success the resident is
/// signed in and offered a passkey for this device. A refusal shows why, with a fresh
/// challenge and an empty form (the used challenge is gone, nothing was recorded).
pub async fn enrol(
    State(state): State<PortalState>,
    ctx: Ctx,
    from: PeerAddr,
    Form(form): Form<EnrolForm>,
) -> Result<Response, PortalError> {
    let next = safe_next(form.next.as_deref());
    let t = ctx.t;
    let Ok(challenge_id) = form.challenge_id.trim().parse::<uuid::Uuid>() else {
        let text = t.get("enrol-refused-challenge-gone");
        return enrol_page(
            &state,
            ctx,
            from,
            Some(text),
            next,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    let body = EnrolmentBody {
        challenge_id,
        certificate_chain: form.certificate_chain,
        signature: form.signature,
    };
    match state.hub.enrol(&body).await {
        Ok(outcome) => {
            let token = resident_token(&state, outcome.resident)?;
            let welcome = if outcome.new_resident {
                "enrolled"
            } else {
                "again"
            };
            let to = with_next(&format!("/portal/passkeys?done={welcome}"), next.as_deref());
            Ok(session_response(&token, &to))
        }
        Err(e) => match refusal_text(&t, &e) {
            Some(text) => {
                tracing::info!(
                    code = e.to_problem().code(),
                    "an enrolment in the portal was refused"
                );
                enrol_page(
                    &state,
                    ctx,
                    from,
                    Some(text),
                    next,
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await
            }
            None => Err(e.into()),
        },
    }
}

// ---------------------------------------------------------------- my passkeys

pub struct PasskeyRow {
    pub id: String,
    pub name: String,
    pub created: String,
    pub last_used: String,
}

#[derive(Template)]
#[template(path = "portal/passkeys.html")]
struct PasskeysPage {
    ctx: Ctx,
    done: Option<String>,
    /// Just enrolled: the offer to register a passkey comes first.
    enrolled: bool,
    passkeys: Vec<PasskeyRow>,
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct PasskeysQuery {
    #[serde(default)]
    done: Option<String>,
    #[serde(default)]
    next: Option<String>,
}

pub(crate) async fn account_holder(
    state: &PortalState,
    headers: &HeaderMap,
) -> Result<ResidentSession, PortalError> {
    let me = resident(&state.hub, headers)
        .await
        .ok_or(PortalError::SignedOut)?;
    // Passkeys are the resident's own: never managed by a proxy.
    me.hub
        .require(ProxyPermission::ManageAccount, None)
        .map_err(|_| PortalError::Refused("proxy-not-entrusted".into()))?;
    Ok(me)
}

/// "My passkeys": the list with a remove button each, and registering one on this device.
pub async fn passkeys(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
    Query(q): Query<PasskeysQuery>,
) -> Result<Response, PortalError> {
    let me = account_holder(&state, &headers).await?;
    let lang = ctx.lang;
    let t = ctx.t;
    let passkeys = state
        .hub
        .passkeys(me.id)
        .await?
        .into_iter()
        .map(|p| PasskeyRow {
            id: p.id,
            name: p.name,
            created: tokyo(p.created_at, lang),
            last_used: p
                .last_used_at
                .map_or_else(|| t.get("passkey-never-used"), |at| tokyo(at, lang)),
        })
        .collect();
    let done = q.done.filter(|d| {
        matches!(
            d.as_str(),
            "enrolled" | "again" | "added" | "removed" | "failed"
        )
    });
    render(
        &PasskeysPage {
            ctx: ctx.portal("passkeys-title", "/portal/passkeys", true),
            enrolled: matches!(done.as_deref(), Some("enrolled" | "again")),
            done: done.map(|d| t.get(&format!("passkeys-done-{d}"))),
            passkeys,
            next: safe_next(q.next.as_deref()),
        },
        StatusCode::OK,
    )
}

/// Starts registering a passkey on this device: the options for `navigator.credentials.create()`.
pub async fn passkey_register_start(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
) -> Response {
    let me = match account_holder(&state, &headers).await {
        Ok(me) => me,
        Err(PortalError::SignedOut) => {
            return passkey_problem(&ctx.t, &HubError::Unauthorized);
        }
        Err(_) => return passkey_problem(&ctx.t, &HubError::Forbidden(String::new())),
    };
    match state.hub.start_passkey_registration(me.id).await {
        Ok(start) => Json(start).into_response(),
        Err(e) => passkey_problem(&ctx.t, &e),
    }
}

#[derive(Deserialize)]
struct RegisterFinish {
    ceremony: uuid::Uuid,
    #[serde(default)]
    name: Option<String>,
    credential: PasskeyAttestation,
}

/// Finishes the registration; the script then shows the list again.
pub async fn passkey_register_finish(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let me = match account_holder(&state, &headers).await {
        Ok(me) => me,
        Err(PortalError::SignedOut) => {
            return passkey_problem(&ctx.t, &HubError::Unauthorized);
        }
        Err(_) => return passkey_problem(&ctx.t, &HubError::Forbidden(String::new())),
    };
    let Ok(body) = serde_json::from_slice::<RegisterFinish>(&body) else {
        return json_message(StatusCode::BAD_REQUEST, ctx.t.get("passkey-refused"));
    };
    match state
        .hub
        .finish_passkey_registration(me.id, body.ceremony, body.name, &body.credential)
        .await
    {
        Ok(_) => {
            Json(serde_json::json!({ "location": "/portal/passkeys?done=added" })).into_response()
        }
        Err(e) => passkey_problem(&ctx.t, &e),
    }
}

#[derive(Deserialize)]
pub struct RemoveForm {
    id: String,
}

/// Removes one of the resident's passkeys (a lost phone).
pub async fn passkey_remove(
    State(state): State<PortalState>,
    headers: HeaderMap,
    Form(form): Form<RemoveForm>,
) -> Result<Response, PortalError> {
    let me = account_holder(&state, &headers).await?;
    let done = match state.hub.remove_passkey(me.id, &form.id).await {
        Ok(()) => "removed",
        Err(HubError::NotFound(_)) => "failed",
        Err(e) => return Err(e.into()),
    };
    Ok(Redirect::to(&format!("/portal/passkeys?done={done}")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_on_this_site_are_kept_as_return_paths() {
        assert_eq!(
            safe_next(Some("/oauth/authorize?client_id=a&scope=openid")).as_deref(),
            Some("/oauth/authorize?client_id=a&scope=openid")
        );
        for bad in [
            "https://evil.example/",
            "//evil.example/x",
            "/\\evil.example",
            "javascript:alert(1)",
            "/portal\r\nSet-Cookie: x=1",
            "portal",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), None, "{bad:?}");
        }
        assert_eq!(safe_next(Some(&format!("/{}", "a".repeat(MAX_NEXT)))), None);
    }

    #[test]
    fn the_return_path_travels_url_encoded() {
        assert_eq!(
            with_next("/portal/sign-in", Some("/oauth/authorize?a=1&b=2")),
            "/portal/sign-in?next=%2Foauth%2Fauthorize%3Fa%3D1%26b%3D2"
        );
        assert_eq!(
            with_next("/portal/passkeys?done=enrolled", None),
            "/portal/passkeys?done=enrolled"
        );
    }
}
