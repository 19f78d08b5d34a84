//! The location-data deletions a service owes when it ends (Nシステム判決: how long location
//! data is kept is part of what makes it acceptable). Suspending a service records one
//! deletion per purpose drawing on a location category, due after the days the purpose let
//! the service keep it ([`renkei_domain::location::deletions_owed`]); an operator records
//! the service's confirmation, an entry of the log; the console lists what is overdue.

use chrono::Utc;
use renkei_domain::{
    LocationDeletion, OperatorAction, OperatorActor, OperatorId, PurposeId, ServiceId,
};

use crate::{Hub, HubError};

impl Hub {
    /// Records what `service`, ending now, owes: its purposes' current versions that draw on
    /// a location category.
    pub(crate) async fn owe_location_deletions(&self, service: &ServiceId) -> Result<(), HubError> {
        let purposes = self.store().purposes(service).await?;
        let vocabulary = self.store().categories().await?;
        let owed = renkei_domain::location::deletions_owed(&purposes, &vocabulary, Utc::now());
        if !owed.is_empty() {
            self.store().record_location_deletions(&owed).await?;
        }
        Ok(())
    }

    /// Every deletion owed, the earliest due first.
    pub async fn location_deletions(&self) -> Result<Vec<LocationDeletion>, HubError> {
        Ok(self.store().location_deletions().await?)
    }

    /// Records, as `operator`, that the service confirmed one deletion: "not found" when no
    /// unconfirmed deletion matches.
    pub async fn confirm_location_deletion(
        &self,
        operator: &OperatorId,
        service: &ServiceId,
        purpose: &PurposeId,
        version: u32,
    ) -> Result<(), HubError> {
        let owed = self
            .location_deletions()
            .await?
            .into_iter()
            .find(|d| {
                &d.service == service && &d.purpose == purpose && d.purpose_version == version
            })
            .ok_or_else(|| HubError::NotFound(format!("deletion owed by `{service}`")))?;
        let action = OperatorAction::ConfirmLocationDeletion {
            service: service.clone(),
            purpose: purpose.clone(),
            version,
        };
        let actor = OperatorActor::Operator {
            id: operator.clone(),
        };
        self.store()
            .confirm_location_deletion(&owed, &actor, &action, Utc::now())
            .await?
            .map(|_| ())
            .ok_or_else(|| HubError::NotFound(format!("deletion owed by `{service}`")))
    }
}
