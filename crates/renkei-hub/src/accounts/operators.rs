//! Operators: their accounts (added for an enrolled identity, by the hub or the `renkei`
//! command), the operator session an identity trades for, and the log entry every
//! operator's act appends.

use chrono::Utc;
use renkei_domain::{
    Operator, OperatorAction, OperatorActor, OperatorId, OperatorLogEntry, OperatorRole, ResidentId,
};
use renkei_store::Store;

use crate::auth::{ProxyPermission, ResidentSession};
use crate::consents::now_ms;
use crate::{Hub, HubError};

impl Hub {
    /// Appends an operator's act to the log (DESIGN: operators are audited too), right after
    /// it took effect.
    pub(crate) async fn audit(
        &self,
        operator: &OperatorId,
        action: OperatorAction,
    ) -> Result<(), HubError> {
        let actor = OperatorActor::Operator {
            id: operator.clone(),
        };
        self.store()
            .record_operator_action(&actor, &action, now_ms())
            .await?;
        Ok(())
    }

    /// Operators' acts, newest first (before log position `before`, if given).
    pub async fn operator_log(
        &self,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<OperatorLogEntry>, HubError> {
        Ok(self.store().operator_log(before, limit.min(500)).await?)
    }

    /// The operator account of an enrolled identity, if it has one.
    pub async fn operator_of(&self, identity: ResidentId) -> Result<Option<Operator>, HubError> {
        Ok(self.store().operator_by_identity(identity).await?)
    }

    /// An operator token for a signed-in identity that is an operator.
    pub async fn operator_token(&self, identity: &ResidentSession) -> Result<String, HubError> {
        identity.require(ProxyPermission::ManageAccount, None)?;
        let operator = self
            .operator_of(identity.resident)
            .await?
            .ok_or_else(|| HubError::Forbidden("this identity is not an operator".into()))?;
        self.keys().issue_operator_token(&operator.id, Utc::now())
    }

    /// Adds an operator account for an enrolled identity (the `renkei operator add` command).
    pub async fn add_operator(
        &self,
        id: OperatorId,
        name: String,
        identity: ResidentId,
    ) -> Result<Operator, HubError> {
        self.add_operator_as(id, name, identity, OperatorRole::Operator)
            .await
    }

    /// Adds an account of `role` for an enrolled identity: an operator, or counter staff.
    pub async fn add_operator_as(
        &self,
        id: OperatorId,
        name: String,
        identity: ResidentId,
        role: OperatorRole,
    ) -> Result<Operator, HubError> {
        if !self.store().resident_exists(identity).await? {
            return Err(HubError::NotFound(format!("identity `{identity}`")));
        }
        let operator = Operator {
            id,
            name,
            identity,
            added_at: now_ms(),
            role,
        };
        put_operator(self.store().as_ref(), &operator).await?;
        Ok(operator)
    }
}

/// Stores an operator account and logs it as an act of the `renkei` command: the one way an
/// operator is added, by the hub or by the command on storage directly.
pub async fn put_operator(store: &dyn Store, operator: &Operator) -> Result<(), HubError> {
    store.put_operator(operator).await?;
    let action = OperatorAction::AddOperator {
        operator: operator.id.clone(),
    };
    store
        .record_operator_action(&OperatorActor::CommandLine, &action, operator.added_at)
        .await?;
    Ok(())
}
