//! The demo town's providers as a city would run them: each on the provider kit, with its
//! records in files the demo writes (the registry and the clinic in SQLite databases, the
//! payment provider in a CSV export) and a `provider.toml` per provider, under
//! `<data dir>/providers/<id>/`, beside the provider's signing key (`signing.pem`, made on
//! first run and kept, since its public half is what the hub registered). What the demo
//! exercises is therefore what `renkei provider serve --config …` runs.
//!
//! Each category becomes a table of its own (or, for the CSV, the file's columns), one row
//! per record, with the record's fields as columns; the kit's query selects them by the
//! resident's reference at that provider. Each category's links (which resident code has a
//! record under which reference) go in a CSV file for `renkei provider sync`. A category
//! listed by area ([`ResidentCodes::area_list`]: the registry's evacuation-support register)
//! also gets each entry's resident code at the provider, in a `renkei_code` column the kit's
//! area query names and never releases.

/// The residents' codes at a provider (what they gave at its counter), by record reference,
/// and the category it also lists by area, if any (its records have a `mesh` field).
#[derive(Debug, Clone, Default)]
pub struct ResidentCodes {
    pub codes: HashMap<String, String>,
    pub area_list: Option<String>,
}

/// The column holding an entry's resident code at the provider.
const CODE_COLUMN: &str = "renkei_code";

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{Map, Value};
use sqlx::ConnectOptions;

/// One provider's records: reference → category → a record or a list of records.
pub type ProviderRecords = HashMap<String, Map<String, Value>>;

/// How a provider keeps its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    Sqlite,
    Csv,
}

