//! A data provider's registration (データ保有者): who it is, how the hub reaches it, the
//! public keys it signs its answers with, whom to contact, and where it stands in the
//! operators' review. Only an approved provider is sent grants ([`Provider::receives_grants`]).

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::catalog::LocalizedText;
use crate::identity::ControllerContact;
use crate::ids::{CategoryId, ProviderId};

/// A system that keeps resident data and answers hub-signed grants (データ保有者).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provider {
    pub id: ProviderId,
    pub name: LocalizedText,
    /// How the hub reaches the provider.
    pub connection: ProviderConnection,
    pub categories: BTreeSet<CategoryId>,
    /// The largest answer the hub reads from this provider, in bytes; `None`: the hub's
    /// default. A provider whose records are large (imaging, say) is given more.
    #[serde(default)]
    pub max_answer_bytes: Option<u64>,
    /// The public keys the provider signs its answers with: services verify every answer
    /// against them (the hub publishes them), so the hub cannot forge one.
    #[serde(default)]
    pub signing_keys: ProviderKeys,
    /// Whom the city contacts about the provider; `None` for providers registered before
    /// the hub asked for it.
    #[serde(default)]
    pub contact: Option<ControllerContact>,
    pub status: ProviderStatus,
}

impl Provider {
    /// Whether the hub may send this provider grants: only once an operator approved it, and
    /// never while it is suspended.
    pub fn receives_grants(&self) -> bool {
        self.status == ProviderStatus::Approved
    }

    /// The base URL grants are POSTed to, for a provider that accepts connections.
    pub fn endpoint(&self) -> Option<&str> {
        match &self.connection {
            ProviderConnection::Inbound { endpoint } => Some(endpoint),
            ProviderConnection::Outbound => None,
        }
    }
}

/// How the hub and a provider connect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum ProviderConnection {
    /// The provider listens: the hub POSTs grants to `<endpoint>/renkei/v1/fetch`.
    Inbound { endpoint: String },
    /// The provider accepts no connection (a closed municipal network, 三層分離): it keeps
    /// one outbound connection to the hub and takes its grants over it.
    Outbound,
}

impl ProviderConnection {
    /// `inbound` or `outbound`, as storage and the API name the mode.
    pub fn mode(&self) -> &'static str {
        match self {
            Self::Inbound { .. } => "inbound",
            Self::Outbound => "outbound",
        }
    }
}

/// Where a provider's registration stands in the operators' review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderStatus {
    /// Registered, waiting for an operator's review: sent no grant.
    Pending,
    Approved,
    /// Stopped by an operator: sent no grant from the next decision on.
    Suspended,
}

impl ProviderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Suspended => "suspended",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "approved" => Some(Self::Approved),
            "suspended" => Some(Self::Suspended),
            _ => None,
        }
    }
}

/// One public Ed25519 key of a provider: its key id and its 32 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderKey {
    kid: String,
    public: [u8; 32],
}

impl ProviderKey {
    /// A key from its id and public bytes; the id is 1 to 200 printable ASCII characters.
    pub fn new(kid: impl Into<String>, public: [u8; 32]) -> Result<Self, KeySetError> {
        let kid = kid.into();
        if kid.is_empty() || kid.len() > 200 || !kid.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(KeySetError::Kid);
        }
        Ok(Self { kid, public })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn public_key(&self) -> &[u8; 32] {
        &self.public
    }
}

/// The public keys a provider registered, as a JWK Set (RFC 7517) of Ed25519 keys (RFC
/// 8037), each with a distinct `kid`. Parsed strictly and written back in one form (`kty`,
/// `crv`, `x`, `kid`, `alg` EdDSA, `use` sig), so what the hub publishes is exactly what it
/// checked. Empty for providers registered before the hub kept keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "serde_json::Value", into = "serde_json::Value")]
pub struct ProviderKeys(Vec<ProviderKey>);

/// Why a JWK Set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeySetError {
    #[error("a JWK Set is a JSON object with a `keys` array")]
    NotASet,
    #[error("`keys[{0}]` holds a private key (`d`): register only the public half")]
    Private(usize),
    #[error("`keys[{0}]` is not an Ed25519 public key (`kty` OKP, `crv` Ed25519)")]
    NotEd25519(usize),
    #[error("`keys[{0}].x` must be 32 bytes in base64url without padding")]
    BadX(usize),
    #[error("`keys[{0}]` must be for signatures (`alg` EdDSA, `use` sig, or neither)")]
    NotForSigning(usize),
    #[error("`keys[{0}].kid` must be 1 to 200 printable ASCII characters")]
    BadKid(usize),
    #[error("a key id must be 1 to 200 printable ASCII characters")]
    Kid,
    #[error("key id `{0}` is given twice")]
    DuplicateKid(String),
    #[error("a provider registers at most {MAX_KEYS} keys")]
    TooMany,
}

