//! The kit's area lists: a category's entries read whole (from the city's area query or
//! its CSV file), kept when their place lies inside the area granted, grouped by the
//! resident's code at this provider, which is never released.

use std::path::Path;

use renkei_domain::Area;
use serde_json::{Map, Value};

use super::csv_unavailable;
use crate::RecordsError;
use crate::area::place_in_area;
use crate::kit::config::AreaSource;

/// Every row of a CSV file, column name to text.
pub(super) fn csv_rows(path: &Path) -> Result<Vec<Value>, RecordsError> {
    let mut reader =
        csv::Reader::from_path(path).map_err(|e| csv_unavailable(path, &e.to_string()))?;
    let headers = reader
        .headers()
        .map_err(|e| csv_unavailable(path, &e.to_string()))?
        .clone();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| csv_unavailable(path, &e.to_string()))?;
        let row: Map<String, Value> = headers
            .iter()
            .zip(record.iter())
            .map(|(h, v)| (h.to_owned(), Value::from(v)))
            .collect();
        rows.push(Value::Object(row));
    }
    Ok(rows)
}

/// The rows whose place lies inside `area`, each with its subject and the columns `keep`
/// lets through, the subject's own column taken out. A row without a subject, or whose place
/// is not a code, is left out: it can be neither recorded nor placed.
pub(super) fn inside(
    rows: Vec<Value>,
    source: &AreaSource,
    area: &Area,
    keep: impl Fn(&str) -> bool,
) -> Vec<(String, Value)> {
    rows.into_iter()
        .filter_map(|row| {
            let Value::Object(columns) = row else {
                return None;
            };
            let place = columns.get(&source.place).and_then(Value::as_str)?;
            if !place_in_area(area, place) {
                return None;
            }
            let subject = match columns.get(&source.subject)? {
                Value::String(s) if !s.trim().is_empty() => s.trim().to_owned(),
                _ => return None,
            };
            let released: Map<String, Value> = columns
                .into_iter()
                .filter(|(name, _)| *name != source.subject && keep(name))
                .collect();
            Some((subject, Value::Object(released)))
        })
        .collect()
}
