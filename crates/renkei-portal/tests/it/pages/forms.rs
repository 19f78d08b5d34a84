//! The portal's and console's URL-encoded forms and page queries under arbitrary input:
//! property tests (proptest; cargo-fuzz needs a nightly toolchain, so the fuzzing of these
//! parsers lives here and runs with `cargo test`).
//!
//! Whatever a signed-out visitor, a resident or an operator posts to any form (with a good
//! CSRF token, so the handler itself reads it) or puts in a page's query, the answer is a
//! page, a redirect within the site (or to the service's registered redirect URI), or an
//! error page in HTML: never a server error, never a bare text error, never a redirect
//! elsewhere. A restriction that cannot be read is refused, never dropped.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use super::*;

/// Every form of the portal and the console (`{id}` is filled in per case).
const FORMS: [&str; 28] = [
    "/portal/sign-in/demo",
    "/portal/sign-in/passkey/start",
    "/portal/sign-in/passkey/finish",
    "/portal/enrol",
    "/portal/passkeys/register/start",
    "/portal/passkeys/register/finish",
    "/portal/passkeys/remove",
    "/oauth/authorize",
    "/portal/sign-out",
    "/portal/services/switch",
    "/portal/requests",
    "/portal/disclosure",
    "/portal/proxies/invite",
    "/portal/proxies/{id}/end",
    "/portal/acting/accept",
    "/portal/acting/start",
    "/portal/acting/stop",
    "/console/sign-in/demo",
    "/console/sign-in/portal",
    "/console/sign-out",
    "/console/services/{id}/approve",
    "/console/services/{id}/suspend",
    "/console/requests/{id}/answer",
    "/console/requests/{id}/extend",
    "/console/categories",
    "/console/providers",
    "/console/providers/{id}/approve",
    "/console/providers/{id}/suspend",
];

/// Pages that read a query.
const PAGES: [&str; 9] = [
    "/oauth/authorize",
    "/portal/sign-in",
    "/portal/enrol",
    "/portal/passkeys",
    "/portal/services",
    "/portal/history",
    "/portal/requests",
    "/portal/proxies",
    "/console/audit",
];

/// The fields each form or page reads (the others are read by none of them).
fn reads(path: &str) -> &'static [&'static str] {
    match path {
        "/portal/sign-in/demo" => &["resident", "next"],
        "/portal/enrol" => &["challenge_id", "certificate_chain", "signature", "next"],
        "/portal/passkeys/remove" => &["id"],
        "/portal/disclosure" => &["recipient_key"],
        "/oauth/authorize" => &[
            "response_type",
            "client_id",
            "redirect_uri",
            "scope",
            "state",
            "nonce",
            "code_challenge",
            "code_challenge_method",
            "version-advice",
            "version-coupons",
            "answer-advice",
            "answer-coupons",
            "share_profile",
            "decision",
        ],
        "/portal/services/switch" => &["service", "purpose", "action", "consent"],
        "/portal/requests" => &["kind", "service", "category", "details", "done"],
        "/portal/proxies/invite" => &[
            "label",
            "manage_consents",
            "view_history",
            "file_requests",
            "service",
        ],
        "/portal/acting/accept" => &["code"],
        "/portal/acting/start" => &["appointment"],
        "/console/sign-in/demo" => &["identity"],
        "/console/services/{id}/approve" => &["ack"],
        "/console/requests/{id}/answer" => &["status", "response"],
        "/console/requests/{id}/extend" => &["due_at", "reason"],
        "/console/categories" => &["id", "name_ja", "name_en", "special_care"],
        "/console/providers" => &[
            "id",
            "name_ja",
            "name_en",
            "connection",
            "endpoint",
            "category",
            "signing_keys",
            "contact",
            "email",
            "phone",
            "postal_code",
            "region",
            "locality",
            "street_address",
        ],
        "/console/audit" => &[
            "resident", "service", "purpose", "outcome", "basis", "since", "until", "before",
            "reason",
        ],
        "/portal/history" => &["service", "before", "after"],
        "/portal/sign-in" => &["error", "next"],
        "/portal/passkeys" => &["done", "next"],
        "/portal/services" | "/portal/proxies" => &["done"],
        _ => &[],
    }
}

