//! C2SP signed notes (<https://c2sp.org/signed-note>) with Ed25519 keys (signature type 0x01).
//!
//! A signed note is a text ending in a newline, a blank line, then one or more lines
//! `— <key name> <base64(key id || signature)>`. A key is named, and identified by the
//! name and a 32-bit key id: the first four bytes of
//! `SHA-256(name || 0x0A || 0x01 || public key)`.
//!
//! Key text forms (compatible with Go's `golang.org/x/mod/sumdb/note`):
//! - verifier key: `<name>+<hex key id>+<base64(0x01 || 32-byte public key)>`
//! - signer key: `PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || 32-byte seed)>`
//!
//! A signer key is a secret: it never appears in an error or in `Debug` output.

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};

/// Signature type identifier of Ed25519 (c2sp.org/signed-note).
const ALG_ED25519: u8 = 0x01;
/// Every signature line starts with an em dash (U+2014) and a space.
const SIG_PREFIX: &str = "\u{2014} ";
const ED25519_KEY_LEN: usize = 32;

/// The most signature lines [`open`] reads from one note (the spec asks for at least 16).
pub const MAX_SIGNATURES: usize = 100;

/// What went wrong while reading keys, signing or opening a note.
#[derive(Debug, thiserror::Error)]
pub enum NoteError {
    /// The note is not UTF-8.
    #[error("the note is not valid utf-8")]
    NotUtf8,
    /// The note or text has an ASCII control character other than newline.
    #[error("the note contains a control character other than newline")]
    ControlCharacter,
    /// The text to sign does not end in a newline.
    #[error("the note text must end with a newline")]
    MissingNewline,
    /// The note has no blank line followed by signature lines.
    #[error("the note has no signature lines after a blank line")]
    MissingSignatures,
    /// A signature line is not `— <name> <base64>` with at least five bytes of signature.
    #[error("signature line {line} is malformed")]
    MalformedSignature {
        /// The signature line's number, from 1.
        line: usize,
    },
    /// The note has more than [`MAX_SIGNATURES`] signature lines.
    #[error("the note has more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    /// A signature by a known key does not verify.
    #[error("the signature by `{name}` with key id `{key_id:08x}` does not verify")]
    BadSignature {
        /// The key name.
        name: String,
        /// The key id.
        key_id: u32,
    },
    /// No signature on the note is by a known key.
    #[error("no signature on the note is by a known key")]
    UnknownKey,
    /// A key name is empty or has a Unicode space, a plus sign or a control character.
    #[error("key name `{0}` is empty or has a space, a plus sign or a control character")]
    InvalidName(String),
    /// A verifier key is not `<name>+<8 lowercase hex digits>+<base64>`.
    #[error("the verifier key is malformed")]
    MalformedVerifierKey,
    /// A signer key is not `PRIVATE+KEY+<name>+<8 lowercase hex digits>+<base64>`.
    #[error("the signer key is malformed")]
    MalformedSignerKey,
    /// A key's stated id is not the id computed from its name and public key.
    #[error("key `{name}` states key id `{stated:08x}` but its key has id `{computed:08x}`")]
    KeyIdMismatch {
        /// The key name.
        name: String,
        /// The id written in the key text.
        stated: u32,
        /// The id computed from the name and public key.
        computed: u32,
    },
    /// The key is of a signature type other than Ed25519 (0x01).
    #[error("signature type `{0:#04x}` is not supported")]
    UnsupportedAlgorithm(u8),
    /// [`sign`] was given no signer.
    #[error("at least one signer is needed")]
    NoSigners,
    /// The Ed25519 implementation or the system random number generator failed.
    #[error("the ed25519 key operation failed")]
    Crypto,
}

/// A key that verifies signatures: a name, a key id and an Ed25519 public key.
///
/// Parse one from its text form with [`str::parse`]; [`fmt::Display`] writes it back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verifier {
    name: String,
    key_id: u32,
    public_key: [u8; ED25519_KEY_LEN],
}

