//! Declared emergencies (非常時宣言): the operators' steps (declare, confirm, renew, end) and
//! the public listing.
//!
//! Each step is a transition of `renkei_domain::Declaration`, which refuses what the rules
//! forbid (the declarer confirming, a window over 72 hours, a step after the end); storage
//! writes it over the revision it was taken from, with its operator entry of the log, in one
//! transaction, and moves the decision clock, so the next decision on any replica sees it.

use renkei_protocol::event::security::SecurityEvent;
use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use renkei_domain::{
    Area, CategoryId, Declaration, DeclarationDraft, DeclarationId, EmergencyLegalBasis,
    OperatorAction, OperatorActor, OperatorId, ServiceId,
};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::consents::now_ms;
use crate::{Hub, HubError};

/// What an operator declares (`POST /v1/operator/declarations`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct DeclarationBody {
    /// Why, in words the public will read (the declaration is published).
    pub reason: String,
    /// One of `disaster_act49_11`, `disaster_act49_15`, `appi27_1_2`, `appi69_2_4`.
    pub legal_basis: String,
    /// The data categories released.
    pub categories: Vec<String>,
    /// The responder services that may read them.
    pub services: Vec<String>,
    /// 地域メッシュ codes (JIS X 0410, 4 to 11 digits) or `district:<id>`.
    pub area: Vec<String>,
    /// When it starts; now if left out.
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    /// When it ends by itself: at most 72 hours after its start.
    pub ends_at: DateTime<Utc>,
}

/// A later end proposed for a declaration.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct RenewalBody {
    /// At most 72 hours from now, and later than the current end.
    pub ends_at: DateTime<Utc>,
}

/// A time as storage keeps it (milliseconds).
fn to_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

fn field(name: &str, e: impl std::fmt::Display) -> HubError {
    HubError::InvalidField {
        field: name.to_owned(),
        detail: e.to_string(),
    }
}

impl Hub {
    /// The first step: refused unless its scope names registered services and categories of
    /// the vocabulary. Releases nothing until a second operator confirms it.
    pub async fn declare_emergency(
        &self,
        operator: &OperatorId,
        body: DeclarationBody,
    ) -> Result<Declaration, HubError> {
        let legal_basis = EmergencyLegalBasis::parse(&body.legal_basis).ok_or_else(|| {
            field(
                "legal_basis",
                format!(
                    "`{}` is not a legal basis a declaration may rest on",
                    body.legal_basis
                ),
            )
        })?;
        self.check_categories(&body.categories).await?;
        let categories = body
            .categories
            .iter()
            .map(CategoryId::new)
            .collect::<Result<BTreeSet<_>, _>>()
            .map_err(|e| field("categories", e))?;
        let mut services = BTreeSet::new();
        for s in &body.services {
            let id = ServiceId::new(s.as_str()).map_err(|e| field("services", e))?;
            if self.store().service(&id).await?.is_none() {
                return Err(HubError::UnknownService(id.to_string()));
            }
            services.insert(id);
        }
        let area =
            Area::parse(body.area.iter().map(String::as_str)).map_err(|e| field("area", e))?;
        let now = now_ms();
        let draft = DeclarationDraft {
            reason: body.reason,
            legal_basis,
            categories,
            services,
            area,
            starts_at: to_ms(body.starts_at.unwrap_or(now)),
            ends_at: to_ms(body.ends_at),
        };
        let id = DeclarationId::from_uuid(uuid::Uuid::new_v4());
        let declared = Declaration::declare(id, draft, operator.clone(), now)?;
        let action = OperatorAction::DeclareEmergency {
            declaration: id,
            legal_basis,
            categories: declared.categories.clone(),
            services: declared.services.clone(),
            area: declared.area.clone(),
            starts_at: declared.starts_at,
            ends_at: declared.ends_at,
        };
        self.record_step(operator, &declared, action, now).await?;
        Ok(declared)
    }

