//! Counter consents (延岡's model): a data provider records a consent a resident gave at its
//! counter, on its paper form. The provider names the resident by their code at that
//! provider (as in locator sync, [`crate::provider_sync`]), the staff member who took it and
//! the form's reference; which purposes it may do so for is
//! [`renkei_domain::may_take_consent`].
//!
//! The result is an ordinary consent: channel `counter`, the staff member as its actor, the
//! form's reference beside it, its log entry and the service's webhook in the same
//! transaction, and a signed receipt the resident gets from the portal or the API. The
//! resident sees it among their consents and revokes it like any other.
//!
//! The provider is answered what it recorded and nothing more: not the receipt (it names
//! the resident by the hub's own id) and not the resident's subject at the service, which
//! would let the provider join its records with the service's.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use renkei_domain::{
    Actor, ConsentChannel, FormReference, ProviderId, ProviderSubject, PurposeId, ServiceId,
    StaffId,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::consents::{ConsentTerms, consent_days, whole_number};
use crate::problem::{ApiJson, Problem};
use crate::provider_sync::ProviderCaller;
use crate::{Hub, HubError};

/// A consent a resident gave at the provider's counter.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CounterConsentBody {
    /// The resident's code at this provider (what the resident's portal shows them).
    pub subject: String,
    #[schema(value_type = crate::schemas::Slug)]
    pub service: String,
    #[schema(value_type = crate::schemas::Slug)]
    pub purpose: String,
    /// The staff member who took the consent, as the provider names its staff (a staff
    /// number, never the resident's data): 1 to 64 characters.
    pub staff_id: String,
    /// The reference of the paper form the resident signed, as the provider files it: 1 to
    /// 128 characters. Sending the same form again answers the consent it recorded.
    pub form_reference: String,
    /// How long the consent lasts (1 to 1095 days; default 365), as the form says.
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(minimum = 1, maximum = 1095)]
    pub valid_days: Option<u32>,
}

/// What the provider recorded.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CounterConsentAnswer {
    /// The consent's id (the resident sees the same one).
    pub consent_id: String,
    pub service: String,
    pub purpose: String,
    pub purpose_version: u32,
    pub categories: Vec<String>,
    pub granted_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub staff_id: String,
    pub form_reference: String,
}

fn field(name: &str, detail: impl std::fmt::Display) -> HubError {
    HubError::InvalidField {
        field: name.to_owned(),
        detail: detail.to_string(),
    }
}

impl Hub {
    /// Records a consent given at `provider`'s counter (see the module's documentation):
    /// refused for a purpose the provider may not take consent to, or a code the hub never
    /// gave the resident for this provider.
    pub async fn record_counter_consent(
        &self,
        provider: &ProviderId,
        body: CounterConsentBody,
    ) -> Result<(CounterConsentAnswer, bool), HubError> {
        let subject = ProviderSubject::new(body.subject).map_err(|e| field("subject", e))?;
        let service_id = ServiceId::new(body.service).map_err(|e| field("service", e))?;
        let purpose_id = PurposeId::new(body.purpose).map_err(|e| field("purpose", e))?;
        let staff = StaffId::new(body.staff_id).map_err(|e| field("staff_id", e))?;
        let form =
            FormReference::new(body.form_reference).map_err(|e| field("form_reference", e))?;
        let days = consent_days(body.valid_days)?;
        let registered = self
            .store()
            .provider(provider)
            .await?
            .ok_or(HubError::Unauthorized)?;
        let service = self.approved_service(&service_id).await?;
        let purpose = self.current_purpose(&service_id, &purpose_id).await?;
        let vocabulary = self.store().categories().await?;
        renkei_domain::may_take_consent(&registered, &purpose, &vocabulary)
            .map_err(|e| HubError::Forbidden(e.to_string()))?;
        let resident = self
            .store()
            .provider_subject_resident(provider, &subject)
            .await?
            .ok_or_else(|| HubError::NotFound("a resident with this code".into()))?;
        let by = Actor::ProviderStaff {
            provider: provider.clone(),
            staff_id: staff,
        };
        self.check_capacity(resident, &purpose, &by).await?;
        let consent = ConsentTerms {
            resident,
            days,
            via: ConsentChannel::Counter,
            by,
            form_reference: Some(form.clone()),
        }
        .consent(&purpose);
        let (consent, created) = match self.record_consent(&service, &consent).await {
            Ok(_) => (consent, true),
            Err(HubError::ConsentAlreadyActive(id)) => match self.store().consent(id).await? {
                // The same form again: a retry, answered with what it recorded.
                Some(earlier) if renkei_domain::records_form(&earlier, provider, &form) => {
                    (earlier, false)
                }
                _ => return Err(HubError::ConsentAlreadyActive(id)),
            },
            Err(e) => return Err(e),
        };
        let staff_id = match &consent.given_by {
            Actor::ProviderStaff { staff_id, .. } => staff_id.to_string(),
            _ => String::new(),
        };
        Ok((
            CounterConsentAnswer {
                consent_id: consent.id.to_string(),
                service: consent.purpose.service.to_string(),
                purpose: consent.purpose.purpose.to_string(),
                purpose_version: consent.purpose.version,
                categories: consent.categories.iter().map(ToString::to_string).collect(),
                granted_at: consent.granted_at,
                expires_at: consent.expires_at,
                staff_id,
                form_reference: form.to_string(),
            },
            created,
        ))
    }
}

/// Records a consent a resident gave at the calling provider's counter, on its paper form:
/// an ordinary consent (channel `counter`) that the resident sees and can revoke. Only for a
/// purpose drawing on a category the provider serves, and on every special-care category it
/// draws on; the resident is named by their code at this provider.
#[utoipa::path(post, path = "/v1/provider/consents", request_body = CounterConsentBody, security(("provider" = [])),
    responses((status = 201, description = "Recorded", body = CounterConsentAnswer),
        (status = 200, description = "This form was recorded before: the consent it recorded", body = CounterConsentAnswer),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A purpose the provider may not take consent to", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "An unknown service, purpose or resident code", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The resident already consents to this purpose version", body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json", headers(("Retry-After" = u32, description = "Seconds to wait before trying again")))))]
pub(crate) async fn record_counter_consent(
    State(hub): State<Hub>,
    ProviderCaller(provider): ProviderCaller,
    ApiJson(body): ApiJson<CounterConsentBody>,
) -> Result<(StatusCode, Json<CounterConsentAnswer>), HubError> {
    let (answer, created) = hub.record_counter_consent(&provider, body).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(answer)))
}
