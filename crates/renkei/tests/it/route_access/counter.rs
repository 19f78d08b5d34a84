//! The matrix's calls of the city's counter and of statutory representatives: each counter
//! session is opened for the staff member calling (a session is its staff member's alone),
//! for a fresh resident, so that a consent given in one cell conflicts with none.

use renkei_domain::{
    CounterSession, CounterSessionId, CounterVerification, IdentityDocument, OperatorAction,
    OperatorActor, OperatorId, ResidentId,
};
use renkei_hub::accounts::ResidentRequestBody;
use renkei_hub::consents::GrantConsentBody;
use renkei_hub::representatives::RepresentativeBody;
use renkei_hub::routes::RouteAccess;
use serde_json::json;

use super::{Call, HEALTH, Kind, Principal, World, new_resident};

impl World {
    /// The staff member a principal is at the counter (counter staff's own session for
    /// them, the operator's for everyone else, who is refused before it matters).
    fn counter_staff(&self, principal: &Principal) -> OperatorId {
        match principal.kind {
            Kind::CounterStaff => self.staff.clone(),
            _ => self.operator.clone(),
        }
    }

    /// A counter session `staff` opened for a fresh resident.
    async fn counter_session(&self, staff: &OperatorId) -> (String, ResidentId) {
        let resident = new_resident(self.store.as_ref()).await;
        let session = CounterSession::open(
            CounterSessionId::from_uuid(uuid::Uuid::new_v4()),
            staff.clone(),
            resident,
            CounterVerification::InPerson {
                document: IdentityDocument::Passport,
            },
            chrono::Utc::now(),
        );
        let action = OperatorAction::OpenCounterSession {
            session: session.id,
            resident,
            verification: session.verification,
        };
        let actor = OperatorActor::Operator { id: staff.clone() };
        self.store
            .open_counter_session(&session, &actor, &action)
            .await
            .unwrap();
        (session.id.to_string(), resident)
    }

    /// An active consent of the session's resident, given at the counter.
    async fn counter_consent(&self, staff: &OperatorId, session: &str) -> String {
        self.hub
            .counter_grant_consent(staff, session, advice())
            .await
            .unwrap()
            .consent
            .unwrap()
            .id
    }

    /// A genuine counter receipt.
    async fn counter_receipt(&self) -> String {
        let (session, _) = self.counter_session(&self.staff).await;
        self.hub
            .counter_file_request(
                &self.staff,
                &session,
                ResidentRequestBody {
                    kind: "disclosure".into(),
                    service: None,
                    category: None,
                    details: String::new(),
                },
            )
            .await
            .unwrap()
            .receipt
    }

    /// An enrolled resident staff can find by name and birth date.
    async fn enrolled_at_counter(&self) {
        let now = chrono::Utc::now();
        self.store
            .enrol(
                "matrix-counter-card",
                &json!({"name": "窓口 太郎", "date_of_birth": "1980-01-01"}),
                now + chrono::TimeDelta::days(365),
                ResidentId::from_uuid(uuid::Uuid::new_v4()),
                now,
            )
            .await
            .unwrap();
    }

