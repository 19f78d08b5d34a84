//! The OAuth endpoints' form bodies (`/oauth/token`, `/oauth/introspect`, `/oauth/revoke`)
//! under arbitrary input: property tests (proptest; cargo-fuzz needs a nightly toolchain, so
//! the fuzzing of these parsers lives here and runs with `cargo test`).
//!
//! Whatever the body, the answer is a 4xx OAuth error (RFC 6749 §5.2) or a success, never a
//! 5xx, and never
//! repeats the client secret; a field given twice is refused, not read either way; a
//! percent-encoded field is read as what it decodes to, and nothing else is.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::header;
use serde_json::Value;

use super::common::Town;

const ENDPOINTS: [&str; 3] = ["/oauth/token", "/oauth/introspect", "/oauth/revoke"];
const FIELDS: [&str; 10] = [
    "grant_type",
    "client_id",
    "client_secret",
    "code",
    "redirect_uri",
    "code_verifier",
    "token",
    "token_type_hint",
    "scope",
    "csrf",
];

/// One runtime and one town for all the cases of a property (a town takes a while to build).
fn with_town(cases: u32, test: impl FnOnce(&tokio::runtime::Runtime, &Town, &mut TestRunner)) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let town = runtime.block_on(Town::new());
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    test(&runtime, &town, &mut runner);
    runtime.block_on(async move { drop(town) });
}

/// A value as a client, a confused client or an attacker might send it; `known` holds the
/// town's real client secret and a real access token, so that cases get past authentication.
fn value(known: Vec<String>) -> impl Strategy<Value = String> {
    prop_oneof![
        2 => proptest::sample::select(&["client_credentials", "authorization_code", "health-advice"][..])
            .prop_map(str::to_owned),
        3 => proptest::sample::select(known),
        2 => ".{0,40}".prop_map(|s| percent_encoded(&s, u64::MAX, false)),
        1 => "[%&=+;a-zA-Z0-9]{0,20}",
        1 => proptest::sample::select(&["%", "%zz", "%FF%FE", "%00", "+", ""][..]).prop_map(str::to_owned),
        1 => Just("x".repeat(5000)),
    ]
}

/// A body: raw bytes, or the OAuth fields each present or not (those the endpoint reads
/// more often) with any value, then perhaps a field again and perhaps a stray pair.
fn body(path: &'static str, known: Vec<String>) -> impl Strategy<Value = Vec<u8>> {
    let fields: Vec<_> = FIELDS
        .iter()
        .map(|&field| {
            let read = match path {
                "/oauth/token" => !matches!(field, "token" | "token_type_hint"),
                _ => matches!(
                    field,
                    "token" | "token_type_hint" | "client_id" | "client_secret"
                ),
            };
            // Half the time the value a working client sends, so cases get past the first
            // check and exercise the next.
            let good = match field {
                "grant_type" => vec![
                    "client_credentials".to_owned(),
                    "authorization_code".to_owned(),
                ],
                "client_id" => vec!["health-advice".to_owned()],
                "redirect_uri" => vec!["https://health-advice.example/callback".to_owned()],
                _ => known.clone(),
            };
            let v = prop_oneof![proptest::sample::select(good), value(known.clone())];
            proptest::option::weighted(if read { 0.8 } else { 0.1 }, v)
                .prop_map(move |v| v.map(|v| format!("{field}={v}")))
        })
        .collect();
    let pairs = (
        fields,
        proptest::option::weighted(0.15, (proptest::sample::select(&FIELDS[..]), value(known))),
        proptest::option::weighted(0.15, "[a-z_%=&]{0,12}"),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(fields, again, stray, at)| {
            let mut pairs: Vec<String> = fields.into_iter().flatten().collect();
            if let Some((field, v)) = again {
                pairs.insert(at.index(pairs.len() + 1), format!("{field}={v}"));
            }
            pairs.extend(stray);
            pairs.join("&").into_bytes()
        });
    prop_oneof![
        1 => proptest::collection::vec(any::<u8>(), 0..200),
        6 => pairs,
    ]
}

