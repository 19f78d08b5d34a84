//! The OpenID Connect authorization page (`/oauth/authorize`, the consent screen of flow 1
//! and 6): server-rendered, usable without JavaScript. It asks purpose by purpose — "For
//! *health advice*, may we receive your *payment data* and *medical data*? はい / いいえ" —
//! and whether the verified name may be shared, then hands the answers to
//! `Hub::complete_authorization` (or `Hub::deny_authorization` for "deny all").
//!
//! The request's parameters travel in the form and are checked again on POST with
//! `Hub::check_authorization_request`, never trusted as sent; each purpose's version travels
//! too, so an answer given to wording that has since changed is asked again. A request whose
//! client or redirect URI cannot be trusted is shown as a page, never redirected.

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use renkei_domain::{ConsentState, PurposeId};
use renkei_hub::HubError;
use renkei_hub::auth::ProxyPermission;
use renkei_hub::oidc::{AuthorizationParams, AuthorizationRequest, AuthorizeError, ConsentAnswers};

use crate::PortalState;
use crate::ctx::Ctx;
use crate::error::PortalError;
use crate::extract::Form;
use crate::i18n::{Lang, Tr};
use crate::identity::with_next;
use crate::resident::{CategoryChip, chips};
use crate::security::policy_with_form_target;
use crate::session::{ResidentSession, resident};
use crate::time::tokyo_date;

/// One purpose, asked on its own.
pub struct PurposeQuestion {
    pub id: String,
    pub version: u32,
    /// The question, as safe HTML (the purpose and the data emphasised, each escaped).
    pub question: String,
    pub description: String,
    pub categories: Vec<CategoryChip>,
    pub retention: String,
    /// When the resident already agreed to this version (date), to say so.
    pub already: Option<String>,
    /// The answer given before the page was shown again: `yes`, `no` or empty.
    pub answer: String,
}

#[derive(Template)]
#[template(path = "portal/authorize.html")]
struct AuthorizePage {
    ctx: Ctx,
    service: String,
    /// Where the resident goes back to (the redirect URI's host), so they know.
    return_host: String,
    purposes: Vec<PurposeQuestion>,
    profile: bool,
    profile_answer: String,
    /// The request's parameters, sent back with the answers.
    hidden: Vec<(String, String)>,
    problem: Option<String>,
    acting_as_proxy: bool,
}

#[derive(Template)]
#[template(path = "portal/authorize_error.html")]
struct AuthorizeErrorPage {
    ctx: Ctx,
    message: String,
    detail: String,
}

/// HTML-escapes text for the question's pieces.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Joins names as the language lists them ("A, B and C"; 「A、BとC」).
fn join_names(t: &Tr, names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!(
            "{}{}{}",
            init.join(&t.get("list-sep")),
            t.get("list-last-sep"),
            last
        ),
    }
}

/// "For *purpose*, may we receive your *data*?" as safe HTML: the message is formatted with
/// markers, escaped as a whole, and the markers become the escaped, emphasised pieces.
fn question_html(t: &Tr, purpose: &str, categories: &[String]) -> String {
    const P: &str = "\u{E000}";
    const C: &str = "\u{E001}";
    let text = t.arg2("authorize-question", ("purpose", &P), ("data", &C));
    let data = categories
        .iter()
        .map(|c| format!("<strong>{}</strong>", escape(c)))
        .collect::<Vec<_>>();
    escape(&text)
        .replace(P, &format!("<strong>{}</strong>", escape(purpose)))
        .replace(C, &join_names(t, &data))
}

/// `scheme://host[:port]` of a URL, for the page's `form-action` and for display.
fn origin_of(url: &str) -> Option<(String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = &rest[..end];
    (!host.is_empty() && !host.contains('@'))
        .then(|| (format!("{scheme}://{host}"), host.to_owned()))
}

/// The parameters as they travel in the form (only those given).
fn hidden_fields(p: &AuthorizationParams) -> Vec<(String, String)> {
    [
        ("response_type", &p.response_type),
        ("client_id", &p.client_id),
        ("redirect_uri", &p.redirect_uri),
        ("scope", &p.scope),
        ("state", &p.state),
        ("nonce", &p.nonce),
        ("code_challenge", &p.code_challenge),
        ("code_challenge_method", &p.code_challenge_method),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| (k.to_owned(), v.clone())))
    .collect()
}

