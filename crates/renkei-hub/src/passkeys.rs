//! Passkeys (当人認証): registering them after enrolment and signing in with them, with
//! `webauthn-rs`. Ceremony state is kept in storage between the two halves of each
//! ceremony, so any hub replica can finish what another began, and each is single use.

use chrono::{DateTime, TimeDelta, Utc};
use renkei_domain::ResidentId;
use renkei_store::{Ceremony, StoredPasskey};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use webauthn_rs::prelude::{
    CreationChallengeResponse, DiscoverableAuthentication, Passkey, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse, Url,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};

/// The browser's answers, as the portal receives them (so it needs no WebAuthn crate of its own).
pub use webauthn_rs::prelude::{
    PublicKeyCredential as PasskeyAssertion, RegisterPublicKeyCredential as PasskeyAttestation,
};

use crate::limits::PeerAddr;
use crate::{Hub, HubError};

/// How long a ceremony may take between its two halves.
const CEREMONY_SECONDS: i64 = 300;
const REGISTER: &str = "register";
const SIGN_IN: &str = "sign-in";

/// The relying party for the hub's issuer, or why there can be none.
pub(crate) fn relying_party(issuer: &str) -> Result<Webauthn, String> {
    let origin = Url::parse(issuer).map_err(|_| issuer.to_owned())?;
    // WebAuthn relying-party ids are domain names; an IP address cannot be one.
    let Some(host) = origin.domain().map(str::to_owned) else {
        return Err(issuer.to_owned());
    };
    WebauthnBuilder::new(&host, &origin)
        .and_then(|b| b.rp_name("Renkei").build())
        .map_err(|_| issuer.to_owned())
}

/// The first half of a ceremony: what the browser passes to `navigator.credentials`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CeremonyStart<T> {
    /// Name this when finishing the ceremony.
    pub ceremony: uuid::Uuid,
    /// `publicKey` options for `navigator.credentials.create()` / `.get()`.
    #[schema(value_type = Object)]
    pub options: T,
}

/// A registered passkey, as its owner sees it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PasskeyView {
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<&StoredPasskey> for PasskeyView {
    fn from(p: &StoredPasskey) -> Self {
        Self {
            id: p.credential_id.clone(),
            name: p.name.clone(),
            created_at: p.created_at,
            last_used_at: p.last_used_at,
        }
    }
}

fn refused(what: impl std::fmt::Display) -> HubError {
    HubError::PasskeyRefused(what.to_string())
}

fn stored_state<T: Serialize>(state: &T) -> Result<serde_json::Value, HubError> {
    serde_json::to_value(state).map_err(|e| HubError::internal(format!("ceremony state: {e}")))
}

impl Hub {
    /// Starts registering a passkey for a signed-in resident. Their existing passkeys are
    /// excluded, so one authenticator registers once.
    pub async fn start_passkey_registration(
        &self,
        resident: ResidentId,
    ) -> Result<CeremonyStart<serde_json::Value>, HubError> {
        let webauthn = self.webauthn()?;
        let existing = self.store().passkeys_of(resident).await?;
        let exclude = existing
            .iter()
            .filter_map(|p| serde_json::from_value::<Passkey>(p.passkey.clone()).ok())
            .map(|p| p.cred_id().clone())
            .collect::<Vec<_>>();
        // The user handle is the resident id; the name shown by the authenticator is not
        // personal data (the hub knows residents by id only until they share more).
        let label = format!("renkei-{}", &resident.to_string()[..8]);
        let (options, state): (CreationChallengeResponse, _) = webauthn
            .start_passkey_registration(resident.as_uuid(), &label, &label, Some(exclude))
            .map_err(|e| HubError::internal(format!("webauthn: {e}")))?;
        // A discoverable credential, so signing in needs no user name (webauthn-rs asks for
        // none by default; the verification of the answer does not depend on it).
        let mut options = stored_state(&options)?;
        let selection = options
            .get_mut("publicKey")
            .and_then(serde_json::Value::as_object_mut)
            .map(|public_key| {
                public_key
                    .entry("authenticatorSelection")
                    .or_insert_with(|| serde_json::json!({}))
            })
            .and_then(serde_json::Value::as_object_mut)
            .ok_or_else(|| {
                HubError::internal("webauthn: registration options are not an object")
            })?;
        selection.insert("residentKey".into(), "required".into());
        selection.insert("requireResidentKey".into(), true.into());
        let ceremony = uuid::Uuid::new_v4();
        self.store()
            .put_ceremony(
                ceremony,
                REGISTER,
                &Ceremony {
                    resident: Some(resident),
                    state: stored_state(&state)?,
                },
                Utc::now() + TimeDelta::seconds(CEREMONY_SECONDS),
            )
            .await?;
        Ok(CeremonyStart { ceremony, options })
    }

