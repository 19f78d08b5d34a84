//! Checkpoints: strict parsing and formatting of the tree head text, and signing and
//! opening them as signed notes.

// Tests may unwrap and panic (clippy.toml allows it in #[test] functions; this covers helpers).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use renkei_log::Hash;
use renkei_log::checkpoint::{Checkpoint, CheckpointError};
use renkei_log::merkle::leaf_hash;
use renkei_log::note::{self, NoteError, Signer, Verifier};

const ORIGIN: &str = "renkei.example/access-log";
const ROOT_B64: &str = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";

fn signer() -> Signer {
    Signer::from_seed(ORIGIN, &[42; 32]).unwrap()
}

fn checkpoint() -> Checkpoint {
    Checkpoint::new(ORIGIN, 20_852_163, leaf_hash(b"x")).unwrap()
}

#[test]
fn the_spec_example_body_parses_and_formats_back() {
    let text = format!("example.com/behind-the-sofa\n20852163\n{ROOT_B64}\n");
    let checkpoint = Checkpoint::parse(&text).unwrap();
    assert_eq!(checkpoint.origin(), "example.com/behind-the-sofa");
    assert_eq!(checkpoint.size(), 20_852_163);
    assert!(checkpoint.extensions().is_empty());
    assert_eq!(checkpoint.to_string(), text);
}

#[test]
fn extension_lines_are_kept_in_order() {
    let text = format!("o\n0\n{ROOT_B64}\nfirst ext\nsecond\n");
    let checkpoint = Checkpoint::parse(&text).unwrap();
    assert_eq!(checkpoint.size(), 0);
    assert_eq!(checkpoint.extensions(), ["first ext", "second"]);
    assert_eq!(checkpoint.to_string(), text);
}

#[test]
fn malformed_bodies_are_refused() {
    let cases = [
        String::new(),
        "o\n".to_string(),
        "o\n1\n".to_string(),
        format!("o\n1\n{ROOT_B64}"),
        format!("\n1\n{ROOT_B64}\n"),
        format!("o\n\n{ROOT_B64}\n"),
        "o\n1\n\n".to_string(),
        format!("o\n01\n{ROOT_B64}\n"),
        format!("o\n00\n{ROOT_B64}\n"),
        format!("o\n+1\n{ROOT_B64}\n"),
        format!("o\n-1\n{ROOT_B64}\n"),
        format!("o\n 1\n{ROOT_B64}\n"),
        format!("o\n1.0\n{ROOT_B64}\n"),
        format!("o\n0x10\n{ROOT_B64}\n"),
        format!("o\n18446744073709551616\n{ROOT_B64}\n"),
        "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I\n".to_string(),
        "o\n1\nCsUYapGGPo4dkMgIAUqom_Xajj7h2fB2MPA3j2jxq2I=\n".to_string(),
        "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n".to_string(),
        "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxqw==\n".to_string(),
        "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2IA\n".to_string(),
        format!("o\n1\n {ROOT_B64}\n"),
        format!("o\n1\n{ROOT_B64}\n\n"),
        format!("o\n1\n{ROOT_B64}\next\n\n"),
        format!("o\r\n1\n{ROOT_B64}\n"),
        format!("o\n1\n{ROOT_B64}\r\n"),
    ];
    for bad in cases {
        assert!(Checkpoint::parse(&bad).is_err(), "{bad:?}");
    }
}

#[test]
fn error_messages_name_the_offending_line() {
    let err = Checkpoint::parse(&format!("o\n007\n{ROOT_B64}\n")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "tree size `007` is not a decimal number without sign or leading zeroes"
    );
    let err = Checkpoint::parse("o\n1\n").unwrap_err();
    assert_eq!(err.to_string(), "the checkpoint has no root hash line");
}

#[test]
fn checkpoints_are_built_only_from_printable_parts() {
    let root = Hash::default();
    assert!(matches!(
        Checkpoint::new("", 1, root),
        Err(CheckpointError::InvalidOrigin(_))
    ));
    assert!(Checkpoint::new("a\nb", 1, root).is_err());
    assert!(Checkpoint::new("a b", 1, root).is_ok());
    let checkpoint = Checkpoint::new("o", 1, root).unwrap();
    assert!(
        checkpoint
            .clone()
            .with_extensions(vec![String::new()])
            .is_err()
    );
    assert!(
        checkpoint
            .clone()
            .with_extensions(vec!["a\nb".into()])
            .is_err()
    );
    assert!(checkpoint.with_extensions(vec!["ok".into()]).is_ok());
}

#[test]
fn a_signed_checkpoint_opens_with_the_log_key() {
    let signer = signer();
    let msg = checkpoint().sign(&[&signer]).unwrap();
    assert!(msg.starts_with(&format!("{ORIGIN}\n20852163\n")));
    let opened = Checkpoint::open(msg.as_bytes(), ORIGIN, &signer.verifier()).unwrap();
    assert_eq!(opened, checkpoint());
}

#[test]
fn a_checkpoint_with_a_changed_size_or_root_is_refused() {
    let signer = signer();
    let msg = checkpoint().sign(&[&signer]).unwrap();
    let bigger = msg.replace("\n20852163\n", "\n20852164\n");
    assert!(matches!(
        Checkpoint::open(bigger.as_bytes(), ORIGIN, &signer.verifier()),
        Err(CheckpointError::Note(NoteError::BadSignature { .. }))
    ));
}

#[test]
fn a_checkpoint_signed_by_another_key_is_refused() {
    let msg = checkpoint().sign(&[&signer()]).unwrap();
    let other = Signer::from_seed(ORIGIN, &[7; 32]).unwrap();
    assert!(matches!(
        Checkpoint::open(msg.as_bytes(), ORIGIN, &other.verifier()),
        Err(CheckpointError::Note(NoteError::UnknownKey))
    ));
}

#[test]
fn a_checkpoint_for_another_origin_is_refused() {
    let signer = signer();
    let msg = checkpoint().sign(&[&signer]).unwrap();
    assert!(matches!(
        Checkpoint::open(msg.as_bytes(), "renkei.example/other", &signer.verifier()),
        Err(CheckpointError::OriginMismatch { .. })
    ));
}

#[test]
fn a_signed_note_that_is_not_a_checkpoint_is_refused() {
    let signer = signer();
    let msg = note::sign("just a note\n", &[&signer]).unwrap();
    assert!(matches!(
        Checkpoint::open(msg.as_bytes(), ORIGIN, &signer.verifier()),
        Err(CheckpointError::MissingLine("tree size"))
    ));
}

#[test]
fn witness_cosignatures_do_not_stop_a_checkpoint_from_opening() {
    let log = signer();
    let witness = Signer::from_seed("witness.example/w", &[9; 32]).unwrap();
    let msg = checkpoint().sign(&[&log, &witness]).unwrap();
    let verifier: Verifier = log.verifier().to_string().parse().unwrap();
    assert_eq!(
        Checkpoint::open(msg.as_bytes(), ORIGIN, &verifier).unwrap(),
        checkpoint()
    );
}