/// Enough for a rotation with a spare; a set is read on every answer a service verifies.
pub const MAX_KEYS: usize = 8;

impl ProviderKeys {
    /// A set of these keys, refused if two share a `kid` or there are too many.
    pub fn new(keys: Vec<ProviderKey>) -> Result<Self, KeySetError> {
        if keys.len() > MAX_KEYS {
            return Err(KeySetError::TooMany);
        }
        let mut seen = BTreeSet::new();
        for k in &keys {
            if !seen.insert(k.kid.as_str()) {
                return Err(KeySetError::DuplicateKid(k.kid.clone()));
            }
        }
        Ok(Self(keys))
    }

    pub fn keys(&self) -> &[ProviderKey] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Parses a JWK Set of Ed25519 public keys (see the type's documentation).
    pub fn parse(value: &serde_json::Value) -> Result<Self, KeySetError> {
        let keys = value
            .as_object()
            .and_then(|o| o.get("keys"))
            .and_then(serde_json::Value::as_array)
            .ok_or(KeySetError::NotASet)?;
        if keys.len() > MAX_KEYS {
            return Err(KeySetError::TooMany);
        }
        let parsed = keys
            .iter()
            .enumerate()
            .map(|(i, jwk)| parse_jwk(i, jwk))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(parsed)
    }

    /// The set as a JWK Set, in the one form the hub writes.
    pub fn to_json(&self) -> serde_json::Value {
        let keys: Vec<serde_json::Value> = self
            .0
            .iter()
            .map(|k| {
                serde_json::json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": URL_SAFE_NO_PAD.encode(k.public),
                    "kid": k.kid,
                    "alg": "EdDSA",
                    "use": "sig",
                })
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }
}

fn parse_jwk(i: usize, jwk: &serde_json::Value) -> Result<ProviderKey, KeySetError> {
    let jwk = jwk.as_object().ok_or(KeySetError::NotEd25519(i))?;
    let text = |name: &str| jwk.get(name).and_then(serde_json::Value::as_str);
    // INVARIANT: a private key is refused before anything else is read of it, so a
    // registration that pastes the whole key pair is never stored, published or echoed.
    if jwk.contains_key("d") {
        return Err(KeySetError::Private(i));
    }
    if text("kty") != Some("OKP") || text("crv") != Some("Ed25519") {
        return Err(KeySetError::NotEd25519(i));
    }
    let absent_or =
        |name: &str, wanted: &str| jwk.get(name).is_none() || text(name) == Some(wanted);
    if !absent_or("alg", "EdDSA") || !absent_or("use", "sig") {
        return Err(KeySetError::NotForSigning(i));
    }
    let public: [u8; 32] = text("x")
        .and_then(|x| URL_SAFE_NO_PAD.decode(x).ok())
        .and_then(|x| x.try_into().ok())
        .ok_or(KeySetError::BadX(i))?;
    let kid = text("kid").ok_or(KeySetError::BadKid(i))?;
    ProviderKey::new(kid, public).map_err(|_| KeySetError::BadKid(i))
}

impl TryFrom<serde_json::Value> for ProviderKeys {
    type Error = KeySetError;

    fn try_from(value: serde_json::Value) -> Result<Self, KeySetError> {
        Self::parse(&value)
    }
}

impl From<ProviderKeys> for serde_json::Value {
    fn from(keys: ProviderKeys) -> Self {
        keys.to_json()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn jwk(kid: &str, x: &[u8]) -> serde_json::Value {
        json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(x), "kid": kid})
    }

    fn provider(status: ProviderStatus) -> Provider {
        Provider {
            id: ProviderId::new("hikari-clinic").unwrap(),
            name: LocalizedText::new("ひかり台クリニック", "Hikaridai Clinic"),
            connection: ProviderConnection::Outbound,
            categories: BTreeSet::new(),
            max_answer_bytes: None,
            signing_keys: ProviderKeys::default(),
            contact: None,
            status,
        }
    }

    #[test]
    fn only_an_approved_provider_receives_grants() {
        assert!(provider(ProviderStatus::Approved).receives_grants());
        assert!(!provider(ProviderStatus::Pending).receives_grants());
        assert!(!provider(ProviderStatus::Suspended).receives_grants());
    }