impl Verifier {
    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    fn verify(&self, text: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.public_key)
            .verify(text, signature)
            .is_ok()
    }
}

impl FromStr for Verifier {
    type Err = NoteError;

    fn from_str(vkey: &str) -> Result<Self, NoteError> {
        // The name holds no '+', the base64 may, so split at the first two only.
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::MalformedVerifierKey);
        };
        check_name(name)?;
        let stated = parse_key_id(id).ok_or(NoteError::MalformedVerifierKey)?;
        let public_key = parse_ed25519_key(key).ok_or(NoteError::MalformedVerifierKey)??;
        let computed = key_id(name, &public_key);
        if stated != computed {
            return Err(NoteError::KeyIdMismatch {
                name: name.to_owned(),
                stated,
                computed,
            });
        }
        Ok(Verifier {
            name: name.to_owned(),
            key_id: stated,
            public_key,
        })
    }
}

impl fmt::Display for Verifier {
    /// The verifier key text form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}+{:08x}+{}",
            self.name,
            self.key_id,
            BASE64.encode(typed_key(&self.public_key))
        )
    }
}

/// A key that signs notes: a name, a key id and an Ed25519 private key.
///
/// Parse one from its secret text form with [`str::parse`].
pub struct Signer {
    name: String,
    key_id: u32,
    key_pair: Ed25519KeyPair,
}

impl Signer {
    /// A signer from a key name and a 32-byte Ed25519 seed (RFC 8032 private key).
    ///
    /// # Errors
    /// [`NoteError::InvalidName`] for a bad name, [`NoteError::Crypto`] if the key is refused.
    pub fn from_seed(name: &str, seed: &[u8; ED25519_KEY_LEN]) -> Result<Self, NoteError> {
        check_name(name)?;
        let key_pair = Ed25519KeyPair::from_seed_unchecked(seed).map_err(|_| NoteError::Crypto)?;
        let public_key: [u8; ED25519_KEY_LEN] = key_pair
            .public_key()
            .as_ref()
            .try_into()
            .map_err(|_| NoteError::Crypto)?;
        Ok(Signer {
            name: name.to_owned(),
            key_id: key_id(name, &public_key),
            key_pair,
        })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The verifier for this signer's public key.
    pub fn verifier(&self) -> Verifier {
        let mut public_key = [0u8; ED25519_KEY_LEN];
        public_key.copy_from_slice(self.key_pair.public_key().as_ref());
        Verifier {
            name: self.name.clone(),
            key_id: self.key_id,
            public_key,
        }
    }
}

impl FromStr for Signer {
    type Err = NoteError;

    fn from_str(skey: &str) -> Result<Self, NoteError> {
        let mut parts = skey.splitn(5, '+');
        let (Some("PRIVATE"), Some("KEY"), Some(name), Some(id), Some(key)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(NoteError::MalformedSignerKey);
        };
        let stated = parse_key_id(id).ok_or(NoteError::MalformedSignerKey)?;
        let seed = parse_ed25519_key(key).ok_or(NoteError::MalformedSignerKey)??;
        let signer = Signer::from_seed(name, &seed)?;
        if signer.key_id != stated {
            return Err(NoteError::KeyIdMismatch {
                name: name.to_owned(),
                stated,
                computed: signer.key_id,
            });
        }
        Ok(signer)
    }
}

impl fmt::Debug for Signer {
    /// Shows the name and key id only, never the private key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.key_id))
            .finish_non_exhaustive()
    }
}

