//! What every portal response and form goes through: security headers (a strict
//! Content-Security-Policy and friends), cookies (`Secure; HttpOnly; SameSite=Lax`), the
//! language switch, and CSRF protection on every state-changing request.
//!
//! CSRF: a double-submit token tied to the session. The browser holds a random
//! `__Host-renkei-csrf` cookie; each form carries `csrf = HMAC-SHA256(cookie, sessions)`,
//! where `sessions` are the resident and operator session cookies as sent. A cross-site page
//! can neither read the cookie nor plant one (the `__Host-` prefix forbids a `Domain`), and a
//! token minted for one session is worthless in another. Every POST without the right token
//! (form field `csrf` or header `x-csrf-token`) is refused with 403 before any handler runs;
//! a POST whose `Origin` names another site is refused too (the `Referrer-Policy` is
//! `same-origin`, so browsers send a real `Origin` on same-site form posts, not `null`).

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::i18n::{Lang, Tr};

pub const CSRF_COOKIE: &str = "__Host-renkei-csrf";
pub const SESSION_COOKIE: &str = "__Host-renkei-session";
pub const OPERATOR_COOKIE: &str = "__Host-renkei-operator";
/// A proxy's own session, kept aside while they act for someone (the way back).
pub const OWN_SESSION_COOKIE: &str = "__Host-renkei-own-session";
pub const LANG_COOKIE: &str = "lang";
/// The form field and header that carry the CSRF token.
pub const CSRF_FIELD: &str = "csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The biggest form body the portal reads (forms are small; a certificate chain fits).
const MAX_FORM_BYTES: usize = 64 * 1024;

/// No inline script or style, nothing from elsewhere, never framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
    form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// The value of cookie `name` in a request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value: `Secure; HttpOnly; SameSite=Lax; Path=/`, for `max_age` seconds
/// (0 deletes it; `None` lasts the browser session).
pub fn set_cookie(name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let mut s = format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        s.push_str(&format!("; Max-Age={age}"));
    }
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The CSRF token for a browser cookie and the sessions it holds.
#[expect(clippy::unreachable, reason = "HMAC takes keys of any length")]
pub fn csrf_token(csrf_cookie: &str, headers: &HeaderMap) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(csrf_cookie.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(b"renkei-portal-csrf-v1\0");
    mac.update(cookie(headers, SESSION_COOKIE).unwrap_or("").as_bytes());
    mac.update(b"\0");
    mac.update(cookie(headers, OPERATOR_COOKIE).unwrap_or("").as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

fn tokens_equal(a: &str, b: &str) -> bool {
    use sha2::Digest;
    // Compare digests so the time taken says nothing about where the strings differ.
    let (da, db) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    da.iter()
        .zip(db.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// What the middleware learnt about a request, for the page it renders.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub lang: Lang,
    pub csrf: String,
}

fn query_lang(request: &Request) -> Option<Lang> {
    request
        .uri()
        .query()?
        .split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == "lang")
        .and_then(|(_, v)| Lang::parse(v))
}

/// Whether an `Origin` header, if present, names this host.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest.trim_end_matches('/') == host)
}

fn forbidden(lang: Lang) -> Response {
    let tr = Tr::new(lang);
    let body = format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <link rel=\"stylesheet\" href=\"/static/portal.css\"></head><body><main id=\"main\">\
         <h1>{}</h1><p>{}</p><p><a href=\"/portal\">{}</a></p></main></body></html>",
        lang.code(),
        tr.get("csrf-title"),
        tr.get("csrf-title"),
        tr.get("csrf-body"),
        tr.get("back-to-portal"),
    );
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

/// The form field `csrf` of a URL-encoded body.
fn form_token(body: &[u8]) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == CSRF_FIELD)
        .map(|(_, v)| v)
}

