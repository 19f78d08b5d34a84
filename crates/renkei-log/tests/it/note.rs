//! Signed notes: the example of Go's golang.org/x/mod/sumdb/note reproduced byte for byte,
//! and notes that must be refused.

use renkei_log::note::{self, MAX_SIGNATURES, NoteError, Signer, Verifier};

// From the package's ExampleSign / ExampleOpen (golang.org/x/mod/sumdb/note/example_test.go).
const SKEY: &str = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const SIG_LINE: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

fn signed() -> String {
    format!("{TEXT}\n{SIG_LINE}")
}

fn verifier() -> Verifier {
    VKEY.parse().unwrap()
}

#[test]
fn signing_the_go_example_reproduces_its_note_byte_for_byte() {
    let signer: Signer = SKEY.parse().unwrap();
    assert_eq!(signer.name(), "PeterNeumann");
    assert_eq!(signer.key_id(), 0xc74f20a3);
    assert_eq!(note::sign(TEXT, &[&signer]).unwrap(), signed());
}

#[test]
fn the_go_example_signer_and_verifier_keys_belong_together() {
    let signer: Signer = SKEY.parse().unwrap();
    assert_eq!(signer.verifier(), verifier());
    assert_eq!(verifier().to_string(), VKEY);
}

#[test]
fn opening_the_go_example_gives_its_text_and_signature() {
    let opened = note::open(signed().as_bytes(), &[verifier()]).unwrap();
    assert_eq!(opened.text, TEXT);
    assert_eq!(opened.sigs.len(), 1);
    assert_eq!(opened.sigs[0].name, "PeterNeumann");
    assert_eq!(opened.sigs[0].key_id, 0xc74f20a3);
    assert!(opened.unverified_sigs.is_empty());
}

#[test]
fn a_signer_key_whose_id_does_not_match_its_key_is_refused() {
    // The seed's last bytes changed: the stated id c74f20a3 no longer fits the key.
    let wrong = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxEXVAhUm";
    match wrong.parse::<Signer>() {
        Err(NoteError::KeyIdMismatch { stated, .. }) => assert_eq!(stated, 0xc74f20a3),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_verifier_key_whose_id_does_not_match_is_refused() {
    let wrong = "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    assert!(matches!(
        wrong.parse::<Verifier>(),
        Err(NoteError::KeyIdMismatch { .. })
    ));
    let renamed = "PeterNeumanm+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    assert!(matches!(
        renamed.parse::<Verifier>(),
        Err(NoteError::KeyIdMismatch { .. })
    ));
}

#[test]
fn malformed_keys_are_refused() {
    for bad in [
        "",
        "PeterNeumann",
        "PeterNeumann+c74f20a3",
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW=",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWAA==",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ] {
        assert!(bad.parse::<Verifier>().is_err(), "{bad:?}");
    }
    // Signature type 0x02 instead of 0x01.
    assert!(matches!(
        "PeterNeumann+c74f20a3+Ahpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW".parse::<Verifier>(),
        Err(NoteError::UnsupportedAlgorithm(2))
    ));
    for bad in [
        "",
        "PRIVATE+KEY+PeterNeumann+c74f20a3",
        "PRIVATE+KEX+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "KEY+PRIVATE+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ] {
        assert!(bad.parse::<Signer>().is_err(), "{bad:?}");
    }
}

#[test]
fn errors_about_a_signer_key_never_repeat_the_key() {
    let seed = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    for bad in [
        format!("PRIVATE+KEY+PeterNeumann+c74f20a4+{seed}"),
        format!("PRIVATE+KEY+PeterNeumann+c74f20a3+{seed}x"),
        format!("PRIVATE+KEX+PeterNeumann+c74f20a3+{seed}"),
    ] {
        let message = bad.parse::<Signer>().unwrap_err().to_string();
        assert!(!message.contains(&seed[4..20]), "{message}");
    }
}

#[test]
fn a_note_with_a_modified_text_is_refused() {
    let modified = signed().replace("answer", "Answer");
    assert!(matches!(
        note::open(modified.as_bytes(), &[verifier()]),
        Err(NoteError::BadSignature { .. })
    ));
}