    pub(super) async fn counter_call(
        &self,
        row: &RouteAccess,
        principal: &Principal,
    ) -> Option<Call> {
        let staff = self.counter_staff(principal);
        let call = match (row.method.as_str(), row.path.as_str()) {
            ("POST", "/v1/counter/sessions") => {
                self.enrolled_at_counter().await;
                Call::to(&row.path).json(json!({"in_person": {
                    "document": "drivers_licence", "name": "窓口 太郎", "date_of_birth": "1980-01-01",
                }}))
            }
            ("GET", "/v1/counter/sessions/{id}") => {
                let (id, _) = self.counter_session(&staff).await;
                Call::to(format!("/v1/counter/sessions/{id}"))
            }
            ("POST", "/v1/counter/sessions/{id}/consents") => {
                let (id, _) = self.counter_session(&staff).await;
                Call::to(format!("/v1/counter/sessions/{id}/consents"))
                    .json(json!({"service": HEALTH, "purpose": "advice"}))
            }
            ("POST", "/v1/counter/sessions/{id}/consents/{consent}/revoke") => {
                let (id, _) = self.counter_session(&staff).await;
                let consent = self.counter_consent(&staff, &id).await;
                Call::to(format!(
                    "/v1/counter/sessions/{id}/consents/{consent}/revoke"
                ))
            }
            ("POST", "/v1/counter/sessions/{id}/requests") => {
                let (id, _) = self.counter_session(&staff).await;
                Call::to(format!("/v1/counter/sessions/{id}/requests"))
                    .json(json!({"kind": "correction", "service": HEALTH, "details": "typo"}))
            }
            ("POST", "/v1/counter/receipts/pdf") => {
                Call::to(&row.path).json(json!({"receipt": self.counter_receipt().await}))
            }
            ("POST", "/v1/operator/representatives") => {
                let ward = new_resident(self.store.as_ref()).await;
                let guardian = new_resident(self.store.as_ref()).await;
                Call::to(&row.path).json(json!({
                    "resident": ward.to_string(), "representative": guardian.to_string(),
                    "kind": "guardian", "evidence": "令和8年(家)第1号",
                }))
            }
            ("POST", "/v1/operator/representatives/{id}/end") => {
                let ward = new_resident(self.store.as_ref()).await;
                let guardian = new_resident(self.store.as_ref()).await;
                let registered = self
                    .hub
                    .register_representative(
                        &self.operator,
                        RepresentativeBody {
                            resident: ward.to_string(),
                            representative: guardian.to_string(),
                            kind: "guardian".into(),
                            evidence: "令和8年(家)第2号".into(),
                        },
                    )
                    .await
                    .unwrap();
                Call::to(format!(
                    "/v1/operator/representatives/{}/end",
                    registered.id
                ))
            }
            ("GET", "/console/counter") => Call::to(&row.path),
            ("POST", "/console/counter/sessions") => {
                self.enrolled_at_counter().await;
                Call::to(&row.path).form(&[
                    ("document", "passport"),
                    ("name", "窓口 太郎"),
                    ("date_of_birth", "1980-01-01"),
                ])
            }
            ("GET", "/console/counter/sessions/{id}") => {
                let (id, _) = self.counter_session(&staff).await;
                Call::to(format!("/console/counter/sessions/{id}"))
            }
            ("POST", "/console/counter/sessions/{id}/consents") => {
                let (id, _) = self.counter_session(&staff).await;
                Call::to(format!("/console/counter/sessions/{id}/consents"))
                    .form(&[("purpose", "health-advice/advice")])
            }
            ("POST", "/console/counter/sessions/{id}/consents/{consent}/revoke") => {
                let (id, _) = self.counter_session(&staff).await;
                let consent = self.counter_consent(&staff, &id).await;
                Call::to(format!(
                    "/console/counter/sessions/{id}/consents/{consent}/revoke"
                ))
                .form(&[])
            }
            ("POST", "/console/counter/sessions/{id}/requests") => {
                let (id, _) = self.counter_session(&staff).await;
                Call::to(format!("/console/counter/sessions/{id}/requests")).form(&[
                    ("kind", "deletion"),
                    ("service", HEALTH),
                    ("details", "please"),
                ])
            }
            ("GET", "/console/counter/receipt" | "/console/counter/receipt.pdf") => Call::to(
                format!("{}?receipt={}", row.path, self.counter_receipt().await),
            ),
            ("GET", "/portal/receipts/check") => Call::to(format!(
                "/portal/receipts/check?receipt={}",
                self.counter_receipt().await
            )),
            ("POST", "/portal/receipts/check") => {
                let receipt = self.counter_receipt().await;
                Call::to(&row.path).form(&[("receipt", &receipt)])
            }
            ("GET", "/console/representatives") => Call::to(&row.path),
            ("POST", "/console/representatives") => {
                let ward = new_resident(self.store.as_ref()).await.to_string();
                let guardian = new_resident(self.store.as_ref()).await.to_string();
                Call::to(&row.path).form(&[
                    ("resident", &ward),
                    ("representative", &guardian),
                    ("kind", "guardian"),
                    ("evidence", "令和8年(家)第3号"),
                ])
            }
            _ => return None,
        };
        Some(call)
    }
}

fn advice() -> GrantConsentBody {
    GrantConsentBody {
        service: HEALTH.into(),
        purpose: "advice".into(),
        valid_days: None,
    }
}
