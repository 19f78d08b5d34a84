//! C2SP transparency-log checkpoints (<https://c2sp.org/tlog-checkpoint>): the signed tree
//! head, a signed note whose text is
//!
//! ```text
//! <origin>
//! <tree size in decimal>
//! <base64 root hash>
//! [<extension line>...]
//! ```

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::excerpt;
use crate::merkle::Hash;
use crate::note::{self, NoteError, Signer, Verifier};

/// What went wrong while building, parsing, signing or opening a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The signed note around the checkpoint is not acceptable.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The checkpoint text does not end with a newline.
    #[error("the checkpoint text must end with a newline")]
    MissingNewline,
    /// The checkpoint text has an ASCII control character other than newline.
    #[error("the checkpoint contains a control character other than newline")]
    ControlCharacter,
    /// One of the three mandatory lines is missing or empty.
    #[error("the checkpoint has no {0} line")]
    MissingLine(&'static str),
    /// The origin is empty or has a newline or control character.
    #[error("origin `{0}` must be one non-empty line without control characters")]
    InvalidOrigin(String),
    /// The tree size line is not a canonical decimal `u64`.
    #[error("tree size `{0}` is not a decimal number without sign or leading zeroes")]
    InvalidSize(String),
    /// The root hash line is not the base64 of 32 bytes.
    #[error("root hash `{0}` is not the base64 of 32 bytes")]
    InvalidRoot(String),
    /// An extension line is empty or has a control character.
    #[error("extension line {0} is empty or has a control character")]
    InvalidExtension(usize),
    /// The checkpoint is for another log.
    #[error("checkpoint origin `{found}` is not the expected `{expected}`")]
    OriginMismatch {
        /// The origin asked for.
        expected: String,
        /// The origin on the checkpoint.
        found: String,
    },
}

/// A log's tree head: its origin, tree size and root hash, and any extension lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    origin: String,
    size: u64,
    root: Hash,
    extensions: Vec<String>,
}

impl Checkpoint {
    /// A checkpoint without extension lines.
    ///
    /// # Errors
    /// [`CheckpointError::InvalidOrigin`] for an empty origin or one with a control character.
    pub fn new(origin: &str, size: u64, root: Hash) -> Result<Self, CheckpointError> {
        check_origin(origin)?;
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions: Vec::new(),
        })
    }

    /// The same checkpoint with these extension lines (their use is NOT RECOMMENDED by the
    /// spec, as monitors cannot audit them).
    ///
    /// # Errors
    /// [`CheckpointError::InvalidExtension`] for an empty line or one with a control character.
    pub fn with_extensions(mut self, extensions: Vec<String>) -> Result<Self, CheckpointError> {
        for (i, line) in extensions.iter().enumerate() {
            check_extension(i + 1, line)?;
        }
        self.extensions = extensions;
        Ok(self)
    }

    /// The log's origin line.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The tree size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The root hash at that size.
    pub fn root(&self) -> &Hash {
        &self.root
    }

    /// The extension lines, usually none.
    pub fn extensions(&self) -> &[String] {
        &self.extensions
    }

    /// Parses a checkpoint text (a note's text), strictly.
    ///
    /// # Errors
    /// Any departure from the format: a missing line or final newline, a size with a sign,
    /// leading zero or overflow, a root that is not canonical base64 of 32 bytes, an empty
    /// extension line, or a control character.
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let body = text
            .strip_suffix('\n')
            .ok_or(CheckpointError::MissingNewline)?;
        if body.bytes().any(|b| b < 0x20 && b != b'\n') {
            return Err(CheckpointError::ControlCharacter);
        }
        let mut lines = body.split('\n');
        let origin = lines
            .next()
            .filter(|l| !l.is_empty())
            .ok_or(CheckpointError::MissingLine("origin"))?;
        let size = lines
            .next()
            .filter(|l| !l.is_empty())
            .ok_or(CheckpointError::MissingLine("tree size"))?;
        let root = lines
            .next()
            .filter(|l| !l.is_empty())
            .ok_or(CheckpointError::MissingLine("root hash"))?;
        let checkpoint = Checkpoint::new(origin, parse_size(size)?, parse_root(root)?)?;
        checkpoint.with_extensions(lines.map(str::to_owned).collect())
    }

    /// Signs the checkpoint as a signed note. The signer's name should be the origin.
    ///
    /// # Errors
    /// As [`note::sign`].
    pub fn sign(&self, signers: &[&Signer]) -> Result<String, CheckpointError> {
        Ok(note::sign(&self.to_string(), signers)?)
    }

    /// Opens a signed checkpoint: the note must carry a valid signature by `verifier`, its
    /// text must be a checkpoint, and its origin must be `origin`. Signatures by other keys
    /// (witness cosignatures) are ignored.
    ///
    /// # Errors
    /// [`CheckpointError::Note`] when the signature does not hold, a parse error, or
    /// [`CheckpointError::OriginMismatch`].
    pub fn open(msg: &[u8], origin: &str, verifier: &Verifier) -> Result<Self, CheckpointError> {
        let opened = note::open(msg, std::slice::from_ref(verifier))?;
        let checkpoint = Checkpoint::parse(&opened.text)?;
        if checkpoint.origin != origin {
            return Err(CheckpointError::OriginMismatch {
                expected: origin.to_owned(),
                found: checkpoint.origin,
            });
        }
        Ok(checkpoint)
    }
}