#[test]
fn a_note_with_a_modified_signature_is_refused() {
    let modified = signed().replace("x08go/ZJ", "x08go/ZK");
    assert!(matches!(
        note::open(modified.as_bytes(), &[verifier()]),
        Err(NoteError::BadSignature { .. })
    ));
}

#[test]
fn a_note_signed_only_by_an_unknown_key_is_refused() {
    let (_, other) = note::generate_key("someone.example/else").unwrap();
    let other: Verifier = other.parse().unwrap();
    assert!(matches!(
        note::open(signed().as_bytes(), &[other]),
        Err(NoteError::UnknownKey)
    ));
    assert!(matches!(
        note::open(signed().as_bytes(), &[]),
        Err(NoteError::UnknownKey)
    ));
}

#[test]
fn signatures_by_unknown_keys_are_kept_aside_unverified() {
    let (skey, _) = note::generate_key("witness.example/w1").unwrap();
    let witness: Signer = skey.parse().unwrap();
    let peter: Signer = SKEY.parse().unwrap();
    let msg = note::sign(TEXT, &[&peter, &witness]).unwrap();
    let opened = note::open(msg.as_bytes(), &[verifier()]).unwrap();
    assert_eq!(opened.sigs.len(), 1);
    assert_eq!(opened.unverified_sigs.len(), 1);
    assert_eq!(opened.unverified_sigs[0].name, "witness.example/w1");
    // With both keys known, both verify.
    let opened = note::open(msg.as_bytes(), &[verifier(), witness.verifier()]).unwrap();
    assert_eq!(opened.sigs.len(), 2);
}

#[test]
fn a_bad_signature_by_a_known_key_is_refused_even_next_to_a_good_one() {
    let forged = "— PeterNeumann x08go/ZKkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    let msg = format!("{}{forged}", signed());
    assert!(matches!(
        note::open(msg.as_bytes(), &[verifier()]),
        Err(NoteError::BadSignature { .. })
    ));
}

#[test]
fn malformed_signature_lines_are_refused() {
    let good = SIG_LINE.trim_end();
    let b64 = good.rsplit(' ').next().unwrap();
    for bad in [
        format!("- PeterNeumann {b64}"),
        format!("—PeterNeumann {b64}"),
        format!("— PeterNeumann  {b64}"),
        format!("— PeterNeumann {b64} "),
        "— PeterNeumann".to_string(),
        "— PeterNeumann ".to_string(),
        format!("—  {b64}"),
        format!("— Peter+Neumann {b64}"),
        format!("— PeterNeumann {}", &b64[..b64.len() - 1]),
        format!("— PeterNeumann {b64}="),
        "— PeterNeumann AAAAAA==".to_string(),
        format!("{good}\n\n{good}"),
    ] {
        let msg = format!("{TEXT}\n{bad}\n");
        assert!(
            note::open(msg.as_bytes(), &[verifier()]).is_err(),
            "{bad:?}"
        );
    }
}

#[test]
fn notes_without_a_signature_block_are_refused() {
    for bad in [
        TEXT.to_string(),
        format!("{TEXT}\n"),
        format!("{TEXT}{SIG_LINE}"),
        format!("{TEXT}\n{}", SIG_LINE.trim_end()),
        String::new(),
    ] {
        assert!(
            note::open(bad.as_bytes(), &[verifier()]).is_err(),
            "{bad:?}"
        );
    }
}

#[test]
fn control_characters_and_bad_utf8_are_refused() {
    let with_tab = signed().replace("problem,", "problem,\t");
    assert!(matches!(
        note::open(with_tab.as_bytes(), &[verifier()]),
        Err(NoteError::ControlCharacter)
    ));
    let with_cr = signed().replace("\n\n", "\r\n\n");
    assert!(note::open(with_cr.as_bytes(), &[verifier()]).is_err());
    let mut bytes = signed().into_bytes();
    bytes[3] = 0xff;
    assert!(matches!(
        note::open(&bytes, &[verifier()]),
        Err(NoteError::NotUtf8)
    ));
}

#[test]
fn too_many_signatures_are_refused() {
    let peter: Signer = SKEY.parse().unwrap();
    let signers = vec![&peter; MAX_SIGNATURES];
    let msg = note::sign(TEXT, &signers).unwrap();
    assert!(note::open(msg.as_bytes(), &[verifier()]).is_ok());
    let msg = format!("{msg}{SIG_LINE}");
    assert!(matches!(
        note::open(msg.as_bytes(), &[verifier()]),
        Err(NoteError::TooManySignatures)
    ));
}