    /// Finishes a registration begun by the same resident.
    pub async fn finish_passkey_registration(
        &self,
        resident: ResidentId,
        ceremony: uuid::Uuid,
        name: Option<String>,
        credential: &RegisterPublicKeyCredential,
    ) -> Result<PasskeyView, HubError> {
        let webauthn = self.webauthn()?;
        let now = Utc::now();
        let stored = self
            .store()
            .take_ceremony(ceremony, REGISTER, now)
            .await?
            .filter(|c| c.resident == Some(resident))
            .ok_or_else(|| refused("no such registration in progress"))?;
        let state: PasskeyRegistration = serde_json::from_value(stored.state)
            .map_err(|e| HubError::internal(format!("ceremony state: {e}")))?;
        let passkey = webauthn
            .finish_passkey_registration(credential, &state)
            .map_err(refused)?;
        let name = name
            .map(|n| n.trim().chars().take(64).collect::<String>())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "passkey".into());
        let stored = StoredPasskey {
            credential_id: credential_key(passkey.cred_id().as_ref()),
            resident,
            name,
            passkey: stored_state(&passkey)?,
            created_at: crate::consents::now_ms(),
            last_used_at: None,
        };
        self.store().add_passkey(&stored).await?;
        Ok(PasskeyView::from(&stored))
    }

    /// Starts a sign-in with any passkey registered here (discoverable credentials).
    pub async fn start_passkey_sign_in(
        &self,
        from: PeerAddr,
    ) -> Result<CeremonyStart<RequestChallengeResponse>, HubError> {
        let webauthn = self.webauthn()?;
        // Each ceremony is a stored row until it expires (and the purger takes it).
        self.limit_ceremony(from)?;
        let (mut options, state) = webauthn
            .start_discoverable_authentication()
            .map_err(|e| HubError::internal(format!("webauthn: {e}")))?;
        // A button-started sign-in, not autofill: the browser shows its passkey dialog.
        options.mediation = None;
        let ceremony = uuid::Uuid::new_v4();
        self.store()
            .put_ceremony(
                ceremony,
                SIGN_IN,
                &Ceremony {
                    resident: None,
                    state: stored_state(&state)?,
                },
                Utc::now() + TimeDelta::seconds(CEREMONY_SECONDS),
            )
            .await?;
        Ok(CeremonyStart { ceremony, options })
    }

    /// Finishes a sign-in: the resident whose passkey signed this ceremony's challenge.
    /// A replayed assertion fails: its ceremony is gone, and the counter must move on.
    pub async fn finish_passkey_sign_in(
        &self,
        ceremony: uuid::Uuid,
        credential: &PublicKeyCredential,
    ) -> Result<ResidentId, HubError> {
        let webauthn = self.webauthn()?;
        let now = Utc::now();
        let stored = self
            .store()
            .take_ceremony(ceremony, SIGN_IN, now)
            .await?
            .ok_or_else(|| refused("no such sign-in in progress (expired or already used)"))?;
        let state: DiscoverableAuthentication = serde_json::from_value(stored.state)
            .map_err(|e| HubError::internal(format!("ceremony state: {e}")))?;
        let (user, credential_id) = webauthn
            .identify_discoverable_authentication(credential)
            .map_err(refused)?;
        let key = credential_key(credential_id);
        let record = self
            .store()
            .passkey(&key)
            .await?
            .filter(|p| p.resident.as_uuid() == user)
            .ok_or_else(|| refused("unknown passkey"))?;
        let mut passkey: Passkey = serde_json::from_value(record.passkey.clone())
            .map_err(|e| HubError::internal(format!("stored passkey: {e}")))?;
        let result = webauthn
            .finish_discoverable_authentication_v2(credential, state, &passkey)
            .map_err(refused)?;
        if result.needs_update() {
            passkey.update_credential(&result);
        }
        self.store()
            .update_passkey(&key, &stored_state(&passkey)?, now)
            .await?;
        Ok(record.resident)
    }

    pub async fn passkeys(&self, resident: ResidentId) -> Result<Vec<PasskeyView>, HubError> {
        Ok(self
            .store()
            .passkeys_of(resident)
            .await?
            .iter()
            .map(PasskeyView::from)
            .collect())
    }

    pub async fn remove_passkey(&self, resident: ResidentId, id: &str) -> Result<(), HubError> {
        if self.store().remove_passkey(resident, id).await? {
            Ok(())
        } else {
            Err(HubError::NotFound(format!("passkey `{id}`")))
        }
    }
}

/// Credential ids are stored base64url-encoded.
fn credential_key(id: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
}
