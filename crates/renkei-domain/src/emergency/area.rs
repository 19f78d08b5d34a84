//! The area of a declared emergency: 地域メッシュ codes (JIS X 0410) at any level, or
//! districts the city defines.
//!
//! A mesh code grows by digits as its square shrinks: the 1st-level mesh (about 80 km) is
//! four digits (latitude × 1.5, longitude − 100), the 2nd level (10 km) adds two digits of
//! 0–7, the 3rd level (基準地域メッシュ, 1 km) two of 0–9, and the half, quarter and eighth
//! meshes (500 m, 250 m, 125 m) one digit of 1–4 each. So a mesh lies inside another exactly
//! when the other's code is a prefix of its own.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ids::DistrictId;

/// The most codes one area may list.
pub const MAX_AREA_CODES: usize = 10_000;

/// Why a text is not an area code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AreaError {
    #[error(
        "`{0}` is not a 地域メッシュ code: use 4, 6, 8, 9, 10 or 11 digits (JIS X 0410), or `district:<id>`"
    )]
    BadLength(String),
    #[error("`{code}` is not a 地域メッシュ code: {why}")]
    BadDigit { code: String, why: &'static str },
    #[error(
        "`{0}` is not a district: use `district:` and 1 to 64 characters from a-z, 0-9, `.`, `_` and `-`"
    )]
    BadDistrict(String),
    #[error("an area lists at least one code")]
    Empty,
    #[error("an area lists at most {MAX_AREA_CODES} codes, not {0}")]
    TooMany(usize),
}

/// The level of a mesh, from its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MeshLevel {
    /// 第1次地域区画, about 80 km.
    First,
    /// 第2次地域区画, about 10 km.
    Second,
    /// 基準地域メッシュ (第3次地域区画), about 1 km.
    Third,
    /// 2分の1地域メッシュ, about 500 m.
    Half,
    /// 4分の1地域メッシュ, about 250 m.
    Quarter,
    /// 8分の1地域メッシュ, about 125 m.
    Eighth,
}

/// A 地域メッシュ code (JIS X 0410), checked digit by digit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MeshCode(String);

/// The first-level meshes covering Japan: latitude codes 30 to 68 (20°N to 45°40'N) and
/// longitude codes 22 to 53 (122°E to 154°E).
const LATITUDE_CODES: std::ops::RangeInclusive<u32> = 30..=68;
const LONGITUDE_CODES: std::ops::RangeInclusive<u32> = 22..=53;

