//! `renkei provider …` and `renkei category …`: the provider side, run by a city beside a
//! data provider's own system (`serve`, `keygen`), and an operator's registry acts on a hub
//! (`add`, `approve`, `suspend`, `category add`), which call the hub's API with an operator
//! token (`renkei operator sign-in` writes one).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use renkei::admin::OperatorClient;
use renkei_domain::ControllerContact;
use renkei_hub::accounts::{CategoryRegistration, ProviderRegistration};
use renkei_provider::kit::{self, config::KitConfig};
use serde::Deserialize;

#[derive(Subcommand)]
pub enum ProviderCommand {
    /// Answer the hub's grants from the provider's own database and CSV files, as the
    /// configuration file says, keeping the provider's own access log.
    Serve {
        /// The kit's configuration (`provider.toml`).
        #[arg(long, env = "RENKEI_PROVIDER_CONFIG")]
        config: PathBuf,
    },
    /// Tell the hub which residents have records here: what each category's `links` in the
    /// configuration select, sent as the difference from what the hub has.
    Sync {
        /// The kit's configuration (`provider.toml`).
        #[arg(long, env = "RENKEI_PROVIDER_CONFIG")]
        config: PathBuf,
    },
    /// Make the provider's signing key: the private key goes to OUT (owner-only; name it
    /// as `signing_key` in provider.toml), the public JWK to standard output (register it).
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Register a provider at the hub (pending until approved), as its registration file
    /// says (see docs/operating.md).
    Add {
        #[command(flatten)]
        operator: OperatorArgs,
        /// The registration (TOML): id, names, endpoint or `outbound = true`, categories,
        /// public key files, contact.
        registration: PathBuf,
    },
    /// Approve a registered provider: it is sent grants from the next request on.
    Approve {
        #[command(flatten)]
        operator: OperatorArgs,
        id: String,
    },
    /// Suspend a provider: no request is sent to it from now on.
    Suspend {
        #[command(flatten)]
        operator: OperatorArgs,
        id: String,
    },
}

#[derive(Subcommand)]
pub enum CategoryCommand {
    /// Add a data category to the hub's vocabulary.
    Add {
        #[command(flatten)]
        operator: OperatorArgs,
        /// `resident.address`, `health.checkup`, …
        #[arg(long)]
        id: String,
        #[arg(long)]
        name_ja: String,
        #[arg(long)]
        name_en: String,
        /// 要配慮個人情報 (medical history, disability and the like).
        #[arg(long)]
        special_care: bool,
    },
}

/// Which hub, and the operator token to act with.
#[derive(Args)]
pub struct OperatorArgs {
    /// The hub's base URL.
    #[arg(long, env = "RENKEI_HUB")]
    hub: String,
    /// A file holding an operator token (`renkei operator sign-in --out` writes one).
    #[arg(long, env = "RENKEI_OPERATOR_TOKEN_FILE")]
    operator_token_file: PathBuf,
}

impl OperatorArgs {
    fn client(&self) -> anyhow::Result<OperatorClient> {
        OperatorClient::from_token_file(&self.hub, &self.operator_token_file)
    }
}

/// A provider's registration file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistrationFile {
    id: String,
    name_ja: String,
    name_en: String,
    endpoint: Option<String>,
    #[serde(default)]
    outbound: bool,
    categories: Vec<String>,
    /// Files holding a public JWK each (what `keygen` prints), or a JWK Set.
    public_keys: Vec<PathBuf>,
    contact: ControllerContact,
}