/// Where sign-in sends the resident back to: this request, as a GET.
fn return_path(p: &AuthorizationParams) -> String {
    let q = serde_urlencoded::to_string(hidden_fields(p)).unwrap_or_default();
    format!("/oauth/authorize?{q}")
}

fn error_page(ctx: Ctx, e: &HubError) -> Result<Response, PortalError> {
    let message = ctx.t.get("authorize-error-body");
    let page = AuthorizeErrorPage {
        ctx: ctx.portal("authorize-error-title", "", false),
        message,
        // The hub's own words: names the client id or redirect URI, never personal data.
        detail: e.to_string(),
    };
    Ok((
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page.render()?,
    )
        .into_response())
}

/// Checks the request: the checked request, or the response that ends the matter.
async fn checked(
    state: &PortalState,
    ctx: &Ctx,
    params: &AuthorizationParams,
) -> Result<Result<AuthorizationRequest, Response>, PortalError> {
    match state.hub.check_authorization_request(params).await {
        Ok(request) => Ok(Ok(request)),
        Err(AuthorizeError::Show(e)) => Ok(Err(error_page(ctx.clone(), &e)?)),
        Err(AuthorizeError::Redirect(url)) => Ok(Err(Redirect::to(&url).into_response())),
    }
}

async fn render_page(
    state: &PortalState,
    ctx: Ctx,
    me: &ResidentSession,
    params: &AuthorizationParams,
    request: &AuthorizationRequest,
    given: &[(String, String)],
    problem: Option<String>,
) -> Result<Response, PortalError> {
    let lang: Lang = ctx.lang;
    let t = ctx.t;
    let vocabulary = state.hub.categories().await?;
    // What the resident agreed to before, to say so; a proxy not entrusted with reading
    // consents is not told.
    let consents = match state.hub.consents(&me.hub).await {
        Ok(consents) => consents,
        Err(HubError::Forbidden(_)) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let answer_of = |key: &str| {
        given
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .filter(|v| v == "yes" || v == "no")
            .unwrap_or_default()
    };
    let purposes = request
        .purposes
        .iter()
        .map(|p| {
            let ids: Vec<String> = p.categories.iter().map(|c| c.to_string()).collect();
            let categories = chips(&ids, &vocabulary, lang);
            let names: Vec<String> = categories.iter().map(|c| c.name.clone()).collect();
            let title = lang.pick(&p.title.ja, &p.title.en).to_owned();
            let already = consents
                .iter()
                .find(|c| {
                    c.service == request.service.id.as_str()
                        && c.purpose == p.id.as_str()
                        && c.purpose_version == p.version
                        && c.state == ConsentState::Active.as_str()
                })
                .map(|c| tokyo_date(c.granted_at, lang));
            PurposeQuestion {
                id: p.id.to_string(),
                version: p.version,
                question: question_html(&t, &title, &names),
                description: lang.pick(&p.description.ja, &p.description.en).to_owned(),
                categories,
                retention: t.count("retention-days", "days", p.retention_days as usize),
                already,
                answer: answer_of(&format!("answer-{}", p.id)),
            }
        })
        .collect();
    let origin = origin_of(&request.redirect_uri);
    let page = AuthorizePage {
        service: lang
            .pick(&request.service.name.ja, &request.service.name.en)
            .to_owned(),
        return_host: origin.as_ref().map(|(_, h)| h.clone()).unwrap_or_default(),
        purposes,
        profile: request.profile,
        profile_answer: answer_of("share_profile"),
        hidden: hidden_fields(params),
        problem,
        acting_as_proxy: me.hub.proxy.is_some(),
        ctx: ctx.portal("authorize-title", "", true),
    };
    let status = if page.problem.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page.render()?,
    )
        .into_response();
    // The answer's redirect leaves this site: the page's policy must allow that one origin.
    if let Some(policy) = origin.and_then(|(o, _)| policy_with_form_target(&o)) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    Ok(response)
}

