//! The provider kit's configuration file (`provider.toml`): who the provider is, where it
//! listens, which hub it trusts, and where each data category's records come from.
//!
//! ```toml
//! provider = "hikari-clinic"
//! listen = "127.0.0.1:8082"
//! hub = "https://hub.example.city"        # grants are verified with <hub>/.well-known/jwks.json
//! access_log = "clinic-access.jsonl"      # the kit's own record of every grant it answered
//! signing_key = "clinic-signing.pem"      # signs every answer (`renkei provider keygen`)
//!
//! [database]                              # needed by categories with a `query`
//! url = "sqlite:clinic.db"                # or postgres://user@host/db
//!
//! [[category]]
//! id = "health.checkup"
//! query = "SELECT taken_on, bmi FROM checkups WHERE patient_no = $1 ORDER BY taken_on"
//! # for `renkei provider sync`: which residents have a record, by their code at this
//! # provider (from the portal), and the record's reference
//! links = "SELECT renkei_code, patient_no FROM patients WHERE renkei_code IS NOT NULL"
//!
//! [[category]]
//! id = "payment.history"
//! csv = "payments.csv"
//! key = "member_id"                       # the column holding the resident's reference
//! columns = ["date", "shop", "amount_jpy"] # released columns (default: all but the key)
//! links_csv = "members.csv"               # columns `code` and `reference`
//!
//! [[category]]
//! id = "disaster.evacuation-support"
//! query = "SELECT name, needs FROM register WHERE register_no = $1"
//! [category.area]                         # area lists under a declared emergency
//! query = "SELECT renkei_code, mesh, name, address, needs FROM register"
//! subject = "renkei_code"                 # the resident's code at this provider
//! place = "mesh"                          # a 地域メッシュ code (or `district:<id>`)
//! ```
//!
//! A provider that may accept no connection (三層分離) sets `outbound = true` instead of
//! `listen`: it then listens on no port and takes its grants by polling the hub.
//!
//! Relative paths are read from the configuration file's directory. A query takes the
//! resident's reference as its only parameter (`$1`) and releases every column it selects.
//! A category with an `area` table is also listed by area: its entries whose `place` lies
//! inside the area granted, named by their `subject` column, which is not released. A query
//! source names its `area.query` (no parameter: the kit selects by place itself); a CSV
//! source reads the same file, releasing its `columns` (default: all but the key and the
//! subject).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use renkei_domain::{CategoryId, ProviderId};
use serde::Deserialize;

/// Why a configuration file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{path}` is not a valid provider configuration: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// A checked configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct KitConfig {
    pub provider: ProviderId,
    pub connection: Connection,
    /// The hub's base URL; its key set is `<hub>/.well-known/jwks.json`.
    pub hub: String,
    pub access_log: PathBuf,
    /// The provider's private signing key (PKCS#8 PEM, owner-only): every answer is signed
    /// with it, and services verify it against the public key registered at the hub.
    pub signing_key: PathBuf,
    pub database_url: Option<String>,
    pub categories: Vec<CategorySource>,
}

/// How grants reach the kit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// The hub posts them to this address.
    Listen(SocketAddr),
    /// The kit polls the hub for them and listens on no port.
    Outbound,
}

/// Where one category's records come from.
#[derive(Debug, Clone, PartialEq)]
pub struct CategorySource {
    pub id: CategoryId,
    pub from: Source,
    /// Which residents have a record of this category, for `renkei provider sync`.
    pub links: Option<Links>,
    /// How it is listed by area, if it is.
    pub area: Option<AreaSource>,
}

/// Where the kit reads (resident code at this provider, record reference) pairs.
#[derive(Debug, Clone, PartialEq)]
pub enum Links {
    /// A query over the provider's database selecting two columns: the code, the reference.
    Query(String),
    /// A CSV file with the columns `code` and `reference`.
    Csv(PathBuf),
}

