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

// Arbitrary form bodies and queries on every form and page.
mod forms;
// Requests' due dates: the overdue ones flagged in the console, extensions with a reason.
mod deadlines;
// The disclosure page, and operators' look-ups in a resident's history.
mod disclosure;
// The city's counter and the public receipt check.
mod counter;

struct Town {
    app: Router,
    hub: Hub,
    resident: ResidentId,
    /// The development CA the hub trusts (as JPKI's root), and a card it revoked.
    ca: renkei_identity::DevCa,
    revoked_card: renkei_identity::IssuedCertificate,
    _dir: tempfile::TempDir,
}

/// The OpenID client of `health-advice`: its secret and its one registered redirect URI.
const CLIENT_SECRET: &str = "health-advice-secret";
const REDIRECT_URI: &str = "https://navi.example/callback";

async fn town() -> Town {
    town_with(renkei_hub::limits::RateLimits::GENEROUS).await
}

async fn town_with(limits: renkei_hub::limits::RateLimits) -> Town {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("t.db")).await.unwrap());
    let category = CategoryId::new("health.checkup").unwrap();
    store
        .put_category(&DataCategory {
            id: category.clone(),
            name: LocalizedText::new("健康診断結果", "Health check results"),
            special_care: true,
            location: false,
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
    store
        .put_service(
            &service,
            &renkei_hub::auth::hash_client_secret(CLIENT_SECRET),
        )
        .await
        .unwrap();
    store
        .put_service_client(&renkei_domain::ServiceClient {
            service: service.id.clone(),
            redirect_uris: vec![REDIRECT_URI.into()],
            privacy_impact: Default::default(),
            registered_at: Utc::now(),
            id_token_signed_response_alg: renkei_domain::SigningAlg::default(),
            controller: None,
        })
        .await
        .unwrap();
    let payments = CategoryId::new("payment.history").unwrap();
    store
        .put_category(&DataCategory {
            id: payments.clone(),
            name: LocalizedText::new("支払い履歴", "Payment history"),
            special_care: false,
            location: false,
        })
        .await
        .unwrap();
    store
        .publish_purpose(
            &PurposeDraft {
                service: service.id.clone(),
                id: PurposeId::new("coupons").unwrap(),
                title: LocalizedText::new("クーポン", "Coupons"),
                description: LocalizedText::new("説明", "Description"),
                categories: BTreeSet::from([payments]),
                retention_days: 30,
                legal_basis: LegalBasis::Consent,
                emergency_only: false,
                location: None,
            },
            Utc::now(),
        )
        .await
        .unwrap();
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
                emergency_only: false,
                location: None,
            },
            Utc::now(),
        )
        .await
        .unwrap();
    let resident = ResidentId::from_uuid(uuid::Uuid::new_v4());
    store.add_resident(resident, Utc::now()).await.unwrap();
    let mut ca =
        renkei_identity::DevCa::generate(renkei_identity::KeyAlgorithm::EcdsaP256).unwrap();
    let revoked_card = card(&ca, Utc::now(), 365);
    ca.revoke(&revoked_card.serial);
    let anchors = renkei_identity::TrustAnchors::new(&[ca.root_der()])
        .unwrap()
        .with_crls(&[ca.crl_der().unwrap()])
        .unwrap();
    let mut config = HubConfig::new("http://localhost:8080", renkei_hub::kek::Kek::generate());
    config.demo_mode = true;
    config.allow_local_network = true;
    config.trust_anchors = Some(Arc::new(anchors));
    config.limits = limits;
    let hub = Hub::start(config, store).await.unwrap();
    Town {
        app: with_peer(renkei_portal::router(hub.clone())),
        hub,
        resident,
        ca,
        revoked_card,
        _dir: dir,
    }
}