/// A new Ed25519 key named `name`, from the system's random number generator, as
/// `(signer key, verifier key)` text forms. The signer key is a secret.
///
/// # Errors
/// [`NoteError::InvalidName`] for a bad name, [`NoteError::Crypto`] if randomness fails.
pub fn generate_key(name: &str) -> Result<(String, String), NoteError> {
    let mut seed = [0u8; ED25519_KEY_LEN];
    aws_lc_rs::rand::fill(&mut seed).map_err(|_| NoteError::Crypto)?;
    let signer = Signer::from_seed(name, &seed)?;
    let skey = format!(
        "PRIVATE+KEY+{}+{:08x}+{}",
        signer.name,
        signer.key_id,
        BASE64.encode(typed_key(&seed))
    );
    seed.fill(0);
    Ok((skey, signer.verifier().to_string()))
}

/// A signature line of an opened note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    /// The key name.
    pub name: String,
    /// The key id.
    pub key_id: u32,
    /// The signature as written on the line: base64 of key id and signature.
    pub base64: String,
}

/// A note whose signatures [`open`] has checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// The signed text, with its final newline.
    pub text: String,
    /// The signatures by known keys; all of them verified.
    pub sigs: Vec<Signature>,
    /// The signatures by unknown keys, not verified (for example witness cosignatures).
    pub unverified_sigs: Vec<Signature>,
}

/// Signs `text` with every signer and returns the signed note.
///
/// # Errors
/// [`NoteError::MissingNewline`] or [`NoteError::ControlCharacter`] for a text that could
/// not be opened again, [`NoteError::NoSigners`], or [`NoteError::Crypto`].
pub fn sign(text: &str, signers: &[&Signer]) -> Result<String, NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::MissingNewline);
    }
    check_controls(text)?;
    if signers.is_empty() {
        return Err(NoteError::NoSigners);
    }
    let mut note = String::with_capacity(text.len() + 1 + signers.len() * 110);
    note.push_str(text);
    note.push('\n');
    for signer in signers {
        let sig = signer
            .key_pair
            .try_sign(text.as_bytes())
            .map_err(|_| NoteError::Crypto)?;
        let mut bytes = signer.key_id.to_be_bytes().to_vec();
        bytes.extend_from_slice(sig.as_ref());
        note.push_str(SIG_PREFIX);
        note.push_str(&signer.name);
        note.push(' ');
        note.push_str(&BASE64.encode(bytes));
        note.push('\n');
    }
    Ok(note)
}

/// Opens a signed note: checks its form, verifies every signature by a key in
/// `verifiers`, and sets aside those by other keys.
///
/// # Errors
/// A malformed note, [`NoteError::BadSignature`] when a signature by a known key does not
/// verify, or [`NoteError::UnknownKey`] when no signature is by a known key.
pub fn open(msg: &[u8], verifiers: &[Verifier]) -> Result<Note, NoteError> {
    let msg = std::str::from_utf8(msg).map_err(|_| NoteError::NotUtf8)?;
    check_controls(msg)?;
    // The text ends at the last blank line; the signature block follows and ends in '\n'.
    let split = msg.rfind("\n\n").ok_or(NoteError::MissingSignatures)?;
    let (text, sigs) = (&msg[..=split], &msg[split + 2..]);
    if sigs.is_empty() || !sigs.ends_with('\n') {
        return Err(NoteError::MissingSignatures);
    }
    let mut note = Note {
        text: text.to_owned(),
        sigs: Vec::new(),
        unverified_sigs: Vec::new(),
    };
    for (i, line) in sigs[..sigs.len() - 1].split('\n').enumerate() {
        if i >= MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures);
        }
        let (name, b64, key_id, signature) =
            parse_signature_line(line).ok_or(NoteError::MalformedSignature { line: i + 1 })?;
        let signature = signature.as_slice();
        let sig = Signature {
            name: name.to_owned(),
            key_id,
            base64: b64.to_owned(),
        };
        // Every signature by a known key (same name and id) must verify.
        match verifiers
            .iter()
            .find(|v| v.name == name && v.key_id == key_id)
        {
            Some(verifier) => {
                if !verifier.verify(text.as_bytes(), signature) {
                    return Err(NoteError::BadSignature {
                        name: name.to_owned(),
                        key_id,
                    });
                }
                if !note.sigs.contains(&sig) {
                    note.sigs.push(sig);
                }
            }
            None => {
                if !note.unverified_sigs.contains(&sig) {
                    note.unverified_sigs.push(sig);
                }
            }
        }
    }
    if note.sigs.is_empty() {
        return Err(NoteError::UnknownKey);
    }
    Ok(note)
}

