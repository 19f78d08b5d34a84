//! The provider kit's records: each category read from a query over the provider's own
//! database (SQLite or PostgreSQL) or from a CSV file, only for the categories a grant names.
//!
//! A query's rows become JSON objects, column name to value: integers, reals, text,
//! booleans, JSON and NULL are read as such; any other column type (a date, a numeric) is
//! refused with its name, so the city casts it to text in the query rather than the kit
//! guessing. A CSV file is read when first needed and again whenever its modification time
//! changes, so a provider that rewrites it nightly needs no restart.
//!
//! A category configured with an `area` is listed by area too (`area` below): its entries
//! are read whole and kept when their place lies inside the area granted.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::SystemTime;

use renkei_domain::CategoryId;
use serde_json::{Map, Value};
use sqlx::{Column, Row, TypeInfo};

use super::config::{AreaSource, CategorySource, KitConfig, Source};
use crate::area::AreaEntry;
use crate::{Records, RecordsError};

mod area;

/// The provider's database, when a category is read by query.
enum Database {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// One category's records as the kit reads them.
enum Reader {
    Query(String),
    Csv(CsvFile),
}

/// The records a kit serves, category by category.
pub struct KitRecords {
    database: Option<Database>,
    readers: BTreeMap<CategoryId, Reader>,
    /// The categories listed by area, and how.
    areas: BTreeMap<CategoryId, (AreaSource, Option<PathBuf>)>,
}

impl KitRecords {
    /// Connects to the configured database (read-only where the backend allows it) and
    /// prepares the CSV files.
    pub async fn open(config: &KitConfig) -> Result<Self, RecordsError> {
        let database = match config.database_url.as_deref() {
            None => None,
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(4)
                    .connect(url)
                    .await
                    .map_err(|e| RecordsError::Unavailable(e.to_string()))?;
                Some(Database::Postgres(pool))
            }
            Some(url) => {
                let options: sqlx::sqlite::SqliteConnectOptions = url
                    .parse()
                    .map_err(|e: sqlx::Error| RecordsError::Unavailable(e.to_string()))?;
                // INVARIANT: the kit only reads the provider's database.
                let pool = sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(4)
                    .connect_with(options.read_only(true))
                    .await
                    .map_err(|e| RecordsError::Unavailable(e.to_string()))?;
                Some(Database::Sqlite(pool))
            }
        };
        let readers = config
            .categories
            .iter()
            .map(|CategorySource { id, from, .. }| {
                let reader = match from {
                    Source::Query(q) => Reader::Query(q.clone()),
                    Source::Csv { path, key, columns } => {
                        Reader::Csv(CsvFile::new(path.clone(), key.clone(), columns.clone()))
                    }
                };
                (id.clone(), reader)
            })
            .collect();
        let areas = config
            .categories
            .iter()
            .filter_map(|c| {
                let csv = match &c.from {
                    Source::Csv { path, .. } => Some(path.clone()),
                    Source::Query(_) => None,
                };
                c.area.clone().map(|a| (c.id.clone(), (a, csv)))
            })
            .collect();
        Ok(Self {
            database,
            readers,
            areas,
        })
    }

    async fn query(&self, sql: &str, reference: &str) -> Result<Vec<Value>, RecordsError> {
        self.query_with(sql, Some(reference)).await
    }

    /// Runs one of the city's queries, with the reference as `$1` if there is one.
    async fn query_with(
        &self,
        sql: &str,
        reference: Option<&str>,
    ) -> Result<Vec<Value>, RecordsError> {
        // The city's own query, from its configuration file; the reference is bound as `$1`,
        // never spliced into it.
        let sql = || sqlx::AssertSqlSafe(sql.to_owned());
        let rows = match &self.database {
            None => {
                return Err(RecordsError::Unavailable(
                    "no database is configured".into(),
                ));
            }
            Some(Database::Sqlite(pool)) => bind(sqlx::query(sql()), reference)
                .fetch_all(pool)
                .await
                .map_err(query_error)?
                .iter()
                .map(|r| row_to_json(r, sqlite_value))
                .collect::<Result<Vec<_>, _>>()?,
            Some(Database::Postgres(pool)) => bind(sqlx::query(sql()), reference)
                .fetch_all(pool)
                .await
                .map_err(query_error)?
                .iter()
                .map(|r| row_to_json(r, postgres_value))
                .collect::<Result<Vec<_>, _>>()?,
        };
        Ok(rows)
    }
}

