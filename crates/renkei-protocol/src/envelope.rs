//! The sealed envelope a provider puts its answer in: HPKE (RFC 9180) base mode with
//! DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and ChaCha20-Poly1305, to the requesting
//! service's key. The hub relays it and cannot read it.
//!
//! The envelope is bound to where it belongs: the HPKE `info` is `renkei/v1 data ` followed
//! by the request id (lowercase hyphenated UUID), and the AEAD `aad` is the provider id. A
//! ciphertext moved to another request, or passed off as another provider's, fails to open.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
use renkei_domain::{ProviderId, RequestId};
use serde::{Deserialize, Serialize};

/// The suite name carried in [`SealedPayload::suite`] (named as in the JOSE HPKE draft).
pub const SUITE: &str = "HPKE-Base-X25519-SHA256-ChaCha20Poly1305";
/// The fixed prefix of the HPKE `info`.
pub const INFO_PREFIX: &str = "renkei/v1 data ";

type SuiteKem = X25519HkdfSha256;
type PrivateKey = <SuiteKem as Kem>::PrivateKey;
type PublicKey = <SuiteKem as Kem>::PublicKey;
type EncappedKey = <SuiteKem as Kem>::EncappedKey;

/// Why an envelope could not be made or opened. Opening fails with one undistinguished
/// [`EnvelopeError::Open`] whatever was wrong with the ciphertext, its key or its context.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("the recipient public key is not a base64url x25519 public key")]
    BadPublicKey,
    #[error("the private key is not a base64url x25519 private key")]
    BadPrivateKey,
    #[error("unsupported envelope suite `{0}`")]
    UnsupportedSuite(String),
    #[error("the envelope is malformed: {0}")]
    Malformed(&'static str),
    #[error("could not gather randomness for a key")]
    Randomness,
    #[error("sealing failed")]
    Seal,
    #[error("the envelope does not open with this key for this request and provider")]
    Open,
}

/// Where an envelope belongs: which provider sealed it, for which request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EnvelopeContext {
    pub provider: ProviderId,
    pub request: RequestId,
}

impl EnvelopeContext {
    /// The HPKE `info`: `renkei/v1 data <request id>`.
    pub fn info(&self) -> Vec<u8> {
        format!("{INFO_PREFIX}{}", self.request.as_uuid().hyphenated()).into_bytes()
    }

    /// The AEAD associated data: the provider id.
    pub fn aad(&self) -> Vec<u8> {
        self.provider.as_str().as_bytes().to_vec()
    }
}

/// A sealed payload as it crosses the wire (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedPayload {
    /// Always [`SUITE`].
    pub suite: String,
    /// The HPKE encapsulated key (base64url, 32 bytes).
    pub enc: String,
    /// The ChaCha20-Poly1305 ciphertext with its tag (base64url).
    pub ciphertext: String,
}

/// A service's X25519 key pair. The public half is registered with the hub
/// (`Service::hpke_public_key`) and travels in grants; the private half stays with the
/// service.
#[derive(Clone)]
pub struct ServiceKeyPair {
    private: PrivateKey,
    public: PublicKey,
}

impl ServiceKeyPair {
    /// A fresh key pair from the system's randomness.
    pub fn generate() -> Result<Self, EnvelopeError> {
        let mut ikm = zeroize::Zeroizing::new([0u8; 32]);
        aws_lc_rs::rand::fill(ikm.as_mut()).map_err(|_| EnvelopeError::Randomness)?;
        let (private, public) = SuiteKem::derive_keypair(ikm.as_ref());
        Ok(Self { private, public })
    }

    /// Loads the private key from its base64url form (32 bytes).
    pub fn from_private_b64(private: &str) -> Result<Self, EnvelopeError> {
        let bytes = zeroize::Zeroizing::new(
            URL_SAFE_NO_PAD
                .decode(private.trim())
                .map_err(|_| EnvelopeError::BadPrivateKey)?,
        );
        let private = PrivateKey::from_bytes(&bytes).map_err(|_| EnvelopeError::BadPrivateKey)?;
        let public = SuiteKem::sk_to_pk(&private);
        Ok(Self { private, public })
    }

    /// The private key, base64url. Secret.
    pub fn private_b64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.private.to_bytes())
    }

    /// The public key, base64url: what the service registers and grants carry.
    pub fn public_b64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.public.to_bytes())
    }
}

impl fmt::Debug for ServiceKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceKeyPair")
            .field("public", &self.public_b64())
            .finish_non_exhaustive()
    }
}

fn decode_public_key(b64: &str) -> Result<PublicKey, EnvelopeError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(b64.trim())
        .map_err(|_| EnvelopeError::BadPublicKey)?;
    PublicKey::from_bytes(&bytes).map_err(|_| EnvelopeError::BadPublicKey)
}

