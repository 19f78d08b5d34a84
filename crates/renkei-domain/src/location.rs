//! Location data by purpose (Nシステム判決: the nature of the data, the purpose and the
//! method decide what is acceptable). A category that holds a location says so
//! ([`crate::DataCategory::location`]); a purpose says how precisely it needs a location
//! ([`LocationPrecision`]) and how long the service may keep it ([`LocationUse`]); each grant
//! names the precision of every location category it releases, and the provider coarsens
//! the value to it before sealing ([`coarsen`]), so nothing finer ever leaves the provider.
//!
//! A location value is a JSON object with `lat` and `lon` (degrees, JGD2011/WGS84), and may
//! carry `municipality` (全国地方公共団体コード) and `at` (when it was taken); a category's
//! value is one such point or a list of them (a trace). Coarsened, a point keeps only what
//! its precision allows: nothing else of the original object survives, and a value that is
//! not a point (an address written out, say) is withheld (`null`) at any precision but
//! [`LocationPrecision::Exact`]: what cannot be coarsened is not released.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::catalog::{DataCategory, Purpose};
use crate::ids::{OperatorId, PurposeId, ServiceId};

/// How precisely a purpose needs a location, finest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LocationPrecision {
    /// The point as the provider holds it.
    #[serde(rename = "exact")]
    Exact,
    /// The centre of the point's 100 m cell (a tenth of a 基準地域メッシュ each way: 3″ of
    /// latitude by 4.5″ of longitude).
    #[serde(rename = "100m")]
    Meters100,
    /// The point's 基準地域メッシュ (JIS X 0410 third-level mesh, about 1 km) and its centre.
    #[serde(rename = "1km-mesh")]
    Mesh1km,
    /// The municipality only (全国地方公共団体コード).
    #[serde(rename = "municipality")]
    Municipality,
}

impl LocationPrecision {
    pub const ALL: [Self; 4] = [
        Self::Exact,
        Self::Meters100,
        Self::Mesh1km,
        Self::Municipality,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exact => "exact",
            Self::Meters100 => "100m",
            Self::Mesh1km => "1km-mesh",
            Self::Municipality => "municipality",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// The longest a service may keep location data of this precision, in days, before an
    /// operator must confirm a longer period at review: a week for an exact point (it
    /// reveals home, work, hospital visits), a month at 100 m, a year for a 1 km mesh or a
    /// municipality (statistics).
    pub fn retention_limit_days(self) -> u32 {
        match self {
            Self::Exact => 7,
            Self::Meters100 => 30,
            Self::Mesh1km | Self::Municipality => 365,
        }
    }
}

/// What a purpose declares about the location data it draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocationUse {
    /// The precision it needs; providers release nothing finer.
    pub precision: LocationPrecision,
    /// How long the service may keep location data it receives under the purpose, in days.
    pub retention_days: u32,
}

/// The precision a grant names for a location category of a purpose: the purpose's, or, for
/// a purpose that declared none, the coarsest (the rule fails closed).
pub fn grant_precision(declared: Option<&LocationUse>) -> LocationPrecision {
    declared.map_or(LocationPrecision::Municipality, |u| u.precision)
}

/// A service's promise to delete the location data it received under one purpose version,
/// due when the service ended plus the days the purpose let it keep them. An operator
/// records the service's confirmation (its data-deletion certificate, データ消去証明書);
/// until then a deletion past its due date is overdue, and the console shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocationDeletion {
    pub service: ServiceId,
    pub purpose: PurposeId,
    pub purpose_version: u32,
    /// When the service ended (was suspended).
    pub ended_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub confirmed_by: Option<OperatorId>,
}

impl LocationDeletion {
    /// Past its due date with no confirmation recorded.
    pub fn is_overdue(&self, now: DateTime<Utc>) -> bool {
        self.confirmed_at.is_none() && now >= self.due_at
    }
}

/// The deletions a service owes when it ends at `ended_at`: one per purpose (its current
/// version) that draws on a location category, due after the days the purpose let the
/// service keep location data (its `retention_days` when it declared no location use).
pub fn deletions_owed(
    purposes: &[Purpose],
    vocabulary: &[DataCategory],
    ended_at: DateTime<Utc>,
) -> Vec<LocationDeletion> {
    purposes
        .iter()
        .filter(|p| {
            p.categories.iter().any(|id| {
                crate::review::is_location_category(id, vocabulary.iter().find(|c| &c.id == id))
            })
        })
        .map(|p| {
            let days = p.location.map_or(p.retention_days, |l| l.retention_days);
            LocationDeletion {
                service: p.service.clone(),
                purpose: p.id.clone(),
                purpose_version: p.version,
                ended_at,
                due_at: ended_at + TimeDelta::days(i64::from(days)),
                confirmed_at: None,
                confirmed_by: None,
            }
        })
        .collect()
}

