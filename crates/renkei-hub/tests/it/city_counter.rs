//! The city's counter and statutory representatives, over real HTTP: counter staff verify a
//! resident (the card read at the kiosk, or a document seen), give a consent for them that
//! the resident sees as given "at the counter" by that staff member and that verifies in
//! the signed log, and print a receipt whose JWS verifies against the published keys; a
//! parent's authority ends on the child's 18th birthday, judged at use against the hub's
//! clock; a minor's consent to special-care data needs the representative.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{Datelike, Months, NaiveDate, TimeDelta, Utc};
use renkei_domain::{OperatorId, OperatorRole, ResidentId};
use renkei_identity::{DevCa, IdentityAttributes, KeyAlgorithm, Validity};
use renkei_log::checkpoint::Checkpoint;
use renkei_protocol::keys::Jwks;
use renkei_protocol::receipt::counter::{CounterAct, verify_counter_receipt};
use serde_json::{Value, json};

use crate::common::{Town, expect_problem};
use crate::transparency_log::{everything_signed, my_log, published_key, verify_entry};

/// Counter staff `sato` (Carol's identity), and their bearer token.
async fn counter_staff(town: &Town) -> String {
    let sato = OperatorId::new("sato").unwrap();
    town.hub
        .add_operator_as(
            sato.clone(),
            "佐藤".into(),
            town.carol,
            OperatorRole::CounterStaff,
        )
        .await
        .unwrap();
    town.hub
        .keys()
        .issue_operator_token(&sato, Utc::now())
        .unwrap()
}

/// A card of the town's CA for `name`, born on `born`.
fn card(ca: &DevCa, name: &str, born: NaiveDate) -> renkei_identity::IssuedCertificate {
    let mut attributes = IdentityAttributes::new(name);
    attributes.date_of_birth = Some(born);
    ca.issue_resident(
        &attributes,
        Validity::days_from(Utc::now(), 365),
        KeyAlgorithm::EcdsaP256,
    )
    .unwrap()
}

/// The kiosk's part: a challenge answered with the card.
async fn card_answer(town: &Town, card: &renkei_identity::IssuedCertificate) -> Value {
    let challenge: Value = town
        .post("/v1/enrolment/challenges")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bytes = URL_SAFE_NO_PAD
        .decode(challenge["challenge"].as_str().unwrap())
        .unwrap();
    let signature = renkei_identity::sign_challenge(&card.key_pem, &bytes).unwrap();
    json!({
        "challenge_id": challenge["id"],
        "certificate_chain": card.cert_pem,
        "signature": URL_SAFE_NO_PAD.encode(signature),
    })
}

