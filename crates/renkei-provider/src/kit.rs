//! The provider kit (`renkei provider serve --config provider.toml`): what a city runs beside
//! a provider's own system to connect it to the hub without writing code.
//!
//! It reads its [`config::KitConfig`], trusts the hub's published key set (fetched from the
//! hub at start and again every [`JWKS_REFRESH`], so a rotated key is known before the hub
//! signs with it), answers grants from the configured [`sources`], signed with the
//! provider's own key, and keeps its own [`access_log`]. It takes grants on its own port,
//! or, for an `outbound = true` provider, by polling the hub ([`outbound`]) with a token its
//! [`credentials`] get.

pub mod access_log;
pub mod config;
pub mod credentials;
pub mod outbound;
pub mod sources;
pub mod sync;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use renkei_protocol::keys::{Jwks, SigningKey};

use crate::{Provider, RecordsError};
use access_log::AccessLog;
use config::{Connection, KitConfig};
use sources::KitRecords;

/// How often the kit re-reads the hub's key set (the hub re-reads its own every 30 s).
pub const JWKS_REFRESH: Duration = Duration::from_secs(30);
/// How many polls an outbound kit keeps going at once.
pub const POLLERS: usize = 4;

/// Why a kit could not start.
#[derive(Debug, thiserror::Error)]
pub enum KitError {
    #[error("the provider's records: {0}")]
    Records(#[from] RecordsError),
    #[error("the access log `{path}`: {source}")]
    AccessLog {
        path: String,
        source: std::io::Error,
    },
    #[error("the signing key `{path}`: {message}")]
    SigningKey { path: String, message: String },
    #[error("the hub's keys at `{url}`: {message}")]
    HubKeys { url: String, message: String },
    #[error("listening on `{addr}`: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running kit.
pub struct RunningKit {
    /// Where it listens; `None` for an outbound provider, which listens nowhere.
    pub addr: Option<SocketAddr>,
    pub provider: Arc<Provider>,
    /// The server, or the polls: ends only if they fail.
    pub server: tokio::task::JoinHandle<()>,
}

/// Starts the kit described by `config`: records, access log, the hub's keys, the listener.
pub async fn start(config: &KitConfig) -> Result<RunningKit, KitError> {
    let signing_key = read_signing_key(&config.signing_key)?;
    let records = KitRecords::open(config).await?;
    let log = AccessLog::open(&config.access_log).map_err(|source| KitError::AccessLog {
        path: config.access_log.display().to_string(),
        source,
    })?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| KitError::HubKeys {
            url: config.hub.clone(),
            message: e.to_string(),
        })?;
    let url = format!("{}/.well-known/jwks.json", config.hub);
    let jwks = hub_keys(&client, &url).await?;
    let provider = Provider::builder(
        config.provider.clone(),
        jwks,
        signing_key,
        Arc::new(records),
    )
    .access_log(log)
    .build();
    follow_hub_keys(client.clone(), url, &provider);
    let (addr, server) = match config.connection {
        Connection::Listen(listen) => {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|source| KitError::Listen {
                    addr: listen,
                    source,
                })?;
            let addr = listener.local_addr().map_err(|source| KitError::Listen {
                addr: listen,
                source,
            })?;
            let app = crate::router(provider.clone());
            let server = tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::error!(error = %e, "provider kit stopped");
                }
            });
            (Some(addr), server)
        }
        Connection::Outbound => {
            let credentials = credentials::ClientAssertion::new(
                client.clone(),
                &config.hub,
                config.provider.clone(),
                read_signing_key(&config.signing_key)?,
            );
            let polls = outbound::start(
                client,
                config.hub.clone(),
                &provider,
                Arc::new(credentials),
                POLLERS,
            );
            let server = tokio::spawn(async move {
                futures_util::future::join_all(polls).await;
            });
            (None, server)
        }
    };
    Ok(RunningKit {
        addr,
        provider,
        server,
    })
}

/// Reads the provider's private signing key, refusing a file others may read: whoever reads
/// it can sign answers as the provider.
pub fn read_signing_key(path: &std::path::Path) -> Result<SigningKey, KitError> {
    let error = |message: String| KitError::SigningKey {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| error(e.to_string()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(error(format!(
                "others may read it (mode {:o}): run `chmod 600 {}`",
                mode & 0o777,
                path.display()
            )));
        }
    }
    SigningKey::from_pkcs8_pem(&text).map_err(|e| error(e.to_string()))
}

async fn hub_keys(client: &reqwest::Client, url: &str) -> Result<Jwks, KitError> {
    let error = |message: String| KitError::HubKeys {
        url: url.to_owned(),
        message,
    };
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| error(e.to_string()))?;
    if !response.status().is_success() {
        return Err(error(format!("answered {}", response.status())));
    }
    response
        .json::<Jwks>()
        .await
        .map_err(|e| error(format!("not a JWK Set: {e}")))
}

/// Re-reads the hub's key set every [`JWKS_REFRESH`] while the provider lives; a failed read
/// keeps the keys it has.
fn follow_hub_keys(client: reqwest::Client, url: String, provider: &Arc<Provider>) {
    let provider = Arc::downgrade(provider);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(JWKS_REFRESH).await;
            let Some(provider) = provider.upgrade() else {
                return;
            };
            match hub_keys(&client, &url).await {
                Ok(jwks) => provider.verifier.replace_jwks(jwks),
                Err(e) => tracing::warn!(error = %e, "keeping the hub keys already known"),
            }
        }
    });
}