impl MeshCode {
    pub fn parse(code: &str) -> Result<Self, AreaError> {
        let bad = |why| AreaError::BadDigit {
            code: code.to_owned(),
            why,
        };
        if !matches!(code.len(), 4 | 6 | 8..=11) {
            return Err(AreaError::BadLength(code.to_owned()));
        }
        let digits: Vec<u32> = code
            .chars()
            .map(|c| c.to_digit(10).ok_or_else(|| bad("only digits 0-9")))
            .collect::<Result<_, _>>()?;
        let pair = |i: usize| {
            digits
                .get(i)
                .zip(digits.get(i + 1))
                .map_or(0, |(a, b)| a * 10 + b)
        };
        if !LATITUDE_CODES.contains(&pair(0)) {
            return Err(bad("its first two digits (latitude) must be 30 to 68"));
        }
        if !LONGITUDE_CODES.contains(&pair(2)) {
            return Err(bad("its digits 3-4 (longitude) must be 22 to 53"));
        }
        for (i, d) in digits.iter().enumerate().skip(4) {
            let ok = match i {
                4 | 5 => *d <= 7,
                6 | 7 => true,
                _ => (1..=4).contains(d),
            };
            if !ok {
                return Err(bad(match i {
                    4 | 5 => "digits 5-6 (2nd level) must be 0 to 7",
                    _ => "digits 9-11 (half, quarter, eighth) must be 1 to 4",
                }));
            }
        }
        Ok(Self(code.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn level(&self) -> MeshLevel {
        match self.0.len() {
            4 => MeshLevel::First,
            6 => MeshLevel::Second,
            8 => MeshLevel::Third,
            9 => MeshLevel::Half,
            10 => MeshLevel::Quarter,
            _ => MeshLevel::Eighth,
        }
    }

    /// Whether `other` lies inside this mesh (a mesh contains itself).
    pub fn contains(&self, other: &MeshCode) -> bool {
        other.0.starts_with(&self.0)
    }

    /// The mesh one level up, `None` for a first-level mesh.
    pub fn parent(&self) -> Option<MeshCode> {
        let len = match self.level() {
            MeshLevel::First => return None,
            MeshLevel::Second => 4,
            MeshLevel::Third => 6,
            MeshLevel::Half => 8,
            MeshLevel::Quarter => 9,
            MeshLevel::Eighth => 10,
        };
        self.0.get(..len).map(|p| MeshCode(p.to_owned()))
    }
}

/// One entry of an area: a mesh, or a district the city defines.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum AreaCode {
    Mesh(MeshCode),
    District(DistrictId),
}

const DISTRICT_PREFIX: &str = "district:";

impl AreaCode {
    /// Whether `other` lies inside this entry: a mesh inside a mesh, or the same district.
    pub fn contains(&self, other: &AreaCode) -> bool {
        match (self, other) {
            (Self::Mesh(a), Self::Mesh(b)) => a.contains(b),
            (Self::District(a), Self::District(b)) => a == b,
            _ => false,
        }
    }
}

impl FromStr for AreaCode {
    type Err = AreaError;
    fn from_str(s: &str) -> Result<Self, AreaError> {
        match s.strip_prefix(DISTRICT_PREFIX) {
            Some(id) => DistrictId::new(id)
                .map(Self::District)
                .map_err(|_| AreaError::BadDistrict(s.to_owned())),
            None => MeshCode::parse(s).map(Self::Mesh),
        }
    }
}

impl TryFrom<String> for AreaCode {
    type Error = AreaError;
    fn try_from(s: String) -> Result<Self, AreaError> {
        s.parse()
    }
}

impl From<AreaCode> for String {
    fn from(code: AreaCode) -> String {
        code.to_string()
    }
}

impl fmt::Display for AreaCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Mesh(m) => f.write_str(&m.0),
            Self::District(d) => write!(f, "{DISTRICT_PREFIX}{d}"),
        }
    }
}

/// The area a declaration covers: at least one code, at most [`MAX_AREA_CODES`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "BTreeSet<AreaCode>", into = "BTreeSet<AreaCode>")]
pub struct Area(BTreeSet<AreaCode>);

impl Area {
    pub fn new(codes: BTreeSet<AreaCode>) -> Result<Self, AreaError> {
        match codes.len() {
            0 => Err(AreaError::Empty),
            n if n > MAX_AREA_CODES => Err(AreaError::TooMany(n)),
            _ => Ok(Self(codes)),
        }
    }

    /// Parses each code in turn; the first bad one is the error.
    pub fn parse<'a>(codes: impl IntoIterator<Item = &'a str>) -> Result<Self, AreaError> {
        Self::new(
            codes
                .into_iter()
                .map(str::parse)
                .collect::<Result<_, _>>()?,
        )
    }

    pub fn codes(&self) -> &BTreeSet<AreaCode> {
        &self.0
    }

    /// Whether `place` lies inside one of the area's entries.
    pub fn covers(&self, place: &AreaCode) -> bool {
        self.0.iter().any(|c| c.contains(place))
    }
}

impl TryFrom<BTreeSet<AreaCode>> for Area {
    type Error = AreaError;
    fn try_from(codes: BTreeSet<AreaCode>) -> Result<Self, AreaError> {
        Self::new(codes)
    }
}

