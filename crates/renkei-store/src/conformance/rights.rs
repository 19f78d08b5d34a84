//! Conformance checks for residents' requests routed to whoever holds the data: filed with
//! recipients, webhook messages and a log entry at once; answered with the status that
//! follows, a provider's deletion removing its locators; due dates extended with an entry.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use renkei_domain::{
    Actor, CategoryId, LogEntry, OperatorAction, OperatorActor, OperatorId, ProviderId, Recipient,
    RecipientAnswer, ResidentId, ResidentRequest, ResidentRequestId, ResidentRequestKind,
    ResidentRequestStatus, RightsEvent,
};
use uuid::Uuid;

use super::{cat, leaf_of, service_id, town};
use crate::{AnswerOutcome, OutboxMessage, RecipientAnswerDraft, Store};

fn request(resident: ResidentId, kind: ResidentRequestKind) -> ResidentRequest {
    let now = chrono::DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
    ResidentRequest {
        id: ResidentRequestId::from_uuid(Uuid::new_v4()),
        resident,
        kind,
        service: Some(service_id()),
        details: "古い住所を削除してください".into(),
        status: ResidentRequestStatus::Received,
        filed_by: Actor::Resident,
        filed_at: now,
        updated_at: now,
        response: None,
        category: Some(cat("health.checkup")),
        due_at: now + TimeDelta::days(14),
        extension_reason: None,
    }
}

fn checkup() -> BTreeSet<CategoryId> {
    [cat("health.checkup")].into()
}

pub async fn a_routed_request_is_filed_with_its_recipients_messages_and_log_entry(
    store: Arc<dyn Store>,
) {
    let people = town(store.as_ref(), 2).await;
    let r = request(people[0].0, ResidentRequestKind::Deletion);
    let service = Recipient::Service(service_id());
    let clinic = Recipient::Provider(ProviderId::new("clinic").unwrap());
    let size = store.log_size().await.unwrap();
    let message = OutboxMessage {
        id: Uuid::new_v4(),
        service: service_id(),
        event: serde_json::json!({ "rights": { "request": r.id } }),
    };
    let entry = store
        .file_routed_request(
            &r,
            &[(service.clone(), checkup()), (clinic.clone(), checkup())],
            std::slice::from_ref(&message),
            0,
        )
        .await
        .unwrap();
    assert_eq!(entry.seq, size);
    assert_eq!(
        store.requests_of(people[0].0).await.unwrap(),
        vec![r.clone()]
    );
    // The service's message waits in the outbox, from the same transaction.
    let due = store
        .take_due_messages(Utc::now(), Utc::now() + TimeDelta::seconds(30), 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].message.id, message.id);
    let recipients = store.request_recipients(&[r.id]).await.unwrap();
    assert_eq!(recipients.len(), 2);
    assert!(
        recipients
            .iter()
            .all(|x| x.answer == RecipientAnswer::Pending && x.categories == checkup())
    );
    // Each recipient lists it; nobody else does.
    let mine = store.routed_to(&clinic, true).await.unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].0.id, r.id);
    let other = Recipient::Provider(ProviderId::new("payments").unwrap());
    assert!(store.routed_to(&other, false).await.unwrap().is_empty());
    // The entry verifies and holds ids only, not the resident's words.
    let stored = store.log_range(entry.seq, 1).await.unwrap();
    let read = stored[0].entry.clone().unwrap().unwrap();
    assert_eq!(read, LogEntry::Rights(entry.clone()));
    let leaf = stored[0].leaf.as_ref().unwrap();
    assert_eq!(leaf.kind, "rights");
    assert_eq!(leaf.leaf_hash, leaf_of(&read, &leaf.salt));
    let canonical = String::from_utf8(read.canonical()).unwrap();
    assert!(!canonical.contains("住所"), "{canonical}");
    assert!(matches!(
        entry.event,
        RightsEvent::Routed { ref services, ref providers, consents_revoked: 0 }
            if services.len() == 1 && providers.len() == 1
    ));
}

