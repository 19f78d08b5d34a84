//! Statutory representatives (法定代理人, see [`renkei_domain::representative`]): operators
//! register a parent (親権者) of a minor or a guardian (成年後見人), naming the evidence
//! they saw, each an operator entry of the log written with the appointment. A
//! representative then acts through the proxy machinery (`accounts/proxies.rs`, the acting
//! session of `auth.rs`) with a scope over everything; whether their authority still holds
//! is judged at each use against the hub's clock (`Hub::appointment_holds`), so a parent's
//! ends on the child's 18th birthday without anything having to run.
//!
//! A minor's consent to a purpose drawing on special-care data needs the representative:
//! `Hub::check_capacity`, called wherever a consent is given.

use chrono::{DateTime, Utc};
use renkei_domain::{
    Actor, ConsentGiver, EvidenceReference, OperatorAction, OperatorActor, OperatorId,
    ProxyAppointment, ProxyId, Purpose, Representation, RepresentativeKind, ResidentId,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::consents::now_ms;
use crate::counter::birth_date;
use crate::{Hub, HubError};

/// A statutory representative to register.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RepresentativeBody {
    /// The resident represented (the minor, the ward).
    #[schema(value_type = uuid::Uuid)]
    pub resident: String,
    /// The representative, an enrolled resident.
    #[schema(value_type = uuid::Uuid)]
    pub representative: String,
    /// `parent` (親権者) or `guardian` (成年後見人).
    pub kind: String,
    /// Where the operator saw the authority: the court decision's number, the family
    /// register extract's reference (1 to 128 characters; never the document itself).
    #[schema(max_length = 128)]
    pub evidence: String,
}

/// A registered representation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RepresentativeView {
    /// The appointment's id (the representative acts under it as under a proxy's).
    pub id: String,
    pub resident: String,
    pub representative: String,
    pub kind: String,
    pub evidence: String,
    pub registered_by: String,
    pub appointed_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

impl RepresentativeView {
    fn of(a: &ProxyAppointment) -> Option<Self> {
        let r = a.representation.as_ref()?;
        Some(Self {
            id: a.id.to_string(),
            resident: a.resident.to_string(),
            representative: a.proxy.to_string(),
            kind: r.kind.as_str().to_owned(),
            evidence: r.evidence.as_str().to_owned(),
            registered_by: r.registered_by.to_string(),
            appointed_at: a.appointed_at,
            ended_at: a.ended_at,
        })
    }
}

fn field(name: &str, detail: impl std::fmt::Display) -> HubError {
    HubError::InvalidField {
        field: name.to_owned(),
        detail: detail.to_string(),
    }
}

impl Hub {
    /// Registers a statutory representative (see the module's documentation). A parent is
    /// registered only for a resident whose verified birth date shows a minor now.
    pub async fn register_representative(
        &self,
        operator: &OperatorId,
        body: RepresentativeBody,
    ) -> Result<RepresentativeView, HubError> {
        let resident: ResidentId = body.resident.parse().map_err(|e| field("resident", e))?;
        let representative: ResidentId = body
            .representative
            .parse()
            .map_err(|e| field("representative", e))?;
        let kind = RepresentativeKind::parse(&body.kind)
            .ok_or_else(|| field("kind", "`parent` or `guardian`"))?;
        let evidence = EvidenceReference::new(body.evidence).map_err(|e| field("evidence", e))?;
        if resident == representative {
            return Err(HubError::Forbidden(
                "a resident cannot be their own representative".into(),
            ));
        }
        for who in [resident, representative] {
            if !self.store().resident_exists(who).await? {
                return Err(HubError::NotFound(format!("resident `{who}`")));
            }
        }
        let now = now_ms();
        let representation = Representation {
            kind,
            evidence: evidence.clone(),
            registered_by: operator.clone(),
        };
        if !representation.holds_at(self.birth_date_of(resident).await?, now) {
            return Err(HubError::Forbidden(
                "parental authority is registered only for a resident whose verified birth date shows a minor".into(),
            ));
        }
        let appointment = ProxyAppointment {
            id: ProxyId::from_uuid(uuid::Uuid::new_v4()),
            resident,
            proxy: representative,
            label: match kind {
                RepresentativeKind::Parent => "親権者",
                RepresentativeKind::Guardian => "成年後見人",
            }
            .to_owned(),
            scope: Representation::scope(),
            appointed_at: now,
            ended_at: None,
            representation: Some(representation),
        };
        let action = OperatorAction::RegisterRepresentative {
            appointment: appointment.id,
            resident,
            representative,
            kind,
            evidence,
        };
        let actor = OperatorActor::Operator {
            id: operator.clone(),
        };
        self.store()
            .register_representative(&appointment, &actor, &action, now)
            .await?;
        RepresentativeView::of(&appointment)
            .ok_or_else(|| HubError::internal("a representation without its representation"))
    }

