//! `renkei provider sync`: tells the hub where the provider's records are. Each category
//! with `links` (in `provider.toml`) names which residents have a record, by the code each
//! resident has at this provider, and the record's reference; the kit reads the hub's
//! current locators for the provider, and sends only the difference, in batches.
//!
//! A batch keeps its id across retries, so a batch whose answer was lost is not applied
//! twice. Categories without `links` are left as they are at the hub.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use renkei_domain::CategoryId;
use serde::{Deserialize, Serialize};

use super::config::{KitConfig, Links};
use super::outbound::HubCredentials;
use super::sources::KitRecords;

/// The most items the hub takes in one batch.
pub const BATCH_ITEMS: usize = 10_000;
/// How many times a batch is sent before the sync gives up.
const ATTEMPTS: u32 = 5;

/// Why a sync stopped. Messages name a file, a category or a status, never a code.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("reading the links of category `{category}`: {message}")]
    Links {
        category: CategoryId,
        message: String,
    },
    #[error(
        "category `{category}` links one code to two different references: a resident has one \
         record reference per category at a provider"
    )]
    Ambiguous { category: CategoryId },
    #[error("the hub: {0}")]
    Hub(String),
}

/// What a sync changed at the hub.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub upserted: u64,
    pub removed: u64,
    /// Items the hub found already as sent.
    pub unchanged: u64,
    /// Items the hub did not apply (a code it does not know).
    pub not_applied: u64,
    pub batches: u64,
}

/// (code, category) → reference.
type Locators = BTreeMap<(String, String), String>;

#[derive(Serialize, Deserialize, Clone)]
struct Item {
    subject: String,
    category: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reference: Option<String>,
}

#[derive(Serialize)]
struct Batch<'a> {
    batch_id: uuid::Uuid,
    upserts: &'a [Item],
    removals: &'a [Item],
}

#[derive(Deserialize)]
struct BatchAnswer {
    upserted: u64,
    removed: u64,
    unchanged: u64,
    not_applied: u64,
}

#[derive(Deserialize)]
struct Page {
    locators: Vec<Item>,
    next: Option<Item>,
}

/// Brings the hub's locators for this provider in line with the configured links.
pub async fn sync(
    config: &KitConfig,
    client: &reqwest::Client,
    credentials: &dyn HubCredentials,
) -> Result<SyncReport, SyncError> {
    let wanted = wanted(config).await?;
    let linked: BTreeSet<String> = config
        .categories
        .iter()
        .filter(|c| c.links.is_some())
        .map(|c| c.id.to_string())
        .collect();
    let current = current(config, client, credentials).await?;
    let upserts: Vec<Item> = wanted
        .iter()
        .filter(|(key, reference)| current.get(*key) != Some(*reference))
        .map(|((subject, category), reference)| Item {
            subject: subject.clone(),
            category: category.clone(),
            reference: Some(reference.clone()),
        })
        .collect();
    let removals: Vec<Item> = current
        .keys()
        .filter(|key| linked.contains(&key.1) && !wanted.contains_key(*key))
        .map(|(subject, category)| Item {
            subject: subject.clone(),
            category: category.clone(),
            reference: None,
        })
        .collect();
    let mut report = SyncReport::default();
    // Upserts first, then removals, at most BATCH_ITEMS of both together per batch.
    let changes: Vec<(bool, Item)> = upserts
        .into_iter()
        .map(|i| (true, i))
        .chain(removals.into_iter().map(|i| (false, i)))
        .collect();
    for chunk in changes.chunks(BATCH_ITEMS) {
        let (upserts, removals): (Vec<_>, Vec<_>) = chunk.iter().partition(|(up, _)| *up);
        let items = |v: Vec<&(bool, Item)>| v.into_iter().map(|(_, i)| i.clone()).collect();
        let (upserts, removals): (Vec<Item>, Vec<Item>) = (items(upserts), items(removals));
        let batch = Batch {
            batch_id: uuid::Uuid::new_v4(),
            upserts: &upserts,
            removals: &removals,
        };
        let answer = send(config, client, credentials, &batch).await?;
        report.upserted += answer.upserted;
        report.removed += answer.removed;
        report.unchanged += answer.unchanged;
        report.not_applied += answer.not_applied;
        report.batches += 1;
    }
    Ok(report)
}