/// `app` as the binary serves it: each request knows the address it came from.
fn with_peer(app: Router) -> Router {
    app.layer(axum::extract::connect_info::MockConnectInfo(
        std::net::SocketAddr::from(([127, 0, 0, 1], 40_000)),
    ))
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

    /// Turns the town's health-advice purpose off on `/portal/services`, with `csrf`.
    async fn switch_off(&mut self, app: &Router, csrf: &str, consent: &str) -> Answer {
        let form = [
            ("csrf", csrf),
            ("service", "health-advice"),
            ("purpose", "advice"),
            ("action", "stop"),
            ("consent", consent),
        ];
        self.post(app, "/portal/services/switch", &form).await
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

/// The town's resident signed in as themselves, as the hub sees the session.
fn me(town: &Town) -> renkei_hub::auth::ResidentSession {
    renkei_hub::auth::ResidentSession::resident(town.resident)
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
        let answer = browser.switch_off(&town.app, token, &consent).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN);
    }
    let consents = town.hub.consents(&me(&town)).await.unwrap();
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
    let answer = browser.switch_off(&town.app, &csrf, &consent).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    let consents = town.hub.consents(&me(&town)).await.unwrap();
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
async fn the_console_refuses_an_operator_token_for_an_operator_id_that_does_not_exist() {
    let town = town().await;
    let mut real = Browser::new();
    real.operator(&town).await;
    assert_eq!(real.get(&town.app, "/console").await.status, StatusCode::OK);
    // A token signed with the hub's own key (as one forged with a key read from a copy of the
    // database would be) for an id the operators table does not hold.
    let ghost = renkei_domain::OperatorId::new("ghost").unwrap();
    let forged = town
        .hub
        .keys()
        .issue_operator_token(&ghost, Utc::now())
        .unwrap();
    let mut intruder = Browser::new();
    intruder
        .cookies
        .push(("__Host-renkei-operator".into(), forged));
    for path in ["/console", "/console/requests", "/console/audit"] {
        let answer = intruder.get(&town.app, path).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(
            answer.headers[header::LOCATION],
            "/console/sign-in",
            "{path}"
        );
    }
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

// ------------------------------------------------ requests, proxies, audit, paging

/// A second person of the town, who may be appointed as a proxy (or be an operator).
async fn another_resident(town: &Town) -> ResidentId {
    let id = ResidentId::from_uuid(uuid::Uuid::new_v4());
    town.hub.store().add_resident(id, Utc::now()).await.unwrap();
    id
}

impl Browser {
    async fn sign_in_as(&mut self, town: &Town, resident: ResidentId) {
        let page = self.get(&town.app, "/portal/sign-in").await;
        let csrf = Self::csrf(&page);
        let answer = self
            .post(
                &town.app,
                "/portal/sign-in/demo",
                &[("csrf", &csrf), ("resident", &resident.to_string())],
            )
            .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    }

    /// Signs in to the console as a new operator.
    async fn operator(&mut self, town: &Town) {
        let identity = another_resident(town).await;
        town.hub
            .add_operator(
                renkei_domain::OperatorId::new("tanaka").unwrap(),
                "田中".into(),
                identity,
            )
            .await
            .unwrap();
        let page = self.get(&town.app, "/console/sign-in").await;
        let csrf = Self::csrf(&page);
        let answer = self
            .post(
                &town.app,
                "/console/sign-in/demo",
                &[("csrf", &csrf), ("identity", &identity.to_string())],
            )
            .await;
        assert_eq!(answer.headers[header::LOCATION], "/console");
    }
}

/// The resident appoints a proxy with `scope` (form fields) on the proxies page; the proxy,
/// signed in as themselves in `proxy`, accepts the code and acts for the resident.
async fn appoint(
    town: &Town,
    resident: &mut Browser,
    proxy: &mut Browser,
    scope: &[(&str, &str)],
) -> ResidentId {
    let page = resident.get(&town.app, "/portal/proxies").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let csrf = Browser::csrf(&page);
    let mut form = vec![("csrf", csrf.as_str()), ("label", "娘")];
    form.extend_from_slice(scope);
    let shown = resident
        .post(&town.app, "/portal/proxies/invite", &form)
        .await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    let at = shown
        .body
        .find("one-time-code\">")
        .expect("the code is shown")
        + 15;
    let code = shown.body[at..].split('<').next().unwrap().to_owned();
    let someone = another_resident(town).await;
    proxy.sign_in_as(town, someone).await;
    let page = proxy.get(&town.app, "/portal/proxies").await;
    let csrf = Browser::csrf(&page);
    let accepted = proxy
        .post(
            &town.app,
            "/portal/acting/accept",
            &[("csrf", &csrf), ("code", &code)],
        )
        .await;
    assert_eq!(accepted.status, StatusCode::SEE_OTHER, "{}", accepted.body);
    let home = proxy.get(&town.app, "/portal").await;
    assert!(
        home.body.contains("class=\"acting-banner\""),
        "{}",
        home.body
    );
    someone
}

#[tokio::test]
async fn a_resident_files_a_disclosure_request_and_reads_the_operators_answer() {
    let town = town().await;
    let mut browser = Browser::new();
    browser.sign_in(&town).await;
    let page = browser.get(&town.app, "/portal/requests").await;
    assert_eq!(page.status, StatusCode::OK);
    let file = |csrf: String| {
        vec![
            ("csrf", csrf),
            ("kind", "disclosure".to_owned()),
            ("service", "health-advice".to_owned()),
            ("details", "健診結果の保有内容を見せてください".to_owned()),
        ]
    };
    async fn post(browser: &mut Browser, app: &Router, form: Vec<(&str, String)>) -> Answer {
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        browser.post(app, "/portal/requests", &pairs).await
    }
    // Without its CSRF token the request is refused and nothing is filed.
    let refused = post(&mut browser, &town.app, file(String::new())).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let me = renkei_hub::auth::ResidentSession::resident(town.resident);
    assert!(town.hub.requests_of(&me).await.unwrap().is_empty());
    let filed = post(&mut browser, &town.app, file(Browser::csrf(&page))).await;
    assert_eq!(filed.status, StatusCode::SEE_OTHER, "{}", filed.body);
    let page = browser.get(&town.app, "/portal/requests?done=filed").await;
    assert!(
        page.body.contains("data-status=\"received\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("健診結果の保有内容を見せてください"));
    assert!(page.body.contains("まだ回答はありません"));

    let mut operator = Browser::new();
    operator.operator(&town).await;
    let queue = operator.get(&town.app, "/console/requests").await;
    assert_eq!(queue.status, StatusCode::OK, "{}", queue.body);
    let id = town.hub.requests_of(&me).await.unwrap()[0].id.to_string();
    assert!(queue.body.contains(&format!("id=\"r-{id}\"")));
    let csrf = Browser::csrf(&queue);
    let answered = operator
        .post(
            &town.app,
            &format!("/console/requests/{id}/answer"),
            &[
                ("csrf", &csrf),
                ("status", "completed"),
                ("response", "保有内容を郵送しました"),
            ],
        )
        .await;
    assert_eq!(answered.status, StatusCode::SEE_OTHER, "{}", answered.body);
    let page = browser.get(&town.app, "/portal/requests").await;
    assert!(page.body.contains("data-status=\"completed\""));
    assert!(page.body.contains("保有内容を郵送しました"));
    let queue = operator.get(&town.app, "/console/requests").await;
    assert!(
        !queue.body.contains(&format!("id=\"r-{id}\"")),
        "no longer open"
    );
}

#[tokio::test]
async fn a_proxy_without_a_permission_neither_sees_nor_may_use_it() {
    let town = town().await;
    grant(&town).await;
    let (mut resident, mut proxy) = (Browser::new(), Browser::new());
    resident.sign_in(&town).await;
    appoint(&town, &mut resident, &mut proxy, &[("view_history", "on")]).await;
    let home = proxy.get(&town.app, "/portal").await;
    assert!(home.body.contains("href=\"/portal/history\""));
    assert!(!home.body.contains("href=\"/portal/requests\""));
    assert!(!home.body.contains("href=\"/portal/proxies\""));
    let requests = proxy.get(&town.app, "/portal/requests").await;
    assert_eq!(requests.status, StatusCode::FORBIDDEN);
    let services = proxy.get(&town.app, "/portal/services").await;
    assert!(!services.body.contains("name=\"action\""), "no switch");
    let csrf = Browser::csrf(&services);
    let filed = proxy
        .post(
            &town.app,
            "/portal/requests",
            &[("csrf", &csrf), ("kind", "deletion"), ("details", "x")],
        )
        .await;
    assert_eq!(filed.status, StatusCode::FORBIDDEN);
    let me = renkei_hub::auth::ResidentSession::resident(town.resident);
    assert!(town.hub.requests_of(&me).await.unwrap().is_empty());
    assert_eq!(
        proxy.get(&town.app, "/portal/proxies").await.status,
        StatusCode::FORBIDDEN,
        "appointing is never delegated"
    );
    assert_eq!(
        proxy.get(&town.app, "/portal/history").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn ending_an_appointment_stops_the_proxys_session_at_once() {
    let town = town().await;
    let consent = grant(&town).await;
    let (mut resident, mut proxy) = (Browser::new(), Browser::new());
    resident.sign_in(&town).await;
    appoint(
        &town,
        &mut resident,
        &mut proxy,
        &[("manage_consents", "on"), ("file_requests", "on")],
    )
    .await;
    // The proxy turns the purpose off; the resident sees it as done by their proxy.
    let services = proxy.get(&town.app, "/portal/services").await;
    let csrf = Browser::csrf(&services);
    let answer = proxy.switch_off(&town.app, &csrf, &consent).await;
    assert_eq!(
        answer.headers[header::LOCATION],
        "/portal/services?done=stopped#p-health-advice-advice"
    );
    let page = resident.get(&town.app, "/portal/proxies").await;
    assert!(page.body.contains("同意を撤回しました"), "{}", page.body);
    let csrf = Browser::csrf(&page);
    let id = town.hub.store().proxies_of(town.resident).await.unwrap()[0].id;
    let ended = resident
        .post(
            &town.app,
            &format!("/portal/proxies/{id}/end"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(ended.status, StatusCode::SEE_OTHER);
    // The proxy's very next page load no longer acts for the resident.
    let next = proxy.get(&town.app, "/portal/services").await;
    assert_eq!(next.headers[header::LOCATION], "/portal/acting/ended");
    let back = proxy.get(&town.app, "/portal/acting/ended").await;
    assert_eq!(
        back.headers[header::LOCATION],
        "/portal/proxies?done=acting-ended"
    );
    let own = proxy
        .get(&town.app, "/portal/proxies?done=acting-ended")
        .await;
    assert_eq!(own.status, StatusCode::OK);
    assert!(!own.body.contains("class=\"acting-banner\""));
    assert!(own.body.contains("代理を依頼した方が依頼を終了しました"));
}

#[tokio::test]
async fn the_audit_search_returns_only_entries_that_match_its_filters() {
    let town = town().await;
    let store = &town.hub.store();
    let subject = renkei_domain::ServiceSubject::new("subject-of-the-resident").unwrap();
    store
        .link_subject("health", &subject, town.resident)
        .await
        .unwrap();
    let ask = || renkei_store::DecisionInput {
        request: renkei_domain::DataRequest {
            id: renkei_domain::RequestId::from_uuid(uuid::Uuid::new_v4()),
            service: ServiceId::new("health-advice").unwrap(),
            purpose: PurposeId::new("advice").unwrap(),
            categories: BTreeSet::from([CategoryId::new("health.checkup").unwrap()]),
        },
        subject: subject.clone(),
        token_id: None,
    };
    store.decide_and_record(&[ask()], Utc::now()).await.unwrap(); // denied: no consent
    grant(&town).await;
    store.decide_and_record(&[ask()], Utc::now()).await.unwrap(); // granted
    let mut operator = Browser::new();
    operator.operator(&town).await;
    let rows = |page: &Answer, outcome: &str| {
        page.body
            .matches(&format!("data-outcome=\"{outcome}\""))
            .count()
    };
    let all = operator
        .get(
            &town.app,
            "/console/audit?service=health-advice&reason=review",
        )
        .await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(
        (
            rows(&all, "granted"),
            rows(&all, "denied"),
            rows(&all, "consent")
        ),
        (1, 1, 1)
    );
    let denied = operator
        .get(&town.app, "/console/audit?outcome=denied&reason=review")
        .await;
    assert_eq!(
        (
            rows(&denied, "granted"),
            rows(&denied, "denied"),
            rows(&denied, "consent")
        ),
        (0, 1, 0)
    );
    let by_consent = operator
        .get(&town.app, "/console/audit?basis=consent&reason=review")
        .await;
    assert_eq!(
        (rows(&by_consent, "granted"), rows(&by_consent, "denied")),
        (1, 0)
    );
    let mine = operator
        .get(
            &town.app,
            &format!("/console/audit?resident={}&reason=review", town.resident),
        )
        .await;
    assert_eq!(
        rows(&mine, "granted") + rows(&mine, "denied") + rows(&mine, "consent"),
        3
    );
    let stranger = ResidentId::from_uuid(uuid::Uuid::new_v4());
    let nobody = operator
        .get(
            &town.app,
            &format!("/console/audit?resident={stranger}&reason=review"),
        )
        .await;
    assert_eq!(
        rows(&nobody, "granted") + rows(&nobody, "denied") + rows(&nobody, "consent"),
        0
    );
    let later = operator
        .get(
            &town.app,
            "/console/audit?since=2099-01-01T00%3A00&reason=review",
        )
        .await;
    assert_eq!(
        rows(&later, "granted") + rows(&later, "denied") + rows(&later, "consent"),
        0
    );
    let bad = operator
        .get(&town.app, "/console/audit?resident=not-an-id&reason=review")
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    // A search of the log says why, or it is refused (and nothing is found).
    let unexplained = operator
        .get(&town.app, "/console/audit?service=health-advice")
        .await;
    assert_eq!(unexplained.status, StatusCode::BAD_REQUEST);
    assert_eq!(rows(&unexplained, "granted"), 0);
    assert!(unexplained.body.contains("role=\"alert\""));
}

/// The `href` of the link marked `rel`, if the page has one.
fn rel_link(body: &str, rel: &str) -> Option<String> {
    let at = body.find(&format!("rel=\"{rel}\""))?;
    let href_at = body[..at].rfind("href=\"")? + 6;
    Some(body[href_at..].split('"').next()?.replace("&#38;", "&"))
}

/// The log positions of a history page's entries, top to bottom.
fn entry_seqs(body: &str) -> Vec<u64> {
    body.split("data-seq=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test]
async fn the_history_opens_on_the_newest_entries_and_pages_back_to_the_oldest() {
    let town = town().await;
    // 102 consent changes: more than one page of 100.
    let mut consents = Vec::new();
    for _ in 0..51 {
        let id: renkei_domain::ConsentId = grant(&town).await.parse().unwrap();
        town.hub.revoke_consent(&me(&town), id).await.unwrap();
        consents.push(id);
    }
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let mut browser = Browser::new();
    browser.sign_in(&town).await;
    let first = browser.get(&town.app, "/portal/history").await;
    let newest = entry_seqs(&first.body);
    assert_eq!(newest.len(), 100);
    assert!(newest.windows(2).all(|w| w[0] > w[1]), "newest on top");
    // The top entry is the last change: the revocation of the last consent.
    let top = first.body.find("class=\"entry ").unwrap();
    let top = &first.body[top..first.body[top..].find("</li>").unwrap() + top];
    assert!(top.contains(&consents[50].to_string()), "{top}");
    assert!(rel_link(&first.body, "prev").is_none(), "nothing newer");

    let older = rel_link(&first.body, "next").expect("an older link");
    let second = browser.get(&town.app, &older).await;
    let oldest = entry_seqs(&second.body);
    assert_eq!(oldest.len(), 2, "{older}");
    assert!(oldest[0] > oldest[1]);
    assert!(oldest[0] < newest[99]);
    // The bottom entry is the first change: the grant of the first consent.
    let bottom = second.body.rfind("class=\"entry ").unwrap();
    assert!(second.body[bottom..].contains(&consents[0].to_string()));
    assert!(second.body.contains("data-has-proof=\"true\""));
    assert!(second.body.contains("data-checkpoint=\""));
    assert!(rel_link(&second.body, "next").is_none(), "nothing older");

    // "Newer" returns to exactly the first page's entries, without an older-than-newest link.
    let newer = rel_link(&second.body, "prev").expect("a newer link");
    let again = browser.get(&town.app, &newer).await;
    assert_eq!(entry_seqs(&again.body), newest, "{newer}");
    assert!(rel_link(&again.body, "prev").is_none(), "nothing newer");
    assert_eq!(rel_link(&again.body, "next"), Some(older));
}

/// An X25519 public key (RFC 7748 §6.1, Alice's) in base64url: what a service registers.
const SERVICE_KEY: &str = "hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo";

#[tokio::test]
async fn the_review_page_shows_the_sector_webhook_redirect_uris_contact_and_a_shared_sector_to_tick()
 {
    let town = town().await;
    let mut operator = Browser::new();
    operator.operator(&town).await;
    let registration: renkei_hub::accounts::ServiceRegistration =
        serde_json::from_value(serde_json::json!({
            "id": "health-copy", "name_ja": "けんこうコピー", "name_en": "Health copy",
            "sector": "health",
            "hpke_public_key": SERVICE_KEY,
            "webhook_url": "https://copy.example/renkei/events",
            "redirect_uris": ["https://copy.example/callback", "https://copy.example/cb2"],
            "purposes": [{"id": "steps", "title_ja": "歩数", "title_en": "Steps",
              "description_ja": "説明", "description_en": "Description",
              "categories": ["payment.history"], "retention_days": 30, "legal_basis": "consent"}],
            "controller": {
                "contact": "コピー社 個人情報窓口",
                "address": {"country": "JP", "postal_code": "999-0003", "region": "ひかり県",
                  "locality": "ひかり台市", "street_address": "港町7-8"},
                "email": "privacy@copy.example", "phone": "03-0000-0199"
            }
        }))
        .unwrap();
    town.hub
        .register_service(
            &renkei_domain::OperatorId::new("tanaka").unwrap(),
            registration,
        )
        .await
        .unwrap();
    let page = operator
        .get(&town.app, "/console/services/health-copy?lang=en")
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    for shown in [
        "https://copy.example/renkei/events",
        "https://copy.example/callback",
        "https://copy.example/cb2",
        SERVICE_KEY,
        "<code>health</code>",
        // Whom residents contact, which every receipt will carry: the operator checks it.
        "コピー社 個人情報窓口",
        "〒999-0003 ひかり県ひかり台市港町7-8 (JP)",
        "privacy@copy.example",
        "03-0000-0199",
    ] {
        assert!(page.body.contains(shown), "{shown} in {}", page.body);
    }
    // The shared sector is a risk to tick, naming the service it is shared with.
    assert!(
        page.body.contains("value=\"shared-sector:health\""),
        "{}",
        page.body
    );
    let flag = page.body.find("shared-sector:health").unwrap();
    assert!(page.body[flag..].contains("health-advice"), "{}", page.body);
    // Without the tick, approval is refused.
    let csrf = Browser::csrf(&page);
    let refused = operator
        .post(
            &town.app,
            "/console/services/health-copy/approve",
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn the_review_page_shows_the_privacy_impact_answers() {
    let town = town().await;
    let mut operator = Browser::new();
    operator.operator(&town).await;
    let registration: renkei_hub::accounts::ServiceRegistration =
        serde_json::from_value(serde_json::json!({
            "id": "town-walk", "name_ja": "まち歩き", "name_en": "Town walk", "sector": "walk",
            "hpke_public_key": SERVICE_KEY,
            "webhook_url": null, "redirect_uris": [],
            "purposes": [{"id": "steps", "title_ja": "歩数", "title_en": "Steps",
              "description_ja": "説明", "description_en": "Description",
              "categories": ["health.checkup"], "retention_days": 30, "legal_basis": "consent"}],
            "privacy_impact": {"third-party-sharing": "第三者提供はしません"},
            "controller": {
                "contact": "まち歩き窓口",
                "address": {"country": "JP", "postal_code": "999-0004", "region": "ひかり県",
                  "locality": "ひかり台市", "street_address": "北町1-1"},
                "email": "privacy@walk.example", "phone": "03-0000-0198"
            }
        }))
        .unwrap();
    town.hub
        .register_service(
            &renkei_domain::OperatorId::new("tanaka").unwrap(),
            registration,
        )
        .await
        .unwrap();
    let page = operator.get(&town.app, "/console/services/town-walk").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("第三者提供はしません"), "{}", page.body);
    assert!(page.body.contains("third-party-sharing"));
}

// ---------------------------------------------------------------- identity: enrolment

/// A resident's card under `ca`, valid from `start` for `days` days.
fn card(
    ca: &renkei_identity::DevCa,
    start: chrono::DateTime<Utc>,
    days: i64,
) -> renkei_identity::IssuedCertificate {
    ca.issue_resident(
        &renkei_identity::IdentityAttributes::new("山田 花子"),
        renkei_identity::Validity::days_from(start, days),
        renkei_identity::KeyAlgorithm::EcdsaP256,
    )
    .unwrap()
}

/// The enrolment page's challenge id and challenge.
fn challenge_of(page: &Answer) -> (String, String) {
    let field = |marker: &str, end: char| {
        let at = page.body.find(marker).expect(marker) + marker.len();
        page.body[at..].split(end).next().unwrap().to_owned()
    };
    (
        field("name=\"challenge_id\" value=\"", '"'),
        field("<code id=\"challenge\">", '<'),
    )
}

fn sign(card: &renkei_identity::IssuedCertificate, challenge: &str) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let bytes = URL_SAFE_NO_PAD.decode(challenge).unwrap();
    URL_SAFE_NO_PAD.encode(renkei_identity::sign_challenge(&card.key_pem, &bytes).unwrap())
}

/// Opens the enrolment page and sends `card`'s chain with a signature by `signer`.
async fn enrol(
    browser: &mut Browser,
    town: &Town,
    card: &renkei_identity::IssuedCertificate,
    signer: &renkei_identity::IssuedCertificate,
) -> (Answer, String) {
    let page = browser.get(&town.app, "/portal/enrol?lang=en").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let (id, challenge) = challenge_of(&page);
    let csrf = Browser::csrf(&page);
    let answer = browser
        .post(
            &town.app,
            "/portal/enrol",
            &[
                ("csrf", &csrf),
                ("challenge_id", &id),
                ("certificate_chain", &card.cert_pem),
                ("signature", &sign(signer, &challenge)),
            ],
        )
        .await;
    (answer, id)
}

#[tokio::test]
async fn enrolling_with_a_card_of_the_trusted_root_signs_in_and_offers_a_passkey() {
    let town = town().await;
    let hanako = card(&town.ca, Utc::now(), 365);
    let mut browser = Browser::new();
    let (answer, _) = enrol(&mut browser, &town, &hanako, &hanako).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(
        answer.headers[header::LOCATION],
        "/portal/passkeys?done=enrolled"
    );
    let page = browser.get(&town.app, "/portal/passkeys").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("id=\"passkey-register-button\""));
    assert!(page.body.contains("src=\"/static/passkey.js\""));
    assert!(page.body.contains("Register a passkey on this device"));
    // The same card again finds the same resident.
    let mut other = Browser::new();
    let (again, _) = enrol(&mut other, &town, &hanako, &hanako).await;
    assert_eq!(
        again.headers[header::LOCATION],
        "/portal/passkeys?done=again"
    );
}

#[tokio::test]
async fn enrolment_refusals_say_why_in_plain_words_and_keep_nothing() {
    let town = town().await;
    let other_root =
        renkei_identity::DevCa::generate(renkei_identity::KeyAlgorithm::EcdsaP256).unwrap();
    let stranger = card(&other_root, Utc::now(), 365);
    let expired = card(&town.ca, Utc::now() - chrono::TimeDelta::days(400), 30);
    let hanako = card(&town.ca, Utc::now(), 365);
    let taro = card(&town.ca, Utc::now(), 365);
    let cases = [
        (
            &stranger,
            &stranger,
            "not issued by the authority the city trusts",
        ),
        (&expired, &expired, "The certificate has expired"),
        (&town.revoked_card, &town.revoked_card, "has been revoked"),
        (&hanako, &taro, "The signature does not match"),
    ];
    for (presented, signer, reason) in cases {
        let mut browser = Browser::new();
        let (answer, used) = enrol(&mut browser, &town, presented, signer).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{reason}");
        assert!(answer.body.contains("role=\"alert\""), "{reason}");
        assert!(answer.body.contains(reason), "{reason}: {}", answer.body);
        let no_session = answer
            .headers
            .get_all(header::SET_COOKIE)
            .iter()
            .all(|c| !c.to_str().unwrap().contains("renkei-session"));
        assert!(no_session, "{reason}");
        // A fresh challenge, and nothing of what was sent comes back in the form.
        let (fresh, _) = challenge_of(&answer);
        assert_ne!(fresh, used);
        assert!(
            answer
                .body
                .contains("aria-describedby=\"certificate-hint\"></textarea>"),
            "{reason}: the chain box is empty"
        );
        assert!(
            !answer.body.contains(&presented.cert_pem[30..90]),
            "{reason}"
        );
    }
    // A used challenge: refused as used, with a new one.
    let mut browser = Browser::new();
    let (first, used) = enrol(&mut browser, &town, &stranger, &stranger).await;
    let csrf = Browser::csrf(&first);
    let (_, fresh_challenge) = challenge_of(&first);
    let answer = browser
        .post(
            &town.app,
            "/portal/enrol",
            &[
                ("csrf", &csrf),
                ("challenge_id", &used),
                ("certificate_chain", &hanako.cert_pem),
                ("signature", &sign(&hanako, &fresh_challenge)),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        answer.body.contains("already used or has expired"),
        "{}",
        answer.body
    );
    // Nobody was signed in by any of it.
    let home = browser.get(&town.app, "/portal").await;
    assert_eq!(home.headers[header::LOCATION], "/portal/sign-in");
}

// ---------------------------------------------------------------- identity: OpenID consent page

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn authorize_params(redirect_uri: &str) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("client_id", "health-advice".into()),
        ("redirect_uri", redirect_uri.into()),
        ("scope", "openid profile advice coupons".into()),
        ("state", "st-123".into()),
        ("nonce", "n-456".into()),
        ("code_challenge", CHALLENGE.into()),
        ("code_challenge_method", "S256".into()),
    ]
}

fn authorize_url(redirect_uri: &str) -> String {
    format!(
        "/oauth/authorize?{}",
        serde_urlencoded::to_string(authorize_params(redirect_uri)).unwrap()
    )
}

fn query_param(url: &str, name: &str) -> Option<String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(url.split_once('?')?.1)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// Posts the consent page's form: its parameters, versions, and `answers`.
async fn answer_consent_page(
    browser: &mut Browser,
    town: &Town,
    answers: &[(&str, &str)],
) -> Answer {
    let page = browser.get(&town.app, &authorize_url(REDIRECT_URI)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let csrf = Browser::csrf(&page);
    let params = authorize_params(REDIRECT_URI);
    let mut form: Vec<(&str, &str)> = vec![("csrf", &csrf)];
    form.extend(params.iter().map(|(k, v)| (*k, v.as_str())));
    form.extend([("version-advice", "1"), ("version-coupons", "1")]);
    form.extend_from_slice(answers);
    browser.post(&town.app, "/oauth/authorize", &form).await
}

#[tokio::test]
async fn the_consent_page_asks_each_purpose_on_its_own_with_its_data_named() {
    let town = town().await;
    let mut browser = Browser::new();
    browser.sign_in(&town).await;
    let page = browser
        .get(
            &town.app,
            &format!("{}&lang=en", authorize_url(REDIRECT_URI)),
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains(
        "For <strong>Health advice</strong>, may we receive your <strong>Health check results</strong>?"
    ));
    assert!(page.body.contains(
        "For <strong>Coupons</strong>, may we receive your <strong>Payment history</strong>?"
    ));
    for name in ["answer-advice", "answer-coupons", "share_profile"] {
        assert_eq!(
            page.body.matches(&format!("name=\"{name}\"")).count(),
            2,
            "one yes and one no for {name}"
        );
    }
    assert!(
        page.body
            .contains("<span class=\"tag\">Special-care data</span>")
    );
    assert!(page.body.contains("Health Navi"));
    assert!(page.body.contains("value=\"deny\""));
    // Its form may end at the service (the redirect after posting), and nowhere else.
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(
        csp.contains("form-action 'self' https://navi.example;"),
        "{csp}"
    );
}

#[tokio::test]
async fn signed_out_the_consent_page_sends_the_resident_to_sign_in_and_back() {
    let town = town().await;
    let mut browser = Browser::new();
    let url = authorize_url(REDIRECT_URI);
    let answer = browser.get(&town.app, &url).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    let to = answer.headers[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(to.starts_with("/portal/sign-in?next="), "{to}");
    let next = query_param(&to, "next").unwrap();
    assert_eq!(next, url);
    let page = browser.get(&town.app, &to).await;
    let csrf = Browser::csrf(&page);
    let resident = town.resident.to_string();
    let signed = browser
        .post(
            &town.app,
            "/portal/sign-in/demo",
            &[("csrf", &csrf), ("resident", &resident), ("next", &next)],
        )
        .await;
    assert_eq!(signed.headers[header::LOCATION].to_str().unwrap(), url);
    // A return path to another site is dropped.
    let page = browser.get(&town.app, "/portal/sign-in").await;
    let csrf = Browser::csrf(&page);
    let elsewhere = browser
        .post(
            &town.app,
            "/portal/sign-in/demo",
            &[
                ("csrf", &csrf),
                ("resident", &resident),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(elsewhere.headers[header::LOCATION], "/portal");
}

#[tokio::test]
async fn answers_posted_without_javascript_complete_and_the_code_redeems_at_the_token_endpoint() {
    let town = town().await;
    let mut browser = Browser::new();
    browser.sign_in(&town).await;
    let answer = answer_consent_page(
        &mut browser,
        &town,
        &[
            ("answer-advice", "yes"),
            ("answer-coupons", "no"),
            ("share_profile", "no"),
            ("decision", "continue"),
        ],
    )
    .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    let back = answer.headers[header::LOCATION].to_str().unwrap();
    assert!(back.starts_with(&format!("{REDIRECT_URI}?code=")), "{back}");
    assert_eq!(query_param(back, "state").as_deref(), Some("st-123"));
    assert_eq!(
        query_param(back, "iss").as_deref(),
        Some("http://localhost:8080")
    );
    let code = query_param(back, "code").unwrap();

    // The service redeems the code at the hub's token endpoint.
    let body = serde_urlencoded::to_string([
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", VERIFIER),
        ("client_id", "health-advice"),
        ("client_secret", CLIENT_SECRET),
    ])
    .unwrap();
    let request = Request::post("/oauth/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap();
    let response = with_peer(renkei_hub::router(town.hub.clone()))
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let tokens: serde_json::Value =
        serde_json::from_slice(&to_bytes(response.into_body(), 1 << 20).await.unwrap()).unwrap();
    assert_eq!(tokens["scope"], "openid advice");
    assert!(tokens["id_token"].is_string());

    // One consent, to the purpose answered yes, given on the sign-in screen.
    let consents = town.hub.consents(&me(&town)).await.unwrap();
    assert_eq!(consents.len(), 1);
    assert_eq!(consents[0].purpose, "advice");
    assert_eq!(consents[0].given_via, "sign_in_screen");
}

#[tokio::test]
async fn deny_all_sends_access_denied_to_the_service_and_records_nothing() {
    let town = town().await;
    let mut browser = Browser::new();
    browser.sign_in(&town).await;
    let answer = answer_consent_page(
        &mut browser,
        &town,
        &[("answer-advice", "yes"), ("decision", "deny")],
    )
    .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    let back = answer.headers[header::LOCATION].to_str().unwrap();
    assert!(back.starts_with(REDIRECT_URI), "{back}");
    assert_eq!(query_param(back, "error").as_deref(), Some("access_denied"));
    assert_eq!(query_param(back, "state").as_deref(), Some("st-123"));
    assert!(query_param(back, "code").is_none());
    assert!(town.hub.consents(&me(&town)).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_unanswered_purpose_is_asked_again_not_taken_as_an_answer() {
    let town = town().await;
    let mut browser = Browser::new();
    browser.sign_in(&town).await;
    let answer = answer_consent_page(
        &mut browser,
        &town,
        &[
            ("answer-advice", "yes"),
            ("share_profile", "no"),
            ("decision", "continue"),
        ],
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(answer.body.contains("role=\"alert\""));
    assert!(!answer.headers.contains_key(header::LOCATION));
    assert!(town.hub.consents(&me(&town)).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_unregistered_redirect_uri_or_unknown_client_is_shown_as_a_page_never_redirected() {
    let town = town().await;
    let mut browser = Browser::new();
    browser.sign_in(&town).await;
    let bad_redirect = authorize_url("https://evil.example/steal");
    let unknown_client = bad_redirect.replace("client_id=health-advice", "client_id=nobody");
    for url in [bad_redirect, unknown_client] {
        let page = browser.get(&town.app, &url).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{url}");
        assert!(!page.headers.contains_key(header::LOCATION), "{url}");
        assert!(
            page.body.contains("このサインイン要求は使えません"),
            "{url}"
        );
        assert!(!page.body.contains("action=\"/oauth/authorize\""));
    }
    // A form whose parameters were changed after the page was shown is checked again.
    let page = browser.get(&town.app, &authorize_url(REDIRECT_URI)).await;
    let csrf = Browser::csrf(&page);
    let params = authorize_params("https://evil.example/steal");
    let mut form: Vec<(&str, &str)> = vec![("csrf", &csrf)];
    form.extend(params.iter().map(|(k, v)| (*k, v.as_str())));
    form.extend([
        ("version-advice", "1"),
        ("version-coupons", "1"),
        ("answer-advice", "yes"),
        ("answer-coupons", "yes"),
        ("share_profile", "yes"),
        ("decision", "continue"),
    ]);
    let answer = browser.post(&town.app, "/oauth/authorize", &form).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(!answer.headers.contains_key(header::LOCATION));
    assert!(town.hub.consents(&me(&town)).await.unwrap().is_empty());
}

#[tokio::test]
async fn consent_answers_without_the_csrf_token_are_refused_and_issue_no_code() {
    let town = town().await;
    let mut browser = Browser::new();
    browser.sign_in(&town).await;
    let params = authorize_params(REDIRECT_URI);
    let mut form: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    form.extend([
        ("version-advice", "1"),
        ("version-coupons", "1"),
        ("answer-advice", "yes"),
        ("answer-coupons", "yes"),
        ("share_profile", "yes"),
        ("decision", "continue"),
    ]);
    let answer = browser.post(&town.app, "/oauth/authorize", &form).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(!answer.headers.contains_key(header::LOCATION));
    assert!(town.hub.consents(&me(&town)).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_passkey_sign_in_with_a_forged_answer_is_refused_as_json_without_a_session() {
    let town = town().await;
    let mut browser = Browser::new();
    let page = browser.get(&town.app, "/portal/sign-in?lang=en").await;
    let csrf = Browser::csrf(&page);
    let json = |path: &str, body: String, browser: &Browser| {
        Request::post(path)
            .header(header::HOST, "localhost:8080")
            .header(header::ORIGIN, "http://localhost:8080")
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-csrf-token", csrf.clone())
            .header(header::COOKIE, browser.cookie_header())
            .body(Body::from(body))
            .unwrap()
    };
    let start = browser
        .send(
            &town.app,
            json("/portal/sign-in/passkey/start", "{}".into(), &browser),
        )
        .await;
    assert_eq!(start.status, StatusCode::OK, "{}", start.body);
    let start: serde_json::Value = serde_json::from_str(&start.body).unwrap();
    assert!(start["options"]["publicKey"]["challenge"].is_string());
    let forged = serde_json::json!({
        "ceremony": start["ceremony"],
        "credential": {
            "id": "AAAA", "rawId": "AAAA", "type": "public-key",
            "response": {"authenticatorData": "AAAA", "clientDataJSON": "AAAA", "signature": "AAAA", "userHandle": null},
            "extensions": {}
        }
    });
    let finish = browser
        .send(
            &town.app,
            json(
                "/portal/sign-in/passkey/finish",
                forged.to_string(),
                &browser,
            ),
        )
        .await;
    assert_eq!(finish.status, StatusCode::BAD_REQUEST);
    assert!(finish.body.contains("was not accepted"), "{}", finish.body);
    assert!(!finish.headers.contains_key(header::SET_COOKIE));
    // Without the CSRF header, the ceremony does not even start.
    let request = Request::post("/portal/sign-in/passkey/start")
        .header(header::HOST, "localhost:8080")
        .header(header::COOKIE, browser.cookie_header())
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        browser.send(&town.app, request).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn too_many_sign_ins_from_one_address_get_a_page_saying_when_to_try_again() {
    use renkei_hub::limits::{Rate, RateLimits, RateUnit};
    let town = town_with(RateLimits {
        ceremonies_per_address: Rate::new(2, RateUnit::Minute, 2),
        ..RateLimits::GENEROUS
    })
    .await;
    let mut browser = Browser::new();
    let page = browser.get(&town.app, "/portal/sign-in?lang=en").await;
    let csrf = Browser::csrf(&page);
    // Each enrolment page holds a fresh challenge: the third from this address waits.
    for _ in 0..2 {
        let page = browser.get(&town.app, "/portal/enrol?lang=en").await;
        assert_eq!(page.status, StatusCode::OK);
    }
    let page = browser.get(&town.app, "/portal/enrol?lang=en").await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = page.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    assert!(
        page.body.contains(&format!("try again in {retry_after} s")),
        "{}",
        page.body
    );
    // The passkey button's JSON ceremony says so in the page's language.
    let request = Request::post("/portal/sign-in/passkey/start?lang=en")
        .header(header::HOST, "localhost:8080")
        .header(header::ORIGIN, "http://localhost:8080")
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-csrf-token", csrf)
        .header(header::COOKIE, browser.cookie_header())
        .body(Body::from("{}"))
        .unwrap();
    let start = browser.send(&town.app, request).await;
    assert_eq!(
        start.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        start.body
    );
    assert!(start.headers.contains_key(header::RETRY_AFTER));
    assert!(
        start.body.contains("Too many sign-in attempts"),
        "{}",
        start.body
    );
}

// ------------------------------------------------ what a proxy's scope divides

/// A second service, `bousai-app` (one purpose, `alerts`), and the resident's consent to it.
async fn bousai_consent(town: &Town) -> String {
    let service = Service {
        id: ServiceId::new("bousai-app").unwrap(),
        name: LocalizedText::new("ぼうさいアプリ", "Bousai App"),
        sector: "bousai".into(),
        hpke_public_key: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(),
        webhook_url: None,
        status: ServiceStatus::Approved,
    };
    let store = &town.hub.store();
    store
        .put_service(&service, &renkei_hub::auth::hash_client_secret("bousai"))
        .await
        .unwrap();
    store
        .publish_purpose(
            &PurposeDraft {
                service: service.id.clone(),
                id: PurposeId::new("alerts").unwrap(),
                title: LocalizedText::new("避難情報", "Evacuation alerts"),
                description: LocalizedText::new("説明", "Description"),
                categories: BTreeSet::from([CategoryId::new("payment.history").unwrap()]),
                retention_days: 30,
                legal_basis: LegalBasis::Consent,
                emergency_only: false,
                location: None,
            },
            Utc::now(),
        )
        .await
        .unwrap();
    town.hub
        .grant_consent(
            town.resident,
            GrantConsentBody {
                service: "bousai-app".into(),
                purpose: "alerts".into(),
                valid_days: None,
            },
            ConsentChannel::Portal,
            Actor::Resident,
        )
        .await
        .unwrap()
        .consent
        .id
}

/// Whether the consent `id` is still in force.
async fn active(town: &Town, id: &str) -> bool {
    let consent = town
        .hub
        .store()
        .consent(id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    consent.state_at(Utc::now()) == renkei_domain::ConsentState::Active
}

#[tokio::test]
async fn a_proxy_scoped_to_one_service_cannot_stop_another_services_consent_through_the_switch() {
    let town = town().await;
    let health = grant(&town).await;
    let bousai = bousai_consent(&town).await;
    let (mut resident, mut proxy) = (Browser::new(), Browser::new());
    resident.sign_in(&town).await;
    appoint(
        &town,
        &mut resident,
        &mut proxy,
        &[("service", "bousai-app"), ("manage_consents", "on")],
    )
    .await;
    let services = proxy.get(&town.app, "/portal/services").await;
    let csrf = Browser::csrf(&services);
    // The form names bousai-app, in scope; the consent it names is health-advice's.
    let answer = proxy
        .post(
            &town.app,
            "/portal/services/switch",
            &[
                ("csrf", &csrf),
                ("service", "bousai-app"),
                ("purpose", "alerts"),
                ("action", "stop"),
                ("consent", &health),
            ],
        )
        .await;
    assert_eq!(
        answer.headers[header::LOCATION],
        "/portal/services?done=failed#p-bousai-app-alerts"
    );
    assert!(
        active(&town, &health).await,
        "health-advice's consent stands"
    );
    // Within the scope the switch works.
    let answer = proxy
        .post(
            &town.app,
            "/portal/services/switch",
            &[
                ("csrf", &csrf),
                ("service", "bousai-app"),
                ("purpose", "alerts"),
                ("action", "stop"),
                ("consent", &bousai),
            ],
        )
        .await;
    assert_eq!(
        answer.headers[header::LOCATION],
        "/portal/services?done=stopped#p-bousai-app-alerts"
    );
    assert!(!active(&town, &bousai).await);
}

#[tokio::test]
async fn a_proxy_scoped_to_one_service_sees_nothing_of_another_services_consents() {
    let town = town().await;
    let health = grant(&town).await;
    bousai_consent(&town).await;
    // An ended consent is listed among the past ones: that list is divided too.
    town.hub
        .revoke_consent(&me(&town), health.parse().unwrap())
        .await
        .unwrap();
    let (mut resident, mut proxy) = (Browser::new(), Browser::new());
    resident.sign_in(&town).await;
    appoint(
        &town,
        &mut resident,
        &mut proxy,
        &[("service", "bousai-app"), ("manage_consents", "on")],
    )
    .await;
    let own = resident.get(&town.app, "/portal/services").await;
    assert!(
        own.body
            .contains(&format!("/portal/consents/{health}/receipt"))
    );
    let page = proxy.get(&town.app, "/portal/services").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains(&health), "{}", page.body);
    let receipt = proxy
        .get(&town.app, &format!("/portal/consents/{health}/receipt"))
        .await;
    assert_eq!(receipt.status, StatusCode::NOT_FOUND);
}

// ------------------------------------------------ sign-out

#[tokio::test]
async fn signing_out_while_acting_for_someone_ends_both_sessions_for_whoever_comes_next() {
    let town = town().await;
    grant(&town).await;
    let (mut resident, mut proxy) = (Browser::new(), Browser::new());
    resident.sign_in(&town).await;
    appoint(
        &town,
        &mut resident,
        &mut proxy,
        &[("manage_consents", "on")],
    )
    .await;
    let copied = proxy.cookies.clone();
    let token = |name: &str| {
        copied
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let (acting, own) = (
        token("__Host-renkei-session"),
        token("__Host-renkei-own-session"),
    );
    let page = proxy.get(&town.app, "/portal").await;
    let csrf = Browser::csrf(&page);
    let out = proxy
        .post(&town.app, "/portal/sign-out", &[("csrf", &csrf)])
        .await;
    assert_eq!(out.headers[header::LOCATION], "/portal/sign-in");
    assert!(
        !proxy.cookies.iter().any(|(k, _)| k.contains("session")),
        "every session cookie is cleared: {:?}",
        proxy.cookies
    );
    // The next person at the counter is nobody, whichever page they open.
    for path in ["/portal/acting/ended", "/portal/acting/stop", "/portal"] {
        proxy.get(&town.app, path).await;
        let home = proxy.get(&town.app, "/portal").await;
        assert_eq!(home.headers[header::LOCATION], "/portal/sign-in", "{path}");
    }
    // Nor do the tokens work when copied from the cookies before signing out.
    assert!(town.hub.resident_session(&acting).await.is_err());
    assert!(town.hub.resident_session(&own).await.is_err());
    let mut copy = Browser::new();
    copy.cookies = copied;
    let ended = copy.get(&town.app, "/portal/acting/ended").await;
    assert!(
        !ended.headers.get_all(header::SET_COOKIE).iter().any(|c| c
            .to_str()
            .unwrap()
            .starts_with(&format!("__Host-renkei-session={own}"))),
        "a signed-out session is never restored"
    );
    let home = copy.get(&town.app, "/portal").await;
    assert_eq!(home.headers[header::LOCATION], "/portal/sign-in");
}

#[tokio::test]
async fn a_residents_session_token_stops_working_when_they_sign_out() {
    let town = town().await;
    let mut browser = Browser::new();
    browser.sign_in(&town).await;
    let (_, token) = browser
        .cookies
        .iter()
        .find(|(k, _)| k == "__Host-renkei-session")
        .cloned()
        .unwrap();
    assert!(town.hub.resident_session(&token).await.is_ok());
    let page = browser.get(&town.app, "/portal").await;
    let csrf = Browser::csrf(&page);
    browser
        .post(&town.app, "/portal/sign-out", &[("csrf", &csrf)])
        .await;
    assert!(town.hub.resident_session(&token).await.is_err());
}

#[tokio::test]
async fn a_switch_naming_a_purpose_that_is_no_id_is_a_bad_request_not_a_server_error() {
    let town = town().await;
    let health = grant(&town).await;
    let mut resident = Browser::new();
    resident.sign_in(&town).await;
    let services = resident.get(&town.app, "/portal/services").await;
    let csrf = Browser::csrf(&services);
    // Found by the form fuzzer: the purpose went into the redirect's `Location` as it came.
    let answer = resident
        .post(
            &town.app,
            "/portal/services/switch",
            &[
                ("csrf", csrf.as_str()),
                ("service", "health-advice"),
                ("purpose", "\0"),
                ("action", "stop"),
                ("consent", &health),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    assert!(active(&town, &health).await);
}