    /// Ends a statutory representation; a proxy the resident appointed is not found here.
    pub async fn end_representative(
        &self,
        operator: &OperatorId,
        id: &str,
    ) -> Result<RepresentativeView, HubError> {
        let not_found = || HubError::NotFound(format!("active representation `{id}`"));
        let id: ProxyId = id.parse().map_err(|_| not_found())?;
        let actor = OperatorActor::Operator {
            id: operator.clone(),
        };
        let action = OperatorAction::EndRepresentative { appointment: id };
        let ended = self
            .store()
            .end_representative(id, &actor, &action, now_ms())
            .await?
            .ok_or_else(not_found)?;
        RepresentativeView::of(&ended).ok_or_else(not_found)
    }

    /// The birth date the resident's verified identity holds, if any.
    pub(crate) async fn birth_date_of(
        &self,
        resident: ResidentId,
    ) -> Result<Option<chrono::NaiveDate>, HubError> {
        Ok(self
            .store()
            .enrolment_of(resident)
            .await?
            .and_then(|e| birth_date(&e.attributes)))
    }

    /// Whether one may act under `appointment` at `now`: not ended, and a representative's
    /// authority still holding (a parent's, while the child is a minor).
    pub(crate) async fn appointment_holds(
        &self,
        appointment: &ProxyAppointment,
        now: DateTime<Utc>,
    ) -> Result<bool, HubError> {
        if !appointment.is_active() {
            return Ok(false);
        }
        let ward_birth = match &appointment.representation {
            Some(r) if r.kind == RepresentativeKind::Parent => {
                self.birth_date_of(appointment.resident).await?
            }
            _ => None,
        };
        Ok(appointment.holds_at(ward_birth, now))
    }

    /// Refuses a consent to `purpose` that `resident` may not give as `by` gives it: a
    /// minor's to special-care data, unless their representative gives it
    /// ([`renkei_domain::may_consent`]).
    pub(crate) async fn check_capacity(
        &self,
        resident: ResidentId,
        purpose: &Purpose,
        by: &Actor,
    ) -> Result<(), HubError> {
        let vocabulary = self.store().categories().await?;
        let now = Utc::now();
        let birth = self.birth_date_of(resident).await?;
        let giver = match by {
            Actor::Proxy { proxy } if self.represents(*proxy, resident, now).await? => {
                ConsentGiver::Representative
            }
            _ => ConsentGiver::OnTheirOwn,
        };
        renkei_domain::may_consent(birth, now, purpose, &vocabulary, giver)
            .map_err(|e| HubError::Forbidden(format!("{} ({})", e, e.code())))
    }

    /// Whether `proxy` is `resident`'s statutory representative, with authority at `now`.
    async fn represents(
        &self,
        proxy: ResidentId,
        resident: ResidentId,
        now: DateTime<Utc>,
    ) -> Result<bool, HubError> {
        for a in self.store().proxy_for(proxy).await? {
            if a.resident == resident
                && a.representation.is_some()
                && self.appointment_holds(&a, now).await?
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
