//! The operator's trust configuration for enrolment: the root certificates a resident's
//! certificate must chain to (e.g. JPKI's signing root, or the development CA) and the CRLs
//! that say which certificates were revoked.

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::SectionKind;
use webpki::{CertRevocationList, OwnedCertRevocationList};
use x509_cert::certificate::Rfc5280;
use x509_cert::crl::CertificateList;
use x509_cert::der::Decode;

use crate::chain::der_items;

/// Why a trust configuration could not be built. Positions count from 1, in the order given
/// (a PEM bundle counts each block).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TrustAnchorError {
    #[error("no root certificate was given")]
    NoRoots,
    #[error("root certificate {position} is not usable: {reason}")]
    Root { position: usize, reason: String },
    #[error("revocation list {position} is not usable: {reason}")]
    Crl { position: usize, reason: String },
}

/// Root certificates and revocation lists, parsed once at start-up and shared by every
/// enrolment.
///
/// Revocation rules (see also [`crate::verify_enrolment`]):
/// - with no CRL configured, revocation is not checked ([`TrustAnchors::checks_revocation`]
///   is `false`; fine for development, not for production);
/// - with CRLs configured, every certificate of the chain below the root must be covered by a
///   CRL from its issuer, otherwise the enrolment is refused (fail closed);
/// - an expired CRL (its nextUpdate is before `now`) refuses every enrolment it covers, since
///   a revocation published after it would go unseen; the operator must load a fresh one;
/// - where several CRLs come from one issuer, the newest (latest thisUpdate) is used.
pub struct TrustAnchors {
    pub(crate) anchors: Vec<rustls_pki_types::TrustAnchor<'static>>,
    /// With their thisUpdate, newest first, so webpki (which takes the first CRL from the
    /// right issuer) sees the newest one.
    pub(crate) crls: Vec<(std::time::Duration, CertRevocationList<'static>)>,
}

impl std::fmt::Debug for TrustAnchors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustAnchors")
            .field("roots", &self.anchors.len())
            .field("crls", &self.crls.len())
            .finish()
    }
}

impl TrustAnchors {
    /// Trusts `roots`: each item is one DER certificate or PEM text with one or more
    /// `CERTIFICATE` blocks. No CRLs yet: see [`TrustAnchors::with_crls`].
    pub fn new<R: AsRef<[u8]>>(roots: &[R]) -> Result<Self, TrustAnchorError> {
        let mut anchors = Vec::new();
        for root in roots {
            let items = der_items(root.as_ref(), SectionKind::Certificate, "CERTIFICATE").map_err(
                |reason| TrustAnchorError::Root {
                    position: anchors.len() + 1,
                    reason,
                },
            )?;
            for der in items {
                let position = anchors.len() + 1;
                let anchor =
                    webpki::anchor_from_trusted_cert(&CertificateDer::from(der.as_slice()))
                        .map_err(|e| TrustAnchorError::Root {
                            position,
                            reason: format!("it is not a DER X.509 certificate ({e:?})"),
                        })?
                        .to_owned();
                anchors.push(anchor);
            }
        }
        if anchors.is_empty() {
            return Err(TrustAnchorError::NoRoots);
        }
        Ok(Self {
            anchors,
            crls: Vec::new(),
        })
    }

    /// Adds CRLs: each item is one DER CRL or PEM text with one or more `X509 CRL` blocks.
    /// Their signatures and dates are checked at each verification, against the certificate
    /// that issued them.
    pub fn with_crls<C: AsRef<[u8]>>(mut self, crls: &[C]) -> Result<Self, TrustAnchorError> {
        let mut dated = Vec::new();
        let mut position = self.crls.len();
        for crl in crls {
            let items =
                der_items(crl.as_ref(), SectionKind::Crl, "X509 CRL").map_err(|reason| {
                    TrustAnchorError::Crl {
                        position: position + 1,
                        reason,
                    }
                })?;
            for der in items {
                position += 1;
                let (this_update, parsed) =
                    parse_crl(&der).map_err(|reason| TrustAnchorError::Crl { position, reason })?;
                dated.push((this_update, parsed));
            }
        }
        // Stable sort: of two equally dated CRLs, the one added first stays first.
        self.crls.extend(dated);
        self.crls.sort_by_key(|c| std::cmp::Reverse(c.0));
        Ok(self)
    }

    /// How many root certificates are trusted.
    pub fn root_count(&self) -> usize {
        self.anchors.len()
    }

    /// How many CRLs are loaded.
    pub fn crl_count(&self) -> usize {
        self.crls.len()
    }

    /// Whether enrolment checks revocation (it does when at least one CRL is loaded).
    pub fn checks_revocation(&self) -> bool {
        !self.crls.is_empty()
    }
}

fn parse_crl(der: &[u8]) -> Result<(std::time::Duration, CertRevocationList<'static>), String> {
    // x509-cert for thisUpdate (webpki does not expose it), webpki for what verification uses;
    // both must accept it.
    let list = CertificateList::<Rfc5280>::from_der(der)
        .map_err(|_| "it is not a DER X.509 CRL".to_owned())?;
    let owned = OwnedCertRevocationList::from_der(der)
        .map_err(|e| format!("it is not a CRL this verifier supports ({e:?})"))?;
    Ok((
        list.tbs_cert_list.this_update.to_unix_duration(),
        CertRevocationList::from(owned),
    ))
}
