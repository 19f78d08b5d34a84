//! Unit tests of `keys.rs`.

use super::*;

/// RFC 8037 appendix A.1: the example Ed25519 key.
const RFC8037_D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
const RFC8037_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

fn rfc8037_key() -> SigningKey {
    let seed = URL_SAFE_NO_PAD.decode(RFC8037_D).unwrap();
    let public = URL_SAFE_NO_PAD.decode(RFC8037_X).unwrap();
    let pair = Ed25519KeyPair::from_seed_and_public_key(&seed, &public).unwrap();
    SigningKey::from_pkcs8_der(pair.to_pkcs8().unwrap().as_ref()).unwrap()
}

#[test]
fn the_kid_is_the_rfc8037_thumbprint() {
    // RFC 8037 appendix A.3.
    assert_eq!(
        rfc8037_key().kid(),
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    );
}

#[test]
fn signing_matches_the_rfc8037_example() {
    // RFC 8037 appendix A.4: Ed25519 is deterministic, so the signature is fixed.
    install_crypto_provider();
    let key = rfc8037_key();
    let signature = jsonwebtoken::crypto::sign(
        b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc",
        key.encoding_key().unwrap(),
        jsonwebtoken::Algorithm::EdDSA,
    )
    .unwrap();
    assert_eq!(
        signature,
        "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
    );
}

#[test]
fn a_key_survives_a_round_trip_through_pkcs8() {
    let key = SigningKey::generate().unwrap();
    let again = SigningKey::from_pkcs8_der(key.pkcs8_der().unwrap()).unwrap();
    assert_eq!(key.kid(), again.kid());
    assert_eq!(key.public_key(), again.public_key());
}

#[test]
fn garbage_is_not_a_key() {
    assert_eq!(
        SigningKey::from_pkcs8_der(b"not a key").unwrap_err(),
        KeyError::BadPkcs8
    );
}

#[test]
fn the_public_jwk_has_the_published_shape() {
    let key = rfc8037_key();
    let json = serde_json::to_value(key.public_jwk()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": RFC8037_X,
            "kid": "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k",
            "alg": "EdDSA",
            "use": "sig",
        })
    );
}

#[test]
fn a_jwks_round_trips_through_json_and_finds_keys_by_kid() {
    let a = SigningKey::generate().unwrap();
    let b = SigningKey::generate().unwrap();
    let jwks = Jwks::from_signing_keys([&a, &b]);
    let json = serde_json::to_string(&jwks).unwrap();
    let back: Jwks = serde_json::from_str(&json).unwrap();
    assert_eq!(back, jwks);
    assert!(back.decoding_key(b.kid()).is_ok());
    assert_eq!(
        back.decoding_key("nope").unwrap_err(),
        KeyError::UnknownKey("nope".into())
    );
}

#[test]
fn a_symmetric_or_foreign_key_in_the_set_is_refused() {
    let jwks: Jwks = serde_json::from_value(serde_json::json!({
        "keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac", "alg": "HS256"},
            {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X, "kid": "enc", "use": "enc"},
            {"kty": "OKP", "crv": "Ed25519", "x": "AAAA", "kid": "short"},
        ]
    }))
    .unwrap();
    for kid in ["hmac", "enc", "short"] {
        assert_eq!(
            jwks.decoding_key(kid).unwrap_err(),
            KeyError::UnsupportedKey(kid.into()),
            "{kid}"
        );
    }
}

/// RFC 7638 §3.1: the example RSA key and its thumbprint.
const RFC7638_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
const RFC7638_E: &str = "AQAB";

#[test]
fn the_rsa_kid_is_the_rfc7638_thumbprint() {
    let n = URL_SAFE_NO_PAD.decode(RFC7638_N).unwrap();
    let e = URL_SAFE_NO_PAD.decode(RFC7638_E).unwrap();
    assert_eq!(
        rsa_thumbprint(&n, &e),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
}

#[test]
fn an_rsa_key_survives_pkcs8_and_publishes_its_rs256_jwk() {
    let key = RsaSigningKey::generate().unwrap();
    let again = RsaSigningKey::from_pkcs8_der(key.pkcs8_der().unwrap()).unwrap();
    assert_eq!(key.kid(), again.kid());
    let json = serde_json::to_value(key.public_jwk()).unwrap();
    assert_eq!(json["kty"], "RSA");
    assert_eq!(json["alg"], "RS256");
    assert_eq!(json["use"], "sig");
    assert_eq!(json["e"], RFC7638_E);
    assert_eq!(json["kid"], key.kid());
    let n = URL_SAFE_NO_PAD.decode(json["n"].as_str().unwrap()).unwrap();
    assert_eq!(n.len(), 256, "a 2048-bit modulus");
    assert_eq!(
        rsa_thumbprint(&n, &URL_SAFE_NO_PAD.decode(RFC7638_E).unwrap()),
        key.kid()
    );
}

#[test]
fn an_rs256_signature_verifies_with_the_published_modulus_and_exponent() {
    let key = RsaSigningKey::generate().unwrap();
    let signature = key.sign(b"signing input").unwrap();
    let public = PublicKeyComponents {
        n: key.n.as_slice(),
        e: key.e.as_slice(),
    };
    let verify = |message: &[u8]| {
        public.verify(
            &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
            message,
            &signature,
        )
    };
    assert!(verify(b"signing input").is_ok());
    assert!(verify(b"another input").is_err());
}

#[test]
fn an_ed25519_key_is_not_an_rsa_key_nor_the_reverse() {
    let ed = SigningKey::generate().unwrap();
    assert_eq!(
        RsaSigningKey::from_pkcs8_der(ed.pkcs8_der().unwrap()).unwrap_err(),
        KeyError::BadRsaPkcs8
    );
    let rsa = RsaSigningKey::generate().unwrap();
    assert_eq!(
        SigningKey::from_pkcs8_der(rsa.pkcs8_der().unwrap()).unwrap_err(),
        KeyError::BadPkcs8
    );
}

#[test]
fn an_rsa_key_in_the_set_never_verifies_eddsa_tokens() {
    let rsa = RsaSigningKey::generate().unwrap();
    let jwks = Jwks::new(vec![rsa.public_jwk()]);
    assert_eq!(
        jwks.decoding_key(rsa.kid()).unwrap_err(),
        KeyError::UnsupportedKey(rsa.kid().to_owned())
    );
}

#[test]
fn debug_output_hides_the_private_key() {
    let key = rfc8037_key();
    let shown = format!("{key:?}");
    assert!(shown.contains("kPrK_"), "{shown}");
    assert!(!shown.contains("pkcs8"), "{shown}");
}

/// What a device answers when asked to sign.
type Answer = dyn Fn(&[u8]) -> Result<Vec<u8>, String> + Send + Sync;

/// Hands the signing to a key in this process, as a token would do it inside itself.
struct Through(Arc<Answer>);

impl ExternalSigner for Through {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        (self.0)(message)
    }
}

