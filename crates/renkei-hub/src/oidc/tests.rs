//! Unit tests of `oidc.rs`.

use super::*;

#[test]
fn the_pkce_transform_matches_rfc_7636_appendix_b() {
    assert_eq!(
        pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
}

#[test]
fn pkce_values_must_be_43_to_128_unreserved_characters() {
    assert!(is_pkce_value(&"a".repeat(43)));
    assert!(!is_pkce_value(&"a".repeat(42)));
    assert!(!is_pkce_value(&"a".repeat(129)));
    assert!(!is_pkce_value(&format!("{}+", "a".repeat(43))));
}

#[test]
fn at_hash_takes_the_left_half_of_the_id_token_algorithms_hash() {
    // OpenID Connect Core appendix A.3: an RS256 ID token's `at_hash` for this token.
    let token = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
    assert_eq!(at_hash(SigningAlg::Rs256, token), "77QmUPtjPfzWtF2AnpK9RQ");
    // The left 32 bytes of SHA-512, as computed independently (Python hashlib).
    assert_eq!(
        at_hash(SigningAlg::EdDsa, token),
        "q7nS86GgvvFaZkzALLWqJYaJIKw2wCDAVfCAsm5CrBM"
    );
}

#[test]
fn redirect_parameters_are_percent_encoded() {
    assert_eq!(
        with_query("https://a.example/cb?x=1", &[("state", "a b&c")]),
        "https://a.example/cb?x=1&state=a%20b%26c"
    );
}