/// Every field any form or page reads, and one none does.
const FIELDS: [&str; 58] = [
    "csrf",
    "resident",
    "next",
    "service",
    "purpose",
    "action",
    "consent",
    "challenge_id",
    "certificate_chain",
    "signature",
    "id",
    "code",
    "appointment",
    "kind",
    "details",
    "status",
    "response",
    "label",
    "manage_consents",
    "view_history",
    "file_requests",
    "ack",
    "identity",
    "decision",
    "answer-advice",
    "version-advice",
    "share_profile",
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "lang",
    "done",
    "error",
    "before",
    "since",
    "name_ja",
    "name_en",
    "special_care",
    "connection",
    "endpoint",
    "category",
    "signing_keys",
    "contact",
    "email",
    "phone",
    "postal_code",
    "region",
    "locality",
    "street_address",
    "due_at",
    "reason",
    "unread",
    "recipient_key",
];

/// What the town's pages would put in `field`: ids of the town, and the words the forms use.
fn good_values(field: &str, town: &Known) -> Vec<String> {
    let words: &[&str] = match field {
        "action" => &["stop", "start"],
        "kind" => &["disclosure", "correction", "deletion", "suspension"],
        "status" => &["received", "in_progress", "answered", "rejected"],
        "manage_consents" | "view_history" | "file_requests" | "special_care" => &["on"],
        "connection" => &["inbound", "outbound"],
        "category" => &["health.checkup", "no.such"],
        "endpoint" => &["http://127.0.0.1:9", "https://[::1]:9"],
        "signing_keys" => &[
            r#"{"kty":"OKP","crv":"Ed25519","kid":"k","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
            r#"{"keys":[]}"#,
        ],
        "email" => &["data@provider.example"],
        "phone" => &["03-0000-0000"],
        "answer-advice" | "answer-coupons" | "share_profile" => &["yes", "no"],
        "decision" => &["deny", "allow"],
        "version-advice" | "version-coupons" => &["1", "2"],
        "response_type" => &["code"],
        "client_id" | "service" | "ack" => &["health-advice", "special-care"],
        "purpose" => &["advice", "coupons"],
        "redirect_uri" => &[REDIRECT_URI],
        "scope" => &["openid profile advice coupons", "openid"],
        "code_challenge" => &[CHALLENGE],
        "code_challenge_method" => &["S256"],
        "outcome" => &["granted", "denied"],
        "basis" => &["consent"],
        "since" | "until" => &["2026-01-01", "2026-01-01T00:00"],
        "before" | "after" => &["1", "0", "18446744073709551615"],
        "label" => &["娘"],
        "due_at" => &["2099-01-01T09:00", "2020-01-01T09:00"],
        "recipient_key" => &["9x0Oug4mfvjYP1aV9zN7qPNAG4R6F3t1MEc3CXkQpk0"],
        "reason" => &["記録の確認に時間がかかるため", "complaint 2026-114"],
        "next" => &["/portal/history", "/portal"],
        _ => &[],
    };
    let mut values: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
    match field {
        "resident" => values.push(town.resident.clone()),
        "identity" => values.push(town.operator.clone()),
        "consent" => values.push(town.consent.clone()),
        "id" | "code" | "appointment" | "challenge_id" => values.push(town.uuid.clone()),
        _ => {}
    }
    values.push(String::new());
    values
}

/// Values as a confused user or an attacker might send them.
fn any_value() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => ".{0,30}".prop_map(|s| serde_urlencoded::to_string([("", s)]).unwrap()[1..].to_owned()),
        1 => "[%&=+;a-zA-Z0-9/:._-]{0,20}",
        1 => proptest::sample::select(&[
            "%", "%zz", "%FF%FE", "%00", "//evil.example", "https://evil.example/",
            "/\\evil.example", "%2F%2Fevil.example", "-1", "99999999999999999999", "+",
        ][..]).prop_map(str::to_owned),
        1 => Just("x".repeat(3000)),
    ]
}