impl fmt::Display for Checkpoint {
    /// The checkpoint text, ending in a newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root.0)
        )?;
        self.extensions
            .iter()
            .try_for_each(|line| writeln!(f, "{line}"))
    }
}

fn check_origin(origin: &str) -> Result<(), CheckpointError> {
    if origin.is_empty() || origin.chars().any(char::is_control) {
        return Err(CheckpointError::InvalidOrigin(excerpt(origin)));
    }
    Ok(())
}

fn check_extension(number: usize, line: &str) -> Result<(), CheckpointError> {
    if line.is_empty() || line.chars().any(char::is_control) {
        return Err(CheckpointError::InvalidExtension(number));
    }
    Ok(())
}

/// ASCII digits, no sign, no leading zero unless the size is `0`, at most `u64::MAX`.
fn parse_size(line: &str) -> Result<u64, CheckpointError> {
    decimal(line).ok_or_else(|| CheckpointError::InvalidSize(excerpt(line)))
}

fn parse_root(line: &str) -> Result<Hash, CheckpointError> {
    hash(line).ok_or_else(|| CheckpointError::InvalidRoot(excerpt(line)))
}

/// A decimal `u64` without sign or leading zeroes.
pub(crate) fn decimal(line: &str) -> Option<u64> {
    let canonical =
        line.bytes().all(|b| b.is_ascii_digit()) && (line == "0" || !line.starts_with('0'));
    canonical.then(|| line.parse::<u64>().ok()).flatten()
}

/// Canonical, padded standard base64 of exactly 32 bytes.
pub(crate) fn hash(line: &str) -> Option<Hash> {
    BASE64
        .decode(line)
        .ok()
        .and_then(|bytes| Hash::from_slice(&bytes).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_must_be_canonical_decimal() {
        assert_eq!(parse_size("0").unwrap(), 0);
        assert_eq!(parse_size("20852163").unwrap(), 20_852_163);
        assert_eq!(parse_size("18446744073709551615").unwrap(), u64::MAX);
        for bad in [
            "",
            "00",
            "01",
            "+1",
            "-1",
            " 1",
            "1 ",
            "1_000",
            "18446744073709551616",
            "١",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn long_input_is_cut_in_error_messages() {
        let long = "9".repeat(500);
        let message = parse_size(&long).unwrap_err().to_string();
        assert!(message.len() < 200, "{message}");
    }
}