/// The portal's middleware: language, CSRF, security headers and cookies.
pub async fn protect(request: Request, next: Next) -> Response {
    let headers = request.headers().clone();
    let switched = query_lang(&request);
    let lang = switched
        .or_else(|| cookie(&headers, LANG_COOKIE).and_then(Lang::parse))
        .unwrap_or_default();
    let existing = cookie(&headers, CSRF_COOKIE)
        .filter(|c| c.len() == 43)
        .map(str::to_owned);
    let csrf_cookie = existing.clone().unwrap_or_else(random_token);
    let expected = csrf_token(&csrf_cookie, &headers);

    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let mut request = request;
    if !safe {
        if existing.is_none() || !same_origin(&headers) {
            return secure(forbidden(lang), true);
        }
        let from_header = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let (parts, body) = request.into_parts();
        let Ok(bytes) = to_bytes(body, MAX_FORM_BYTES).await else {
            return secure(
                (StatusCode::PAYLOAD_TOO_LARGE, "too large").into_response(),
                true,
            );
        };
        let is_form = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let given = from_header.or_else(|| if is_form { form_token(&bytes) } else { None });
        if !given.is_some_and(|g| tokens_equal(&g, &expected)) {
            return secure(forbidden(lang), true);
        }
        request = Request::from_parts(parts, Body::from(bytes));
    }

    let is_static = request.uri().path().starts_with("/static/");
    request.extensions_mut().insert(RequestContext {
        lang,
        csrf: expected,
    });
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    if existing.is_none() {
        h.append(
            header::SET_COOKIE,
            set_cookie(CSRF_COOKIE, &csrf_cookie, None),
        );
    }
    if let Some(lang) = switched {
        h.append(
            header::SET_COOKIE,
            set_cookie(LANG_COOKIE, lang.code(), Some(365 * 24 * 3600)),
        );
    }
    secure(response, !is_static)
}

/// The policy of a page whose form may end at `origin` (a checked `scheme://host[:port]`):
/// Chromium applies `form-action` to the redirects after a form's submission too, so the
/// OpenID consent page must name the service it sends the resident back to. `None` when the
/// origin is not one a policy can safely name.
pub fn policy_with_form_target(origin: &str) -> Option<HeaderValue> {
    let (scheme, host) = origin.split_once("://")?;
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    if !matches!(scheme, "http" | "https") || !host_ok {
        return None;
    }
    let policy = CONTENT_SECURITY_POLICY.replace(
        "form-action 'self'",
        &format!("form-action 'self' {scheme}://{host}"),
    );
    HeaderValue::from_str(&policy).ok()
}

/// Adds the security headers; pages (not static files) are never cached. A page that set
/// its own policy (only ever [`policy_with_form_target`]) keeps it.
fn secure(mut response: Response, page: bool) -> Response {
    let h = response.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), interest-cohort=()"),
    );
    if page {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_changes_with_the_session() {
        let mut headers = HeaderMap::new();
        let before = csrf_token("c", &headers);
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("__Host-renkei-session=abc"),
        );
        assert_ne!(before, csrf_token("c", &headers));
        assert_ne!(csrf_token("c", &headers), csrf_token("d", &headers));
    }

    #[test]
    fn cookies_are_found_among_several() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; lang=en; b=2"),
        );
        assert_eq!(cookie(&headers, "lang"), Some("en"));
        assert_eq!(cookie(&headers, "c"), None);
    }

    #[test]
    fn a_form_target_widens_only_form_action_and_only_for_a_plain_origin() {
        let policy = policy_with_form_target("https://app.example:8443").unwrap();
        let policy = policy.to_str().unwrap();
        assert!(policy.contains("form-action 'self' https://app.example:8443;"));
        assert!(policy.contains("script-src 'self';"));
        assert!(policy_with_form_target("https://a.example; script-src *").is_none());
        assert!(policy_with_form_target("javascript://x").is_none());
        assert!(policy_with_form_target("https://").is_none());
    }

    #[test]
    fn a_foreign_origin_is_not_the_same_origin() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_origin(&headers));
    }
}
