//! The operators' audit search over the access log (access entries and consent changes), and
//! what the review of a service shows beside its checklist (its privacy-impact answers).
//!
//! Every search is itself an operator action in the log (which resident or service was
//! looked at, and why), like approvals and suspensions; one naming a resident is shown in
//! that resident's history (`GET /v1/me/log`, the portal's history page).

use std::collections::BTreeMap;

use renkei_domain::{LogEntry, OperatorAction, OperatorId, ServiceId};
pub use renkei_store::{AuditOutcome, AuditQuery};

use crate::{Hub, HubError};

/// The most entries one audit search answers.
pub const AUDIT_LIMIT: u32 = 200;

/// The longest reason an audit search may give, in characters.
pub const AUDIT_REASON_MAX: usize = 500;

impl Hub {
    /// Log entries matching `query`, newest first (at most [`AUDIT_LIMIT`]); page on with
    /// `before_seq` set to the last entry's position. `reason` says why the operator looks
    /// (required): a search naming a resident is shown in that resident's history, who,
    /// when and why.
    pub async fn audit_search(
        &self,
        operator: &OperatorId,
        query: &AuditQuery,
        reason: &str,
    ) -> Result<Vec<LogEntry>, HubError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(HubError::Malformed(
                "an audit search needs a reason: say why you look".into(),
            ));
        }
        if reason.chars().count() > AUDIT_REASON_MAX {
            return Err(HubError::Malformed(format!(
                "the reason must be at most {AUDIT_REASON_MAX} characters"
            )));
        }
        if !(1..=AUDIT_LIMIT).contains(&query.limit) {
            return Err(HubError::Malformed(format!(
                "`limit` must be 1 to {AUDIT_LIMIT}, not `{}`",
                query.limit
            )));
        }
        let found = self.store().audit_search(query).await?;
        let action = OperatorAction::SearchAccessLog {
            resident: query.resident,
            service: query.service.clone(),
            reason: Some(reason.to_owned()),
        };
        self.audit(operator, action).await?;
        Ok(found)
    }

    /// A service's answers to the privacy-impact questions (question id → answer), as it
    /// registered them; empty when it filed none.
    pub async fn privacy_impact(
        &self,
        service: &ServiceId,
    ) -> Result<BTreeMap<String, String>, HubError> {
        self.store()
            .service(service)
            .await?
            .ok_or_else(|| HubError::UnknownService(service.to_string()))?;
        Ok(self
            .store()
            .service_client(service)
            .await?
            .map(|c| c.privacy_impact)
            .unwrap_or_default())
    }
}
