//! Compact JWS (RFC 7515) signing and verification shared by grants, receipts and events:
//! EdDSA only, an explicit `typ`, and the key named by `kid` looked up in a [`Jwks`]; and
//! the signing of ID tokens, with EdDSA or RS256.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::keys::{AnySigningKey, Jwks, SigningKey, install_crypto_provider};

/// Tokens longer than this are refused before any parsing (grants, receipts and events are
/// all far smaller).
pub(crate) const MAX_TOKEN_LEN: usize = 64 * 1024;

/// Why a token could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("refusing to sign: {0}")]
    InvalidClaims(&'static str),
    #[error("signing failed: {0}")]
    Signing(String),
}

/// Why a compact JWS did not verify, before its claims are looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JwsError {
    Malformed(&'static str),
    BadSignature,
    UnknownKey(String),
}

/// The protected header as received, read before anything is trusted.
#[derive(serde::Deserialize)]
struct ProtectedHeader {
    alg: String,
    typ: Option<String>,
    kid: Option<String>,
    crit: Option<serde_json::Value>,
}

/// Signs `claims` as a compact JWS with EdDSA, the given `typ` and the key's `kid`.
pub(crate) fn sign<T: Serialize>(
    key: &SigningKey,
    typ: &str,
    claims: &T,
) -> Result<String, SignError> {
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some(typ.to_owned());
    header.kid = Some(key.kid().to_owned());
    compact(&header, claims, |input| {
        key.sign(input)
            .map_err(|e| SignError::Signing(e.to_string()))
    })
}

/// `base64url(header).base64url(claims).base64url(signature)`, RFC 7515 §7.1.
fn compact<T: Serialize>(
    header: &Header,
    claims: &T,
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, SignError>,
) -> Result<String, SignError> {
    let header = serde_json::to_vec(header).map_err(|e| SignError::Signing(e.to_string()))?;
    let claims = serde_json::to_vec(claims).map_err(|e| SignError::Signing(e.to_string()))?;
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature = sign(signing_input.as_bytes())?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

/// Signs `claims` as a JWT (`typ` JWT) with the key's algorithm and `kid`: how the hub's
/// OpenID provider signs ID tokens. Relying parties verify these; the hub never does.
pub fn sign_jwt<T: Serialize>(key: AnySigningKey<'_>, claims: &T) -> Result<String, SignError> {
    let key = match key {
        AnySigningKey::EdDsa(key) => return sign(key, "JWT", claims),
        AnySigningKey::Rs256(key) => key,
    };
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some("JWT".to_owned());
    header.kid = Some(key.kid().to_owned());
    compact(&header, claims, |input| {
        key.sign(input)
            .map_err(|e| SignError::Signing(e.to_string()))
    })
}

/// Verifies a compact JWS of type `typ` against `jwks` and returns its claims. Only the
/// signature, algorithm, type and key are checked here; what the claims mean is the
/// caller's business.
pub(crate) fn verify<T: DeserializeOwned>(
    token: &str,
    jwks: &Jwks,
    typ: &str,
) -> Result<T, JwsError> {
    install_crypto_provider();
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwsError::Malformed("the token is too large"));
    }
    let mut parts = token.split('.');
    let (Some(encoded_header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed("not a compact jws"));
    };
    let header_json = URL_SAFE_NO_PAD
        .decode(encoded_header)
        .map_err(|_| JwsError::Malformed("the header is not base64url"))?;
    let header: ProtectedHeader = serde_json::from_slice(&header_json)
        .map_err(|_| JwsError::Malformed("the header is not a jws header"))?;
    // Only EdDSA is ever accepted: `none`, HMAC (key confusion) and everything else fail
    // here, before a key is chosen.
    if header.alg != "EdDSA" {
        return Err(JwsError::BadSignature);
    }
    if header.crit.is_some() {
        return Err(JwsError::Malformed(
            "critical header parameters are not supported",
        ));
    }
    if !typ_matches(header.typ.as_deref(), typ) {
        return Err(JwsError::Malformed("the token has the wrong type (`typ`)"));
    }
    let kid = header
        .kid
        .ok_or(JwsError::Malformed("the header names no key (`kid`)"))?;
    let key = jwks
        .decoding_key(&kid)
        .map_err(|_| JwsError::UnknownKey(shorten(&kid)))?;

    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.leeway = 0;
    match jsonwebtoken::decode::<T>(token, &key, &validation) {
        Ok(data) => Ok(data.claims),
        Err(e) => Err(match e.kind() {
            ErrorKind::InvalidSignature
            | ErrorKind::InvalidAlgorithm
            | ErrorKind::InvalidEddsaKey
            | ErrorKind::InvalidKeyFormat => JwsError::BadSignature,
            ErrorKind::Json(_) => JwsError::Malformed("the claims do not have the expected shape"),
            ErrorKind::Base64(_) | ErrorKind::Utf8(_) => {
                JwsError::Malformed("the token is not base64url json")
            }
            _ => JwsError::Malformed("the token could not be decoded"),
        }),
    }
}

/// Compares media types as RFC 7515 §4.1.9 asks: case-insensitively, with an optional
/// `application/` prefix.
fn typ_matches(found: Option<&str>, expected: &str) -> bool {
    const PREFIX: &str = "application/";
    let Some(found) = found else {
        return false;
    };
    let bare = match (found.get(..PREFIX.len()), found.get(PREFIX.len()..)) {
        (Some(prefix), Some(rest)) if prefix.eq_ignore_ascii_case(PREFIX) => rest,
        _ => found,
    };
    bare.eq_ignore_ascii_case(expected)
}