/// Where a category's entries in an area come from (area lists, issue 24).
#[derive(Debug, Clone, PartialEq)]
pub struct AreaSource {
    /// For a query source, the query listing every entry; `None` for a CSV source, which
    /// reads its own file.
    pub query: Option<String>,
    /// The column holding the resident's code at this provider (never released).
    pub subject: String,
    /// The column holding the entry's place: a 地域メッシュ code or `district:<id>`.
    pub place: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A query over the provider's database, the reference bound as `$1`.
    Query(String),
    /// A CSV file with a header row, one row per record.
    Csv {
        path: PathBuf,
        key: String,
        /// The released columns; `None`: every column but the key.
        columns: Option<Vec<String>>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    provider: String,
    listen: Option<SocketAddr>,
    #[serde(default)]
    outbound: bool,
    hub: String,
    access_log: PathBuf,
    signing_key: PathBuf,
    database: Option<RawDatabase>,
    #[serde(default, rename = "category")]
    categories: Vec<RawCategory>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    url: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCategory {
    id: String,
    query: Option<String>,
    csv: Option<PathBuf>,
    key: Option<String>,
    columns: Option<Vec<String>>,
    links: Option<String>,
    links_csv: Option<PathBuf>,
    area: Option<RawArea>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArea {
    query: Option<String>,
    subject: String,
    place: String,
}

impl KitConfig {
    /// Reads and checks the configuration file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base).map_err(|message| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        })
    }

    /// Checks a configuration's text; relative paths are taken from `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self, String> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        let provider = ProviderId::new(&raw.provider).map_err(|e| format!("`provider`: {e}"))?;
        if !(raw.hub.starts_with("https://") || raw.hub.starts_with("http://")) {
            return Err(format!("`hub` must be an http(s) URL, not `{}`", raw.hub));
        }
        let connection = match (raw.listen, raw.outbound) {
            (Some(addr), false) => Connection::Listen(addr),
            (None, true) => Connection::Outbound,
            (Some(_), true) => {
                return Err(
                    "an `outbound = true` provider listens on no port: remove `listen`".to_owned(),
                );
            }
            (None, false) => {
                return Err(
                    "`listen` is needed unless the provider is `outbound = true`".to_owned(),
                );
            }
        };
        if raw.categories.is_empty() {
            return Err("no `[[category]]`: the provider would serve nothing".to_owned());
        }
        let mut seen = BTreeSet::new();
        let mut categories = Vec::new();
        for c in raw.categories {
            let id = CategoryId::new(&c.id).map_err(|e| format!("category `{}`: {e}", c.id))?;
            if !seen.insert(id.clone()) {
                return Err(format!("category `{id}` is configured twice"));
            }
            let area = match (&c.area, &c.csv) {
                (None, _) => None,
                (Some(a), None) if a.query.is_none() => {
                    return Err(format!(
                        "category `{id}`: a query source's `area` needs its own `query`"
                    ));
                }
                (Some(a), Some(_)) if a.query.is_some() => {
                    return Err(format!(
                        "category `{id}`: a csv source's `area` reads the same file: no `query`"
                    ));
                }
                (Some(a), _) => Some(AreaSource {
                    query: a.query.clone(),
                    subject: a.subject.clone(),
                    place: a.place.clone(),
                }),
            };
            let from = match (c.query, c.csv) {
                (Some(query), None) => {
                    if c.key.is_some() || c.columns.is_some() {
                        return Err(format!(
                            "category `{id}`: `key` and `columns` belong to a `csv` source"
                        ));
                    }
                    if raw.database.is_none() {
                        return Err(format!(
                            "category `{id}` has a `query` but there is no `[database]`"
                        ));
                    }
                    Source::Query(query)
                }
                (None, Some(csv)) => Source::Csv {
                    path: base.join(csv),
                    key: c
                        .key
                        .ok_or_else(|| format!("category `{id}`: a `csv` source needs `key`"))?,
                    columns: c.columns,
                },
                _ => {
                    return Err(format!(
                        "category `{id}` needs exactly one of `query` and `csv`"
                    ));
                }
            };
            let links = match (c.links, c.links_csv) {
                (None, None) => None,
                (Some(query), None) if raw.database.is_some() => Some(Links::Query(query)),
                (Some(_), None) => {
                    return Err(format!(
                        "category `{id}` has `links` but there is no `[database]`"
                    ));
                }
                (None, Some(csv)) => Some(Links::Csv(base.join(csv))),
                (Some(_), Some(_)) => {
                    return Err(format!(
                        "category `{id}`: give `links` or `links_csv`, not both"
                    ));
                }
            };
            categories.push(CategorySource {
                id,
                from,
                links,
                area,
            });
        }
        Ok(Self {
            provider,
            connection,
            hub: raw.hub.trim_end_matches('/').to_owned(),
            access_log: base.join(raw.access_log),
            signing_key: base.join(raw.signing_key),
            database_url: raw.database.map(|d| d.url),
            categories,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
provider = "hikari-clinic"
listen = "127.0.0.1:8082"
hub = "http://127.0.0.1:8080/"
access_log = "access.jsonl"
signing_key = "signing.pem"
[database]
url = "sqlite:clinic.db"
[[category]]
id = "health.checkup"
query = "SELECT bmi FROM checkups WHERE patient_no = $1"
links = "SELECT code, patient_no FROM patients"
[[category]]
id = "payment.history"
csv = "payments.csv"
key = "member_id"
links_csv = "members.csv"
"#;

    #[test]
    fn a_configuration_names_each_categorys_source_with_paths_from_its_directory() {
        let c = KitConfig::parse(GOOD, Path::new("/etc/kit")).unwrap();
        assert_eq!(c.provider.as_str(), "hikari-clinic");
        assert_eq!(c.hub, "http://127.0.0.1:8080");
        assert_eq!(c.access_log, Path::new("/etc/kit/access.jsonl"));
        assert_eq!(c.signing_key, Path::new("/etc/kit/signing.pem"));
        assert_eq!(
            c.connection,
            Connection::Listen("127.0.0.1:8082".parse().unwrap())
        );
        assert_eq!(
            c.categories[0].links,
            Some(Links::Query("SELECT code, patient_no FROM patients".into()))
        );
        assert_eq!(
            c.categories[1].links,
            Some(Links::Csv("/etc/kit/members.csv".into()))
        );
        assert_eq!(
            c.categories[1].from,
            Source::Csv {
                path: "/etc/kit/payments.csv".into(),
                key: "member_id".into(),
                columns: None
            }
        );
    }

    #[test]
    fn a_configuration_that_cannot_work_is_refused_saying_why() {
        let cases = [
            (
                GOOD.replace("[database]\nurl = \"sqlite:clinic.db\"\n", ""),
                "no `[database]`",
            ),
            (GOOD.replace("key = \"member_id\"\n", ""), "needs `key`"),
            (
                GOOD.replace("payment.history", "health.checkup"),
                "configured twice",
            ),
            (
                GOOD.replace("http://127.0.0.1:8080/", "ftp://hub"),
                "http(s) URL",
            ),
            (GOOD.replace("hikari-clinic", "Hikari Clinic"), "`provider`"),
            (
                format!("{GOOD}[category.area]\nsubject = \"code\"\nplace = \"mesh\"\nquery = \"SELECT 1\"\n"),
                "reads the same file",
            ),
            (
                GOOD.replace(
                    "query = \"SELECT bmi FROM checkups WHERE patient_no = $1\"\n",
                    "query = \"SELECT bmi FROM checkups WHERE patient_no = $1\"\n[category.area]\nsubject = \"code\"\nplace = \"mesh\"\n",
                ),
                "needs its own `query`",
            ),
            (GOOD.replace("access_log", "acess_log"), "unknown field"),
            (
                GOOD.replace("signing_key = \"signing.pem\"\n", ""),
                "signing_key",
            ),
            (
                GOOD.replace("listen = \"127.0.0.1:8082\"\n", ""),
                "`listen` is needed",
            ),
            (format!("outbound = true\n{GOOD}"), "remove `listen`"),
            (
                GOOD.replace(
                    "links_csv = \"members.csv\"",
                    "links_csv = \"m.csv\"\nlinks = \"SELECT 1\"",
                ),
                "not both",
            ),
        ];
        for (text, expected) in cases {
            let e = KitConfig::parse(&text, Path::new(".")).unwrap_err();
            assert!(e.contains(expected), "{expected:?} not in {e:?}");
        }
    }

    #[test]
    fn an_outbound_provider_listens_on_no_port() {
        let text = GOOD.replace("listen = \"127.0.0.1:8082\"\n", "outbound = true\n");
        let c = KitConfig::parse(&text, Path::new(".")).unwrap();
        assert_eq!(c.connection, Connection::Outbound);
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_a_configuration_or_an_error_never_a_panic(text in ".{0,400}") {
            let _ = KitConfig::parse(&text, Path::new("."));
        }
    }
}