    /// The second operator's step: the declaration takes effect (from its start).
    pub async fn confirm_emergency(
        &self,
        operator: &OperatorId,
        id: DeclarationId,
    ) -> Result<Declaration, HubError> {
        let now = now_ms();
        let next = self.declaration(id).await?.confirm(operator.clone(), now)?;
        let action = OperatorAction::ConfirmEmergency { declaration: id };
        self.record_step(operator, &next, action, now).await?;
        Ok(next)
    }

    /// Proposes a later end; a second operator confirms it.
    pub async fn propose_emergency_renewal(
        &self,
        operator: &OperatorId,
        id: DeclarationId,
        ends_at: DateTime<Utc>,
    ) -> Result<Declaration, HubError> {
        let now = now_ms();
        let ends_at = to_ms(ends_at);
        let next = self
            .declaration(id)
            .await?
            .propose_renewal(operator.clone(), ends_at, now)?;
        let action = OperatorAction::ProposeEmergencyRenewal {
            declaration: id,
            ends_at,
        };
        self.record_step(operator, &next, action, now).await?;
        Ok(next)
    }

    /// A second operator confirms the renewal waiting: the end moves.
    pub async fn confirm_emergency_renewal(
        &self,
        operator: &OperatorId,
        id: DeclarationId,
    ) -> Result<Declaration, HubError> {
        let now = now_ms();
        let next = self
            .declaration(id)
            .await?
            .confirm_renewal(operator.clone(), now)?;
        let action = OperatorAction::ConfirmEmergencyRenewal {
            declaration: id,
            ends_at: next.ends_at,
        };
        self.record_step(operator, &next, action, now).await?;
        Ok(next)
    }

    /// Ends a declaration now (or withdraws a pending one): one operator suffices. The
    /// residents whose data was released under it are told (`notices.rs`).
    pub async fn end_emergency(
        &self,
        operator: &OperatorId,
        id: DeclarationId,
    ) -> Result<Declaration, HubError> {
        let now = now_ms();
        let next = self.declaration(id).await?.end(operator.clone(), now)?;
        let action = OperatorAction::EndEmergency { declaration: id };
        self.record_step(operator, &next, action, now).await?;
        // Its residents are told now rather than at the notifier's next round; if this
        // fails, that round writes them (`notices.rs`).
        let hub = self.clone();
        tokio::spawn(async move {
            if let Err(e) = hub.write_due_notices(now_ms()).await {
                tracing::warn!(error = %e, "writing emergency notices after an end failed");
            }
        });
        Ok(next)
    }

    /// One declaration, whatever its state.
    pub async fn declaration(&self, id: DeclarationId) -> Result<Declaration, HubError> {
        self.store()
            .declaration(id)
            .await?
            .ok_or_else(|| HubError::NotFound(format!("declaration `{id}`")))
    }

    /// Declarations, active and past, the latest declared first.
    pub async fn declarations(&self, limit: u32) -> Result<Vec<Declaration>, HubError> {
        Ok(self.store().declarations(limit).await?)
    }

    /// Writes a step with its log entry (see [`renkei_store::EmergencyStore`]).
    async fn record_step(
        &self,
        operator: &OperatorId,
        declaration: &Declaration,
        action: OperatorAction,
        at: DateTime<Utc>,
    ) -> Result<(), HubError> {
        let actor = OperatorActor::Operator {
            id: operator.clone(),
        };
        self.store()
            .record_declaration_step(declaration, &actor, &action, at)
            .await?;
        // The SOC hears of every step that gives or takes away emergency access.
        let event = match action {
            OperatorAction::DeclareEmergency {
                declaration,
                legal_basis,
                ..
            } => Some(SecurityEvent::EmergencyDeclared {
                declaration,
                legal_basis: legal_basis.as_str().to_owned(),
            }),
            OperatorAction::ConfirmEmergency { declaration } => {
                Some(SecurityEvent::EmergencyConfirmed { declaration })
            }
            OperatorAction::EndEmergency { declaration } => {
                Some(SecurityEvent::EmergencyEnded { declaration })
            }
            _ => None,
        };
        if let Some(event) = event {
            self.raise_security_event(event).await;
        }
        Ok(())
    }
}