impl From<Area> for BTreeSet<AreaCode> {
    fn from(area: Area) -> Self {
        area.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn mesh(s: &str) -> MeshCode {
        MeshCode::parse(s).unwrap()
    }

    #[test]
    fn every_level_of_a_tokyo_mesh_parses_and_nests() {
        // 東京駅: 5339-45-26 (1 km), then half, quarter and eighth meshes inside it.
        let codes = [
            "5339",
            "533945",
            "53394526",
            "533945262",
            "5339452623",
            "53394526234",
        ];
        let levels = [
            MeshLevel::First,
            MeshLevel::Second,
            MeshLevel::Third,
            MeshLevel::Half,
            MeshLevel::Quarter,
            MeshLevel::Eighth,
        ];
        for (code, level) in codes.iter().zip(levels) {
            assert_eq!(mesh(code).level(), level, "{code}");
        }
        for pair in codes.windows(2) {
            let [outer, inner] = pair else { panic!() };
            assert!(mesh(outer).contains(&mesh(inner)));
            assert!(!mesh(inner).contains(&mesh(outer)));
            assert_eq!(mesh(inner).parent(), Some(mesh(outer)));
        }
    }

    #[test]
    fn codes_outside_japan_or_with_digits_out_of_range_are_refused_with_the_code_quoted() {
        for bad in [
            "2939",
            "5321",
            "5354",
            "533985",
            "533948",
            "533945265",
            "5339452605",
            "53-39",
            "533",
            "5339452",
        ] {
            let err = bad.parse::<AreaCode>().unwrap_err().to_string();
            assert!(err.contains(&format!("`{bad}`")), "{bad}: {err}");
        }
    }

    #[test]
    fn a_district_is_covered_only_by_itself_and_never_by_a_mesh() {
        let area = Area::parse(["district:hikari-1", "5339"]).unwrap();
        assert!(area.covers(&"district:hikari-1".parse().unwrap()));
        assert!(!area.covers(&"district:hikari-2".parse().unwrap()));
        assert!(area.covers(&"53394526".parse().unwrap()));
        assert!(!area.covers(&"5340".parse().unwrap()));
        assert!("district:Bad Name".parse::<AreaCode>().is_err());
        assert_eq!(Area::parse([]), Err(AreaError::Empty));
    }

    /// A valid code of any level, built from its parts.
    fn valid_code() -> impl Strategy<Value = String> {
        (
            LATITUDE_CODES,
            LONGITUDE_CODES,
            proptest::collection::vec(0..=7u32, 2),
            proptest::collection::vec(0..=9u32, 2),
            proptest::collection::vec(1..=4u32, 3),
            0..6usize,
        )
            .prop_map(|(lat, lon, second, third, fine, level)| {
                let mut code = format!("{lat:02}{lon:02}");
                let rest: Vec<u32> = second.into_iter().chain(third).chain(fine).collect();
                let len = [0, 2, 4, 5, 6, 7][level];
                for d in rest.iter().take(len) {
                    code.push_str(&d.to_string());
                }
                code
            })
    }

    proptest! {
        #[test]
        fn parsing_anything_never_panics_and_what_parses_prints_back(s in ".{0,20}") {
            if let Ok(code) = s.parse::<AreaCode>() {
                prop_assert_eq!(code.to_string(), s);
            }
        }

        #[test]
        fn every_valid_code_parses_and_lies_inside_each_of_its_ancestors(code in valid_code()) {
            let parsed = mesh(&code);
            let json = serde_json::to_string(&AreaCode::Mesh(parsed.clone())).unwrap();
            prop_assert_eq!(serde_json::from_str::<AreaCode>(&json).unwrap(), AreaCode::Mesh(parsed.clone()));
            let mut ancestor = parsed.parent();
            while let Some(a) = ancestor {
                prop_assert!(a.contains(&parsed));
                prop_assert!(a.level() < parsed.level());
                ancestor = a.parent();
            }
        }

        #[test]
        fn a_valid_code_with_one_digit_changed_out_of_range_is_refused(code in valid_code(), at in 0..11usize) {
            // Out of range at every position: a latitude or longitude code past Japan's
            // (7x, 6x), 8 at the 2nd level, a letter at the 3rd, 0 below the 1 km mesh.
            let (at, bad) = match at % code.len() {
                0 | 1 => (0, b'7'),
                2 | 3 => (2, b'6'),
                at @ (4 | 5) => (at, b'8'),
                at @ (6 | 7) => (at, b'x'),
                at => (at, b'0'),
            };
            let mut bytes = code.into_bytes();
            if let Some(b) = bytes.get_mut(at) { *b = bad; }
            let changed = String::from_utf8(bytes).unwrap();
            prop_assert!(MeshCode::parse(&changed).is_err(), "{}", changed);
        }

        #[test]
        fn a_mesh_contains_exactly_the_codes_it_is_a_prefix_of(a in valid_code(), b in valid_code()) {
            prop_assert_eq!(mesh(&a).contains(&mesh(&b)), b.starts_with(&a));
        }
    }
}