/// Writes `records` and the kit's configuration for provider `id` into `dir`; returns the
/// configuration file's path. `codes` become the kit's `links`, which `renkei provider
/// sync` sends to the hub.
pub async fn write_provider(
    dir: &Path,
    id: &str,
    listen: SocketAddr,
    hub: &str,
    storage: Storage,
    records: &ProviderRecords,
    codes: &ResidentCodes,
) -> anyhow::Result<PathBuf> {
    signing_key(dir)?;
    let mut tables = tables(records);
    write_links(dir, &tables, &codes.codes)?;
    if let Some(area) = &codes.area_list
        && let Some((_, table)) = tables.iter_mut().find(|(c, _)| c == area)
    {
        table.columns.push(CODE_COLUMN.to_owned());
        for (reference, values) in &mut table.rows {
            let code = codes.codes.get(reference.as_str()).cloned();
            values.push(code.map_or(Value::Null, Value::String));
        }
    }
    let mut config = format!(
        "# The provider kit's configuration for `{id}`, written by `renkei demo`.\n\
         provider = \"{id}\"\nlisten = \"{listen}\"\nhub = \"{hub}\"\naccess_log = \"access.jsonl\"\n\
         signing_key = \"{SIGNING_KEY}\"\n"
    );
    match storage {
        Storage::Sqlite => {
            let file = format!("{id}.db");
            write_sqlite(&dir.join(&file), &tables).await?;
            config.push_str(&format!(
                "\n[database]\nurl = \"sqlite:{}\"\n",
                dir.join(&file).display()
            ));
            for (category, table) in &tables {
                let columns = |with_code: bool| {
                    table
                        .columns
                        .iter()
                        .filter(|c| with_code || *c != CODE_COLUMN)
                        .map(|c| format!("\\\"{c}\\\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                config.push_str(&format!(
                    "\n[[category]]\nid = \"{category}\"\nquery = \"SELECT {} FROM \\\"{category}\\\" WHERE reference = $1\"\nlinks_csv = \"{}\"\n",
                    columns(false),
                    links_file(category)
                ));
                if table.columns.iter().any(|c| c == CODE_COLUMN) {
                    config.push_str(&format!(
                        "[category.area]\nquery = \"SELECT {} FROM \\\"{category}\\\"\"\nsubject = \"{CODE_COLUMN}\"\nplace = \"mesh\"\n",
                        columns(true)
                    ));
                }
            }
        }
        Storage::Csv => {
            for (category, table) in &tables {
                let file = format!("{category}.csv");
                write_csv(&dir.join(&file), table)?;
                config.push_str(&format!(
                    "\n[[category]]\nid = \"{category}\"\ncsv = \"{file}\"\nkey = \"reference\"\nlinks_csv = \"{}\"\n",
                    links_file(category)
                ));
            }
        }
    }
    let path = dir.join("provider.toml");
    std::fs::write(&path, config).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// The file linking residents' codes to one category's records.
fn links_file(category: &str) -> String {
    format!("links-{category}.csv")
}

/// Writes, for each category, which resident code has a record under which reference.
fn write_links(
    dir: &Path,
    tables: &[(String, Table)],
    codes: &HashMap<String, String>,
) -> anyhow::Result<()> {
    for (category, table) in tables {
        let path = dir.join(links_file(category));
        let mut out =
            csv::Writer::from_path(&path).with_context(|| format!("writing {}", path.display()))?;
        out.write_record(["code", "reference"])?;
        let references: BTreeSet<&str> = table.rows.iter().map(|(r, _)| r.as_str()).collect();
        for reference in references {
            if let Some(code) = codes.get(reference) {
                out.write_record([code.as_str(), reference])?;
            }
        }
        out.flush()?;
    }
    Ok(())
}

/// The provider's key file in its directory.
const SIGNING_KEY: &str = "signing.pem";

/// The signing key of the provider whose files are in `dir`: the one made on an earlier run,
/// or a new one, written owner-only (`renkei provider keygen` does the same for a city).
pub fn signing_key(dir: &Path) -> anyhow::Result<renkei_protocol::keys::SigningKey> {
    crate::run::create_private_dir(dir)?;
    let path = dir.join(SIGNING_KEY);
    if path.exists() {
        return Ok(renkei_provider::kit::read_signing_key(&path)?);
    }
    let key = renkei_protocol::keys::SigningKey::generate()?;
    let pem = key
        .to_pkcs8_pem()
        .context("a key made here has its private half")?;
    crate::run::write_private_file(&path, pem.as_bytes())?;
    Ok(key)
}

/// One category's records as a table: its columns and its rows (reference, values).
struct Table {
    columns: Vec<String>,
    rows: Vec<(String, Vec<Value>)>,
}

fn tables(records: &ProviderRecords) -> Vec<(String, Table)> {
    // Category → (reference, row) for every record.
    type Rows<'a> = Vec<(&'a str, Map<String, Value>)>;
    let mut by_category: HashMap<&str, Rows<'_>> = HashMap::new();
    for (reference, categories) in records {
        for (category, value) in categories {
            let rows = match value {
                Value::Array(items) => items.iter().map(as_row).collect(),
                other => vec![as_row(other)],
            };
            let entry = by_category.entry(category.as_str()).or_default();
            entry.extend(rows.into_iter().map(|r| (reference.as_str(), r)));
        }
    }
    let mut tables: Vec<(String, Table)> = by_category
        .into_iter()
        .map(|(category, rows)| {
            let columns: BTreeSet<String> =
                rows.iter().flat_map(|(_, r)| r.keys().cloned()).collect();
            let columns: Vec<String> = columns.into_iter().collect();
            let mut rows: Vec<(String, Vec<Value>)> = rows
                .into_iter()
                .map(|(reference, r)| {
                    let values = columns
                        .iter()
                        .map(|c| r.get(c).cloned().unwrap_or(Value::Null))
                        .collect();
                    (reference.to_owned(), values)
                })
                .collect();
            rows.sort_by(|a, b| a.0.cmp(&b.0));
            (category.to_owned(), Table { columns, rows })
        })
        .collect();
    tables.sort_by(|a, b| a.0.cmp(&b.0));
    tables
}

/// A record as a row: an object's fields, or a bare value as column `value`.
fn as_row(value: &Value) -> Map<String, Value> {
    match value {
        Value::Object(fields) => fields.clone(),
        other => Map::from_iter([("value".to_owned(), other.clone())]),
    }
}

async fn write_sqlite(path: &Path, tables: &[(String, Table)]) -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        if file.exists() {
            std::fs::remove_file(&file).with_context(|| format!("removing {}", file.display()))?;
        }
    }
    let mut db = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .connect()
        .await
        .with_context(|| format!("creating {}", path.display()))?;
    let mut tx = sqlx::Connection::begin(&mut db).await?;
    for (category, table) in tables {
        let columns: Vec<String> = table.columns.iter().map(|c| format!("\"{c}\"")).collect();
        let create = format!(
            "CREATE TABLE \"{category}\" (reference TEXT NOT NULL, {})",
            columns.join(", ")
        );
        sqlx::query(sqlx::AssertSqlSafe(create))
            .execute(&mut *tx)
            .await?;
        let index =
            format!("CREATE INDEX \"{category}_by_reference\" ON \"{category}\" (reference)");
        sqlx::query(sqlx::AssertSqlSafe(index))
            .execute(&mut *tx)
            .await?;
        let insert = format!(
            "INSERT INTO \"{category}\" (reference, {}) VALUES (?{})",
            columns.join(", "),
            ", ?".repeat(columns.len())
        );
        for (reference, values) in &table.rows {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(insert.clone())).bind(reference);
            for v in values {
                query = match v {
                    Value::Null => query.bind(None::<String>),
                    Value::Bool(b) => query.bind(i64::from(*b)),
                    Value::Number(n) => match n.as_i64() {
                        Some(i) => query.bind(i),
                        None => query.bind(n.as_f64().unwrap_or_default()),
                    },
                    Value::String(s) => query.bind(s.clone()),
                    other => query.bind(other.to_string()),
                };
            }
            query.execute(&mut *tx).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

fn write_csv(path: &Path, table: &Table) -> anyhow::Result<()> {
    let mut out =
        csv::Writer::from_path(path).with_context(|| format!("writing {}", path.display()))?;
    let mut header = vec!["reference".to_owned()];
    header.extend(table.columns.iter().cloned());
    out.write_record(&header)?;
    for (reference, values) in &table.rows {
        let mut record = vec![reference.clone()];
        record.extend(values.iter().map(|v| match v {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        }));
        out.write_record(&record)?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use renkei_provider::Records;
    use renkei_provider::kit::config::KitConfig;
    use renkei_provider::kit::sources::KitRecords;
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn the_registrys_register_is_listed_by_mesh_code_without_its_codes() {
        let dir = tempfile::tempdir().unwrap();
        let entry = |mesh: &str| {
            Map::from_iter([(
                "evacuation.support".to_owned(),
                json!({ "assistance": "車いす", "mesh": mesh }),
            )])
        };
        let records: ProviderRecords = HashMap::from([
            ("REG-000001".to_owned(), entry("533945261")),
            ("REG-000002".to_owned(), entry("533945371")),
            ("REG-000003".to_owned(), entry("533945262")),
        ]);
        let codes = ResidentCodes {
            codes: HashMap::from([
                ("REG-000001".to_owned(), "code-one".to_owned()),
                ("REG-000002".to_owned(), "code-two".to_owned()),
            ]),
            area_list: Some("evacuation.support".into()),
        };
        let addr = "127.0.0.1:0".parse().unwrap();
        let path = write_provider(
            dir.path(),
            "city-registry",
            addr,
            "http://127.0.0.1:1",
            Storage::Sqlite,
            &records,
            &codes,
        )
        .await
        .unwrap();
        let config = KitConfig::load(&path).unwrap();
        let kit = KitRecords::open(&config).await.unwrap();
        let category = renkei_domain::CategoryId::new("evacuation.support").unwrap();
        assert!(kit.serves_area(&category));
        let inside = renkei_domain::Area::parse(["53394526"]).unwrap();
        let entries = kit
            .in_area(&inside, std::slice::from_ref(&category))
            .await
            .unwrap();
        // The third entry has no code (its resident gave none): it cannot be listed.
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].subject, "code-one");
        let row = &entries[0].data["evacuation.support"][0];
        assert_eq!(row["mesh"], "533945261");
        assert!(row.get("renkei_code").is_none(), "{row}");
        // Looked up one at a time, the code is not released either.
        let one = kit
            .lookup("REG-000001", &[category])
            .await
            .unwrap()
            .unwrap();
        assert!(!one.to_string().contains("code-one"), "{one}");
    }
}
