//! The resident attributes a certificate vouches for, and where in the certificate they sit.
//!
//! Placement (standard X.509 places, so any CA can issue them): the name is the subject's
//! commonName (UTF8String, so Japanese names work); the optional serial number and address are
//! the subject's `serialNumber` (2.5.4.5) and `streetAddress` (2.5.4.9); the optional date of
//! birth is RFC 3739's `dateOfBirth` in the subjectDirectoryAttributes extension.

use std::fmt;

use chrono::{Datelike, NaiveDate};
use x509_cert::Certificate;
use x509_cert::attr::Attribute;
use x509_cert::der::asn1::{Any, GeneralizedTime, ObjectIdentifier, SetOfVec};
use x509_cert::der::{DateTime, Encode};
use x509_cert::ext::pkix::SubjectDirectoryAttributes;
use x509_cert::ext::pkix::name::DirectoryString;

/// X.520 `serialNumber`.
pub(crate) const OID_SERIAL_NUMBER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.5");
/// X.520 `streetAddress`.
pub(crate) const OID_STREET_ADDRESS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.9");
/// RFC 3739 `dateOfBirth` (id-pda-dateOfBirth).
const OID_DATE_OF_BIRTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.9.1");
/// X.520 `commonName`.
const OID_COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");

/// What a verified certificate says about the resident: only what the city needs.
///
/// `Debug` shows which attributes are present, never their values, so an identity can't leak
/// personal data into a log by being formatted.
#[derive(Clone, PartialEq, Eq)]
pub struct IdentityAttributes {
    /// The resident's name (the subject's commonName).
    pub name: String,
    /// The subject's `serialNumber`, if the issuer put one there.
    pub serial_number: Option<String>,
    /// The subject's `streetAddress` (住所), if present.
    pub address: Option<String>,
    /// RFC 3739 `dateOfBirth` (生年月日), if present.
    pub date_of_birth: Option<NaiveDate>,
}

impl IdentityAttributes {
    /// Attributes with just a name.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            serial_number: None,
            address: None,
            date_of_birth: None,
        }
    }
}

impl fmt::Debug for IdentityAttributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HIDDEN: &str = "<redacted>";
        let opt = |present: bool| if present { Some(HIDDEN) } else { None };
        f.debug_struct("IdentityAttributes")
            .field("name", &HIDDEN)
            .field("serial_number", &opt(self.serial_number.is_some()))
            .field("address", &opt(self.address.is_some()))
            .field("date_of_birth", &opt(self.date_of_birth.is_some()))
            .finish()
    }
}

/// Reads the attributes from a parsed certificate; `Err` says what is wrong (no user data).
pub(crate) fn read(cert: &Certificate) -> Result<IdentityAttributes, String> {
    let subject = cert.tbs_certificate().subject();
    let text = |oid: ObjectIdentifier, what: &str| -> Result<Option<String>, String> {
        subject
            .by_oid::<DirectoryString>(oid)
            .map(|v| v.map(String::from))
            .map_err(|_| format!("the subject's {what} is not a directory string"))
    };
    let name = text(OID_COMMON_NAME, "commonName")?
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| "the certificate's subject has no commonName".to_owned())?;
    let date_of_birth = match cert
        .tbs_certificate()
        .get_extension::<SubjectDirectoryAttributes>()
    {
        Ok(Some((_, attrs))) => date_of_birth(&attrs)?,
        Ok(None) => None,
        Err(_) => return Err("the subjectDirectoryAttributes extension is malformed".into()),
    };
    Ok(IdentityAttributes {
        name,
        serial_number: text(OID_SERIAL_NUMBER, "serialNumber")?,
        address: text(OID_STREET_ADDRESS, "streetAddress")?,
        date_of_birth,
    })
}

fn date_of_birth(attrs: &SubjectDirectoryAttributes) -> Result<Option<NaiveDate>, String> {
    let Some(attr) = attrs.0.iter().find(|a| a.oid == OID_DATE_OF_BIRTH) else {
        return Ok(None);
    };
    let bad = || "the dateOfBirth attribute is not a GeneralizedTime".to_owned();
    let value = attr.values.iter().next().ok_or_else(bad)?;
    let time: GeneralizedTime = value.decode_as().map_err(|_| bad())?;
    let dt = time.to_date_time();
    NaiveDate::from_ymd_opt(
        i32::from(dt.year()),
        u32::from(dt.month()),
        u32::from(dt.day()),
    )
    .map(Some)
    .ok_or_else(bad)
}

/// The DER value of a subjectDirectoryAttributes extension holding `date` as RFC 3739's
/// dateOfBirth (GeneralizedTime at 12:00 GMT, as the RFC asks).
pub(crate) fn date_of_birth_extension(date: NaiveDate) -> Result<Vec<u8>, String> {
    let bad = |e: x509_cert::der::Error| format!("cannot encode the date of birth: {e}");
    let year = u16::try_from(date.year()).map_err(|_| "the year of birth is out of range")?;
    // Month and day come from a valid NaiveDate, so they fit in u8.
    let month = u8::try_from(date.month()).map_err(|_| "bad month")?;
    let day = u8::try_from(date.day()).map_err(|_| "bad day")?;
    let time =
        GeneralizedTime::from_date_time(DateTime::new(year, month, day, 12, 0, 0).map_err(bad)?);
    let mut values = SetOfVec::new();
    values
        .insert(Any::encode_from(&time).map_err(bad)?)
        .map_err(bad)?;
    SubjectDirectoryAttributes(vec![Attribute {
        oid: OID_DATE_OF_BIRTH,
        values,
    }])
    .to_der()
    .map_err(bad)
}