/// `key=value` pairs: each field `path` reads present most of the time, with the value the
/// page would send more often than not (so cases get past the first check to the next),
/// a field now and then given twice, and a stray field.
fn pairs(path: &'static str, known: &Known) -> impl Strategy<Value = String> + use<> {
    let fields: Vec<_> = reads(path)
        .iter()
        .map(|&field| {
            let v = prop_oneof![
                4 => proptest::sample::select(good_values(field, known)),
                1 => any_value(),
            ];
            proptest::option::weighted(0.9, v).prop_map(move |v| v.map(|v| format!("{field}={v}")))
        })
        .collect();
    let again = proptest::sample::select(FIELDS.to_vec());
    (
        fields,
        proptest::option::weighted(0.15, (again, any_value())),
        proptest::option::weighted(0.1, "[a-z_%=&-]{0,12}"),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(fields, again, stray, at)| {
            let mut pairs: Vec<String> = fields.into_iter().flatten().collect();
            if let Some((field, v)) = again {
                pairs.insert(at.index(pairs.len() + 1), format!("{field}={v}"));
            }
            pairs.extend(stray);
            pairs.join("&")
        })
}

/// A form body after its `csrf` field: pairs, or raw bytes.
fn body(path: &'static str, known: &Known) -> impl Strategy<Value = Vec<u8>> + use<> {
    prop_oneof![
        5 => pairs(path, known).prop_map(String::into_bytes),
        1 => proptest::collection::vec(any::<u8>(), 0..120),
    ]
}

/// Who sends the form.
#[derive(Debug, Clone, Copy)]
enum Who {
    SignedOut,
    Resident,
    Operator,
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![
        Just(Who::SignedOut),
        Just(Who::Resident),
        Just(Who::Operator)
    ]
}

/// A signed-out browser, the town's resident, and an operator, each with the CSRF token of
/// their session.
struct Visitors {
    operator_identity: ResidentId,
}

impl Visitors {
    async fn new(town: &Town) -> Self {
        let operator_identity = another_resident(town).await;
        town.hub
            .add_operator(
                renkei_domain::OperatorId::new("tanaka").unwrap(),
                "田中".into(),
                operator_identity,
            )
            .await
            .unwrap();
        Self { operator_identity }
    }

    /// A browser signed in afresh as `who` (so a case that signs out spoils no other), and
    /// the CSRF token of its session.
    async fn browser(&self, town: &Town, who: Who) -> (Browser, String) {
        let mut browser = Browser::new();
        let page = match who {
            Who::SignedOut => browser.get(&town.app, "/portal/sign-in").await,
            Who::Resident => {
                browser.sign_in(town).await;
                browser.get(&town.app, "/portal/services").await
            }
            Who::Operator => {
                let page = browser.get(&town.app, "/console/sign-in").await;
                let csrf = Browser::csrf(&page);
                let identity = self.operator_identity.to_string();
                let answer = browser
                    .post(
                        &town.app,
                        "/console/sign-in/demo",
                        &[("csrf", &csrf), ("identity", &identity)],
                    )
                    .await;
                assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
                browser.get(&town.app, "/console/audit").await
            }
        };
        assert_eq!(page.status, StatusCode::OK, "{who:?}: {}", page.body);
        let csrf = Browser::csrf(&page);
        (browser, csrf)
    }
}

