//! Signed notes: the example of Go's golang.org/x/mod/sumdb/note reproduced byte for byte,
//! and notes that must be refused.

// Tests may unwrap and panic (clippy.toml allows it in #[test] functions; this covers helpers).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

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
