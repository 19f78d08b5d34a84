//! The operators' audit search over the access log (access entries and consent changes), and
//! what the review of a service shows beside its checklist (its privacy-impact answers).
//!
//! Every search is itself an operator action in the log (which resident or service was
//! looked at), like approvals and suspensions.

use std::collections::BTreeMap;

use renkei_domain::{LogEntry, OperatorAction, OperatorId, ServiceId};
pub use renkei_store::{AuditOutcome, AuditQuery};

use crate::{Hub, HubError};

/// The most entries one audit search answers.
pub const AUDIT_LIMIT: u32 = 200;

impl Hub {
    /// Log entries matching `query`, newest first (at most [`AUDIT_LIMIT`]); page on with
    /// `before_seq` set to the last entry's position.
    pub async fn audit_search(
        &self,
        operator: &OperatorId,
        query: &AuditQuery,
    ) -> Result<Vec<LogEntry>, HubError> {
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
