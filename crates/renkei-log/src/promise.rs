//! Inclusion promises: the log's signed word that an entry with a given leaf hash holds a
//! given position, given before a checkpoint covers it (as Certificate Transparency's SCTs and
//! Rekor's signed entry timestamps). Whoever holds one can later show that the entry existed:
//! a log whose leaf at that position differs, or that ends before it, was rewritten. It is a
//! signed note (by the checkpoint key) whose text is
//!
//! ```text
//! <origin>
//! inclusion promise
//! <position in decimal>
//! <base64 leaf hash>
//! ```
//!
//! The second line keeps a promise from ever reading as a checkpoint (whose second line is a
//! tree size), and a checkpoint from reading as a promise.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::checkpoint::{decimal, hash};
use crate::excerpt;
use crate::merkle::Hash;
use crate::note::{self, NoteError, Signer, Verifier};

const KIND_LINE: &str = "inclusion promise";

/// What went wrong while signing, parsing or opening a promise.
#[derive(Debug, thiserror::Error)]
pub enum PromiseError {
    /// The signed note around the promise is not acceptable.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The text is not the four lines of a promise, each ending in a newline.
    #[error(
        "the text is not an inclusion promise (origin, `inclusion promise`, position, leaf hash)"
    )]
    NotAPromise,
    /// The origin is empty or has a control character.
    #[error("origin `{0}` must be one non-empty line without control characters")]
    InvalidOrigin(String),
    /// The position is not a canonical decimal `u64`.
    #[error("position `{0}` is not a decimal number without sign or leading zeroes")]
    InvalidPosition(String),
    /// The leaf hash is not the base64 of 32 bytes.
    #[error("leaf hash `{0}` is not the base64 of 32 bytes")]
    InvalidLeaf(String),
    /// The promise is for another log.
    #[error("promise origin `{found}` is not the expected `{expected}`")]
    OriginMismatch {
        /// The origin asked for.
        expected: String,
        /// The origin on the promise.
        found: String,
    },
}

/// That the log `origin` holds the leaf `leaf` at position `seq`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Promise {
    origin: String,
    seq: u64,
    leaf: Hash,
}

impl Promise {
    /// # Errors
    /// [`PromiseError::InvalidOrigin`] for an empty origin or one with a control character.
    pub fn new(origin: &str, seq: u64, leaf: Hash) -> Result<Self, PromiseError> {
        if origin.is_empty() || origin.chars().any(char::is_control) {
            return Err(PromiseError::InvalidOrigin(excerpt(origin)));
        }
        Ok(Self {
            origin: origin.to_owned(),
            seq,
            leaf,
        })
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The position promised.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The leaf hash promised at that position.
    pub fn leaf(&self) -> &Hash {
        &self.leaf
    }

    /// Parses the promise text (not the signed note around it).
    ///
    /// # Errors
    /// Anything but exactly the four lines, each canonical.
    pub fn parse(text: &str) -> Result<Self, PromiseError> {
        let body = text.strip_suffix('\n').ok_or(PromiseError::NotAPromise)?;
        let lines: Vec<&str> = body.split('\n').collect();
        let [origin, kind, seq, leaf] = lines[..] else {
            return Err(PromiseError::NotAPromise);
        };
        if kind != KIND_LINE {
            return Err(PromiseError::NotAPromise);
        }
        let seq = decimal(seq).ok_or_else(|| PromiseError::InvalidPosition(excerpt(seq)))?;
        let leaf = hash(leaf).ok_or_else(|| PromiseError::InvalidLeaf(excerpt(leaf)))?;
        Self::new(origin, seq, leaf)
    }

    /// Signs the promise as a signed note; the signer's name should be the origin.
    ///
    /// # Errors
    /// As [`note::sign`].
    pub fn sign(&self, signer: &Signer) -> Result<String, PromiseError> {
        Ok(note::sign(&self.to_string(), &[signer])?)
    }

    /// Opens a signed promise: a valid signature by `verifier`, promise text, origin `origin`.
    ///
    /// # Errors
    /// [`PromiseError::Note`] when the signature does not hold, a parse error, or
    /// [`PromiseError::OriginMismatch`].
    pub fn open(msg: &[u8], origin: &str, verifier: &Verifier) -> Result<Self, PromiseError> {
        let opened = note::open(msg, std::slice::from_ref(verifier))?;
        let promise = Self::parse(&opened.text)?;
        if promise.origin != origin {
            return Err(PromiseError::OriginMismatch {
                expected: origin.to_owned(),
                found: promise.origin,
            });
        }
        Ok(promise)
    }
}

impl fmt::Display for Promise {
    /// The promise text, ending in a newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\n{KIND_LINE}\n{}\n{}\n",
            self.origin,
            self.seq,
            BASE64.encode(self.leaf.as_bytes())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Checkpoint;
    use crate::merkle::leaf_hash;
    use proptest::prelude::*;