/// A location category's value coarsened to `precision` (see the module's documentation).
pub fn coarsen(value: &Value, precision: LocationPrecision) -> Value {
    if precision == LocationPrecision::Exact {
        return value.clone();
    }
    match value {
        Value::Array(points) => {
            Value::Array(points.iter().map(|p| coarsen_point(p, precision)).collect())
        }
        point => coarsen_point(point, precision),
    }
}

fn coarsen_point(value: &Value, precision: LocationPrecision) -> Value {
    let Some(point) = value.as_object() else {
        return Value::Null;
    };
    let lat = point.get("lat").and_then(Value::as_f64);
    let lon = point.get("lon").and_then(Value::as_f64);
    let mut out = Map::new();
    out.insert("precision".into(), json!(precision.as_str()));
    for kept in ["municipality", "at"] {
        if let Some(v) = point.get(kept).filter(|v| v.is_string()) {
            out.insert(kept.into(), v.clone());
        }
    }
    if precision == LocationPrecision::Municipality {
        out.entry("municipality").or_insert(Value::Null);
        return Value::Object(out);
    }
    let (Some(lat), Some(lon)) = (lat, lon) else {
        return Value::Null;
    };
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Value::Null;
    }
    let (clat, clon) = match precision {
        LocationPrecision::Meters100 => cell_centre(lat, lon, 0.05, 0.075),
        _ => {
            if let Some(mesh) = third_mesh(lat, lon) {
                out.insert("mesh".into(), json!(mesh));
            }
            cell_centre(lat, lon, 0.5, 0.75)
        }
    };
    out.insert("lat".into(), json!(round6(clat)));
    out.insert("lon".into(), json!(round6(clon)));
    Value::Object(out)
}

