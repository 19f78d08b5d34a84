//! The disclosure, correction, deletion and suspension requests (開示・訂正・削除・利用停止)
//! residents (or their proxies) file, and the operators' queue that answers them. A
//! correction, deletion or suspension about a service or a category is routed to whoever
//! holds the data as it is filed (`crate::rights`).

use renkei_domain::{
    Actor, CategoryId, OperatorAction, OperatorId, ResidentRequest, ResidentRequestId,
    ResidentRequestKind, ResidentRequestStatus, ServiceId,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::malformed;
use crate::auth::{ProxyPermission, ResidentSession};
use crate::consents::now_ms;
use crate::{Hub, HubError};

/// A resident's request as filed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResidentRequestBody {
    #[schema(value_type = RequestKind)]
    pub kind: String,
    /// The service it concerns; none for the hub itself (or for a category everywhere).
    #[schema(value_type = Option<crate::schemas::Slug>)]
    pub service: Option<String>,
    /// The data category it concerns, at every service that received it and every
    /// provider that keeps it (with `service`: at that service only).
    #[serde(default)]
    #[schema(value_type = Option<crate::schemas::Slug>)]
    pub category: Option<String>,
    #[schema(max_length = 2000)]
    pub details: String,
}

/// What a resident asks (開示, 訂正, 削除, 利用停止).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[expect(dead_code, reason = "describes the JSON in the API document only")]
pub(crate) enum RequestKind {
    Disclosure,
    Correction,
    Deletion,
    Suspension,
}

impl Hub {
    pub async fn file_request(
        &self,
        session: &ResidentSession,
        body: ResidentRequestBody,
    ) -> Result<ResidentRequest, HubError> {
        self.file_request_by(session, body, session.actor()).await
    }

    /// [`Hub::file_request`], filed `by` someone the session does not name: counter staff,
    /// with the resident before them.
    pub(crate) async fn file_request_by(
        &self,
        session: &ResidentSession,
        body: ResidentRequestBody,
        by: Actor,
    ) -> Result<ResidentRequest, HubError> {
        let kind = ResidentRequestKind::parse(&body.kind).ok_or_else(|| {
            HubError::Malformed(format!(
                "`kind` must be disclosure, correction, deletion or suspension, not `{}`",
                body.kind
            ))
        })?;
        let service = body
            .service
            .map(ServiceId::new)
            .transpose()
            .map_err(malformed)?;
        // A request about the hub itself concerns every service: beyond a narrower scope.
        session.require_about(ProxyPermission::FileRequests, service.as_ref())?;
        if let Some(s) = &service
            && self.store().service(s).await?.is_none()
        {
            return Err(HubError::UnknownService(s.to_string()));
        }
        // As written: an empty or padded name is refused, not read as "none" (the portal's
        // form leaves the field out when nothing was chosen).
        let category = body
            .category
            .map(CategoryId::new)
            .transpose()
            .map_err(malformed)?;
        if let Some(c) = &category
            && !self.store().categories().await?.iter().any(|x| &x.id == c)
        {
            return Err(HubError::UnknownCategory(c.to_string()));
        }
        let details = body.details.trim().to_owned();
        if body.details.chars().count() > 2000 {
            return Err(HubError::Malformed(
                "`details` must be at most 2000 characters".into(),
            ));
        }
        let now = now_ms();
        let request = ResidentRequest {
            id: ResidentRequestId::from_uuid(uuid::Uuid::new_v4()),
            resident: session.resident,
            kind,
            service,
            details,
            status: ResidentRequestStatus::Received,
            filed_by: by,
            filed_at: now,
            updated_at: now,
            response: None,
            category,
            due_at: renkei_domain::rights::due_at(now, self.config().request_answer_days),
            extension_reason: None,
        };
        if request.kind.is_routed() && (request.service.is_some() || request.category.is_some()) {
            self.route_request(session, &request).await?;
        } else {
            self.store().file_request(&request).await?;
        }
        Ok(request)
    }

    /// The resident's requests; a proxy's, only those about services their scope covers
    /// (about the hub itself only with a scope over every service).
    pub async fn requests_of(
        &self,
        session: &ResidentSession,
    ) -> Result<Vec<ResidentRequest>, HubError> {
        session.require(ProxyPermission::FileRequests, None)?;
        let mut requests = self.store().requests_of(session.resident).await?;
        requests.retain(|r| session.covers(r.service.as_ref()));
        Ok(requests)
    }

    /// The operators' queue: every resident request, or those of one status, oldest first.
    pub async fn resident_requests(
        &self,
        _operator: &OperatorId,
        status: Option<ResidentRequestStatus>,
    ) -> Result<Vec<ResidentRequest>, HubError> {
        Ok(self.store().requests(status).await?)
    }

    /// An operator answers a request.
    pub async fn answer_request(
        &self,
        operator: &OperatorId,
        id: ResidentRequestId,
        status: ResidentRequestStatus,
        response: Option<&str>,
    ) -> Result<ResidentRequest, HubError> {
        let answered = self
            .store()
            .update_request(id, status, response, now_ms())
            .await?;
        self.audit(
            operator,
            OperatorAction::AnswerRequest {
                request: id,
                status: status.as_str().to_owned(),
            },
        )
        .await?;
        Ok(answered)
    }
}