/// Cuts attacker-chosen text to a length fit for an error message.
pub(crate) fn shorten(s: &str) -> String {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::DecodingKey;

    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    #[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
    struct Claims {
        n: u32,
    }

    #[test]
    fn an_eddsa_jws_is_byte_for_byte_what_jsonwebtoken_signs() {
        // Ed25519 is deterministic, so the key parsed once must give jsonwebtoken's exact token.
        install_crypto_provider();
        let key = SigningKey::generate().unwrap();
        let claims = Claims { n: 42 };
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some("renkei-grant+jwt".to_owned());
        header.kid = Some(key.kid().to_owned());
        let theirs = jsonwebtoken::encode(&header, &claims, key.encoding_key().unwrap()).unwrap();
        assert_eq!(sign(&key, "renkei-grant+jwt", &claims).unwrap(), theirs);
    }

    #[test]
    fn an_rs256_jwt_verifies_with_jsonwebtoken_from_the_published_jwk() {
        install_crypto_provider();
        let key = crate::keys::RsaSigningKey::generate().unwrap();
        let token = sign_jwt(AnySigningKey::Rs256(&key), &Claims { n: 7 }).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::RS256);
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        assert_eq!(header.kid.as_deref(), Some(key.kid()));
        let decoding = DecodingKey::from_jwk(&key.public_jwk()).unwrap();
        let mut validation = Validation::new(Algorithm::RS256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let claims: Claims = jsonwebtoken::decode(&token, &decoding, &validation)
            .unwrap()
            .claims;
        assert_eq!(claims, Claims { n: 7 });
        let other = crate::keys::RsaSigningKey::generate().unwrap();
        let wrong = DecodingKey::from_jwk(&other.public_jwk()).unwrap();
        assert!(jsonwebtoken::decode::<Claims>(&token, &wrong, &validation).is_err());
    }

    #[test]
    fn an_eddsa_jwt_is_signed_like_the_other_tokens_with_type_jwt() {
        let (key, jwks) = setup();
        let token = sign_jwt(AnySigningKey::EdDsa(&key), &Claims { n: 3 }).unwrap();
        let claims: Claims = verify(&token, &jwks, "JWT").unwrap();
        assert_eq!(claims, Claims { n: 3 });
    }

    fn setup() -> (SigningKey, Jwks) {
        let key = SigningKey::generate().unwrap();
        let jwks = Jwks::from_signing_keys([&key]);
        (key, jwks)
    }

    #[test]
    fn a_signed_token_verifies_and_names_its_key() {
        let (key, jwks) = setup();
        let token = sign(&key, "x+jwt", &Claims { n: 7 }).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), Some(key.kid()));
        assert_eq!(header.typ.as_deref(), Some("x+jwt"));
        assert_eq!(
            verify::<Claims>(&token, &jwks, "x+jwt").unwrap(),
            Claims { n: 7 }
        );
    }

    #[test]
    fn the_type_is_compared_as_a_media_type() {
        assert!(typ_matches(Some("X+JWT"), "x+jwt"));
        assert!(typ_matches(Some("application/x+jwt"), "x+jwt"));
        assert!(!typ_matches(Some("JWT"), "x+jwt"));
        assert!(!typ_matches(None, "x+jwt"));
        assert!(!typ_matches(Some("applicatioñ/x"), "x+jwt"));
    }

    #[test]
    fn a_token_of_another_type_is_refused() {
        let (key, jwks) = setup();
        let token = sign(&key, "y+jwt", &Claims { n: 7 }).unwrap();
        assert!(matches!(
            verify::<Claims>(&token, &jwks, "x+jwt"),
            Err(JwsError::Malformed(_))
        ));
    }

    #[test]
    fn critical_headers_are_refused() {
        let (key, jwks) = setup();
        let token = sign(&key, "x+jwt", &Claims { n: 7 }).unwrap();
        let (_, rest) = token.split_once('.').unwrap();
        let header = b64(&format!(
            r#"{{"alg":"EdDSA","typ":"x+jwt","kid":"{}","crit":["exp"],"exp":1}}"#,
            key.kid()
        ));
        assert!(matches!(
            verify::<Claims>(&format!("{header}.{rest}"), &jwks, "x+jwt"),
            Err(JwsError::Malformed(_))
        ));
    }

    #[test]
    fn a_token_without_kid_is_refused() {
        let (_, jwks) = setup();
        let token = format!(
            "{}.{}.AAAA",
            b64(r#"{"alg":"EdDSA","typ":"x+jwt"}"#),
            b64(r#"{"n":1}"#)
        );
        assert!(matches!(
            verify::<Claims>(&token, &jwks, "x+jwt"),
            Err(JwsError::Malformed(_))
        ));
    }

    #[test]
    fn claims_of_the_wrong_shape_are_malformed_once_signed() {
        let (key, jwks) = setup();
        let token = sign(&key, "x+jwt", &serde_json::json!({"n": "seven"})).unwrap();
        assert!(matches!(
            verify::<Claims>(&token, &jwks, "x+jwt"),
            Err(JwsError::Malformed(_))
        ));
    }

    #[test]
    fn long_key_ids_are_shortened_in_errors() {
        let long = "k".repeat(500);
        assert!(shorten(&long).chars().count() <= 65);
        assert_eq!(shorten("short"), "short");
        assert_eq!(shorten(&"é".repeat(70)).chars().count(), 65);
    }
}