fn through(f: impl Fn(&[u8]) -> Result<Vec<u8>, String> + Send + Sync + 'static) -> Arc<Through> {
    Arc::new(Through(Arc::new(f)))
}

#[test]
fn an_external_key_signs_through_its_signer_and_refuses_what_cannot_be_a_signature() {
    let inner = SigningKey::generate().unwrap();
    let same = inner.clone();
    let external = SigningKey::external(
        *inner.public_key(),
        through(move |m| Ok(same.sign(m).unwrap())),
    );
    assert_eq!(external.kid(), inner.kid());
    assert_eq!(external.public_jwk(), inner.public_jwk());
    assert!(external.is_external() && !inner.is_external());
    assert!(external.pkcs8_der().is_none() && external.encoding_key().is_none());
    assert_eq!(external.sign(b"m").unwrap(), inner.sign(b"m").unwrap());
    let short = SigningKey::external(*inner.public_key(), through(|_| Ok(vec![0; 63])));
    assert_eq!(
        short.sign(b"m"),
        Err(KeyError::Sign(inner.kid().to_owned()))
    );
    let failing = SigningKey::external(
        *inner.public_key(),
        through(|_| Err("device removed".into())),
    );
    assert!(
        matches!(failing.sign(b"m"), Err(KeyError::External { why, .. }) if why == "device removed")
    );

    let rsa = Arc::new(RsaSigningKey::generate().unwrap());
    let signer = rsa.clone();
    let mut padded_n = vec![0, 0];
    padded_n.extend_from_slice(&rsa.n);
    let external = RsaSigningKey::external(
        &padded_n,
        &rsa.e,
        through(move |m| signer.sign(m).map_err(|e| e.to_string())),
    )
    .unwrap();
    assert_eq!(
        external.kid(),
        rsa.kid(),
        "leading zeros do not change the key"
    );
    assert_eq!(external.public_jwk(), rsa.public_jwk());
    assert!(external.is_external() && external.pkcs8_der().is_none());
    assert_eq!(external.sign(b"m").unwrap(), rsa.sign(b"m").unwrap());
    let short = RsaSigningKey::external(&rsa.n, &rsa.e, through(|_| Ok(vec![1; 255]))).unwrap();
    assert_eq!(short.sign(b"m"), Err(KeyError::Sign(rsa.kid().to_owned())));
    assert!(
        RsaSigningKey::external(&rsa.n[..128], &rsa.e, through(|_| Ok(Vec::new()))).is_err(),
        "a 1024-bit modulus is refused"
    );
}

#[test]
fn a_key_written_as_pem_reads_back_as_the_same_key() {
    let key = SigningKey::generate().unwrap();
    let pem = key.to_pkcs8_pem().unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    let read = SigningKey::from_pkcs8_pem(&pem).unwrap();
    assert_eq!(read.kid(), key.kid());
    assert_eq!(read.public_key(), key.public_key());
}

#[test]
fn pem_that_is_not_a_pkcs8_ed25519_key_is_refused() {
    for text in [
        "",
        "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----",
        "-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----",
        "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----",
    ] {
        assert!(matches!(
            SigningKey::from_pkcs8_pem(text),
            Err(KeyError::BadPkcs8)
        ));
    }
}

#[test]
fn a_providers_registered_keys_verify_what_its_key_signed() {
    let key = SigningKey::generate().unwrap();
    let registered = renkei_domain::ProviderKeys::parse(&serde_json::json!({
        "keys": [serde_json::to_value(key.public_jwk()).unwrap()]
    }))
    .unwrap();
    let jwks = Jwks::from_provider_keys(&registered);
    assert!(jwks.decoding_key(key.kid()).is_ok());
    assert_eq!(jwks, Jwks::from_signing_keys([&key]));
}

proptest::proptest! {
    #[test]
    fn any_text_is_read_as_a_key_or_refused_without_a_panic(text in "(-----BEGIN PRIVATE KEY-----)?[ -~\n]{0,200}(-----END PRIVATE KEY-----)?") {
        let _ = SigningKey::from_pkcs8_pem(&text);
    }
}
