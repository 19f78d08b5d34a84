//! Unit tests of `pkcs11.rs`, and the test token other modules' tests use.

use super::*;
use aws_lc_rs::signature::{ED25519, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

/// The token `.ci/softhsm-setup` made, or `None` (and a note) when it was not set up.
pub(crate) fn test_token() -> Option<Arc<Token>> {
    let Ok(module) = std::env::var("RENKEI_TEST_PKCS11_MODULE") else {
        eprintln!("skipped: RENKEI_TEST_PKCS11_MODULE is not set (eval \"$(.ci/softhsm-setup)\")");
        return None;
    };
    let pin_file = std::env::var("RENKEI_TEST_PKCS11_PIN_FILE").unwrap();
    let config = Pkcs11Config {
        module: module.into(),
        token: std::env::var("RENKEI_TEST_PKCS11_TOKEN").unwrap(),
        pin: Zeroizing::new(std::fs::read_to_string(pin_file).unwrap()),
    };
    Some(Token::open(&config).unwrap())
}

/// The private key object with `CKA_ID` `id`, as another application would find it.
fn private_object(token: &Token, id: &[u8]) -> ObjectHandle {
    token
        .find(ObjectClass::PRIVATE_KEY, id)
        .unwrap()
        .expect("the private key is in the token")
}

#[test]
fn a_key_made_in_the_token_signs_there_and_its_private_half_cannot_be_read() {
    let Some(token) = test_token() else { return };
    for alg in [SigningAlg::EdDsa, SigningAlg::Rs256] {
        let made = token.generate(alg).unwrap();
        let key = token
            .key(&made.kid, alg, &made.reference)
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        let message = b"eyJhbGciOiJFZERTQSJ9.eyJuIjoxfQ";
        let (signature, jwk) = match &key {
            TokenSigningKey::EdDsa(k) => (k.sign(message).unwrap(), k.public_jwk()),
            TokenSigningKey::Rs256(k) => (k.sign(message).unwrap(), k.public_jwk()),
        };
        assert_eq!(
            serde_json::to_string(&jwk).unwrap(),
            made.reference.public_jwk,
            "the stored JWK is the token's public key"
        );
        let verified = match &key {
            TokenSigningKey::EdDsa(k) => {
                UnparsedPublicKey::new(&ED25519, k.public_key()).verify(message, &signature)
            }
            TokenSigningKey::Rs256(_) => {
                let json = serde_json::to_value(&jwk).unwrap();
                let part = |name: &str| {
                    URL_SAFE_NO_PAD
                        .decode(json[name].as_str().unwrap())
                        .unwrap()
                };
                aws_lc_rs::rsa::PublicKeyComponents {
                    n: part("n"),
                    e: part("e"),
                }
                .verify(&RSA_PKCS1_2048_8192_SHA256, message, &signature)
            }
        };
        assert!(verified.is_ok(), "{alg}: the token's signature verifies");

        let private = private_object(&token, &made.reference.object_id);
        let secret = match alg {
            SigningAlg::EdDsa => AttributeType::Value,
            SigningAlg::Rs256 => AttributeType::PrivateExponent,
        };
        let read = token.with_session("reading", false, |s| {
            s.get_attributes(
                private,
                &[
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                    AttributeType::NeverExtractable,
                    secret,
                ],
            )
        });
        let read = read.unwrap();
        assert!(
            read.contains(&Attribute::Sensitive(true)),
            "{alg}: {read:?}"
        );
        assert!(read.contains(&Attribute::Extractable(false)), "{alg}");
        assert!(read.contains(&Attribute::NeverExtractable(true)), "{alg}");
        assert!(
            !read.iter().any(|a| a.attribute_type() == secret),
            "{alg}: the token gave out the private key: {read:?}"
        );
        token.destroy(&made.reference.object_id).unwrap();
        assert!(
            matches!(
                token.key(&made.kid, alg, &made.reference),
                Err(TokenError::Missing { .. })
            ),
            "{alg}: deleted"
        );
    }
}

#[test]
fn a_stored_key_is_refused_without_its_token_in_another_token_or_as_another_key() {
    let Some(token) = test_token() else { return };
    let made = token.generate(SigningAlg::EdDsa).unwrap();
    let refused = open_key(None, &made.kid, SigningAlg::EdDsa, &made.reference)
        .err()
        .unwrap();
    assert!(
        matches!(&refused, TokenError::NotGiven { token: t, .. } if *t == token.label),
        "{refused}"
    );
    assert!(refused.to_string().contains(&made.kid), "{refused}");
    let mut elsewhere = made.reference.clone();
    elsewhere.token = "another-token".into();
    assert!(matches!(
        open_key(Some(&token), &made.kid, SigningAlg::EdDsa, &elsewhere),
        Err(TokenError::OtherToken { .. })
    ));
    assert!(matches!(
        open_key(
            Some(&token),
            "another-kid",
            SigningAlg::EdDsa,
            &made.reference
        ),
        Err(TokenError::NotTheKey { .. })
    ));
    assert!(
        open_key(Some(&token), &made.kid, SigningAlg::Rs256, &made.reference).is_err(),
        "an Ed25519 key pair is not an RSA key"
    );
    let mut unknown = made.reference.clone();
    unknown.object_id = b"no such object".to_vec();
    assert!(matches!(
        open_key(Some(&token), &made.kid, SigningAlg::EdDsa, &unknown),
        Err(TokenError::Missing { .. })
    ));
    token.destroy(&made.reference.object_id).unwrap();
}

#[test]
fn a_wrong_module_or_token_label_is_named_in_the_error() {
    let Some(token) = test_token() else { return };
    let module = std::env::var("RENKEI_TEST_PKCS11_MODULE").unwrap();
    let config = |module: &str, label: &str| Pkcs11Config {
        module: module.into(),
        token: label.into(),
        pin: Zeroizing::new("0000".into()),
    };
    let missing = Token::open(&config("/nonexistent/libpkcs11.so", "x"))
        .err()
        .unwrap();
    assert!(
        missing.to_string().contains("/nonexistent/libpkcs11.so"),
        "{missing}"
    );
    let absent = Token::open(&config(&module, "no-such-token"))
        .err()
        .unwrap();
    assert!(absent.to_string().contains("`no-such-token`"), "{absent}");
    drop(token);
}