impl KitRecords {
    /// The (code, reference) pairs a `links` query selects: its first two columns, each
    /// read as text (a numeric reference becomes its decimal form).
    pub async fn links(&self, sql: &str) -> Result<Vec<(String, String)>, RecordsError> {
        let sql = || sqlx::AssertSqlSafe(sql.to_owned());
        let rows: Vec<(Option<Value>, Option<Value>)> = match &self.database {
            None => {
                return Err(RecordsError::Unavailable(
                    "no database is configured".into(),
                ));
            }
            Some(Database::Sqlite(pool)) => sqlx::query(sql())
                .fetch_all(pool)
                .await
                .map_err(query_error)?
                .iter()
                .map(|r| (sqlite_value(r, 0), sqlite_value(r, 1)))
                .collect(),
            Some(Database::Postgres(pool)) => sqlx::query(sql())
                .fetch_all(pool)
                .await
                .map_err(query_error)?
                .iter()
                .map(|r| (postgres_value(r, 0), postgres_value(r, 1)))
                .collect(),
        };
        let text = |v: &Option<Value>| match v {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        rows.iter()
            .map(|(code, reference)| match (text(code), text(reference)) {
                (Some(code), Some(reference)) => Ok((code, reference)),
                _ => Err(RecordsError::Unavailable(
                    "a `links` query selects two columns of text or integers: the code, the reference"
                        .into(),
                )),
            })
            .collect()
    }
}

/// Binds the reference as `$1`, when the query takes one.
fn bind<'q, DB: sqlx::Database>(
    query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>,
    reference: Option<&'q str>,
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>
where
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    match reference {
        Some(r) => query.bind(r),
        None => query,
    }
}

fn query_error(e: sqlx::Error) -> RecordsError {
    match e {
        // The code, never the message: a database's message may quote the reference.
        sqlx::Error::Database(db) => {
            RecordsError::Query(db.code().map(|c| c.into_owned()).unwrap_or_default())
        }
        other => RecordsError::Unavailable(other.to_string()),
    }
}

fn row_to_json<R: Row>(
    row: &R,
    value: impl Fn(&R, usize) -> Option<Value>,
) -> Result<Value, RecordsError> {
    let mut object = Map::new();
    for (i, column) in row.columns().iter().enumerate() {
        let v = value(row, i).ok_or_else(|| RecordsError::ColumnType {
            column: column.name().to_owned(),
            type_name: column.type_info().name().to_owned(),
        })?;
        object.insert(column.name().to_owned(), v);
    }
    Ok(Value::Object(object))
}

fn sqlite_value(row: &sqlx::sqlite::SqliteRow, i: usize) -> Option<Value> {
    if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
        return Some(v.map_or(Value::Null, Value::from));
    }
    if let Ok(v) = row.try_get::<Option<f64>, _>(i) {
        return Some(v.map_or(Value::Null, Value::from));
    }
    if let Ok(v) = row.try_get::<Option<String>, _>(i) {
        return Some(v.map_or(Value::Null, Value::from));
    }
    None
}

fn postgres_value(row: &sqlx::postgres::PgRow, i: usize) -> Option<Value> {
    macro_rules! try_as {
        ($($t:ty),*) => {$(
            if let Ok(v) = row.try_get::<Option<$t>, _>(i) {
                return Some(v.map_or(Value::Null, |v| serde_json::json!(v)));
            }
        )*};
    }
    try_as!(i64, i32, i16, f64, f32, bool, String, Value);
    None
}

#[async_trait::async_trait]
impl Records for KitRecords {
    async fn lookup(
        &self,
        reference: &str,
        categories: &[CategoryId],
    ) -> Result<Option<Value>, RecordsError> {
        let mut data = Map::new();
        let mut found = false;
        for category in categories {
            let reader = self
                .readers
                .get(category)
                .ok_or_else(|| RecordsError::NotServed(category.clone()))?;
            let rows = match reader {
                Reader::Query(sql) => self.query(sql, reference).await?,
                Reader::Csv(file) => file.rows_of(reference)?,
            };
            found |= !rows.is_empty();
            data.insert(category.to_string(), Value::Array(rows));
        }
        Ok(found.then(|| serde_json::json!({ "reference": reference, "data": data })))
    }