fn content_type() -> impl Strategy<Value = Option<&'static str>> {
    proptest::option::weighted(
        0.9,
        prop_oneof![
            4 => Just("application/x-www-form-urlencoded"),
            1 => proptest::sample::select(&[
                "application/x-www-form-urlencoded; charset=utf-8",
                "application/x-www-form-urlencoded; charset=shift_jis",
                "application/json",
                "text/plain",
                "multipart/form-data; boundary=x",
            ][..]),
        ],
    )
}

fn authorization(secret: String) -> impl Strategy<Value = Option<String>> {
    use base64::Engine;
    let basic = |s: String| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
    };
    proptest::option::of(prop_oneof![
        ".{0,30}".prop_map(basic),
        Just(basic(format!("health-advice:{secret}"))),
        Just(basic("health-advice:wrong".to_owned())),
        "[ -~]{0,40}",
        Just("Bearer x".to_owned()),
    ])
}

/// The answer: status, content type and body.
async fn post(
    town: &Town,
    path: &str,
    content_type: Option<&str>,
    authorization: Option<&str>,
    body: Vec<u8>,
) -> (u16, String, String) {
    let mut request = town.post(path).body(body);
    if let Some(ct) = content_type {
        request = request.header(header::CONTENT_TYPE, ct);
    }
    if let Some(a) = authorization {
        request = request.header(header::AUTHORIZATION, a);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, content_type, response.text().await.unwrap())
}

/// A 4xx answer is an OAuth error: `application/json` with a registered `error` code that
/// fits the status, and a printable `error_description`.
fn check_problem(status: u16, content_type: &str, body: &str) -> Result<(), TestCaseError> {
    prop_assert!(status < 500, "a server error: {status} {body}");
    if status >= 400 {
        prop_assert_eq!(content_type, "application/json", "{}", body);
        let error: Value = serde_json::from_str(body).unwrap();
        let code = error["error"].as_str().unwrap_or_default();
        let expected: &[&str] = match status {
            401 => &["invalid_client"],
            429 => &["temporarily_unavailable"],
            _ => &[
                "invalid_request",
                "invalid_grant",
                "unsupported_grant_type",
                "invalid_client",
            ],
        };
        prop_assert!(expected.contains(&code), "{} {}", status, body);
        prop_assert!(error["error_description"].is_string(), "{}", body);
        prop_assert!(error.get("type").is_none(), "{}", body);
    }
    Ok(())
}

#[test]
fn any_body_at_the_oauth_endpoints_gets_an_oauth_error_or_an_answer_never_a_server_error() {
    with_town(300, |runtime, town, runner| {
        let secret = town.health.secret.clone();
        let token = runtime.block_on(town.service_token(&town.health));
        let known = vec![secret.clone(), token];
        let strategy = (
            proptest::sample::select(&ENDPOINTS[..]),
            content_type(),
            authorization(secret.clone()),
        )
            .prop_flat_map(move |(path, content_type, authorization)| {
                (
                    Just(path),
                    Just(content_type),
                    Just(authorization),
                    body(path, known.clone()),
                )
            });
        runner
            .run(&strategy, |(path, content_type, authorization, body)| {
                let sent = body.clone();
                let (status, got_type, answer) = runtime.block_on(post(
                    town,
                    path,
                    content_type,
                    authorization.as_deref(),
                    body,
                ));
                check_problem(status, &got_type, &answer)?;
                // The secret may come back only if the client put it where an answer quotes
                // what was sent (`grant type `...` is not supported`).
                let misplaced = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&sent)
                    .unwrap_or_default()
                    .iter()
                    .any(|(k, v)| k != "client_secret" && v.contains(&secret));
                prop_assert!(
                    misplaced || !answer.contains(&secret),
                    "the secret came back: {answer}"
                );
                Ok(())
            })
            .unwrap();
    });
}