/// Checks that `b64` is a key providers can seal to: 32 bytes of base64url without padding
/// (as the API documents it), and not a low-order point, with which the shared secret would
/// be zero and every seal fail. Tried by sealing an empty message to it.
pub fn check_recipient_key(b64: &str) -> Result<(), EnvelopeError> {
    if !renkei_domain::catalog::is_x25519_public_key(b64) {
        return Err(EnvelopeError::BadPublicKey);
    }
    let recipient = decode_public_key(b64)?;
    hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, SuiteKem>(
        &OpModeS::Base,
        &recipient,
        b"renkei/v1 key check",
        b"",
        b"",
    )
    .map(|_| ())
    .map_err(|_| EnvelopeError::BadPublicKey)
}

/// Seals `plaintext` to the service whose public key is `recipient_public_b64`, bound to
/// `context`.
pub fn seal(
    recipient_public_b64: &str,
    context: &EnvelopeContext,
    plaintext: &[u8],
) -> Result<SealedPayload, EnvelopeError> {
    let recipient = decode_public_key(recipient_public_b64)?;
    let (enc, ciphertext) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, SuiteKem>(
        &OpModeS::Base,
        &recipient,
        &context.info(),
        plaintext,
        &context.aad(),
    )
    .map_err(|_| EnvelopeError::Seal)?;
    Ok(SealedPayload {
        suite: SUITE.to_owned(),
        enc: URL_SAFE_NO_PAD.encode(enc.to_bytes()),
        ciphertext: URL_SAFE_NO_PAD.encode(ciphertext),
    })
}

/// Opens an envelope with the service's key, checking that it belongs to `context`.
pub fn open(
    keys: &ServiceKeyPair,
    context: &EnvelopeContext,
    sealed: &SealedPayload,
) -> Result<Vec<u8>, EnvelopeError> {
    if sealed.suite != SUITE {
        return Err(EnvelopeError::UnsupportedSuite(crate::jws::shorten(
            &sealed.suite,
        )));
    }
    let enc = URL_SAFE_NO_PAD
        .decode(&sealed.enc)
        .map_err(|_| EnvelopeError::Malformed("`enc` is not base64url"))?;
    let ciphertext = URL_SAFE_NO_PAD
        .decode(&sealed.ciphertext)
        .map_err(|_| EnvelopeError::Malformed("`ciphertext` is not base64url"))?;
    open_raw(
        &keys.private,
        &enc,
        &context.info(),
        &context.aad(),
        &ciphertext,
    )
}