    fn serves(&self, category: &CategoryId) -> bool {
        self.readers.contains_key(category)
    }

    fn serves_area(&self, category: &CategoryId) -> bool {
        self.areas.contains_key(category)
    }

    async fn in_area(
        &self,
        area: &renkei_domain::Area,
        categories: &[CategoryId],
    ) -> Result<Vec<AreaEntry>, RecordsError> {
        let mut by_subject: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
        for category in categories {
            let (source, csv) = self
                .areas
                .get(category)
                .ok_or_else(|| RecordsError::NotServed(category.clone()))?;
            let inside = match (&source.query, csv, self.readers.get(category)) {
                (Some(sql), _, _) => {
                    area::inside(self.query_with(sql, None).await?, source, area, |_| true)
                }
                (None, Some(path), Some(Reader::Csv(file))) => {
                    // Released as the category's lookups are: its `columns`, or all but the key.
                    let keep = |c: &str| match &file.columns {
                        Some(columns) => columns.iter().any(|k| k == c),
                        None => c != file.key,
                    };
                    area::inside(area::csv_rows(path)?, source, area, keep)
                }
                _ => Vec::new(),
            };
            for (subject, row) in inside {
                let slot = by_subject
                    .entry(subject)
                    .or_default()
                    .entry(category.to_string())
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(rows) = slot {
                    rows.push(row);
                }
            }
        }
        Ok(by_subject
            .into_iter()
            .map(|(subject, data)| AreaEntry { subject, data })
            .collect())
    }
}

/// A CSV file's released columns, row by row, by reference.
type CsvIndex = HashMap<String, Vec<Value>>;

/// A CSV file indexed by its key column, re-read when it changes.
struct CsvFile {
    path: PathBuf,
    key: String,
    columns: Option<Vec<String>>,
    /// The file's rows by reference, with the modification time they were read at.
    loaded: RwLock<Option<(SystemTime, CsvIndex)>>,
}

impl CsvFile {
    fn new(path: PathBuf, key: String, columns: Option<Vec<String>>) -> Self {
        Self {
            path,
            key,
            columns,
            loaded: RwLock::new(None),
        }
    }

    fn rows_of(&self, reference: &str) -> Result<Vec<Value>, RecordsError> {
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .map_err(|e| csv_unavailable(&self.path, &e.to_string()))?;
        {
            let loaded = self.loaded.read().unwrap_or_else(|p| p.into_inner());
            if let Some((at, index)) = loaded.as_ref()
                && *at == modified
            {
                return Ok(index.get(reference).cloned().unwrap_or_default());
            }
        }
        let index = self.read()?;
        let rows = index.get(reference).cloned().unwrap_or_default();
        *self.loaded.write().unwrap_or_else(|p| p.into_inner()) = Some((modified, index));
        Ok(rows)
    }

    fn read(&self) -> Result<CsvIndex, RecordsError> {
        let mut reader = csv::Reader::from_path(&self.path)
            .map_err(|e| csv_unavailable(&self.path, &e.to_string()))?;
        let headers = reader
            .headers()
            .map_err(|e| csv_unavailable(&self.path, &e.to_string()))?
            .clone();
        let position = |name: &str| {
            headers
                .iter()
                .position(|h| h == name)
                .ok_or_else(|| csv_unavailable(&self.path, &format!("there is no column `{name}`")))
        };
        let key = position(&self.key)?;
        let released: Vec<(String, usize)> = match &self.columns {
            Some(columns) => columns
                .iter()
                .map(|c| position(c).map(|i| (c.clone(), i)))
                .collect::<Result<_, _>>()?,
            None => headers
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != key)
                .map(|(i, h)| (h.to_owned(), i))
                .collect(),
        };
        let mut index = CsvIndex::new();
        for record in reader.records() {
            let record = record.map_err(|e| csv_unavailable(&self.path, &e.to_string()))?;
            let Some(reference) = record.get(key) else {
                continue;
            };
            let row: Map<String, Value> = released
                .iter()
                .map(|(name, i)| (name.clone(), Value::from(record.get(*i).unwrap_or(""))))
                .collect();
            index
                .entry(reference.to_owned())
                .or_default()
                .push(Value::Object(row));
        }
        Ok(index)
    }
}

fn csv_unavailable(path: &Path, why: &str) -> RecordsError {
    RecordsError::Unavailable(format!("`{}`: {why}", path.display()))
}