async fn post(town: &Town, token: &str, path: &str, body: Value) -> reqwest::Response {
    town.post(path)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Today's date in Japan.
fn today_jst() -> NaiveDate {
    (Utc::now() + TimeDelta::hours(9)).date_naive()
}

/// Someone who turns 18 `days` days from today (in Japan).
fn turning_18_in(days: i64) -> NaiveDate {
    (today_jst() + TimeDelta::days(days))
        .checked_sub_months(Months::new(12 * 18))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consent_entered_at_the_counter_shows_as_such_verifies_in_the_log_and_prints() {
    let town = Town::new().await;
    let staff = counter_staff(&town).await;
    let hanako = card(
        &town.dev_ca,
        "山田 花子",
        NaiveDate::from_ymd_opt(1975, 4, 1).unwrap(),
    );

    // The card read at the kiosk opens the session, enrolling her as it goes.
    let kiosk = card_answer(&town, &hanako).await;
    let opened = post(
        &town,
        &staff,
        "/v1/counter/sessions",
        json!({ "card": kiosk }),
    )
    .await;
    assert_eq!(opened.status(), 201);
    let session: Value = opened.json().await.unwrap();
    assert_eq!(session["resident_name"], "山田 花子");
    assert_eq!(session["verification"], "card");
    let id = session["id"].as_str().unwrap();

    let given = post(
        &town,
        &staff,
        &format!("/v1/counter/sessions/{id}/consents"),
        json!({ "service": "health-advice", "purpose": "advice" }),
    )
    .await;
    assert_eq!(given.status(), 201);
    let given: Value = given.json().await.unwrap();
    let consent_id = given["consent"]["id"].as_str().unwrap().to_owned();
    assert_eq!(given["consent"]["given_via"], "counter");

    // The receipt verifies with nothing but the published key set.
    let jwks: Jwks = town
        .get("/.well-known/jwks.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jws = given["receipt"].as_str().unwrap();
    let receipt = verify_counter_receipt(jws, &jwks).unwrap();
    assert_eq!(receipt.staff.as_str(), "sato");
    assert!(
        matches!(&receipt.act, CounterAct::ConsentGiven { consent, .. } if consent.to_string() == consent_id)
    );
    assert!(
        given["check_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("?receipt={jws}"))
    );

    // Printed: a PDF carrying the receipt.
    let pdf = post(
        &town,
        &staff,
        "/v1/counter/receipts/pdf",
        json!({ "receipt": jws }),
    )
    .await;
    assert_eq!(pdf.status(), 200);
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    let pdf = pdf.bytes().await.unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    assert!(String::from_utf8_lossy(&pdf).contains(jws));
    // A receipt with another staff member's name in it is no receipt of this hub's.
    let mut parts: Vec<String> = jws.split('.').map(str::to_owned).collect();
    let claims = String::from_utf8(URL_SAFE_NO_PAD.decode(&parts[1]).unwrap())
        .unwrap()
        .replace("\"sato\"", "\"kato\"");
    parts[1] = URL_SAFE_NO_PAD.encode(claims);
    let tampered = parts.join(".");
    assert!(verify_counter_receipt(&tampered, &jwks).is_err());
    let refused = post(
        &town,
        &staff,
        "/v1/counter/receipts/pdf",
        json!({ "receipt": tampered }),
    )
    .await;
    assert_eq!(refused.status(), 400);

    // Hanako sees it as given at the counter, by sato.
    let resident: ResidentId = town
        .store
        .enrolments_named("山田 花子")
        .await
        .unwrap()
        .first()
        .unwrap()
        .resident;
    let hers = town.sign_in(resident).await;
    let consents = town.consents(&hers).await;
    let mine = consents.iter().find(|c| c.id == consent_id).unwrap();
    assert_eq!(mine.given_via, "counter");
    assert_eq!(
        mine.given_by,
        json!({ "kind": "staff", "staff_id": "sato" })
    );

    // ...and its entry of the log says so and verifies against the signed checkpoint.
    let key = published_key(&town).await;
    everything_signed(&town, &key).await;
    let page = my_log(&town, &hers, "").await;
    let checkpoint = Checkpoint::open(
        page["checkpoint"].as_str().unwrap().as_bytes(),
        key.name(),
        &key,
    )
    .unwrap();
    let entry = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "consent")
        .unwrap();
    let (_, parsed) = verify_entry(entry, &checkpoint);
    assert_eq!(parsed["consent"], consent_id);
    assert_eq!(
        parsed["actor"],
        json!({ "kind": "staff", "staff_id": "sato" })
    );

    // Opening the session is sato's act in the log.
    let acts = town.hub.operator_log(None, 10).await.unwrap();
    assert!(acts.iter().any(|a| matches!(
        &a.action,
        renkei_domain::OperatorAction::OpenCounterSession { resident: r, .. } if *r == resident
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_find_a_resident_by_the_document_they_saw_and_only_their_own_session() {
    let town = Town::new().await;
    let staff = counter_staff(&town).await;
    let born = NaiveDate::from_ymd_opt(1972, 11, 3).unwrap();
    let kiosk = card_answer(&town, &card(&town.dev_ca, "鈴木 一郎", born)).await;
    assert_eq!(
        town.post("/v1/enrolment")
            .json(&kiosk)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let seen = |name: &str, born: &str| json!({ "in_person": { "document": "drivers_licence", "name": name, "date_of_birth": born } });
    let wrong = post(
        &town,
        &staff,
        "/v1/counter/sessions",
        seen("鈴木 一郎", "1972-11-04"),
    )
    .await;
    expect_problem(wrong, 404, "/problems/not-found").await;
    let opened = post(
        &town,
        &staff,
        "/v1/counter/sessions",
        seen("鈴木 一郎", "1972-11-03"),
    )
    .await;
    assert_eq!(opened.status(), 201);
    let session: Value = opened.json().await.unwrap();
    assert_eq!(session["verification"], "in_person:drivers_licence");

    // Another staff member (here an operator) cannot use it.
    let operator = town.operator_token().await;
    let theirs = town
        .get(&format!(
            "/v1/counter/sessions/{}",
            session["id"].as_str().unwrap()
        ))
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap();
    assert_eq!(theirs.status(), 404);
    // Counter staff are no operators elsewhere.
    let requests = town
        .get("/v1/operator/requests")
        .bearer_auth(&staff)
        .send()
        .await
        .unwrap();
    assert_eq!(requests.status(), 401);
}

/// Registers `parent` as `child`'s 親権者, as an operator.
async fn register_parent(
    town: &Town,
    operator: &str,
    child: ResidentId,
    parent: ResidentId,
) -> reqwest::Response {
    post(
        town,
        operator,
        "/v1/operator/representatives",
        json!({
            "resident": child.to_string(), "representative": parent.to_string(),
            "kind": "parent", "evidence": "戸籍謄本 R8-0001",
        }),
    )
    .await
}

/// A child enrolled with birth date `born` (its card key `key`), without a real card.
async fn child_born(town: &Town, key: &str, born: NaiveDate) -> ResidentId {
    let now = Utc::now();
    town.store
        .enrol(
            key,
            &json!({ "name": "山田 太郎", "date_of_birth": born.to_string() }),
            now + TimeDelta::days(365),
            ResidentId::from_uuid(uuid::Uuid::new_v4()),
            now,
        )
        .await
        .unwrap()
        .enrolment
        .resident
}

/// The parent's session acting under their appointment for `child`.
async fn parent_session(town: &Town, parent: ResidentId, child: ResidentId) -> String {
    let appointment = town
        .store
        .proxy_for(parent)
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.resident == child)
        .unwrap();
    town.hub
        .keys()
        .issue_proxy_token(&appointment, Utc::now())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parents_authority_holds_the_day_before_the_18th_birthday_and_ends_on_it() {
    let town = Town::new().await;
    let operator = town.operator_token().await;
    // Turning 18 tomorrow: still a minor today, on the hub's clock.
    let child = child_born(&town, "child-card", turning_18_in(1)).await;
    assert_eq!(
        register_parent(&town, &operator, child, town.bob)
            .await
            .status(),
        201
    );
    let parent = parent_session(&town, town.bob, child).await;
    let consents = town
        .get("/v1/me/consents")
        .bearer_auth(&parent)
        .send()
        .await
        .unwrap();
    assert_eq!(consents.status(), 200, "the day before the 18th birthday");
    // The child cannot end it: the law appointed the parent, and the city ends it.
    let appointment = town.store.proxies_of(child).await.unwrap()[0].id;
    let own = town.sign_in(child).await;
    let ended = town
        .post(&format!("/v1/me/proxies/{appointment}/end"))
        .bearer_auth(&own)
        .send()
        .await
        .unwrap();
    expect_problem(ended, 403, "/problems/forbidden").await;

    // The same child as their card now says: born a day earlier, so 18 today. The parent's
    // session, issued while it held, stops at its next use; nothing had to run.
    child_born(&town, "child-card", turning_18_in(0)).await;
    let consents = town
        .get("/v1/me/consents")
        .bearer_auth(&parent)
        .send()
        .await
        .unwrap();
    assert_eq!(consents.status(), 401, "on the 18th birthday");
    // ...and no new one is registered for an adult.
    let adult = child_born(&town, "adult-card", turning_18_in(0)).await;
    let refused = register_parent(&town, &operator, adult, town.bob).await;
    expect_problem(refused, 403, "/problems/forbidden").await;
    assert!(today_jst().year() > 2000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minor_cannot_consent_alone_to_special_care_data_but_can_with_the_representative() {
    let town = Town::new().await;
    let operator = town.operator_token().await;
    let child = child_born(&town, "minor-card", turning_18_in(400)).await;
    let own = town.sign_in(child).await;
    let advice = json!({ "service": "health-advice", "purpose": "advice" });

    let alone = post(&town, &own, "/v1/me/consents", advice.clone()).await;
    let problem = expect_problem(alone, 403, "/problems/forbidden").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("minor-needs-representative"),
        "{problem}"
    );
    // Nor through counter staff alone.
    let staff = counter_staff(&town).await;
    let opened = post(
        &town,
        &staff,
        "/v1/counter/sessions",
        json!({ "in_person": { "document": "passport", "name": "山田 太郎", "date_of_birth": turning_18_in(400).to_string() } }),
    )
    .await;
    assert_eq!(opened.status(), 201);
    let id = opened.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let at_counter = post(
        &town,
        &staff,
        &format!("/v1/counter/sessions/{id}/consents"),
        advice.clone(),
    )
    .await;
    expect_problem(at_counter, 403, "/problems/forbidden").await;
    // What draws on no special-care data the minor gives alone.
    let rides = post(
        &town,
        &own,
        "/v1/me/consents",
        json!({ "service": "town-mobility", "purpose": "rides" }),
    )
    .await;
    assert_eq!(rides.status(), 201);

    assert_eq!(
        register_parent(&town, &operator, child, town.bob)
            .await
            .status(),
        201
    );
    let parent = parent_session(&town, town.bob, child).await;
    let with_parent = post(&town, &parent, "/v1/me/consents", advice).await;
    assert_eq!(with_parent.status(), 201);
    let given: Value = with_parent.json().await.unwrap();
    assert_eq!(given["consent"]["given_via"], "proxy");
}
