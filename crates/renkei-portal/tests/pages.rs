//! Behaviour of the portal's pages over its router (in-process, real hub on SQLite): CSRF,
//! security headers, the language switch, and the consent switch.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Request, StatusCode, header};
use chrono::Utc;
use renkei_domain::{
    Actor, CategoryId, ConsentChannel, DataCategory, LegalBasis, LocalizedText, PurposeId,
    ResidentId, Service, ServiceId, ServiceStatus,
};
use renkei_hub::consents::GrantConsentBody;
use renkei_hub::{Hub, HubConfig};
use renkei_store::{PurposeDraft, SqliteStore, Store};
use tower::ServiceExt;

struct Town {
    app: Router,
    hub: Hub,
    resident: ResidentId,
    _dir: tempfile::TempDir,
}

async fn town() -> Town {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("t.db")).await.unwrap());
    let category = CategoryId::new("health.checkup").unwrap();
    store
        .put_category(&DataCategory {
            id: category.clone(),
            name: LocalizedText::new("健康診断結果", "Health check results"),
            special_care: true,
        })
        .await
        .unwrap();
    let service = Service {
        id: ServiceId::new("health-advice").unwrap(),
        name: LocalizedText::new("けんこうナビ", "Health Navi"),
        sector: "health".into(),
        hpke_public_key: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
        webhook_url: None,
        status: ServiceStatus::Approved,
    };
    store.put_service(&service, "x").await.unwrap();
    store
        .publish_purpose(
            &PurposeDraft {
                service: service.id.clone(),
                id: PurposeId::new("advice").unwrap(),
                title: LocalizedText::new("健康アドバイス", "Health advice"),
                description: LocalizedText::new("説明", "Description"),
                categories: BTreeSet::from([category]),
                retention_days: 365,
                legal_basis: LegalBasis::Consent,
            },
            Utc::now(),
        )
        .await
        .unwrap();
    let resident = ResidentId::from_uuid(uuid::Uuid::new_v4());
    store.add_resident(resident, Utc::now()).await.unwrap();
    let mut config = HubConfig::new("http://localhost:8080");
    config.demo_mode = true;
    let hub = Hub::start(config, store).await.unwrap();
    Town {
        app: renkei_portal::router(hub.clone()),
        hub,
        resident,
        _dir: dir,
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

/// A browser in miniature: keeps cookies between requests.
struct Browser {
    cookies: Vec<(String, String)>,
}

impl Browser {
    fn new() -> Self {
        Self {
            cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, app: &Router, request: Request<Body>) -> Answer {
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        for set in headers.get_all(header::SET_COOKIE) {
            let set = set.to_str().unwrap();
            let (pair, _) = set.split_once(';').unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            self.cookies.retain(|(name, _)| name != k);
            if !set.contains("Max-Age=0") {
                self.cookies.push((k.to_owned(), v.to_owned()));
            }
        }
        let body = to_bytes(response.into_body(), 1 << 22).await.unwrap();
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    async fn get(&mut self, app: &Router, path: &str) -> Answer {
        let request = Request::get(path)
            .header(header::HOST, "localhost:8080")
            .header(header::COOKIE, self.cookie_header())
            .body(Body::empty())
            .unwrap();
        self.send(app, request).await
    }

    async fn post(&mut self, app: &Router, path: &str, form: &[(&str, &str)]) -> Answer {
        let request = Request::post(path)
            .header(header::HOST, "localhost:8080")
            .header(header::ORIGIN, "http://localhost:8080")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, self.cookie_header())
            .body(Body::from(serde_urlencoded::to_string(form).unwrap()))
            .unwrap();
        self.send(app, request).await
    }

    /// The CSRF token of the first form on a page.
    fn csrf(page: &Answer) -> String {
        let at = page.body.find("name=\"csrf\" value=\"").expect("a form") + 19;
        page.body[at..].split('"').next().unwrap().to_owned()
    }

    async fn sign_in(&mut self, town: &Town) {
        let page = self.get(&town.app, "/portal/sign-in").await;
        let csrf = Self::csrf(&page);
        let resident = town.resident.to_string();
        let answer = self
            .post(
                &town.app,
                "/portal/sign-in/demo",
                &[("csrf", &csrf), ("resident", &resident)],
            )
            .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    }
}

async fn grant(town: &Town) -> String {
    let granted = town
        .hub
        .grant_consent(
            town.resident,
            GrantConsentBody {
                service: "health-advice".into(),
                purpose: "advice".into(),
                valid_days: None,
            },
            ConsentChannel::Portal,
            Actor::Resident,
        )
        .await
        .unwrap();
    granted.consent.id
}

#[tokio::test]
async fn a_post_without_its_csrf_token_is_forbidden_and_changes_nothing() {
    let town = town().await;
    let consent = grant(&town).await;
    let mut browser = Browser::new();
    browser.sign_in(&town).await;
    for token in ["", "forged"] {
        let answer = browser
            .post(
                &town.app,
                "/portal/services/switch",
                &[
                    ("csrf", token),
                    ("service", "health-advice"),
                    ("purpose", "advice"),
                    ("action", "stop"),
                    ("consent", &consent),
                ],
            )
            .await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN);
    }
    let consents = town.hub.consents(town.resident).await.unwrap();
    assert_eq!(consents[0].state, "active");
}

#[tokio::test]
async fn a_post_from_another_site_is_forbidden_even_with_a_token() {
    let town = town().await;
    let mut browser = Browser::new();
    let page = browser.get(&town.app, "/portal/sign-in").await;
    let csrf = Browser::csrf(&page);
    let request = Request::post("/portal/sign-in/demo")
        .header(header::HOST, "localhost:8080")
        .header(header::ORIGIN, "https://evil.example")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, browser.cookie_header())
        .body(Body::from(format!(
            "csrf={csrf}&resident={}",
            town.resident
        )))
        .unwrap();
    assert_eq!(
        browser.send(&town.app, request).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn every_page_carries_a_strict_content_security_policy_and_safe_cookies() {
    let town = town().await;
    let mut browser = Browser::new();
    let answer = browser.get(&town.app, "/portal/sign-in").await;
    let csp = answer.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(answer.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(answer.headers[header::REFERRER_POLICY], "same-origin");
    let cookie = answer.headers[header::SET_COOKIE].to_str().unwrap();
    for attribute in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!answer.body.contains("<script>"), "no inline script");
    assert!(!answer.body.contains("style="), "no inline style");
}

#[tokio::test]
async fn the_language_switch_keeps_the_page_and_the_choice_sticks() {
    let town = town().await;
    let mut browser = Browser::new();
    let ja = browser.get(&town.app, "/portal/sign-in").await;
    assert!(ja.body.contains("<html lang=\"ja\">"));
    assert!(ja.body.contains("href=\"/portal/sign-in?lang=en\""));
    let en = browser.get(&town.app, "/portal/sign-in?lang=en").await;
    assert!(en.body.contains("<html lang=\"en\">"));
    assert!(en.body.contains("<h1>Sign in</h1>"));
    let later = browser.get(&town.app, "/console/sign-in").await;
    assert!(later.body.contains("<html lang=\"en\">"));
}

#[tokio::test]
async fn a_purpose_switched_off_in_the_portal_is_revoked_and_shows_as_off() {
    let town = town().await;
    let consent = grant(&town).await;
    let mut browser = Browser::new();
    browser.sign_in(&town).await;
    let page = browser.get(&town.app, "/portal/services").await;
    assert!(page.body.contains("class=\"state on\""), "{}", page.body);
    let csrf = Browser::csrf(&page);
    let answer = browser
        .post(
            &town.app,
            "/portal/services/switch",
            &[
                ("csrf", &csrf),
                ("service", "health-advice"),
                ("purpose", "advice"),
                ("action", "stop"),
                ("consent", &consent),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    let consents = town.hub.consents(town.resident).await.unwrap();
    assert_eq!(consents[0].state, "revoked");
    let page = browser.get(&town.app, "/portal/services").await;
    assert!(page.body.contains("class=\"state off\""));
    assert!(page.body.contains("撤回済み"), "listed among past consents");
}

#[tokio::test]
async fn the_pages_of_a_resident_need_a_session() {
    let town = town().await;
    let mut browser = Browser::new();
    for path in ["/portal/services", "/portal/history"] {
        let answer = browser.get(&town.app, path).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(answer.headers[header::LOCATION], "/portal/sign-in");
    }
    let answer = browser.get(&town.app, "/console").await;
    assert_eq!(answer.headers[header::LOCATION], "/console/sign-in");
}

#[tokio::test]
async fn history_entries_carry_what_the_page_needs_to_check_them() {
    let town = town().await;
    grant(&town).await;
    let mut browser = Browser::new();
    browser.sign_in(&town).await;
    // Wait for the integrator to sign a checkpoint covering the grant.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let page = browser.get(&town.app, "/portal/history").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("data-checkpoint=\""));
    assert!(
        page.body.contains("data-has-proof=\"true\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("data-state=\"unchecked\""));
    assert!(page.body.contains("src=\"/static/history.js\""));
}

#[test]
fn every_message_exists_in_both_languages() {
    use renkei_portal::i18n::{Lang, message_ids};
    assert!(renkei_portal::i18n::all_files_parse());
    assert_eq!(message_ids(Lang::Ja), message_ids(Lang::En));
}