#[test]
fn a_field_given_twice_is_refused_whichever_value_comes_first() {
    with_town(60, |runtime, town, runner| {
        let secret = town.health.secret.clone();
        let valid = [
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", "health-advice".to_owned()),
            ("client_secret", secret.clone()),
        ];
        let strategy = (0..valid.len(), "[a-z0-9_-]{0,20}", any::<bool>());
        runner
            .run(&strategy, |(twice, other, right_first)| {
                let mut form: Vec<(String, String)> = Vec::new();
                for (i, (k, v)) in valid.iter().enumerate() {
                    if i == twice {
                        let pair = [v.clone(), other.clone()];
                        let [a, b] = if right_first {
                            pair
                        } else {
                            [other.clone(), v.clone()]
                        };
                        form.push(((*k).to_owned(), a));
                        form.push(((*k).to_owned(), b));
                    } else {
                        form.push(((*k).to_owned(), v.clone()));
                    }
                }
                let body = serde_urlencoded::to_string(&form).unwrap().into_bytes();
                let (status, got_type, answer) = runtime.block_on(post(
                    town,
                    "/oauth/token",
                    Some("application/x-www-form-urlencoded"),
                    None,
                    body,
                ));
                check_problem(status, &got_type, &answer)?;
                prop_assert_eq!(status, 400, "{:?} was read as {}", form, answer);
                let problem: Value = serde_json::from_str(&answer).unwrap();
                prop_assert_eq!(&problem["error"], "invalid_request", "{}", answer);
                Ok(())
            })
            .unwrap();
        // The same for the token of introspection and revocation.
        for path in ["/oauth/introspect", "/oauth/revoke"] {
            let body = format!("token=a&token=b&client_id=health-advice&client_secret={secret}");
            let (status, got_type, answer) = runtime.block_on(post(
                town,
                path,
                Some("application/x-www-form-urlencoded"),
                None,
                body.into_bytes(),
            ));
            check_problem(status, &got_type, &answer).unwrap();
            assert_eq!(status, 400, "{path}: {answer}");
        }
    });
}

/// Each byte of `s` percent-encoded when its bit in `mask` is set, in upper or lower case hex.
fn percent_encoded(s: &str, mask: u64, lower: bool) -> String {
    s.bytes()
        .enumerate()
        .map(|(i, b)| {
            if mask >> (i % 64) & 1 == 1 {
                if lower {
                    format!("%{b:02x}")
                } else {
                    format!("%{b:02X}")
                }
            } else {
                (b as char).to_string()
            }
        })
        .collect()
}

#[test]
fn a_percent_encoded_field_is_read_as_what_it_decodes_to_and_nothing_else() {
    with_town(60, |runtime, town, runner| {
        let secret = town.health.secret.clone();
        let strategy = (any::<[u64; 6]>(), any::<bool>(), 0usize..4);
        runner
            .run(&strategy, |(masks, lower, spoil)| {
                let pairs = [
                    ("grant_type", "client_credentials"),
                    ("client_id", "health-advice"),
                    ("client_secret", secret.as_str()),
                ];
                // `spoil` 1..=3 changes one value by a character that decodes differently: an
                // encoded space where there is none, an encoded `+`, a trailing NUL.
                let body = pairs
                    .iter()
                    .enumerate()
                    .map(|(i, (k, v))| {
                        let key = percent_encoded(k, masks[2 * i], lower);
                        let mut value = percent_encoded(v, masks[2 * i + 1], lower);
                        if spoil == i + 1 {
                            value.push_str(["%20", "+", "%00"][i]);
                        }
                        format!("{key}={value}")
                    })
                    .collect::<Vec<_>>()
                    .join("&");
                let (status, got_type, answer) = runtime.block_on(post(
                    town,
                    "/oauth/token",
                    Some("application/x-www-form-urlencoded"),
                    None,
                    body.clone().into_bytes(),
                ));
                check_problem(status, &got_type, &answer)?;
                if spoil == 0 {
                    prop_assert_eq!(status, 200, "{} was not read: {}", body, answer);
                    let tokens: Value = serde_json::from_str(&answer).unwrap();
                    prop_assert!(tokens["access_token"].is_string(), "{}", answer);
                } else {
                    prop_assert!(
                        status == 400 || status == 401,
                        "{} was read: {}",
                        body,
                        answer
                    );
                }
                Ok(())
            })
            .unwrap();
    });
}
