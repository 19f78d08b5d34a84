//! The counter receipt (窓口受付票): what counter staff did for a resident at the city's
//! counter, signed by the hub as a compact JWS (EdDSA, `typ` `renkei-counter-receipt+jwt`).
//! It is printed with a QR code carrying it, so the resident can check it later on any
//! phone against the hub's published keys ([`verify_counter_receipt`]), with no account.
//!
//! The claims are short, so that the QR code stays readable: who acted (the staff member's
//! operator id), how they verified the resident (the kind of document, never its number),
//! and the one act: a consent given, a consent revoked, or a request filed. The resident is
//! named by the hub's id, as the consent receipt names them.

use renkei_domain::{
    CategoryId, ConsentId, CounterVerification, OperatorId, PurposeId, ResidentId,
    ResidentRequestId, ResidentRequestKind, ServiceId,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::ReceiptError;
use crate::jws::{self, SignError};
use crate::keys::{Jwks, SigningKey};

/// The JWS `typ` of a counter receipt.
pub const COUNTER_RECEIPT_TYP: &str = "renkei-counter-receipt+jwt";

/// A counter receipt's claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterReceipt {
    /// The hub that signed it.
    pub iss: String,
    /// When staff acted (seconds since the epoch).
    pub iat: i64,
    /// The receipt's own id.
    pub jti: Uuid,
    /// The resident, by the hub's id.
    pub sub: ResidentId,
    /// The staff member who acted (their operator id).
    pub staff: OperatorId,
    /// How staff verified the resident.
    pub verified: CounterVerification,
    pub act: CounterAct,
}

/// What staff did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CounterAct {
    ConsentGiven {
        consent: ConsentId,
        service: ServiceId,
        purpose: PurposeId,
        version: u32,
        categories: Vec<CategoryId>,
        /// When the consent ends unless revoked first (seconds since the epoch).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires: Option<i64>,
    },
    ConsentRevoked {
        consent: ConsentId,
        service: ServiceId,
        purpose: PurposeId,
        version: u32,
    },
    RequestFiled {
        request: ResidentRequestId,
        request_kind: ResidentRequestKind,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        service: Option<ServiceId>,
    },
}

/// Signs a counter receipt with the hub's key.
pub fn sign_counter_receipt(
    key: &SigningKey,
    receipt: &CounterReceipt,
) -> Result<String, SignError> {
    jws::sign(key, COUNTER_RECEIPT_TYP, receipt)
}

/// Checks a counter receipt against the hub's published keys and returns its claims.
pub fn verify_counter_receipt(token: &str, jwks: &Jwks) -> Result<CounterReceipt, ReceiptError> {
    Ok(jws::verify(token.trim(), jwks, COUNTER_RECEIPT_TYP)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use renkei_domain::IdentityDocument;

    fn receipt() -> CounterReceipt {
        CounterReceipt {
            iss: "https://hub.example.jp".into(),
            iat: 1_780_000_000,
            jti: Uuid::new_v4(),
            sub: ResidentId::from_uuid(Uuid::new_v4()),
            staff: OperatorId::new("sato").unwrap(),
            verified: CounterVerification::InPerson {
                document: IdentityDocument::DriversLicence,
            },
            act: CounterAct::ConsentGiven {
                consent: ConsentId::from_uuid(Uuid::new_v4()),
                service: ServiceId::new("health-advice").unwrap(),
                purpose: PurposeId::new("advice").unwrap(),
                version: 1,
                categories: vec![CategoryId::new("health.checkup").unwrap()],
                expires: Some(1_811_536_000),
            },
        }
    }

    #[test]
    fn a_counter_receipt_verifies_against_the_key_set_and_a_tampered_one_does_not() {
        let key = SigningKey::generate().unwrap();
        let jwks = Jwks::from_signing_keys([&key]);
        let token = sign_counter_receipt(&key, &receipt()).unwrap();
        let checked = verify_counter_receipt(&token, &jwks).unwrap();
        assert_eq!(checked.staff.as_str(), "sato");
        // Another staff member's name put in: the signature no longer holds.
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let claims = String::from_utf8(
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &parts[1])
                .unwrap(),
        )
        .unwrap()
        .replace("\"sato\"", "\"kato\"");
        parts[1] = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            claims.as_bytes(),
        );
        let tampered = parts.join(".");
        assert_eq!(
            verify_counter_receipt(&tampered, &jwks).unwrap_err(),
            ReceiptError::BadSignature
        );
        // A consent receipt is not a counter receipt.
        assert!(
            verify_counter_receipt(
                &jws::sign(&key, "renkei-receipt+jwt", &receipt()).unwrap(),
                &jwks
            )
            .is_err()
        );
    }

    #[test]
    fn a_counter_receipt_is_short_enough_for_a_readable_qr_code() {
        let key = SigningKey::generate().unwrap();
        let token = sign_counter_receipt(&key, &receipt()).unwrap();
        assert!(token.len() < 1000, "{} characters", token.len());
    }
}
