//! Checkpoints: strict parsing and formatting of the tree head text, and signing and
//! opening them as signed notes.

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

// ------------------------------------------------ properties (proptest; cargo-fuzz needs a
// nightly toolchain, so the fuzzing of the checkpoint parser lives here and runs with
// `cargo test`)

mod properties {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use proptest::prelude::*;

    use super::*;

    /// One line as a checkpoint allows it: not empty, no control character (C0, DEL, C1).
    fn line() -> impl Strategy<Value = String> {
        "[^\\x00-\\x1f\\x7f-\\x9f]{1,40}"
    }

    fn checkpoint_any() -> impl Strategy<Value = Checkpoint> {
        (
            line(),
            any::<u64>(),
            any::<[u8; 32]>(),
            proptest::collection::vec(line(), 0..3),
        )
            .prop_map(|(origin, size, root, extensions)| {
                Checkpoint::new(&origin, size, Hash(root))
                    .unwrap()
                    .with_extensions(extensions)
                    .unwrap()
            })
    }

    /// Text shaped like a checkpoint, with each line perhaps a little wrong.
    fn checkpoint_shaped() -> impl Strategy<Value = String> {
        (
            prop_oneof![line(), ".{0,10}"],
            prop_oneof![any::<u64>().prop_map(|n| n.to_string()), "[-+0-9 ]{0,22}",],
            prop_oneof![
                any::<[u8; 32]>().prop_map(|r| STANDARD.encode(r)),
                proptest::collection::vec(any::<u8>(), 0..40).prop_map(|r| STANDARD.encode(r)),
                "[A-Za-z0-9+/=_-]{40,48}",
            ],
            proptest::collection::vec(prop_oneof![line(), ".{0,5}"], 0..3),
            prop_oneof!["\n", "", "\n\n", "\r\n"],
        )
            .prop_map(|(origin, size, root, extensions, end)| {
                let mut text = format!("{origin}\n{size}\n{root}");
                for e in extensions {
                    text.push('\n');
                    text.push_str(&e);
                }
                text + &end
            })
    }

    fn flipped(note: &str, index: prop::sample::Index, bit: u8) -> Vec<u8> {
        let mut bytes = note.as_bytes().to_vec();
        let i = index.index(bytes.len());
        bytes[i] ^= 1 << (bit % 7);
        bytes
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn a_text_is_read_as_a_checkpoint_only_if_it_is_that_checkpoints_exact_form(
            text in prop_oneof![checkpoint_shaped(), ".{0,80}"],
        ) {
            if let Ok(checkpoint) = Checkpoint::parse(&text) {
                prop_assert_eq!(checkpoint.to_string(), text);
            }
        }

        #[test]
        fn a_checkpoint_reads_back_from_its_text_and_from_its_signed_note(checkpoint in checkpoint_any()) {
            let text = checkpoint.to_string();
            prop_assert_eq!(&Checkpoint::parse(&text).unwrap(), &checkpoint);
            let signed = checkpoint.sign(&[&signer()]).unwrap();
            let opened = Checkpoint::open(signed.as_bytes(), checkpoint.origin(), &signer().verifier());
            prop_assert_eq!(opened.unwrap(), checkpoint);
        }

        #[test]
        fn a_signed_checkpoint_with_any_bit_flipped_or_cut_short_is_refused(
            checkpoint in checkpoint_any(),
            index in any::<prop::sample::Index>(),
            bit in 0u8..7,
        ) {
            let signed = checkpoint.sign(&[&signer()]).unwrap();
            let origin = checkpoint.origin();
            let bad = flipped(&signed, index, bit);
            prop_assert!(Checkpoint::open(&bad, origin, &signer().verifier()).is_err());
            let cut = &signed.as_bytes()[..index.index(signed.len())];
            prop_assert!(Checkpoint::open(cut, origin, &signer().verifier()).is_err());
        }

        #[test]
        fn anything_appended_to_a_signed_checkpoint_is_refused_or_leaves_it_unchanged(
            checkpoint in checkpoint_any(),
            tail in prop_oneof![".{1,30}", "[^\\x00-\\x1f]{0,20}\n"],
        ) {
            let signed = format!("{}{tail}", checkpoint.sign(&[&signer()]).unwrap());
            if let Ok(opened) = Checkpoint::open(signed.as_bytes(), checkpoint.origin(), &signer().verifier()) {
                prop_assert_eq!(opened, checkpoint);
            }
        }

        #[test]
        fn a_checkpoint_of_another_log_is_refused(checkpoint in checkpoint_any(), other in line()) {
            prop_assume!(other != checkpoint.origin());
            let signed = checkpoint.sign(&[&signer()]).unwrap();
            let result = Checkpoint::open(signed.as_bytes(), &other, &signer().verifier());
            prop_assert!(
                matches!(result, Err(CheckpointError::OriginMismatch { .. })),
                "{:?}",
                result
            );
        }
    }
}