/// What the configured links say, category by category.
async fn wanted(config: &KitConfig) -> Result<Locators, SyncError> {
    let records = KitRecords::open(config)
        .await
        .map_err(|e| SyncError::Hub(e.to_string()))?;
    let mut wanted = Locators::new();
    for category in &config.categories {
        let error = |message: String| SyncError::Links {
            category: category.id.clone(),
            message,
        };
        let pairs = match &category.links {
            None => continue,
            Some(Links::Query(sql)) => {
                records.links(sql).await.map_err(|e| error(e.to_string()))?
            }
            Some(Links::Csv(path)) => csv_links(path).map_err(error)?,
        };
        for (code, reference) in pairs {
            let key = (code, category.id.to_string());
            if let Some(earlier) = wanted.insert(key, reference.clone())
                && earlier != reference
            {
                return Err(SyncError::Ambiguous {
                    category: category.id.clone(),
                });
            }
        }
    }
    Ok(wanted)
}

fn csv_links(path: &std::path::Path) -> Result<Vec<(String, String)>, String> {
    let unreadable = |e: csv::Error| format!("`{}`: {e}", path.display());
    let mut reader = csv::Reader::from_path(path).map_err(unreadable)?;
    let headers = reader.headers().map_err(unreadable)?.clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| format!("`{}` has no column `{name}`", path.display()))
    };
    let (code, reference) = (column("code")?, column("reference")?);
    let mut pairs = Vec::new();
    for record in reader.records() {
        let record = record.map_err(unreadable)?;
        if let (Some(c), Some(r)) = (record.get(code), record.get(reference))
            && !c.is_empty()
        {
            pairs.push((c.to_owned(), r.to_owned()));
        }
    }
    Ok(pairs)
}

/// The provider's locators at the hub, every page.
async fn current(
    config: &KitConfig,
    client: &reqwest::Client,
    credentials: &dyn HubCredentials,
) -> Result<Locators, SyncError> {
    let mut current = Locators::new();
    let mut after: Option<Item> = None;
    loop {
        let bearer = credentials.bearer().await.map_err(SyncError::Hub)?;
        let limit = BATCH_ITEMS.to_string();
        let mut params = vec![("limit", limit.as_str())];
        if let Some(after) = &after {
            params.push(("after_subject", &after.subject));
            params.push(("after_category", &after.category));
        }
        let url = reqwest::Url::parse_with_params(
            &format!("{}/v1/provider/locators", config.hub),
            &params,
        )
        .map_err(|e| SyncError::Hub(format!("the hub's URL: {e}")))?;
        let request = client.get(url).bearer_auth(bearer);
        let response = request
            .send()
            .await
            .map_err(|e| SyncError::Hub(format!("reading the locators: {e}")))?;
        if !response.status().is_success() {
            return Err(SyncError::Hub(format!(
                "reading the locators was answered {}",
                response.status()
            )));
        }
        let page: Page = response
            .json()
            .await
            .map_err(|e| SyncError::Hub(format!("a page of locators: {e}")))?;
        for item in page.locators {
            current.insert(
                (item.subject, item.category),
                item.reference.unwrap_or_default(),
            );
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(current),
        }
    }
}

/// Sends one batch, again under the same id while the hub is unavailable.
async fn send(
    config: &KitConfig,
    client: &reqwest::Client,
    credentials: &dyn HubCredentials,
    batch: &Batch<'_>,
) -> Result<BatchAnswer, SyncError> {
    let mut pause = Duration::from_millis(500);
    let mut attempt = 1;
    loop {
        let bearer = credentials.bearer().await.map_err(SyncError::Hub)?;
        let sent = client
            .post(format!("{}/v1/provider/locators/sync", config.hub))
            .bearer_auth(bearer)
            .json(batch)
            .send()
            .await;
        let why = match sent {
            Ok(response) if response.status().is_success() => {
                return response
                    .json()
                    .await
                    .map_err(|e| SyncError::Hub(format!("the answer to a batch: {e}")));
            }
            Ok(response) if response.status().is_server_error() => {
                format!("a batch was answered {}", response.status())
            }
            Ok(response) => {
                let status = response.status();
                let detail = response
                    .json::<serde_json::Value>()
                    .await
                    .ok()
                    .and_then(|p| p.get("detail").and_then(|d| d.as_str().map(str::to_owned)))
                    .unwrap_or_default();
                return Err(SyncError::Hub(format!(
                    "a batch was refused ({status}): {detail}"
                )));
            }
            Err(e) => format!("sending a batch: {e}"),
        };
        if attempt == ATTEMPTS {
            return Err(SyncError::Hub(why));
        }
        tracing::warn!(attempt, error = %why, "sending the batch again under its id");
        tokio::time::sleep(pause).await;
        pause *= 2;
        attempt += 1;
    }
}