/// The answer is a page, a redirect within the site or to the registered redirect URI, or
/// an HTML error: never a 5xx, a bare text error, or a redirect elsewhere.
fn check_answer(what: &str, answer: &Answer) -> Result<(), TestCaseError> {
    let status = answer.status.as_u16();
    prop_assert!(
        status < 500,
        "{what}: a server error {status}: {}",
        answer.body
    );
    if status >= 400 || status == 200 {
        let content_type = answer
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        prop_assert!(
            content_type.starts_with("text/html") || content_type.starts_with("application/json"),
            "{what}: {status} answered as `{content_type}`: {}",
            answer.body
        );
    }
    if let Some(location) = answer.headers.get(header::LOCATION) {
        let location = location.to_str().unwrap();
        let within =
            location.starts_with('/') && !location.starts_with("//") && !location.contains('\\');
        prop_assert!(
            within || location.starts_with(&format!("{REDIRECT_URI}?")),
            "{what}: redirected to {location}"
        );
    }
    Ok(())
}

/// One runtime and one town for all the cases of a property.
fn with_town(cases: u32, test: impl FnOnce(&tokio::runtime::Runtime, &Town, &mut TestRunner)) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let town = runtime.block_on(town());
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    test(&runtime, &town, &mut runner);
}

/// What the town's pages would fill in: its resident, the operator's identity, a consent.
#[derive(Clone)]
struct Known {
    resident: String,
    operator: String,
    consent: String,
    uuid: String,
}

impl Known {
    async fn new(town: &Town, visitors: &Visitors) -> Self {
        Self {
            resident: town.resident.to_string(),
            operator: visitors.operator_identity.to_string(),
            consent: grant(town).await,
            uuid: uuid::Uuid::new_v4().to_string(),
        }
    }
}

#[test]
fn any_form_body_from_anyone_gets_a_page_or_a_redirect_within_the_site_never_a_server_error() {
    with_town(400, |runtime, town, runner| {
        let (visitors, known) = runtime.block_on(async {
            let visitors = Visitors::new(town).await;
            let known = Known::new(town, &visitors).await;
            (visitors, known)
        });
        let strategy = (
            proptest::sample::select(&FORMS[..]),
            who(),
            prop_oneof![
                Just("health-advice".to_owned()),
                "[a-zA-Z0-9%._-]{1,40}",
                Just(known.uuid.clone())
            ],
        )
            .prop_flat_map(move |(form, who, id)| {
                (Just(form), Just(who), Just(id), body(form, &known))
            });
        runner
            .run(&strategy, |(form, who, id, body)| {
                let path = form.replace("{id}", &id);
                runtime.block_on(async {
                    let (mut browser, csrf) = visitors.browser(town, who).await;
                    let mut bytes = format!("csrf={csrf}&").into_bytes();
                    bytes.extend_from_slice(&body);
                    let request = Request::post(path.as_str())
                        .header(header::HOST, "localhost:8080")
                        .header(header::ORIGIN, "http://localhost:8080")
                        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                        .header(header::COOKIE, browser.cookie_header())
                        .body(Body::from(bytes))
                        .unwrap();
                    let answer = browser.send(&town.app, request).await;
                    let what = format!("{who:?} POST {path} {:?}", String::from_utf8_lossy(&body));
                    check_answer(&what, &answer)
                })
            })
            .unwrap();
    });
}

#[test]
fn any_query_on_any_page_from_anyone_gets_a_page_or_a_redirect_within_the_site() {
    with_town(300, |runtime, town, runner| {
        let (visitors, known) = runtime.block_on(async {
            let visitors = Visitors::new(town).await;
            let known = Known::new(town, &visitors).await;
            (visitors, known)
        });
        let strategy = (proptest::sample::select(&PAGES[..]), who())
            .prop_flat_map(move |(page, who)| (Just(page), Just(who), pairs(page, &known)));
        runner
            .run(&strategy, |(page, who, query)| {
                runtime.block_on(async {
                    let (mut browser, _) = visitors.browser(town, who).await;
                    let path = format!("{page}?{query}");
                    // Some generated text is not a valid URI; a client could not send it.
                    let Ok(request) = Request::get(path.as_str())
                        .header(header::HOST, "localhost:8080")
                        .header(header::COOKIE, browser.cookie_header())
                        .body(Body::empty())
                    else {
                        return Ok(());
                    };
                    let answer = browser.send(&town.app, request).await;
                    check_answer(&format!("{who:?} GET {path}"), &answer)
                })
            })
            .unwrap();
    });
}