/// `— <name> <base64(key id || signature)>` as (name, base64, key id, signature); the
/// signature has at least one byte.
fn parse_signature_line(line: &str) -> Option<(&str, &str, u32, Vec<u8>)> {
    let (name, b64) = line.strip_prefix(SIG_PREFIX)?.split_once(' ')?;
    check_name(name).ok()?;
    let bytes = BASE64.decode(b64).ok()?;
    let (id, signature) = bytes.split_first_chunk::<4>()?;
    if signature.is_empty() {
        return None;
    }
    Some((name, b64, u32::from_be_bytes(*id), signature.to_vec()))
}

/// `SHA-256(name || 0x0A || 0x01 || public key)[:4]` as a big-endian integer.
fn key_id(name: &str, public_key: &[u8; ED25519_KEY_LEN]) -> u32 {
    let digest: [u8; 32] = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update([b'\n'])
        .chain_update(typed_key(public_key))
        .finalize()
        .into();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// `0x01 || key`.
fn typed_key(key: &[u8; ED25519_KEY_LEN]) -> [u8; ED25519_KEY_LEN + 1] {
    let mut out = [ALG_ED25519; ED25519_KEY_LEN + 1];
    out[1..].copy_from_slice(key);
    out
}

/// Decodes `base64(0x01 || 32 bytes)`; `None` if malformed, an error for another type.
fn parse_ed25519_key(b64: &str) -> Option<Result<[u8; ED25519_KEY_LEN], NoteError>> {
    let bytes = BASE64.decode(b64).ok()?;
    let (&alg, key) = bytes.split_first()?;
    if alg != ALG_ED25519 {
        return Some(Err(NoteError::UnsupportedAlgorithm(alg)));
    }
    key.try_into().ok().map(Ok)
}

/// Exactly eight lowercase hex digits.
fn parse_key_id(hex: &str) -> Option<u32> {
    let canonical = hex.len() == 8 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    canonical
        .then(|| u32::from_str_radix(hex, 16).ok())
        .flatten()
}

fn check_name(name: &str) -> Result<(), NoteError> {
    let bad = name.is_empty()
        || name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control());
    if bad {
        return Err(NoteError::InvalidName(name.to_owned()));
    }
    Ok(())
}

/// No ASCII control character other than newline.
fn check_controls(s: &str) -> Result<(), NoteError> {
    if s.bytes().any(|b| b < 0x20 && b != b'\n') {
        return Err(NoteError::ControlCharacter);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_must_be_eight_lowercase_hex_digits() {
        assert_eq!(parse_key_id("c74f20a3"), Some(0xc74f20a3));
        assert_eq!(parse_key_id("C74F20A3"), None);
        assert_eq!(parse_key_id("c74f20a"), None);
        assert_eq!(parse_key_id("+74f20a3"), None);
        assert_eq!(parse_key_id("c74f20a30"), None);
    }

    #[test]
    fn names_refuse_spaces_pluses_and_controls() {
        assert!(check_name("example.com/log").is_ok());
        assert!(check_name("ログ").is_ok());
        for bad in [
            "",
            "a b",
            "a+b",
            "a\u{a0}b",
            "a\u{3000}b",
            "a\u{1b}b",
            "a\tb",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_signer_debug_never_shows_the_key() {
        let signer = Signer::from_seed("n", &[7; 32]).unwrap();
        let shown = format!("{signer:?}");
        assert!(shown.contains("\"n\""));
        assert!(!shown.contains("0707"));
    }
}
