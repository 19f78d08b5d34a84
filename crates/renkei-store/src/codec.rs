//! What both backends share to turn rows into domain types and values into parameters:
//! times, JSON, identifiers, log positions, new Merkle leaves, and how a statement built at
//! run time writes its parameters. The row shapes themselves are in `rows.rs`; every
//! malformed value becomes [`StoreError::Corrupt`], never a panic.

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use renkei_domain::AccessOutcome;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{StoreError, StoreResult};

pub fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub fn time(ms: i64) -> StoreResult<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {ms} out of range")))
}

pub fn opt_time(ms: Option<i64>) -> StoreResult<Option<DateTime<Utc>>> {
    ms.map(time).transpose()
}

pub fn to_json<T: Serialize>(v: &T) -> StoreResult<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Invalid(format!("cannot encode value: {e}")))
}

pub fn from_json<T: DeserializeOwned>(s: &str, what: &str) -> StoreResult<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

pub fn parse<T: FromStr>(s: &str, what: &str) -> StoreResult<T>
where
    T::Err: std::fmt::Display,
{
    s.parse()
        .map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// A row shape read from storage (`crate::rows`), turned into the domain value it holds.
pub trait IntoDomain {
    type Domain;

    fn into_domain(self) -> StoreResult<Self::Domain>;
}

pub(crate) fn enum_field<T>(v: Option<T>, s: &str, what: &str) -> StoreResult<T> {
    v.ok_or_else(|| StoreError::Corrupt(format!("unknown {what} `{s}`")))
}

pub(crate) fn u32_field(v: i64, what: &str) -> StoreResult<u32> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} {v} out of range")))
}

/// `granted`, or the denial's reason code.
pub fn outcome_column(outcome: &AccessOutcome) -> &str {
    match outcome {
        AccessOutcome::Granted => "granted",
        AccessOutcome::Denied { reason } => reason,
    }
}

pub fn seq_u64(seq: i64) -> StoreResult<u64> {
    u64::try_from(seq).map_err(|_| StoreError::Corrupt(format!("negative log position {seq}")))
}

pub fn byte_count_i64(n: u64) -> StoreResult<i64> {
    i64::try_from(n).map_err(|_| StoreError::Invalid(format!("byte count `{n}` is out of range")))
}

pub fn seq_i64(seq: u64) -> StoreResult<i64> {
    i64::try_from(seq)
        .map_err(|_| StoreError::Invalid(format!("log position `{seq}` is out of range")))
}

/// The Merkle leaf of a new log entry, as `log_leaves` keeps it.
pub struct NewLeaf {
    pub kind: &'static str,
    /// 32 random bytes: they hide the entry behind its public leaf hash.
    pub salt: [u8; 32],
    pub hash: renkei_log::Hash,
}

/// Salts and hashes a new log entry.
pub fn new_leaf(entry: &renkei_domain::LogEntry) -> NewLeaf {
    use rand::RngCore;
    let mut salt = [0u8; 32];
    rand::rng().fill_bytes(&mut salt);
    NewLeaf {
        kind: entry.kind(),
        salt,
        hash: renkei_log::merkle::leaf_hash(&entry.leaf_data(&salt)),
    }
}

pub fn hash32(bytes: &[u8], what: &str) -> StoreResult<renkei_log::Hash> {
    renkei_log::Hash::from_slice(bytes)
        .map_err(|_| StoreError::Corrupt(format!("{what} is not 32 bytes")))
}

/// A parameter of a statement built at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlParam {
    Int(i64),
    Text(String),
}

/// How a backend writes the parameters of statements built at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholders {
    /// `$1, $2, …` (PostgreSQL).
    Numbered,
    /// `?, ?, …` (SQLite): its numbered parameters cost a name look-up per bind, which is
    /// quadratic in a multi-row insert.
    Anonymous,
}

impl Placeholders {
    /// Parameters `first..first + count` (numbers only, safe to splice into SQL). Anonymous
    /// ones take their position from the order of binding.
    pub fn list(self, first: usize, count: usize) -> String {
        let mut out = String::with_capacity(count * 4);
        self.push_list(&mut out, first, count);
        out
    }

    /// `(…), (…)` for a multi-row `VALUES` of `rows` rows of `width` parameters.
    pub fn rows(self, width: usize, rows: usize) -> String {
        let mut out = String::with_capacity(rows * (width * 4 + 4));
        for r in 0..rows {
            if r > 0 {
                out.push_str(", ");
            }
            out.push('(');
            self.push_list(&mut out, r * width + 1, width);
            out.push(')');
        }
        out
    }

    fn push_list(self, out: &mut String, first: usize, count: usize) {
        use std::fmt::Write;
        for i in first..first + count {
            if i > first {
                out.push_str(", ");
            }
            match self {
                // Writing to a String cannot fail.
                Self::Numbered => {
                    let _ = write!(out, "${i}");
                }
                Self::Anonymous => out.push('?'),
            }
        }
    }
}

/// The most entries appended by one multi-row `INSERT` (11 parameters each).
pub const APPEND_CHUNK: usize = 128;

/// The most values in one `IN (…)` list of a batch's reads.
pub const IN_LIST_MAX: usize = 512;

/// How many parameters an `IN (…)` list of `n` values is written with: the next power of two,
/// so that a handful of statement texts serve every batch size and stay prepared in the
/// connection's statement cache instead of being parsed again for each batch.
pub fn in_list_len(n: usize) -> usize {
    n.max(1).next_power_of_two()
}

/// The values of an `IN (…)` list padded to [`in_list_len`] by repeating the last one (a
/// repeated value does not change what `IN` matches).
pub fn padded<T>(values: &[T]) -> impl Iterator<Item = &T> {
    let pad = in_list_len(values.len()) - values.len();
    values
        .iter()
        .chain(values.last().into_iter().cycle().take(pad))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_lists_are_padded_to_a_power_of_two_with_the_last_value() {
        let list: Vec<_> = padded(&[1, 2, 3, 4, 5]).copied().collect();
        assert_eq!(list, [1, 2, 3, 4, 5, 5, 5, 5]);
        assert_eq!(list.len(), in_list_len(5));
        assert_eq!(padded(&[7]).count(), 1);
        assert_eq!(padded::<u8>(&[]).count(), 0);
    }

    #[test]
    fn placeholders_number_rows_consecutively() {
        assert_eq!(Placeholders::Numbered.list(2, 3), "$2, $3, $4");
        assert_eq!(Placeholders::Numbered.rows(2, 2), "($1, $2), ($3, $4)");
        assert_eq!(Placeholders::Anonymous.rows(2, 2), "(?, ?), (?, ?)");
    }
}
