//! Residents' requests and their due dates in the pages: the console flags a request past its
//! due date and counts it in its summary; an operator extends it with a reason through the
//! queue's form, and the resident reads the new date and the reason in their portal.

use chrono::{TimeDelta, Utc};
use renkei_domain::{
    Actor, ResidentRequest, ResidentRequestId, ResidentRequestKind, ResidentRequestStatus,
};

use super::*;

#[tokio::test]
async fn an_overdue_request_is_flagged_and_an_extension_shows_its_reason_to_the_resident() {
    let town = town().await;
    let filed_at = Utc::now() - TimeDelta::days(20);
    let late = ResidentRequest {
        id: ResidentRequestId::from_uuid(uuid::Uuid::new_v4()),
        resident: town.resident,
        kind: ResidentRequestKind::Correction,
        service: None,
        details: "住所を訂正してください".into(),
        status: ResidentRequestStatus::Received,
        filed_by: Actor::Resident,
        filed_at,
        updated_at: filed_at,
        response: None,
        category: None,
        due_at: filed_at + TimeDelta::days(14),
        extension_reason: None,
    };
    town.hub.store().file_request(&late).await.unwrap();
    let id = late.id.to_string();

    let mut operator = Browser::new();
    operator.operator(&town).await;
    let queue = operator.get(&town.app, "/console/requests").await;
    assert_eq!(queue.status, StatusCode::OK, "{}", queue.body);
    assert!(
        queue.body.contains(&format!(
            "id=\"r-{id}\" data-status=\"received\" data-overdue=\"true\""
        )),
        "{}",
        queue.body
    );
    assert!(queue.body.contains("<dd id=\"overdue-count\">1</dd>"));
    // An extension without a reason is refused; with one, it moves the date.
    let csrf = Browser::csrf(&queue);
    let path = format!("/console/requests/{id}/extend");
    let refused = operator
        .post(
            &town.app,
            &path,
            &[
                ("csrf", &csrf),
                ("due_at", "2099-01-01T09:00"),
                ("reason", " "),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    let extended = operator
        .post(
            &town.app,
            &path,
            &[
                ("csrf", &csrf),
                ("due_at", "2099-01-01T09:00"),
                ("reason", "診療所の記録が書庫にあり確認に時間がかかります"),
            ],
        )
        .await;
    assert_eq!(extended.status, StatusCode::SEE_OTHER, "{}", extended.body);
    let queue = operator.get(&town.app, "/console/requests").await;
    assert!(queue.body.contains("data-overdue=\"false\""));
    assert!(queue.body.contains("<dd id=\"overdue-count\">0</dd>"));

    let mut resident = Browser::new();
    resident.sign_in(&town).await;
    let page = resident.get(&town.app, "/portal/requests").await;
    assert!(page.body.contains("2099年1月1日"), "{}", page.body);
    assert!(
        page.body
            .contains("診療所の記録が書庫にあり確認に時間がかかります")
    );
}