#[test]
fn texts_that_could_not_be_opened_again_are_not_signed() {
    let peter: Signer = SKEY.parse().unwrap();
    assert!(matches!(
        note::sign("no newline", &[&peter]),
        Err(NoteError::MissingNewline)
    ));
    assert!(matches!(
        note::sign("", &[&peter]),
        Err(NoteError::MissingNewline)
    ));
    assert!(matches!(
        note::sign("a\tb\n", &[&peter]),
        Err(NoteError::ControlCharacter)
    ));
    assert!(matches!(note::sign(TEXT, &[]), Err(NoteError::NoSigners)));
}

#[test]
fn a_text_with_blank_lines_round_trips() {
    let peter: Signer = SKEY.parse().unwrap();
    let text = "first\n\nthird\n\n";
    let msg = note::sign(text, &[&peter]).unwrap();
    assert_eq!(
        note::open(msg.as_bytes(), &[verifier()]).unwrap().text,
        text
    );
}

#[test]
fn a_generated_key_signs_notes_its_verifier_opens() {
    let (skey, vkey) = note::generate_key("renkei.example/log").unwrap();
    assert!(skey.starts_with("PRIVATE+KEY+renkei.example/log+"));
    let signer: Signer = skey.parse().unwrap();
    let verifier: Verifier = vkey.parse().unwrap();
    assert_eq!(signer.verifier(), verifier);
    let msg = note::sign("hello\n", &[&signer]).unwrap();
    assert_eq!(
        note::open(msg.as_bytes(), &[verifier]).unwrap().text,
        "hello\n"
    );
    assert!(matches!(
        note::generate_key("bad name"),
        Err(NoteError::InvalidName(_))
    ));
}

// ------------------------------------------------ properties (proptest; cargo-fuzz needs a
// nightly toolchain, so the fuzzing of the note parser lives here and runs with `cargo test`)

mod properties {
    use proptest::prelude::*;

    use super::*;

    /// A note text as `sign` takes it: lines of anything but ASCII controls, each ending in a
    /// newline (blank lines included).
    fn text() -> impl Strategy<Value = String> {
        proptest::collection::vec("[^\\x00-\\x1f]{0,30}", 1..5).prop_map(|lines| {
            lines.iter().fold(String::new(), |mut text, line| {
                text.push_str(line);
                text.push('\n');
                text
            })
        })
    }