    const ORIGIN: &str = "hub.example.jp/log";

    fn signer() -> Signer {
        Signer::from_seed(ORIGIN, &[7; 32]).unwrap()
    }

    #[test]
    fn a_signed_promise_opens_with_the_log_key_and_says_what_it_promised() {
        let promise = Promise::new(ORIGIN, 41, leaf_hash(b"entry")).unwrap();
        let note = promise.sign(&signer()).unwrap();
        let opened = Promise::open(note.as_bytes(), ORIGIN, &signer().verifier()).unwrap();
        assert_eq!(opened, promise);
        assert_eq!((opened.seq(), opened.leaf()), (41, &leaf_hash(b"entry")));
    }

    #[test]
    fn an_altered_promise_or_another_key_does_not_open() {
        let note = Promise::new(ORIGIN, 41, leaf_hash(b"entry"))
            .unwrap()
            .sign(&signer())
            .unwrap();
        let moved = note.replacen("\n41\n", "\n42\n", 1);
        assert!(Promise::open(moved.as_bytes(), ORIGIN, &signer().verifier()).is_err());
        let other = Signer::from_seed(ORIGIN, &[8; 32]).unwrap();
        assert!(Promise::open(note.as_bytes(), ORIGIN, &other.verifier()).is_err());
        assert!(matches!(
            Promise::open(note.as_bytes(), "other.example/log", &signer().verifier()),
            Err(PromiseError::OriginMismatch { .. })
        ));
    }

    #[test]
    fn a_checkpoint_and_a_promise_never_read_as_each_other() {
        let signed_checkpoint = Checkpoint::new(ORIGIN, 41, leaf_hash(b"root"))
            .unwrap()
            .sign(&[&signer()])
            .unwrap();
        assert!(matches!(
            Promise::open(signed_checkpoint.as_bytes(), ORIGIN, &signer().verifier()),
            Err(PromiseError::NotAPromise)
        ));
        let signed_promise = Promise::new(ORIGIN, 41, leaf_hash(b"entry"))
            .unwrap()
            .sign(&signer())
            .unwrap();
        assert!(Checkpoint::open(signed_promise.as_bytes(), ORIGIN, &signer().verifier()).is_err());
    }

    proptest! {
        #[test]
        fn parsing_any_text_never_panics_and_what_parses_formats_back(text in "(.{0,30}\n){0,6}") {
            if let Ok(promise) = Promise::parse(&text) {
                prop_assert_eq!(promise.to_string(), text);
            }
        }

        #[test]
        fn every_promise_formats_and_parses_back(seq in any::<u64>(), leaf in any::<[u8; 32]>(), origin in "[a-z./]{1,30}") {
            let promise = Promise::new(&origin, seq, Hash(leaf)).unwrap();
            prop_assert_eq!(Promise::parse(&promise.to_string()).unwrap(), promise);
        }
    }
}