/// HPKE base-mode single-shot open of the suite.
fn open_raw(
    private: &PrivateKey,
    enc: &[u8],
    info: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, EnvelopeError> {
    let enc = EncappedKey::from_bytes(enc)
        .map_err(|_| EnvelopeError::Malformed("`enc` is not an x25519 public key"))?;
    hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, SuiteKem>(
        &OpModeR::Base,
        private,
        &enc,
        info,
        ciphertext,
        aad,
    )
    .map_err(|_| EnvelopeError::Open)
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn context() -> EnvelopeContext {
        EnvelopeContext {
            provider: ProviderId::new("city-hospital").unwrap(),
            request: RequestId::from_uuid(Uuid::from_u128(0x1234)),
        }
    }

    /// Hands out fixed bytes, so the sender's ephemeral key is the test vector's.
    struct FixedRng(Vec<u8>);

    impl hpke::rand_core::TryRng for FixedRng {
        type Error = std::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            panic!("the vector's generator only fills bytes")
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            panic!("the vector's generator only fills bytes")
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            let taken: Vec<u8> = self.0.drain(..dst.len()).collect();
            dst.copy_from_slice(&taken);
            Ok(())
        }
    }
    impl hpke::rand_core::TryCryptoRng for FixedRng {}

    // RFC 9180 appendix A.2.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305,
    // base mode.
    const INFO: &str = "4f6465206f6e2061204772656369616e2055726e";
    const IKM_E: &str = "909a9b35d3dc4713a5e72a4da274b55d3d3821a37e5d099e74a647db583a904b";
    const PK_EM: &str = "1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a";
    const IKM_R: &str = "1ac01f181fdf9f352797655161c58b75c656a6cc2716dcb66372da835542e1df";
    const PK_RM: &str = "4310ee97d88cc1f088a5576c77ab0cf5c3ac797f3d95139c6c84b5429c59662a";
    const SK_RM: &str = "8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb";
    const PT: &str = "4265617574792069732074727574682c20747275746820626561757479";
    const AAD_0: &str = "436f756e742d30";
    const CT_0: &str = "1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db
                        21993c62ce81883d2dd1b51a28";

    #[test]
    fn rfc9180_a21_key_derivation() {
        let (sk, pk) = SuiteKem::derive_keypair(&hex(IKM_R));
        // The vector's skRm is unclamped; the crate clamps private keys as it reads them.
        assert!(sk == PrivateKey::from_bytes(&hex(SK_RM)).unwrap());
        assert_eq!(pk.to_bytes().as_slice(), hex(PK_RM).as_slice());
        let keys = ServiceKeyPair::from_private_b64(&URL_SAFE_NO_PAD.encode(hex(SK_RM))).unwrap();
        assert_eq!(keys.public_b64(), URL_SAFE_NO_PAD.encode(hex(PK_RM)));
    }

    #[test]
    fn rfc9180_a21_seal_with_the_vector_ephemeral_key() {
        let recipient = PublicKey::from_bytes(&hex(PK_RM)).unwrap();
        let (enc, ct) = hpke::single_shot_seal_with_rng::<ChaCha20Poly1305, HkdfSha256, SuiteKem>(
            &OpModeS::Base,
            &recipient,
            &hex(INFO),
            &hex(PT),
            &hex(AAD_0),
            &mut FixedRng(hex(IKM_E)),
        )
        .unwrap();
        assert_eq!(enc.to_bytes().as_slice(), hex(PK_EM).as_slice());
        assert_eq!(ct, hex(CT_0));
    }

    #[test]
    fn rfc9180_a21_open_through_the_envelope_path() {
        let sk = PrivateKey::from_bytes(&hex(SK_RM)).unwrap();
        let pt = open_raw(&sk, &hex(PK_EM), &hex(INFO), &hex(AAD_0), &hex(CT_0)).unwrap();
        assert_eq!(pt, hex(PT));
        // The same ciphertext under the next sequence number's aad does not open.
        assert_eq!(
            open_raw(&sk, &hex(PK_EM), &hex(INFO), b"Count-1", &hex(CT_0)),
            Err(EnvelopeError::Open)
        );
    }

    #[test]
    fn info_and_aad_name_the_request_and_the_provider() {
        let ctx = context();
        assert_eq!(
            ctx.info(),
            b"renkei/v1 data 00000000-0000-0000-0000-000000001234".to_vec()
        );
        assert_eq!(ctx.aad(), b"city-hospital".to_vec());
    }

    #[test]
    fn a_sealed_payload_opens_for_its_recipient() {
        let keys = ServiceKeyPair::generate().unwrap();
        let sealed = seal(&keys.public_b64(), &context(), b"{\"bmi\":22}").unwrap();
        assert_eq!(sealed.suite, SUITE);
        assert_eq!(open(&keys, &context(), &sealed).unwrap(), b"{\"bmi\":22}");
    }

    #[test]
    fn a_key_pair_round_trips_through_base64url() {
        let keys = ServiceKeyPair::generate().unwrap();
        let again = ServiceKeyPair::from_private_b64(&keys.private_b64()).unwrap();
        assert_eq!(again.public_b64(), keys.public_b64());
        assert_eq!(URL_SAFE_NO_PAD.decode(keys.public_b64()).unwrap().len(), 32);
    }

    #[test]
    fn bad_keys_are_refused() {
        assert_eq!(
            seal("AAAA", &context(), b"x").unwrap_err(),
            EnvelopeError::BadPublicKey
        );
        assert_eq!(
            seal("not base64!", &context(), b"x").unwrap_err(),
            EnvelopeError::BadPublicKey
        );
        assert_eq!(
            ServiceKeyPair::from_private_b64("AAAA").unwrap_err(),
            EnvelopeError::BadPrivateKey
        );
    }

    #[test]
    fn a_registered_key_must_be_a_usable_x25519_key() {
        let good = ServiceKeyPair::generate().unwrap().public_b64();
        assert_eq!(check_recipient_key(&good), Ok(()));
        // 32 zero bytes and 1 are low-order points: every seal to them would fail.
        let one = URL_SAFE_NO_PAD.encode([&[1u8][..], &[0u8; 31]].concat());
        for bad in [
            "not-a-key",
            "",
            "AAAA",
            &"A".repeat(43),
            &one,
            &format!("{good}="),
        ] {
            assert_eq!(
                check_recipient_key(bad),
                Err(EnvelopeError::BadPublicKey),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn debug_output_shows_only_the_public_key() {
        let keys = ServiceKeyPair::generate().unwrap();
        let shown = format!("{keys:?}");
        assert!(shown.contains(&keys.public_b64()));
        assert!(!shown.contains(&keys.private_b64()));
    }
}