/// The centre of the cell of `lat_minutes` by `lon_minutes` (a grid aligned with the
/// 地域メッシュ, whose cells start at whole degrees) that holds the point.
fn cell_centre(lat: f64, lon: f64, lat_minutes: f64, lon_minutes: f64) -> (f64, f64) {
    let centre = |deg: f64, size: f64| ((deg * 60.0 / size).floor() + 0.5) * size / 60.0;
    (centre(lat, lat_minutes), centre(lon, lon_minutes))
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// The JIS X 0410 基準地域メッシュ (third level, 8 digits) of a point in Japan's grid
/// (latitude 20° to 46°, longitude 122° to 154°), `None` outside it.
pub fn third_mesh(lat: f64, lon: f64) -> Option<String> {
    if !(20.0..46.0).contains(&lat) || !(122.0..154.0).contains(&lon) {
        return None;
    }
    // In units of the third mesh (30″ of latitude, 45″ of longitude), to count whole cells.
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "both are positive and far below u32::MAX inside the bounds checked above"
    )]
    let (y, x) = (
        (lat * 120.0).floor() as u32,
        ((lon - 100.0) * 80.0).floor() as u32,
    );
    let (p, q, r) = (y / 80, (y % 80) / 10, y % 10);
    let (u, v, w) = (x / 80, (x % 80) / 10, x % 10);
    Some(format!("{p:02}{u:02}{q}{v}{r}{w}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 東京駅 (Tokyo Station).
    fn tokyo_station() -> Value {
        json!({ "lat": 35.681236, "lon": 139.767125, "municipality": "131016",
                "at": "2026-12-01T09:00:00+09:00", "label": "自宅" })
    }

    #[test]
    fn a_point_is_placed_in_its_standard_mesh() {
        // Tokyo Station lies in 5339-46-11.
        assert_eq!(
            third_mesh(35.681236, 139.767125).as_deref(),
            Some("53394611")
        );
        assert_eq!(third_mesh(10.0, 139.0), None);
    }

    #[test]
    fn exact_is_the_value_as_held() {
        assert_eq!(
            coarsen(&tokyo_station(), LocationPrecision::Exact),
            tokyo_station()
        );
    }

    #[test]
    fn a_coarsened_point_keeps_nothing_finer_than_its_precision() {
        let mesh = coarsen(&tokyo_station(), LocationPrecision::Mesh1km);
        assert_eq!(mesh["mesh"], "53394611");
        assert_eq!(mesh["precision"], "1km-mesh");
        assert!(mesh.get("label").is_none(), "{mesh}");
        // The centre of the mesh, whatever the point inside it.
        let elsewhere = json!({ "lat": 35.6800, "lon": 139.7700 });
        let other = coarsen(&elsewhere, LocationPrecision::Mesh1km);
        assert_eq!(
            (other["lat"].clone(), other["lon"].clone()),
            (mesh["lat"].clone(), mesh["lon"].clone())
        );

        let cell = coarsen(&tokyo_station(), LocationPrecision::Meters100);
        let (lat, lon) = (cell["lat"].as_f64().unwrap(), cell["lon"].as_f64().unwrap());
        assert!((lat - 35.681236).abs() <= 0.025 / 60.0 + 1e-6, "{lat}");
        assert!((lon - 139.767125).abs() <= 0.0375 / 60.0 + 1e-6, "{lon}");
        assert_ne!((lat, lon), (35.681236, 139.767125));
        assert!(cell.get("mesh").is_none());

        let town = coarsen(&tokyo_station(), LocationPrecision::Municipality);
        assert_eq!(
            town,
            json!({ "precision": "municipality", "municipality": "131016",
                    "at": "2026-12-01T09:00:00+09:00" })
        );
    }

    #[test]
    fn a_trace_is_coarsened_point_by_point_and_what_is_no_point_is_withheld() {
        let trace = json!([tokyo_station(), "東京都千代田区丸の内1丁目", { "lat": "35" }]);
        let coarse = coarsen(&trace, LocationPrecision::Mesh1km);
        assert_eq!(coarse[0]["mesh"], "53394611");
        assert_eq!(coarse[1], Value::Null);
        assert_eq!(coarse[2], Value::Null);
        assert_eq!(
            coarsen(&json!("丸の内"), LocationPrecision::Municipality),
            Value::Null
        );
    }

    #[test]
    fn precisions_are_ordered_finest_first_and_named_stably() {
        assert!(LocationPrecision::Exact < LocationPrecision::Meters100);
        assert!(LocationPrecision::Mesh1km < LocationPrecision::Municipality);
        for p in LocationPrecision::ALL {
            assert_eq!(LocationPrecision::parse(p.as_str()), Some(p));
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
        assert_eq!(grant_precision(None), LocationPrecision::Municipality);
    }

    #[test]
    fn a_service_that_ends_owes_a_deletion_per_location_purpose_due_after_its_retention() {
        use crate::catalog::{LegalBasis, LocalizedText};
        use crate::ids::CategoryId;
        let trace = DataCategory {
            id: CategoryId::new("bus.boarding").unwrap(),
            name: LocalizedText::new("乗車地点", "Boarding point"),
            special_care: false,
            location: true,
        };
        let purpose = |id: &str, category: &str| Purpose {
            service: ServiceId::new("town-mobility").unwrap(),
            id: PurposeId::new(id).unwrap(),
            version: 2,
            title: LocalizedText::new("t", "t"),
            description: LocalizedText::new("d", "d"),
            categories: [CategoryId::new(category).unwrap()].into(),
            retention_days: 90,
            legal_basis: LegalBasis::Consent,
            emergency_only: false,
            location: Some(LocationUse {
                precision: LocationPrecision::Mesh1km,
                retention_days: 30,
            }),
        };
        let ended = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let owed = deletions_owed(
            &[
                purpose("boarding", "bus.boarding"),
                purpose("fares", "payment.history"),
            ],
            &[trace],
            ended,
        );
        assert_eq!(owed.len(), 1, "only the purpose drawing on a location");
        let d = &owed[0];
        assert_eq!((d.purpose.as_str(), d.purpose_version), ("boarding", 2));
        assert_eq!(d.due_at, ended + TimeDelta::days(30));
        assert!(!d.is_overdue(d.due_at - TimeDelta::milliseconds(1)));
        assert!(d.is_overdue(d.due_at));
        let confirmed = LocationDeletion {
            confirmed_at: Some(d.due_at),
            ..d.clone()
        };
        assert!(!confirmed.is_overdue(d.due_at + TimeDelta::days(1)));
    }
}
