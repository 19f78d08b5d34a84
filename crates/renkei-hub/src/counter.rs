//! The city's counter (窓口), for residents who would rather not, or cannot, use the portal
//! (see [`renkei_domain::counter::session`] for the rules).
//!
//! Counter staff (an operator account of role `counter_staff`, or any operator) verify the
//! resident in person: the card certificate read at the counter's kiosk, answering an
//! enrolment challenge and checked exactly as enrolment checks it ([`Hub::enrol`], which also
//! enrols a resident the hub has not met), or an in-person check, where staff attest the kind
//! of document they saw and type the name and birth date it shows, which must match one
//! enrolled resident exactly. Either opens a [`CounterSession`] (an operator entry of the
//! log, in the same transaction), in which staff enter consents, revocations and requests
//! for that resident: ordinary ones, with channel `counter` and the staff member as actor
//! (`Actor::Staff`), so the resident's history says "at the counter, by" and the staff member.
//!
//! Each act is answered with a counter receipt ([`renkei_protocol::receipt::counter`]),
//! printed as a PDF (`counter_pdf.rs`) whose QR code opens the public check page with the
//! receipt in its address; [`Hub::check_counter_receipt`] is that check.

use chrono::{NaiveDate, Utc};
use renkei_domain::{
    Actor, ConsentChannel, ConsentId, CounterSession, CounterSessionError, CounterSessionId,
    CounterVerification, IdentityDocument, OperatorAction, OperatorActor, OperatorId, ResidentId,
};
use renkei_protocol::receipt::ReceiptError;
pub use renkei_protocol::receipt::counter::{CounterAct, CounterReceipt};
use renkei_protocol::receipt::counter::{sign_counter_receipt, verify_counter_receipt};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::accounts::ResidentRequestBody;
use crate::auth::ResidentSession;
use crate::consents::{ConsentView, GrantConsentBody, now_ms};
use crate::counter_pdf::ReceiptSheet;
use crate::enrolment::EnrolmentBody;
use crate::{Hub, HubError};

/// Where the portal checks a counter receipt; the QR code carries this with `?receipt=`.
pub const RECEIPT_CHECK_PATH: &str = "/portal/receipts/check";

/// How staff verified the resident: exactly one of the two.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenCounterSessionBody {
    /// The card certificate read at the kiosk: the answer to an enrolment challenge
    /// (`POST /v1/enrolment/challenge`), checked as enrolment checks it.
    #[serde(default)]
    pub card: Option<EnrolmentBody>,
    /// An identity document staff saw.
    #[serde(default)]
    pub in_person: Option<InPersonCheck>,
}

/// An identity document staff saw: its kind (never its number), and the name and birth date
/// it shows, which must be those one enrolled resident's card certified.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InPersonCheck {
    /// `my_number_card`, `drivers_licence`, `passport`, `residence_card` or
    /// `disability_certificate`.
    pub document: String,
    /// The name as the document shows it.
    #[schema(max_length = 200)]
    pub name: String,
    /// The birth date as the document shows it (`YYYY-MM-DD`).
    #[schema(value_type = String, format = Date)]
    pub date_of_birth: String,
}

/// An open counter session.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CounterSessionView {
    pub id: String,
    /// The resident's name, as their card certified it.
    pub resident_name: String,
    /// `card`, or `in_person:<document>`.
    pub verification: String,
    pub opened_at: chrono::DateTime<Utc>,
    pub expires_at: chrono::DateTime<Utc>,
}

/// What staff did, and its signed receipt.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CounterReceiptView {
    /// The counter receipt: a compact JWS (`renkei-counter-receipt+jwt`), verifiable with
    /// `/.well-known/jwks.json`; print it with `POST /v1/counter/receipts/pdf`.
    pub receipt: String,
    /// Where anyone can check it (what the printed QR code carries).
    pub check_url: String,
    /// The consent given or revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<ConsentView>,
    /// The request filed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// A receipt to print or check.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptBody {
    /// A counter receipt (compact JWS).
    #[schema(max_length = 8192)]
    pub receipt: String,
}

fn field(name: &str, detail: impl std::fmt::Display) -> HubError {
    HubError::InvalidField {
        field: name.to_owned(),
        detail: detail.to_string(),
    }
}

/// The birth date the verified attributes hold, if any.
pub(crate) fn birth_date(attributes: &serde_json::Value) -> Option<NaiveDate> {
    attributes
        .get("date_of_birth")
        .and_then(|d| d.as_str())
        .and_then(|d| d.parse().ok())
}

impl Hub {
    /// The operator account a staff token stands for, counter staff or operator alike (the
    /// counter's routes admit both; every other operator route, operators only).
    pub async fn staff_session(&self, token: &str) -> Result<OperatorId, HubError> {
        Ok(self.operator_account(token).await?.id)
    }