/// GET: check the request; not signed in → sign in and come back; else ask.
pub async fn authorize_page(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, PortalError> {
    let params: AuthorizationParams =
        serde_urlencoded::from_str(query.as_deref().unwrap_or_default()).unwrap_or_default();
    let request = match checked(&state, &ctx, &params).await? {
        Ok(r) => r,
        Err(response) => return Ok(response),
    };
    let Some(me) = resident(&state.hub, &headers).await else {
        let to = with_next("/portal/sign-in", Some(&return_path(&params)));
        return Ok(Redirect::to(&to).into_response());
    };
    // A proxy signs in to a service for the resident only when entrusted with it, for that
    // service: refused before the page, not only when answered.
    me.hub
        .require(ProxyPermission::SignInToServices, Some(&request.service.id))?;
    render_page(&state, ctx, &me, &params, &request, &[], None).await
}

/// The value of form field `key`.
fn field<'a>(form: &'a [(String, String)], key: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// POST: the answers. Re-checks the request, then completes, denies, or asks again.
pub async fn authorize_answer(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, PortalError> {
    let get = |k: &str| field(&form, k).map(str::to_owned);
    let params = AuthorizationParams {
        response_type: get("response_type"),
        client_id: get("client_id"),
        redirect_uri: get("redirect_uri"),
        scope: get("scope"),
        state: get("state"),
        nonce: get("nonce"),
        code_challenge: get("code_challenge"),
        code_challenge_method: get("code_challenge_method"),
    };
    let request = match checked(&state, &ctx, &params).await? {
        Ok(r) => r,
        Err(response) => return Ok(response),
    };
    // "Deny all / cancel" needs no session: the service is told, nothing is recorded.
    if field(&form, "decision") == Some("deny") {
        return Ok(Redirect::to(&state.hub.deny_authorization(&request)).into_response());
    }
    let Some(me) = resident(&state.hub, &headers).await else {
        let to = with_next("/portal/sign-in", Some(&return_path(&params)));
        return Ok(Redirect::to(&to).into_response());
    };
    // A proxy signs in to a service for the resident only when entrusted with it, for that
    // service: refused before the page, not only when answered.
    me.hub
        .require(ProxyPermission::SignInToServices, Some(&request.service.id))?;
    let t = ctx.t;
    let mut answers = ConsentAnswers::default();
    for p in &request.purposes {
        // The wording answered must be the wording in force now.
        if field(&form, &format!("version-{}", p.id)) != Some(p.version.to_string().as_str()) {
            let problem = Some(t.get("authorize-changed"));
            return render_page(&state, ctx, &me, &params, &request, &[], problem).await;
        }
        match field(&form, &format!("answer-{}", p.id)) {
            Some("yes") => {
                answers.yes.insert(PurposeId::clone(&p.id));
            }
            Some("no") => {}
            _ => {
                let problem = Some(t.get("authorize-answer-each"));
                return render_page(&state, ctx, &me, &params, &request, &form, problem).await;
            }
        }
    }
    if request.profile {
        match field(&form, "share_profile") {
            Some("yes") => answers.share_profile = true,
            Some("no") => {}
            _ => {
                let problem = Some(t.get("authorize-answer-each"));
                return render_page(&state, ctx, &me, &params, &request, &form, problem).await;
            }
        }
    }
    match state
        .hub
        .complete_authorization(&me.hub, &request, &answers)
        .await
    {
        Ok(url) => Ok(Redirect::to(&url).into_response()),
        Err(HubError::Forbidden(_)) => {
            let problem = Some(t.get("authorize-proxy-not-entrusted"));
            render_page(&state, ctx, &me, &params, &request, &form, problem).await
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_question_emphasises_purpose_and_data_and_escapes_them() {
        let en = Tr::new(Lang::En);
        let html = question_html(
            &en,
            "Health <advice>",
            &["Payment history".into(), "Checkups & more".into()],
        );
        assert_eq!(
            html,
            "For <strong>Health &lt;advice&gt;</strong>, may we receive your \
             <strong>Payment history</strong> and <strong>Checkups &amp; more</strong>?"
        );
        let ja = Tr::new(Lang::Ja);
        let html = question_html(&ja, "健康アドバイス", &["支払い履歴".into(), "健診".into()]);
        assert!(html.contains("<strong>健康アドバイス</strong>"), "{html}");
        assert!(
            html.contains("<strong>支払い履歴</strong>と<strong>健診</strong>"),
            "{html}"
        );
    }

    #[test]
    fn the_return_origin_is_scheme_and_host_only() {
        assert_eq!(
            origin_of("http://localhost:8090/health-advice/callback?x=1"),
            Some((
                "http://localhost:8090".to_owned(),
                "localhost:8090".to_owned()
            ))
        );
        assert_eq!(origin_of("https://user@evil.example/cb"), None);
        assert_eq!(origin_of("no-scheme"), None);
    }
}
