//! Conformance checks of the city's counter and statutory representatives
//! ([`crate::CounterStore`]): sessions and registrations written with their log entries,
//! operator roles kept, and residents found by the exact name they enrolled with.

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use renkei_domain::{
    CounterSession, CounterSessionId, CounterVerification, EvidenceReference, IdentityDocument,
    Operator, OperatorAction, OperatorActor, OperatorId, OperatorRole, ProxyAppointment, ProxyId,
    Representation, RepresentativeKind, ResidentId,
};
use uuid::Uuid;

use super::town;
use crate::Store;

fn now_ms() -> chrono::DateTime<Utc> {
    chrono::DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap()
}

async fn staff(store: &dyn Store, identity: ResidentId) -> Operator {
    let operator = Operator {
        id: OperatorId::new("sato").unwrap(),
        name: "佐藤".into(),
        identity,
        added_at: now_ms(),
        role: OperatorRole::CounterStaff,
    };
    store.put_operator(&operator).await.unwrap();
    operator
}

pub async fn a_counter_session_is_kept_with_its_log_entry_and_staff_keep_their_role(
    store: Arc<dyn Store>,
) {
    let people = town(store.as_ref(), 2).await;
    let operator = staff(store.as_ref(), people[0].0).await;
    assert_eq!(
        store.operator(&operator.id).await.unwrap().unwrap().role,
        OperatorRole::CounterStaff
    );
    let session = CounterSession::open(
        CounterSessionId::from_uuid(Uuid::new_v4()),
        operator.id.clone(),
        people[1].0,
        CounterVerification::InPerson {
            document: IdentityDocument::DriversLicence,
        },
        now_ms(),
    );
    let action = OperatorAction::OpenCounterSession {
        session: session.id,
        resident: session.resident,
        verification: session.verification,
    };
    let actor = OperatorActor::Operator {
        id: operator.id.clone(),
    };
    let entry = store
        .open_counter_session(&session, &actor, &action)
        .await
        .unwrap();
    assert_eq!(entry.action, action);
    assert_eq!(
        store.counter_session(session.id).await.unwrap(),
        Some(session)
    );
    assert_eq!(
        store
            .counter_session(CounterSessionId::from_uuid(Uuid::new_v4()))
            .await
            .unwrap(),
        None
    );
    let logged = store.operator_log(None, 10).await.unwrap();
    assert_eq!(logged.first().map(|e| &e.action), Some(&action));
}

pub async fn residents_are_found_by_the_exact_name_they_enrolled_with(store: Arc<dyn Store>) {
    let now = Utc::now();
    let until = now + TimeDelta::days(365);
    let enrol = async |key: &str, name: &str| {
        store
            .enrol(
                key,
                &serde_json::json!({"name": name, "date_of_birth": "2012-04-01"}),
                until,
                ResidentId::from_uuid(Uuid::new_v4()),
                now,
            )
            .await
            .unwrap()
            .enrolment
            .resident
    };
    let hanako = enrol("k1", "山田 花子").await;
    let wild = enrol("k2", "100%_Taro!").await;
    enrol("k3", "山田 花子子").await;
    enrol("k4", "Yamada").await;
    let found = store.enrolments_named("山田 花子").await.unwrap();
    assert_eq!(
        found.iter().map(|e| e.resident).collect::<Vec<_>>(),
        vec![hanako]
    );
    let found = store.enrolments_named("100%_Taro!").await.unwrap();
    assert_eq!(
        found.iter().map(|e| e.resident).collect::<Vec<_>>(),
        vec![wild],
        "LIKE's wildcards in a name match themselves"
    );
    assert!(store.enrolments_named("yamada").await.unwrap().is_empty());
    assert!(store.enrolments_named("100").await.unwrap().is_empty());
}

pub async fn a_representative_is_registered_and_ended_by_operators_with_log_entries(
    store: Arc<dyn Store>,
) {
    let people = town(store.as_ref(), 3).await;
    let (child, parent, proxy) = (people[0].0, people[1].0, people[2].0);
    let operator = OperatorId::new("tanaka").unwrap();
    let actor = OperatorActor::Operator {
        id: operator.clone(),
    };
    let at = now_ms();
    let representation = Representation {
        kind: RepresentativeKind::Parent,
        evidence: EvidenceReference::new("戸籍謄本 R8-0042").unwrap(),
        registered_by: operator,
    };
    let appointment = ProxyAppointment {
        id: ProxyId::from_uuid(Uuid::new_v4()),
        resident: child,
        proxy: parent,
        label: "親権者".into(),
        scope: Representation::scope(),
        appointed_at: at,
        ended_at: None,
        representation: Some(representation.clone()),
    };
    let register = OperatorAction::RegisterRepresentative {
        appointment: appointment.id,
        resident: child,
        representative: parent,
        kind: representation.kind,
        evidence: representation.evidence.clone(),
    };
    let entry = store
        .register_representative(&appointment, &actor, &register, at)
        .await
        .unwrap();
    assert_eq!(entry.action, register);
    assert_eq!(
        store.proxy_appointment(appointment.id).await.unwrap(),
        Some(appointment.clone())
    );
    assert_eq!(
        store.proxy_for(parent).await.unwrap(),
        vec![appointment.clone()]
    );

    // A proxy the resident appointed is not an operator's to end.
    let own = ProxyAppointment {
        id: ProxyId::from_uuid(Uuid::new_v4()),
        proxy,
        label: "叔母".into(),
        representation: None,
        ..appointment.clone()
    };
    store.appoint_proxy(&own).await.unwrap();
    let end_own = OperatorAction::EndRepresentative {
        appointment: own.id,
    };
    assert_eq!(
        store
            .end_representative(own.id, &actor, &end_own, at)
            .await
            .unwrap(),
        None
    );
    let end = OperatorAction::EndRepresentative {
        appointment: appointment.id,
    };
    let ended = store
        .end_representative(appointment.id, &actor, &end, at)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended.ended_at, Some(at));
    assert_eq!(ended.representation, Some(representation));
    assert_eq!(
        store
            .end_representative(appointment.id, &actor, &end, at)
            .await
            .unwrap(),
        None,
        "ended once"
    );
    let logged: Vec<_> = store
        .operator_log(None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        logged,
        vec![end, register],
        "nothing logged for what did not happen"
    );
}
