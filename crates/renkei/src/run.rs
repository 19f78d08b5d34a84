//! Opening storage from a URL and serving a hub on a socket.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use renkei_hub::{Hub, HubConfig};
use renkei_store::{PostgresStore, SqliteStore, Store};

/// Opens `postgres://…` URLs as PostgreSQL and anything else as a SQLite file path.
pub async fn open_store(database: &str) -> anyhow::Result<Arc<dyn Store>> {
    if database.starts_with("postgres://") || database.starts_with("postgresql://") {
        let store = PostgresStore::connect(database)
            .await
            .context("connecting to PostgreSQL")?;
        Ok(Arc::new(store))
    } else {
        let path = Path::new(database);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let store = SqliteStore::open(path)
            .await
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(Arc::new(store))
    }
}

/// Starts the hub and serves it on `listen` until the process ends.
pub async fn serve(
    listen: SocketAddr,
    config: HubConfig,
    store: Arc<dyn Store>,
) -> anyhow::Result<()> {
    let hub = Hub::start(config, store)
        .await
        .context("starting the hub")?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    tracing::info!(%listen, "hub listening");
    axum::serve(listener, app(hub)).await.context("serving")?;
    Ok(())
}

/// Everything a hub serves: the API and, beside it, the resident portal and operator console.
pub fn app(hub: Hub) -> axum::Router {
    routed_app(hub).0
}

/// [`app`], and the table of who may call each of its routes (`renkei_hub::routes`): the
/// API's rows, then the portal's and console's.
pub fn routed_app(hub: Hub) -> (axum::Router, Vec<renkei_hub::routes::RouteAccess>) {
    let (api, mut table) = renkei_hub::routed(hub.clone());
    let (pages, page_table) = renkei_portal::routed(hub);
    table.extend(page_table);
    (api.merge(pages), table)
}

/// The log's verifier key as the hub that wrote `store` signs with it: the origin from its
/// first checkpoint, the key from its stored seed.
pub async fn stored_log_verifier(store: &dyn Store) -> anyhow::Result<renkei_log::note::Verifier> {
    let first = store
        .checkpoints()
        .await?
        .into_iter()
        .next()
        .context("the log has no checkpoint yet")?;
    let origin = first
        .note
        .lines()
        .next()
        .context("empty checkpoint")?
        .to_owned();
    // A store with a checkpoint always holds the seed (it is created first), so this reads it
    // and never writes the placeholder.
    let seed = store
        .ensure_secret("log-signing-seed", &[0u8; 32], chrono::Utc::now())
        .await?;
    let identity = renkei_hub::log::LogIdentity::new(
        &format!("x://{}", origin.trim_end_matches("/log")),
        &seed,
    )?;
    Ok(identity.signer.verifier())
}

/// The enrolment trust anchors from files (PEM or DER), or `None` when none is given.
pub fn trust_anchors(
    roots: &[std::path::PathBuf],
    crls: &[std::path::PathBuf],
) -> anyhow::Result<Option<renkei_identity::TrustAnchors>> {
    if roots.is_empty() {
        anyhow::ensure!(crls.is_empty(), "--crl needs a --trust-anchor");
        return Ok(None);
    }
    let read = |p: &std::path::PathBuf| {
        std::fs::read(p).with_context(|| format!("reading {}", p.display()))
    };
    let roots = roots.iter().map(read).collect::<anyhow::Result<Vec<_>>>()?;
    let crls = crls.iter().map(read).collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Some(
        renkei_identity::TrustAnchors::new(&roots)?.with_crls(&crls)?,
    ))
}

/// Gives the operator role to the identity enrolled with `certificate` (it must have enrolled).
pub async fn add_operator(
    store: &dyn Store,
    id: &str,
    name: &str,
    certificate: &Path,
) -> anyhow::Result<renkei_domain::Operator> {
    let text = std::fs::read_to_string(certificate)
        .with_context(|| format!("reading {}", certificate.display()))?;
    let chain = renkei_identity::parse_chain(&text)?;
    let leaf = chain.first().context("no certificate in the file")?;
    let key_hash = renkei_identity::key_hash_of_certificate(leaf)?;
    let enrolment = store
        .enrolment_by_key(&key_hash.to_string())
        .await?
        .context("nobody has enrolled with this certificate yet: enrol in the portal first")?;
    let operator = renkei_domain::Operator {
        id: renkei_domain::OperatorId::new(id)?,
        name: name.to_owned(),
        identity: enrolment.resident,
        added_at: chrono::Utc::now(),
    };
    renkei_hub::accounts::put_operator(store, &operator).await?;
    Ok(operator)
}