    /// Opens a counter session for the resident staff verified (see the module's
    /// documentation), logged as the staff member's act.
    pub async fn open_counter_session(
        &self,
        staff: &OperatorId,
        body: OpenCounterSessionBody,
    ) -> Result<CounterSessionView, HubError> {
        let (resident, verification) = match (body.card, body.in_person) {
            (Some(card), None) => (self.enrol(&card).await?.resident, CounterVerification::Card),
            (None, Some(check)) => self.resident_seen(check).await?,
            _ => {
                return Err(HubError::Malformed(
                    "give exactly one of `card` and `in_person`".into(),
                ));
            }
        };
        let session = CounterSession::open(
            CounterSessionId::from_uuid(uuid::Uuid::new_v4()),
            staff.clone(),
            resident,
            verification,
            now_ms(),
        );
        let action = OperatorAction::OpenCounterSession {
            session: session.id,
            resident,
            verification,
        };
        let actor = OperatorActor::Operator { id: staff.clone() };
        self.store()
            .open_counter_session(&session, &actor, &action)
            .await?;
        self.counter_session_view(&session).await
    }

    /// The one enrolled resident the document shows.
    async fn resident_seen(
        &self,
        check: InPersonCheck,
    ) -> Result<(ResidentId, CounterVerification), HubError> {
        let document = IdentityDocument::parse(&check.document).ok_or_else(|| {
            field(
                "document",
                format!("`{}` is not a document staff may accept", check.document),
            )
        })?;
        let born: NaiveDate = check
            .date_of_birth
            .parse()
            .map_err(|_| field("date_of_birth", "a date is written `YYYY-MM-DD`"))?;
        let name = check.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(field("name", "a name is 1 to 200 characters"));
        }
        let mut residents: Vec<ResidentId> = self
            .store()
            .enrolments_named(name)
            .await?
            .into_iter()
            .filter(|e| birth_date(&e.attributes) == Some(born))
            .map(|e| e.resident)
            .collect();
        residents.sort();
        residents.dedup();
        match residents.as_slice() {
            [resident] => Ok((*resident, CounterVerification::InPerson { document })),
            // Two residents of the same name and birth date: the document cannot tell them
            // apart, the card can.
            _ => Err(HubError::NotFound(
                "one enrolled resident with this name and birth date (read the card instead)"
                    .into(),
            )),
        }
    }

    async fn counter_session_view(
        &self,
        session: &CounterSession,
    ) -> Result<CounterSessionView, HubError> {
        let resident_name = self
            .store()
            .enrolment_of(session.resident)
            .await?
            .and_then(|e| e.attributes.get("name")?.as_str().map(str::to_owned))
            .unwrap_or_default();
        Ok(CounterSessionView {
            id: session.id.to_string(),
            resident_name,
            verification: session.verification.label(),
            opened_at: session.opened_at,
            expires_at: session.expires_at,
        })
    }

    /// A session `staff` may act in now: their own, and not over. Another staff member's
    /// is "not found".
    pub async fn counter_session(
        &self,
        staff: &OperatorId,
        id: &str,
    ) -> Result<CounterSession, HubError> {
        let not_found = || HubError::NotFound(format!("counter session `{id}`"));
        let id: CounterSessionId = id.parse().map_err(|_| not_found())?;
        let session = self
            .store()
            .counter_session(id)
            .await?
            .ok_or_else(not_found)?;
        match session.usable_by(staff, Utc::now()) {
            Ok(()) => Ok(session),
            Err(CounterSessionError::NotYours) => Err(not_found()),
            Err(e @ CounterSessionError::Over) => Err(HubError::Forbidden(e.to_string())),
        }
    }

    /// The session and its resident, for the console's page.
    pub async fn counter_session_details(
        &self,
        staff: &OperatorId,
        id: &str,
    ) -> Result<(CounterSessionView, Vec<ConsentView>), HubError> {
        let session = self.counter_session(staff, id).await?;
        let consents = self
            .consents(&ResidentSession::resident(session.resident))
            .await?;
        Ok((self.counter_session_view(&session).await?, consents))
    }

    /// Gives a consent for the session's resident, at the counter.
    pub async fn counter_grant_consent(
        &self,
        staff: &OperatorId,
        id: &str,
        body: GrantConsentBody,
    ) -> Result<CounterReceiptView, HubError> {
        let session = self.counter_session(staff, id).await?;
        let granted = self
            .grant_consent(
                session.resident,
                body,
                ConsentChannel::Counter,
                Actor::Staff {
                    staff_id: staff.clone(),
                },
            )
            .await?;
        // The receipt names the consent as stored (typed ids, the categories given).
        let given: ConsentId = granted
            .consent
            .id
            .parse()
            .map_err(|_| HubError::internal("a consent id the hub made does not parse"))?;
        let consent = self
            .store()
            .consent(given)
            .await?
            .ok_or_else(|| HubError::internal("a consent just given is not stored"))?;
        let act = CounterAct::ConsentGiven {
            consent: consent.id,
            service: consent.purpose.service.clone(),
            purpose: consent.purpose.purpose.clone(),
            version: consent.purpose.version,
            categories: consent.categories.iter().cloned().collect(),
            expires: consent.expires_at.map(|e| e.timestamp()),
        };
        let mut view = self.counter_receipt(&session, act).await?;
        view.consent = Some(granted.consent);
        Ok(view)
    }

    /// Revokes one of the session's resident's consents, at the counter.
    pub async fn counter_revoke_consent(
        &self,
        staff: &OperatorId,
        id: &str,
        consent: &str,
    ) -> Result<CounterReceiptView, HubError> {
        let session = self.counter_session(staff, id).await?;
        let consent: ConsentId = consent
            .parse()
            .map_err(|_| HubError::NotFound(format!("consent `{consent}`")))?;
        let revoked = self
            .revoke_consent_by(
                &ResidentSession::resident(session.resident),
                consent,
                Actor::Staff {
                    staff_id: staff.clone(),
                },
            )
            .await?;
        let act = CounterAct::ConsentRevoked {
            consent,
            service: revoked
                .service
                .parse()
                .map_err(|_| HubError::internal("service id"))?,
            purpose: revoked
                .purpose
                .parse()
                .map_err(|_| HubError::internal("purpose id"))?,
            version: revoked.purpose_version,
        };
        let mut view = self.counter_receipt(&session, act).await?;
        view.consent = Some(revoked);
        Ok(view)
    }

    /// Files a request (開示・訂正・削除・利用停止) for the session's resident, at the counter.
    pub async fn counter_file_request(
        &self,
        staff: &OperatorId,
        id: &str,
        body: ResidentRequestBody,
    ) -> Result<CounterReceiptView, HubError> {
        let session = self.counter_session(staff, id).await?;
        let request = self
            .file_request_by(
                &ResidentSession::resident(session.resident),
                body,
                Actor::Staff {
                    staff_id: staff.clone(),
                },
            )
            .await?;
        let act = CounterAct::RequestFiled {
            request: request.id,
            request_kind: request.kind,
            service: request.service.clone(),
        };
        let mut view = self.counter_receipt(&session, act).await?;
        view.request_id = Some(request.id.to_string());
        Ok(view)
    }

    async fn counter_receipt(
        &self,
        session: &CounterSession,
        act: CounterAct,
    ) -> Result<CounterReceiptView, HubError> {
        let receipt = CounterReceipt {
            iss: self.config().issuer.clone(),
            iat: Utc::now().timestamp(),
            jti: uuid::Uuid::new_v4(),
            sub: session.resident,
            staff: session.operator.clone(),
            verified: session.verification,
            act,
        };
        let jws = self
            .keys()
            .sign_with(move |key| sign_counter_receipt(key, &receipt))
            .await?
            .map_err(|e| HubError::internal(format!("counter receipt signing: {e}")))?;
        Ok(CounterReceiptView {
            check_url: self.receipt_check_url(&jws),
            receipt: jws,
            consent: None,
            request_id: None,
        })
    }

    /// The public page that checks `jws`, with it in the address.
    pub fn receipt_check_url(&self, jws: &str) -> String {
        format!("{}{RECEIPT_CHECK_PATH}?receipt={jws}", self.config().issuer)
    }

    /// Checks a counter receipt against the hub's published keys: what anyone's phone asks.
    pub fn check_counter_receipt(&self, jws: &str) -> Result<CounterReceipt, ReceiptError> {
        verify_counter_receipt(jws, &self.keys().jwks())
    }

    /// The printed receipt (PDF) of a counter receipt this hub signed.
    pub async fn counter_receipt_pdf(&self, jws: &str) -> Result<Vec<u8>, HubError> {
        let receipt = self
            .check_counter_receipt(jws)
            .map_err(|e| field("receipt", e))?;
        let staff_name = self
            .store()
            .operator(&receipt.staff)
            .await?
            .map(|o| o.name)
            .unwrap_or_default();
        let sheet = ReceiptSheet {
            title: "窓口受付票 / Counter receipt".into(),
            lines: crate::counter_pdf::receipt_lines(&receipt, &staff_name),
            check_url: self.receipt_check_url(jws),
            jws: jws.trim().to_owned(),
        };
        crate::counter_pdf::render(&sheet)
            .map_err(|e| HubError::internal(format!("counter receipt page: {e}")))
    }
}
