//! The city's counter in the console and the public receipt check: counter staff verify a
//! resident by a document seen and give a consent for them; the receipt page links the PDF;
//! the public check page accepts the genuine receipt and refuses a tampered one; the
//! resident's history says "at the counter, by" the staff member; counter staff reach no
//! other console page.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use renkei_domain::{OperatorId, OperatorRole};

use super::*;

/// Counter staff `sato`, signed in to the console (the cookie the console sets).
async fn staff(town: &Town) -> Browser {
    let identity = another_resident(town).await;
    let sato = OperatorId::new("sato").unwrap();
    town.hub
        .add_operator_as(
            sato.clone(),
            "佐藤".into(),
            identity,
            OperatorRole::CounterStaff,
        )
        .await
        .unwrap();
    let token = town
        .hub
        .keys()
        .issue_operator_token(&sato, Utc::now())
        .unwrap();
    let mut browser = Browser::new();
    browser
        .cookies
        .push(("__Host-renkei-operator".into(), token));
    browser
}

/// A resident enrolled with a card certifying their name and birth date.
async fn enrolled(town: &Town) -> ResidentId {
    let now = Utc::now();
    town.hub
        .store()
        .enrol(
            "pages-counter-card",
            &serde_json::json!({"name": "山田 花子", "date_of_birth": "1950-04-01"}),
            now + chrono::TimeDelta::days(365),
            ResidentId::from_uuid(uuid::Uuid::new_v4()),
            now,
        )
        .await
        .unwrap()
        .enrolment
        .resident
}

fn tamper(jws: &str) -> String {
    let mut parts: Vec<String> = jws.split('.').map(str::to_owned).collect();
    let claims = String::from_utf8(URL_SAFE_NO_PAD.decode(&parts[1]).unwrap())
        .unwrap()
        .replace("\"sato\"", "\"kato\"");
    parts[1] = URL_SAFE_NO_PAD.encode(claims);
    parts.join(".")
}

#[tokio::test]
async fn counter_staff_give_a_consent_whose_receipt_the_public_page_checks() {
    let town = town().await;
    let hanako = enrolled(&town).await;
    let mut sato = staff(&town).await;
    let start = sato.get(&town.app, "/console/counter").await;
    assert_eq!(start.status, StatusCode::OK, "{}", start.body);
    let csrf = Browser::csrf(&start);
    let opened = sato
        .post(
            &town.app,
            "/console/counter/sessions",
            &[
                ("csrf", &csrf),
                ("document", "drivers_licence"),
                ("name", "山田 花子"),
                ("date_of_birth", "1950-04-01"),
            ],
        )
        .await;
    assert_eq!(opened.status, StatusCode::SEE_OTHER, "{}", opened.body);
    let session = opened.headers[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    let page = sato.get(&town.app, &session).await;
    assert!(page.body.contains("山田 花子"), "{}", page.body);
    let given = sato
        .post(
            &town.app,
            &format!("{session}/consents"),
            &[("csrf", &csrf), ("purpose", "health-advice/advice")],
        )
        .await;
    assert_eq!(given.status, StatusCode::SEE_OTHER, "{}", given.body);
    let receipt_page = given.headers[header::LOCATION].to_str().unwrap().to_owned();
    let jws = receipt_page.split("receipt=").nth(1).unwrap().to_owned();
    let shown = sato.get(&town.app, &receipt_page).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert!(shown.body.contains("/console/counter/receipt.pdf?receipt="));
    let pdf = sato
        .get(
            &town.app,
            &format!("/console/counter/receipt.pdf?receipt={jws}"),
        )
        .await;
    assert_eq!(pdf.status, StatusCode::OK);
    assert!(pdf.body.starts_with("%PDF-"));

    // Anyone checks it, signed in or not.
    let mut phone = Browser::new();
    let genuine = phone
        .get(&town.app, &format!("/portal/receipts/check?receipt={jws}"))
        .await;
    assert_eq!(genuine.status, StatusCode::OK);
    assert!(
        genuine.body.contains("id=\"receipt-genuine\""),
        "{}",
        genuine.body
    );
    assert!(genuine.body.contains(">sato<"));
    let tampered = phone
        .get(
            &town.app,
            &format!("/portal/receipts/check?receipt={}", tamper(&jws)),
        )
        .await;
    assert_eq!(tampered.status, StatusCode::OK);
    assert!(tampered.body.contains("id=\"receipt-not-genuine\""));
    assert!(!tampered.body.contains("id=\"receipt-genuine\""));

    // The resident's history says who took it, at the counter.
    let mut resident = Browser::new();
    let page = resident.get(&town.app, "/portal/sign-in").await;
    let csrf = Browser::csrf(&page);
    let hanako = hanako.to_string();
    let signed_in = resident
        .post(
            &town.app,
            "/portal/sign-in/demo",
            &[("csrf", &csrf), ("resident", &hanako)],
        )
        .await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    let history = resident.get(&town.app, "/portal/history?lang=en").await;
    assert!(
        history.body.contains("at the counter, by sato"),
        "{}",
        history.body
    );
}

#[tokio::test]
async fn counter_staff_reach_no_other_page_of_the_console() {
    let town = town().await;
    let mut sato = staff(&town).await;
    for path in [
        "/console",
        "/console/requests",
        "/console/audit",
        "/console/providers",
    ] {
        let answer = sato.get(&town.app, path).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(
            answer.headers[header::LOCATION],
            "/console/sign-in",
            "{path}"
        );
    }
    assert_eq!(
        sato.get(&town.app, "/console/counter").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_operator_registers_a_guardian_and_a_parent_of_an_adult_is_refused_in_words() {
    let town = town().await;
    let mut operator = Browser::new();
    operator.operator(&town).await;
    let page = operator.get(&town.app, "/console/representatives").await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = Browser::csrf(&page);
    let ward = another_resident(&town).await.to_string();
    let guardian = another_resident(&town).await.to_string();
    let mut form = vec![
        ("csrf", csrf.as_str()),
        ("resident", ward.as_str()),
        ("representative", guardian.as_str()),
        ("kind", "guardian"),
        ("evidence", "令和8年(家)第7号"),
    ];
    let done = operator
        .post(&town.app, "/console/representatives", &form)
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let shown = operator
        .get(&town.app, done.headers[header::LOCATION].to_str().unwrap())
        .await;
    assert!(shown.body.contains("id=\"representative-done\""));
    // A parent needs a verified birth date showing a minor: this ward has none.
    form[3] = ("kind", "parent");
    let refused = operator
        .post(&town.app, "/console/representatives", &form)
        .await;
    assert_eq!(refused.status, StatusCode::OK);
    assert!(
        refused.body.contains("id=\"representative-error\""),
        "{}",
        refused.body
    );
}