pub async fn a_providers_deletion_removes_its_locators_and_the_answers_complete_the_request(
    store: Arc<dyn Store>,
) {
    let people = town(store.as_ref(), 2).await;
    let (alice, bob) = (people[0].0, people[1].0);
    let r = request(alice, ResidentRequestKind::Deletion);
    let service = Recipient::Service(service_id());
    let clinic = Recipient::Provider(ProviderId::new("clinic").unwrap());
    store
        .file_routed_request(
            &r,
            &[(service.clone(), checkup()), (clinic.clone(), checkup())],
            &[],
            0,
        )
        .await
        .unwrap();
    let at = r.filed_at + TimeDelta::minutes(5);
    let answer = |recipient, answer, note| RecipientAnswerDraft {
        request: r.id,
        recipient,
        answer,
        note,
        at,
    };
    // Someone it did not go to is not a recipient.
    let stranger = Recipient::Provider(ProviderId::new("payments").unwrap());
    assert_eq!(
        store
            .answer_routed_request(&answer(&stranger, RecipientAnswer::Done, None))
            .await
            .unwrap(),
        AnswerOutcome::NotARecipient
    );
    let AnswerOutcome::Answered { request, .. } = store
        .answer_routed_request(&answer(&service, RecipientAnswer::Partly, Some("backups")))
        .await
        .unwrap()
    else {
        panic!("answered")
    };
    assert_eq!(request.status, ResidentRequestStatus::InProgress);
    let before = store.locators_of(alice).await.unwrap().len();
    let AnswerOutcome::Answered {
        request,
        recipients,
        entry,
    } = store
        .answer_routed_request(&answer(&clinic, RecipientAnswer::Done, None))
        .await
        .unwrap()
    else {
        panic!("answered")
    };
    // Every recipient answered, none refused: completed.
    assert_eq!(request.status, ResidentRequestStatus::Completed);
    assert_eq!(request.updated_at, at);
    assert!(matches!(
        entry.event,
        RightsEvent::Answered {
            locators_removed: 1,
            answer: RecipientAnswer::Done,
            ..
        }
    ));
    let service_row = recipients.iter().find(|x| x.recipient == service).unwrap();
    assert_eq!(service_row.note.as_deref(), Some("backups"));
    assert_eq!(service_row.answered_at, Some(at));
    // The clinic's locator of that category is gone; Bob's and the other category stay.
    let left = store.locators_of(alice).await.unwrap();
    assert_eq!(left.len(), before - 1);
    assert!(left.iter().all(|l| l.category != cat("health.checkup")));
    assert_eq!(store.locators_of(bob).await.unwrap().len(), 2);
    // Done is final; a partial answer may be followed by a final one.
    assert_eq!(
        store
            .answer_routed_request(&answer(&clinic, RecipientAnswer::Refused, Some("no")))
            .await
            .unwrap(),
        AnswerOutcome::AlreadyAnswered(RecipientAnswer::Done)
    );
    assert!(matches!(
        store
            .answer_routed_request(&answer(&service, RecipientAnswer::Done, None))
            .await
            .unwrap(),
        AnswerOutcome::Answered { .. }
    ));
    assert!(store.routed_to(&clinic, true).await.unwrap().is_empty());
    assert_eq!(store.routed_to(&clinic, false).await.unwrap().len(), 1);
}

pub async fn an_extension_moves_the_due_date_with_its_reason_and_an_operator_entry(
    store: Arc<dyn Store>,
) {
    let people = town(store.as_ref(), 1).await;
    let r = request(people[0].0, ResidentRequestKind::Correction);
    store.file_request(&r).await.unwrap();
    let until = r.due_at + TimeDelta::days(14);
    let actor = OperatorActor::Operator {
        id: OperatorId::new("tanaka").unwrap(),
    };
    let action = OperatorAction::ExtendRequest {
        request: r.id,
        due_at: until,
    };
    let size = store.log_size().await.unwrap();
    let extended = store
        .extend_request(r.id, until, "診療所の記録が書庫にあるため", &actor, &action)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(extended.due_at, until);
    assert_eq!(
        extended.extension_reason.as_deref(),
        Some("診療所の記録が書庫にあるため")
    );
    assert_eq!(store.log_size().await.unwrap(), size + 1);
    assert_eq!(store.operator_log(None, 1).await.unwrap()[0].action, action);
    assert_eq!(store.requests(None).await.unwrap(), vec![extended]);
    let nobody = ResidentRequestId::from_uuid(Uuid::new_v4());
    assert!(
        store
            .extend_request(nobody, until, "x", &actor, &action)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.log_size().await.unwrap(), size + 1);
}
