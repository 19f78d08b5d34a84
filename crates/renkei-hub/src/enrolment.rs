//! Enrolment (身元確認): a resident proves who they are with a certificate chaining to the
//! configured trust anchor and a signature over a fresh hub challenge. The hub keeps a hash
//! of the certificate's key and the verified attributes the city needs, never the
//! certificate; enrolling again with the same card finds the same resident (how a resident
//! who lost every passkey gets back in).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, TimeDelta, Utc};
use renkei_domain::ResidentId;
use renkei_identity::{
    EnrolmentError, TrustAnchors, VerifiedIdentity, parse_chain, verify_enrolment,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::limits::PeerAddr;
use crate::{Hub, HubError};

/// How long a challenge may wait for its signature.
pub const CHALLENGE_SECONDS: i64 = 300;

/// The detail of the refusal when the challenge was used, never issued or has expired (the
/// portal tells this case apart to offer a fresh challenge in plain words).
pub const CHALLENGE_GONE: &str = "unknown or expired challenge; ask for a new one";

/// A challenge to sign with the certificate's key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnrolmentChallenge {
    pub id: uuid::Uuid,
    /// 32 random bytes, base64url: sign these bytes (not the text).
    pub challenge: String,
    pub expires_at: DateTime<Utc>,
}

/// An enrolment: the certificate chain and the signature over the challenge.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnrolmentBody {
    pub challenge_id: uuid::Uuid,
    /// PEM, the resident's certificate first, then any intermediates.
    pub certificate_chain: String,
    /// The signature over the challenge bytes, base64url or base64 (RSA PKCS#1 v1.5 or
    /// ECDSA P-256 DER, both with SHA-256).
    pub signature: String,
}

/// Who enrolled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolmentOutcome {
    pub resident: ResidentId,
    /// `false` when the same certificate key enrolled before.
    pub new_resident: bool,
}

/// The stable `reason` of an enrolment problem.
fn reason(e: &EnrolmentError) -> &'static str {
    match e {
        EnrolmentError::UnknownIssuer => "unknown-issuer",
        EnrolmentError::Expired { .. } => "expired",
        EnrolmentError::NotYetValid { .. } => "not-yet-valid",
        EnrolmentError::Revoked => "revoked",
        EnrolmentError::CrlExpired { .. } => "crl-expired",
        EnrolmentError::CrlInvalid(_) => "crl-invalid",
        EnrolmentError::RevocationUnknown => "revocation-unknown",
        EnrolmentError::BadKeyUsage(_) => "bad-key-usage",
        EnrolmentError::BadSignature => "bad-signature",
        EnrolmentError::Malformed(_) => "malformed",
        EnrolmentError::UnsupportedAlgorithm(_) => "unsupported-algorithm",
        EnrolmentError::InvalidChain(_) => "invalid-chain",
    }
}

fn refused(e: EnrolmentError) -> HubError {
    HubError::EnrolmentRefused {
        reason: reason(&e),
        detail: e.to_string(),
    }
}

/// What the city keeps of the verified attributes (not the serial number or the certificate).
fn kept_attributes(identity: &VerifiedIdentity) -> serde_json::Value {
    let a = &identity.attributes;
    let mut kept = serde_json::Map::new();
    kept.insert("name".into(), a.name.clone().into());
    if let Some(address) = &a.address {
        kept.insert("address".into(), address.clone().into());
    }
    if let Some(born) = a.date_of_birth {
        kept.insert("date_of_birth".into(), born.to_string().into());
    }
    serde_json::Value::Object(kept)
}

impl Hub {
    fn trust_anchors(&self) -> Result<&Arc<TrustAnchors>, HubError> {
        self.config().trust_anchors.as_ref().ok_or_else(|| {
            HubError::Forbidden("enrolment is not configured: the hub has no trust anchor".into())
        })
    }

    /// A fresh single-use challenge, stored so any replica can check the answer.
    pub async fn enrolment_challenge(
        &self,
        from: PeerAddr,
    ) -> Result<EnrolmentChallenge, HubError> {
        self.trust_anchors()?;
        // Each challenge is a stored row until it expires (and the purger takes it).
        self.limit_ceremony(from)?;
        let bytes = crate::auth::random_bytes();
        let id = uuid::Uuid::new_v4();
        let now = Utc::now();
        let expires_at = now + TimeDelta::seconds(CHALLENGE_SECONDS);
        self.store()
            .put_enrolment_challenge(id, &bytes, expires_at)
            .await?;
        Ok(EnrolmentChallenge {
            id,
            challenge: URL_SAFE_NO_PAD.encode(bytes),
            expires_at,
        })
    }

    /// Verifies an enrolment and records the identity. The challenge is used up whatever
    /// the outcome, so a failed attempt cannot be retried with another signature.
    pub async fn enrol(&self, body: &EnrolmentBody) -> Result<EnrolmentOutcome, HubError> {
        let anchors = self.trust_anchors()?;
        let now = Utc::now();
        let challenge = self
            .store()
            .take_enrolment_challenge(body.challenge_id, now)
            .await?
            .ok_or_else(|| refused(EnrolmentError::Malformed(CHALLENGE_GONE.into())))?;
        let chain = parse_chain(&body.certificate_chain).map_err(refused)?;
        let signature = decode_signature(&body.signature)?;
        let identity =
            verify_enrolment(anchors, &chain, &challenge, &signature, now).map_err(refused)?;
        let enrolled = self
            .store()
            .enrol(
                &identity.key_hash.to_string(),
                &kept_attributes(&identity),
                identity.not_after,
                ResidentId::from_uuid(uuid::Uuid::new_v4()),
                now,
            )
            .await?;
        Ok(EnrolmentOutcome {
            resident: enrolled.enrolment.resident,
            new_resident: enrolled.new_resident,
        })
    }
}

fn decode_signature(s: &str) -> Result<Vec<u8>, HubError> {
    let s = s.trim();
    URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .or_else(|_| STANDARD.decode(s))
        .map_err(|_| {
            refused(EnrolmentError::Malformed(
                "the signature is not base64url or base64".into(),
            ))
        })
}