    /// A key name: no Unicode space, no plus sign, no control character.
    fn name() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9./_:ぁ-んア-ン漢-龥-]{1,24}"
    }

    fn signer() -> impl Strategy<Value = Signer> {
        (name(), any::<[u8; 32]>())
            .prop_map(|(name, seed)| Signer::from_seed(&name, &seed).unwrap())
    }

    /// The note with one bit of one byte flipped (one of the low seven, as a transport that
    /// mangles text would).
    fn flipped(note: &str, index: prop::sample::Index, bit: u8) -> Vec<u8> {
        let mut bytes = note.as_bytes().to_vec();
        let i = index.index(bytes.len());
        bytes[i] ^= 1 << (bit % 7);
        bytes
    }

    /// Text shaped like a note: some text, a blank line, lines that look like signatures.
    fn note_shaped() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..300),
            (
                text(),
                proptest::collection::vec(
                    (
                        prop_oneof!["— ".prop_map(String::from), ".{0,3}"],
                        ".{0,20}",
                        "[A-Za-z0-9+/=]{0,100}"
                    ),
                    0..4,
                ),
            )
                .prop_map(|(text, sigs)| {
                    let mut note = format!("{text}\n");
                    for (dash, name, b64) in sigs {
                        note.push_str(&format!("{dash}{name} {b64}\n"));
                    }
                    note.into_bytes()
                }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_bytes_opened_as_a_note_give_an_error_or_only_verified_signatures(msg in note_shaped()) {
            if let Ok(opened) = note::open(&msg, &[verifier()]) {
                prop_assert!(!opened.sigs.is_empty());
                prop_assert!(opened.sigs.iter().all(|s| s.name == "PeterNeumann"));
            }
        }

        #[test]
        fn any_text_as_a_key_gives_an_error_not_a_panic(
            key in prop_oneof![
                ".{0,120}",
                ("[^+]{0,20}", "[0-9a-fA-F+]{0,10}", "[A-Za-z0-9+/=]{0,60}")
                    .prop_map(|(n, id, k)| format!("{n}+{id}+{k}")),
            ],
        ) {
            let _ = key.parse::<Verifier>();
            let _ = format!("PRIVATE+KEY+{key}").parse::<Signer>();
            let _ = key.parse::<Signer>();
        }

        #[test]
        fn a_verifier_key_reads_back_as_itself_and_not_with_any_bit_flipped(
            signer in signer(),
            index in any::<prop::sample::Index>(),
            bit in 0u8..7,
        ) {
            let vkey = signer.verifier().to_string();
            prop_assert_eq!(vkey.parse::<Verifier>().unwrap(), signer.verifier());
            let bad = flipped(&vkey, index, bit);
            if let Ok(bad) = std::str::from_utf8(&bad) {
                prop_assert!(bad.parse::<Verifier>().is_err(), "{} read as a key", bad);
            }
        }

        #[test]
        fn signing_then_opening_gives_back_the_text_with_each_known_keys_signature(
            text in text(),
            signers in proptest::collection::vec(signer(), 1..4),
            known in any::<prop::sample::Index>(),
        ) {
            // Distinct names, so each signer is its own key.
            let signers: Vec<Signer> = signers
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let name = format!("{}{i}", s.name());
                    Signer::from_seed(&name, &[i as u8; 32]).unwrap()
                })
                .collect();
            let refs: Vec<&Signer> = signers.iter().collect();
            let msg = note::sign(&text, &refs).unwrap();
            let known = &signers[..=known.index(signers.len())];
            let verifiers: Vec<Verifier> = known.iter().map(Signer::verifier).collect();
            let opened = note::open(msg.as_bytes(), &verifiers).unwrap();
            prop_assert_eq!(opened.text, text);
            let names: Vec<&str> = opened.sigs.iter().map(|s| s.name.as_str()).collect();
            let expected: Vec<&str> = known.iter().map(Signer::name).collect();
            prop_assert_eq!(names, expected);
            prop_assert_eq!(opened.unverified_sigs.len(), signers.len() - known.len());
        }

        #[test]
        fn a_signed_note_with_any_bit_flipped_is_refused(
            text in text(),
            signer in signer(),
            index in any::<prop::sample::Index>(),
            bit in 0u8..7,
        ) {
            let msg = note::sign(&text, &[&signer]).unwrap();
            let bad = flipped(&msg, index, bit);
            let result = note::open(&bad, &[signer.verifier()]);
            prop_assert!(result.is_err(), "{:?} opened", String::from_utf8_lossy(&bad));
        }

        #[test]
        fn a_note_with_one_signature_cut_short_anywhere_is_refused(
            text in text(),
            signer in signer(),
            cut in any::<prop::sample::Index>(),
        ) {
            let msg = note::sign(&text, &[&signer]).unwrap();
            let bad = &msg.as_bytes()[..cut.index(msg.len())];
            prop_assert!(note::open(bad, &[signer.verifier()]).is_err());
        }

        #[test]
        fn anything_appended_to_a_note_is_refused_or_only_adds_unverified_signatures(
            text in text(),
            signer in signer(),
            tail in prop_oneof![
                ".{1,30}",
                "[^\\x00-\\x1f]{0,20}\n",
                ("[a-z]{1,10}", "[A-Za-z0-9+/]{8,90}={0,2}").prop_map(|(n, b)| format!("— {n} {b}\n")),
            ],
        ) {
            let msg = note::sign(&text, &[&signer]).unwrap();
            let extended = format!("{msg}{tail}");
            if let Ok(opened) = note::open(extended.as_bytes(), &[signer.verifier()]) {
                prop_assert_eq!(opened.text, text);
                prop_assert_eq!(opened.sigs.len(), 1);
                prop_assert!(!opened.unverified_sigs.is_empty(), "{:?} added nothing", tail);
            }
        }
    }
}