#[test]
fn a_proxy_restricted_to_a_service_that_cannot_be_read_is_refused_not_made_a_proxy_for_all() {
    with_town(40, |runtime, town, runner| {
        let strategy = (
            prop_oneof![
                ".{0,20}",
                Just("Health-Advice".to_owned()),
                Just("health-advice ".to_owned()),
                Just(" health-advice".to_owned()),
                Just("health advice".to_owned()),
                Just(String::new()),
            ]
            .prop_filter("not a service id", |s| {
                renkei_domain::ServiceId::new(s.as_str()).is_err()
            }),
            any::<bool>(),
        );
        runner
            .run(&strategy, |(service, with_a_good_one)| {
                runtime.block_on(async {
                    let mut resident = Browser::new();
                    resident.sign_in(town).await;
                    let page = resident.get(&town.app, "/portal/proxies").await;
                    let csrf = Browser::csrf(&page);
                    let mut form = vec![
                        ("csrf", csrf.as_str()),
                        ("label", "娘"),
                        ("view_history", "on"),
                        ("service", service.as_str()),
                    ];
                    if with_a_good_one {
                        form.push(("service", "health-advice"));
                    }
                    let shown = resident
                        .post(&town.app, "/portal/proxies/invite", &form)
                        .await;
                    check_answer("invite", &shown)?;
                    prop_assert!(
                        !shown.body.contains("one-time-code"),
                        "{:?} was read as a scope: {}",
                        form,
                        shown.status
                    );
                    prop_assert_eq!(shown.status, StatusCode::UNPROCESSABLE_ENTITY);
                    Ok(())
                })
            })
            .unwrap();
    });
}

// ------------------------------------------------ what the properties found, kept as cases

#[tokio::test]
async fn an_empty_service_field_does_not_appoint_a_proxy_for_every_service() {
    // Found by the property above: `service=` was dropped as unreadable, which left the
    // restriction empty, and an empty restriction means every service.
    let town = town().await;
    let mut resident = Browser::new();
    resident.sign_in(&town).await;
    let page = resident.get(&town.app, "/portal/proxies").await;
    let csrf = Browser::csrf(&page);
    let form = [
        ("csrf", csrf.as_str()),
        ("label", "娘"),
        ("manage_consents", "on"),
        ("service", ""),
    ];
    let shown = resident
        .post(&town.app, "/portal/proxies/invite", &form)
        .await;
    assert_eq!(
        shown.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        shown.body
    );
    assert!(!shown.body.contains("one-time-code"), "{}", shown.body);
    assert!(
        shown.body.contains("サービスは一覧から選んでください。"),
        "{}",
        shown.body
    );
}

#[tokio::test]
async fn a_form_or_query_that_cannot_be_read_gets_the_bad_request_page_not_plain_text() {
    // Found by the properties above: axum's rejections answered in English plain text,
    // quoting the deserializer.
    let town = town().await;
    let mut browser = Browser::new();
    browser.sign_in(&town).await;
    let page = browser.get(&town.app, "/portal/services").await;
    let csrf = Browser::csrf(&page);
    let answers = [
        browser
            .post(&town.app, "/portal/acting/accept", &[("csrf", &csrf)])
            .await,
        browser
            .post(
                &town.app,
                "/portal/services/switch",
                &[("csrf", &csrf), ("service", "a"), ("service", "b")],
            )
            .await,
        browser
            .get(&town.app, "/portal/passkeys?done=a&done=b")
            .await,
        browser.get(&town.app, "/portal/consents/%FF/receipt").await,
    ];
    for answer in answers {
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
        assert_eq!(
            answer.headers[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        assert!(
            answer.body.contains("入力に誤りがあります"),
            "{}",
            answer.body
        );
        assert!(!answer.body.contains("deserialize"), "{}", answer.body);
    }
}