/// Reads a registration file; key files are read from its directory.
fn registration(path: &Path) -> anyhow::Result<ProviderRegistration> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let file: RegistrationFile = toml::from_str(&text)
        .with_context(|| format!("{} is not a registration", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut keys = Vec::new();
    for key in &file.public_keys {
        let key = base.join(key);
        let text =
            std::fs::read_to_string(&key).with_context(|| format!("reading {}", key.display()))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a JWK", key.display()))?;
        match value.get("keys").and_then(serde_json::Value::as_array) {
            Some(set) => keys.extend(set.iter().cloned()),
            None => keys.push(value),
        }
    }
    Ok(ProviderRegistration {
        id: file.id,
        name_ja: file.name_ja,
        name_en: file.name_en,
        endpoint: file.endpoint,
        outbound: file.outbound,
        categories: file.categories,
        signing_keys: serde_json::json!({ "keys": keys }),
        contact: file.contact,
    })
}

pub async fn run(command: ProviderCommand) -> anyhow::Result<()> {
    match command {
        ProviderCommand::Serve { config } => serve(&config).await,
        ProviderCommand::Sync { config } => sync(&config).await,
        ProviderCommand::Keygen { out } => {
            if out.exists() {
                anyhow::bail!("{} exists: a key is never replaced", out.display());
            }
            let key = renkei_protocol::keys::SigningKey::generate()?;
            let pem = key
                .to_pkcs8_pem()
                .context("a key made here has its private half")?;
            renkei::run::write_private_file(&out, pem.as_bytes())?;
            println!("{}", serde_json::to_string_pretty(&key.public_jwk())?);
            eprintln!(
                "private key {} written to {} (owner-only): name it as `signing_key` in \
                 provider.toml; register the public key above",
                key.kid(),
                out.display()
            );
            Ok(())
        }
        ProviderCommand::Add {
            operator,
            registration: file,
        } => {
            let registration = registration(&file)?;
            let id = registration.id.clone();
            operator.client()?.add_provider(&registration).await?;
            println!("provider `{id}` registered, pending review: approve it to send it grants");
            Ok(())
        }
        ProviderCommand::Approve { operator, id } => {
            operator.client()?.approve_provider(&id).await?;
            println!("provider `{id}` approved: it is sent grants from the next request on");
            Ok(())
        }
        ProviderCommand::Suspend { operator, id } => {
            operator.client()?.suspend_provider(&id).await?;
            println!("provider `{id}` suspended: no request is sent to it");
            Ok(())
        }
    }
}

pub async fn category(command: CategoryCommand) -> anyhow::Result<()> {
    match command {
        CategoryCommand::Add {
            operator,
            id,
            name_ja,
            name_en,
            special_care,
        } => {
            operator
                .client()?
                .add_category(&CategoryRegistration {
                    id: id.clone(),
                    name_ja,
                    name_en,
                    special_care,
                })
                .await?;
            println!("category `{id}` added to the vocabulary");
            Ok(())
        }
    }
}

async fn serve(config: &Path) -> anyhow::Result<()> {
    let config = KitConfig::load(config)?;
    let running = kit::start(&config)
        .await
        .with_context(|| format!("starting provider `{}`", config.provider))?;
    let from = match running.addr {
        Some(addr) => format!("on {addr}"),
        None => "by polling the hub (outbound-only, no port)".to_owned(),
    };
    println!(
        "provider `{}` answers grants {from} (hub {}, access log {})",
        config.provider,
        config.hub,
        config.access_log.display()
    );
    tokio::select! {
        stopped = running.server => stopped.context("the provider's server stopped")?,
        signal = tokio::signal::ctrl_c() => signal.context("waiting for Ctrl-C")?,
    }
    Ok(())
}

async fn sync(config: &Path) -> anyhow::Result<()> {
    let config = KitConfig::load(config)?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(60))
        .build()?;
    let credentials = kit::credentials::ClientAssertion::new(
        client.clone(),
        &config.hub,
        config.provider.clone(),
        kit::read_signing_key(&config.signing_key)?,
    );
    let report = kit::sync::sync(&config, &client, &credentials)
        .await
        .with_context(|| format!("syncing provider `{}`'s locators", config.provider))?;
    println!(
        "locators of `{}` synced in {} batches: {} upserted, {} removed, {} unchanged, {} not applied (codes the hub does not know)",
        config.provider,
        report.batches,
        report.upserted,
        report.removed,
        report.unchanged,
        report.not_applied
    );
    Ok(())
}