    #[test]
    fn an_outbound_provider_has_no_endpoint() {
        assert_eq!(provider(ProviderStatus::Approved).endpoint(), None);
        let inbound = Provider {
            connection: ProviderConnection::Inbound {
                endpoint: "https://clinic.example".into(),
            },
            ..provider(ProviderStatus::Approved)
        };
        assert_eq!(inbound.endpoint(), Some("https://clinic.example"));
    }

    #[test]
    fn a_key_set_reads_back_in_the_hubs_own_form() {
        let set = json!({"keys": [jwk("k1", &[7; 32])]});
        let keys = ProviderKeys::parse(&set).unwrap();
        assert_eq!(keys.keys().first().map(ProviderKey::kid), Some("k1"));
        let written = keys.to_json();
        assert_eq!(written["keys"][0]["alg"], "EdDSA");
        assert_eq!(written["keys"][0]["use"], "sig");
        assert_eq!(ProviderKeys::parse(&written).unwrap(), keys);
    }

    #[test]
    fn a_private_key_is_refused_without_echoing_it() {
        let mut key = jwk("k1", &[7; 32]);
        key["d"] = json!("c2VjcmV0LXByaXZhdGUta2V5LWJ5dGVzLXNlY3JldA");
        let refused = ProviderKeys::parse(&json!({"keys": [key]})).unwrap_err();
        assert_eq!(refused, KeySetError::Private(0));
        assert!(!refused.to_string().contains("c2Vj"));
    }

    #[test]
    fn keys_of_other_types_curves_or_uses_are_refused() {
        let cases = [
            (
                json!({"kty": "EC", "crv": "P-256", "x": "AA", "kid": "k"}),
                KeySetError::NotEd25519(0),
            ),
            (
                json!({"kty": "OKP", "crv": "X25519", "x": URL_SAFE_NO_PAD.encode([1; 32]), "kid": "k"}),
                KeySetError::NotEd25519(0),
            ),
            (
                json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode([1; 32]), "kid": "k", "use": "enc"}),
                KeySetError::NotForSigning(0),
            ),
            (
                json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode([1; 32]), "kid": "k", "alg": "RS256"}),
                KeySetError::NotForSigning(0),
            ),
            (
                json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode([1; 31]), "kid": "k"}),
                KeySetError::BadX(0),
            ),
            (
                json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode([1; 32])}),
                KeySetError::BadKid(0),
            ),
        ];
        for (key, why) in cases {
            assert_eq!(ProviderKeys::parse(&json!({"keys": [key]})), Err(why));
        }
    }

    #[test]
    fn two_keys_with_one_kid_are_refused() {
        let set = json!({"keys": [jwk("k1", &[1; 32]), jwk("k1", &[2; 32])]});
        assert_eq!(
            ProviderKeys::parse(&set),
            Err(KeySetError::DuplicateKid("k1".into()))
        );
    }

    #[test]
    fn a_provider_reads_back_from_json_with_its_connection_and_keys() {
        let p = Provider {
            signing_keys: ProviderKeys::parse(&json!({"keys": [jwk("k1", &[9; 32])]})).unwrap(),
            ..provider(ProviderStatus::Pending)
        };
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["connection"], json!({"mode": "outbound"}));
        assert_eq!(serde_json::from_value::<Provider>(json).unwrap(), p);
    }

    proptest! {
        #[test]
        fn any_json_is_parsed_or_refused_without_a_panic(s in ".{0,200}") {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&s) {
                let _ = ProviderKeys::parse(&v);
            }
        }

        #[test]
        fn any_set_of_distinct_keys_round_trips(
            keys in proptest::collection::btree_map("[!-~]{1,20}", any::<[u8; 32]>(), 0..MAX_KEYS)
        ) {
            let set = json!({"keys": keys.iter().map(|(kid, x)| jwk(kid, x)).collect::<Vec<_>>()});
            let parsed = ProviderKeys::parse(&set).unwrap();
            prop_assert_eq!(parsed.keys().len(), keys.len());
            prop_assert_eq!(ProviderKeys::parse(&parsed.to_json()).unwrap(), parsed);
        }

        #[test]
        fn a_jwk_with_any_member_spoiled_is_refused(
            member in prop::sample::select(vec!["kty", "crv", "x", "kid"]),
            value in prop_oneof![Just(json!(null)), Just(json!(1)), Just(json!("")), Just(json!(["OKP"]))],
        ) {
            let mut key = jwk("k1", &[3; 32]);
            key[member] = value;
            let set = json!({"keys": [key]});
            prop_assert!(ProviderKeys::parse(&set).is_err());
        }
    }
}
