//! Reading certificates and CRLs in the forms callers hand them over: PEM text, raw DER, or
//! base64 DER strings (as in a JSON body). Bad input is an error, never a panic.

use base64::Engine;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use rustls_pki_types::pem::{PemObject, SectionKind};
use x509_cert::Certificate;
use x509_cert::der::Decode;

use crate::EnrolmentError;

/// The longest chain accepted (end-entity plus intermediates); real ones have one or two.
pub const MAX_CHAIN_LEN: usize = 8;

/// Reads a certificate chain sent as text: either PEM with one or more `CERTIFICATE` blocks,
/// or base64 DER certificates (standard or URL-safe alphabet, padded or not) separated by
/// whitespace or commas. The order is kept: end-entity first, then intermediates.
///
/// Every item must parse as an X.509 certificate; anything else is
/// [`EnrolmentError::Malformed`], and so is a PEM private key, which never belongs here.
pub fn parse_chain(text: &str) -> Result<Vec<Vec<u8>>, EnrolmentError> {
    if looks_like_pem(text.as_bytes()) {
        let items = pem_items(text.as_bytes(), SectionKind::Certificate, "CERTIFICATE")
            .map_err(EnrolmentError::Malformed)?;
        return checked_chain(items);
    }
    let items: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
        .collect();
    parse_chain_base64(&items)
}

/// Reads a certificate chain given as base64 DER strings, one certificate each (like JOSE's
/// `x5c`, which uses the standard alphabet; the URL-safe alphabet and missing padding are
/// accepted too).
pub fn parse_chain_base64<S: AsRef<str>>(items: &[S]) -> Result<Vec<Vec<u8>>, EnrolmentError> {
    let items = items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            decode_base64(item.as_ref().trim()).ok_or_else(|| {
                EnrolmentError::Malformed(format!("certificate {} is not base64", i + 1))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    checked_chain(items)
}

fn checked_chain(items: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>, EnrolmentError> {
    check_chain_len(items.len())?;
    for (i, der) in items.iter().enumerate() {
        parse_certificate(der, i)?;
    }
    Ok(items)
}

pub(crate) fn check_chain_len(len: usize) -> Result<(), EnrolmentError> {
    if len == 0 {
        return Err(EnrolmentError::Malformed(
            "the certificate chain is empty".into(),
        ));
    }
    if len > MAX_CHAIN_LEN {
        return Err(EnrolmentError::Malformed(format!(
            "the certificate chain has {len} certificates, at most {MAX_CHAIN_LEN} are accepted"
        )));
    }
    Ok(())
}

/// Parses one DER certificate of a chain; `index` counts from 0 (the end-entity).
pub(crate) fn parse_certificate(der: &[u8], index: usize) -> Result<Certificate, EnrolmentError> {
    Certificate::from_der(der).map_err(|_| {
        EnrolmentError::Malformed(format!(
            "certificate {} of the chain is not a DER X.509 certificate",
            index + 1
        ))
    })
}

fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let alphabet = if s.contains(['-', '_']) {
        &alphabet::URL_SAFE
    } else {
        &alphabet::STANDARD
    };
    GeneralPurpose::new(alphabet, config).decode(s).ok()
}

pub(crate) fn looks_like_pem(input: &[u8]) -> bool {
    input.windows(11).any(|w| w == b"-----BEGIN ")
}

/// The DER items of `input`: its PEM blocks of `kind` (other blocks are an error), or `input`
/// itself when it is not PEM. `label` names the expected block in messages.
pub(crate) fn der_items(
    input: &[u8],
    kind: SectionKind,
    label: &str,
) -> Result<Vec<Vec<u8>>, String> {
    if looks_like_pem(input) {
        pem_items(input, kind, label)
    } else if input.is_empty() {
        Err("it is empty".into())
    } else {
        Ok(vec![input.to_vec()])
    }
}

fn pem_items(input: &[u8], kind: SectionKind, label: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut items = Vec::new();
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(input) {
        let (found, der) = section.map_err(|e| pem_error(&e))?;
        if found != kind {
            return Err(format!(
                "it holds a PEM block `{}` where only `{label}` belongs",
                section_label(found)
            ));
        }
        items.push(der);
    }
    if items.is_empty() {
        return Err(format!("it holds no PEM `{label}` block"));
    }
    Ok(items)
}

/// PEM errors without the offending line (which may be anything a caller sent).
fn pem_error(e: &rustls_pki_types::pem::Error) -> String {
    use rustls_pki_types::pem::Error;
    match e {
        Error::MissingSectionEnd { .. } => "a PEM block has no END line".into(),
        Error::IllegalSectionStart { .. } => "a PEM BEGIN line is malformed".into(),
        Error::Base64Decode(_) => "a PEM block is not valid base64".into(),
        Error::SectionTooLarge => "a PEM block is too large".into(),
        _ => "it is not valid PEM".into(),
    }
}

fn section_label(kind: SectionKind) -> &'static str {
    match kind {
        SectionKind::Certificate => "CERTIFICATE",
        SectionKind::PublicKey => "PUBLIC KEY",
        SectionKind::RsaPrivateKey => "RSA PRIVATE KEY",
        SectionKind::PrivateKey => "PRIVATE KEY",
        SectionKind::EcPrivateKey => "EC PRIVATE KEY",
        SectionKind::Crl => "X509 CRL",
        SectionKind::Csr => "CERTIFICATE REQUEST",
        SectionKind::EchConfigList => "ECHCONFIG",
        _ => "another kind",
    }
}
