//! The disclosure page (a package downloads, a bad key is refused with the page) and what a
//! resident's history shows of an operator's audit search naming them.

use super::*;

#[tokio::test]
async fn the_disclosure_page_answers_the_package_as_a_download_and_refuses_a_bad_key() {
    let town = town().await;
    let mut browser = Browser::new();
    browser.sign_in(&town).await;
    let page = browser.get(&town.app, "/portal/disclosure").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("id=\"disclosure-form\""));
    assert!(page.body.contains(&format!(
        "data-verifier-key=\"{}\"",
        town.hub.keys().log.verifier_key()
    )));
    let csrf = Browser::csrf(&page);
    let key = renkei_protocol::envelope::ServiceKeyPair::generate().unwrap();
    let answer = browser
        .post(
            &town.app,
            "/portal/disclosure",
            &[("csrf", &csrf), ("recipient_key", &key.public_b64())],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let disposition = answer.headers[header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"renkei-disclosure-"),
        "{disposition}"
    );
    let package: renkei_hub::disclosure::DisclosurePackage =
        serde_json::from_str(&answer.body).unwrap();
    assert_eq!(package.resident, town.resident.to_string());
    renkei_hub::disclosure::verify_package(&package, Default::default(), Some(&key)).unwrap();

    // Without a key the browser made (no JavaScript), the page says so.
    let refused = browser
        .post(
            &town.app,
            "/portal/disclosure",
            &[("csrf", &csrf), ("recipient_key", "")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("role=\"alert\""));
}

#[tokio::test]
async fn an_operators_search_naming_the_resident_shows_in_their_history_with_the_reason() {
    let town = town().await;
    let mut operator = Browser::new();
    operator.operator(&town).await;
    let search = operator
        .get(
            &town.app,
            &format!(
                "/console/audit?resident={}&reason=complaint+2026-114",
                town.resident
            ),
        )
        .await;
    assert_eq!(search.status, StatusCode::OK, "{}", search.body);

    let mut resident = Browser::new();
    resident.sign_in(&town).await;
    let history = resident.get(&town.app, "/portal/history").await;
    assert_eq!(history.status, StatusCode::OK);
    assert!(
        history.body.contains("data-outcome=\"looked\""),
        "{}",
        history.body
    );
    assert!(history.body.contains("complaint 2026-114"));
    assert!(history.body.contains("職員 tanaka"));
}
