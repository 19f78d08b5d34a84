//! Opening storage from a URL and serving a hub on a socket.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use renkei_hub::kek::Kek;
use renkei_hub::limits::{Rate, RateLimits};
use renkei_hub::pkcs11::{Pkcs11Config, Token};
use renkei_hub::{Hub, HubConfig};
use renkei_store::{PostgresStore, SqliteStore, Store};
use zeroize::Zeroizing;

/// Opens `postgres://…` URLs as PostgreSQL and anything else as a SQLite file path.
pub async fn open_store(database: &str) -> anyhow::Result<Arc<dyn Store>> {
    open_store_with_timeout(database, renkei_store::DEFAULT_STORAGE_TIMEOUT).await
}

/// [`open_store`], with how long a PostgreSQL call waits for a connection before it fails as
/// storage unavailable (`503`).
pub async fn open_store_with_timeout(
    database: &str,
    timeout: std::time::Duration,
) -> anyhow::Result<Arc<dyn Store>> {
    if database.starts_with("postgres://") || database.starts_with("postgresql://") {
        let store = PostgresStore::connect_with_timeout(database, timeout)
            .await
            .context("connecting to PostgreSQL")?;
        Ok(Arc::new(store))
    } else {
        let path = Path::new(database);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir)?;
        }
        let store = SqliteStore::open(path)
            .await
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(Arc::new(store))
    }
}

/// Where the key-encryption key (KEK) comes from, for every command that opens the hub's
/// secrets: a file, or the `RENKEI_KEK` environment variable holding the key itself (never a
/// command-line argument, which other users of the machine could read).
#[derive(Debug, Clone, clap::Args)]
pub struct KekArgs {
    /// A file holding the key-encryption key (`renkei kek new --out <file>` makes one), under
    /// which the hub's secrets are wrapped in the database. Keep it owner-only, outside the
    /// database's directory and its backups. Alternatively set RENKEI_KEK to the key itself.
    #[arg(long, env = "RENKEI_KEK_FILE")]
    pub kek_file: Option<PathBuf>,
}

/// The environment variable that may hold the KEK itself (43 base64url characters).
pub const KEK_ENV: &str = "RENKEI_KEK";

impl KekArgs {
    /// The KEK from `--kek-file` / `RENKEI_KEK_FILE`, or from `RENKEI_KEK`; exactly one.
    pub fn read(&self) -> anyhow::Result<Kek> {
        let from_env = std::env::var(KEK_ENV)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(Zeroizing::new);
        match (&self.kek_file, from_env) {
            (Some(_), Some(_)) => anyhow::bail!(
                "both --kek-file (or RENKEI_KEK_FILE) and {KEK_ENV} are set: give the \
                 key-encryption key one way only"
            ),
            (Some(path), None) => read_kek_file(path),
            (None, Some(text)) => {
                Kek::from_text(&text).with_context(|| format!("reading {KEK_ENV}"))
            }
            (None, None) => anyhow::bail!(
                "the hub keeps its secrets in the database wrapped under a key-encryption key \
                 (KEK), and none was given: make one with `renkei kek new --out <file>` (keep it \
                 outside the database's directory and its backups) and pass `--kek-file <file>` \
                 (or RENKEI_KEK_FILE), or set {KEK_ENV} to the key itself"
            ),
        }
    }
}

/// Reads a KEK file, which must be its owner's alone.
pub fn read_kek_file(path: &Path) -> anyhow::Result<Kek> {
    refuse_open_to_others(path, "a key-encryption key")?;
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    );
    Kek::from_text(&text)
        .with_context(|| format!("reading the key-encryption key in {}", path.display()))
}

/// Writes a fresh KEK to `path`, owner-only (0600), never over an existing file.
pub fn write_new_kek(path: &Path) -> anyhow::Result<Kek> {
    use std::io::Write;
    let text = Kek::generate_text();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| {
        format!(
            "creating {} (an existing file is never replaced)",
            path.display()
        )
    })?;
    writeln!(file, "{}", text.as_str())?;
    file.sync_all()?;
    Ok(Kek::from_text(&text)?)
}

/// The PKCS#11 token that makes and keeps the hub's signing keys, for `serve` and `keys
/// rotate`. Without one the private signing keys are stored wrapped under the KEK.
#[derive(Debug, Clone, clap::Args)]
pub struct Pkcs11Args {
    /// The PKCS#11 module (a shared library) of the token that makes and keeps the hub's
    /// signing keys, e.g. /usr/lib/softhsm/libsofthsm2.so for SoftHSM2. The keys never leave
    /// the token; the database keeps only their public halves.
    #[arg(long, env = "RENKEI_PKCS11_MODULE")]
    pub pkcs11_module: Option<PathBuf>,
    /// The token's label.
    #[arg(long, env = "RENKEI_PKCS11_TOKEN")]
    pub pkcs11_token: Option<String>,
    /// A file holding the token's user PIN. Keep it owner-only, like the KEK file.
    #[arg(long, env = "RENKEI_PKCS11_PIN_FILE")]
    pub pkcs11_pin_file: Option<PathBuf>,
}

impl Pkcs11Args {
    /// The token to use, if a module was given (then the token and PIN file must be too).
    pub fn read(&self) -> anyhow::Result<Option<Pkcs11Config>> {
        let (module, token, pin_file) = match (
            &self.pkcs11_module,
            &self.pkcs11_token,
            &self.pkcs11_pin_file,
        ) {
            (None, None, None) => return Ok(None),
            (Some(module), Some(token), Some(pin_file)) => (module, token, pin_file),
            _ => anyhow::bail!(
                "a PKCS#11 token needs all of --pkcs11-module, --pkcs11-token and \
                 --pkcs11-pin-file (or RENKEI_PKCS11_MODULE, RENKEI_PKCS11_TOKEN and \
                 RENKEI_PKCS11_PIN_FILE)"
            ),
        };
        refuse_open_to_others(pin_file, "a token's PIN")?;
        let pin = Zeroizing::new(
            std::fs::read_to_string(pin_file)
                .with_context(|| format!("reading {}", pin_file.display()))?,
        );
        let pin = Zeroizing::new(pin.trim_end_matches(['\n', '\r']).to_owned());
        anyhow::ensure!(!pin.is_empty(), "`{}` holds no PIN", pin_file.display());
        Ok(Some(Pkcs11Config {
            module: module.clone(),
            token: token.clone(),
            pin,
        }))
    }

    /// Opens the token (see [`Pkcs11Args::read`]), logged in.
    pub async fn open(&self) -> anyhow::Result<Option<Arc<Token>>> {
        let Some(config) = self.read()? else {
            return Ok(None);
        };
        let token = tokio::task::spawn_blocking(move || Token::open(&config)).await??;
        Ok(Some(token))
    }
}

#[cfg(unix)]
fn refuse_open_to_others(path: &Path, what: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .permissions()
        .mode()
        & 0o777;
    anyhow::ensure!(
        mode & 0o077 == 0,
        "`{}` is open to other users (mode {mode:03o}): {what} must be its owner's alone; run \
         `chmod 600 {}` and start again",
        path.display(),
        path.display()
    );
    Ok(())
}

#[cfg(not(unix))]
fn refuse_open_to_others(_path: &Path, _what: &str) -> anyhow::Result<()> {
    Ok(())
}

/// Opens the secrets in `store` with `kek` (wrapping those of a database from before KEKs),
/// so a wrong KEK stops a command before it does anything else.
pub async fn open_secrets(store: &dyn Store, kek: &Kek) -> anyhow::Result<()> {
    let wrapped = renkei_hub::kek::seal_stored_secrets(store, kek)
        .await
        .context("opening the hub's secrets with the key-encryption key")?;
    if wrapped > 0 {
        tracing::warn!(
            wrapped,
            kek = %kek.id(),
            "this database held its secrets in plain text: they are now wrapped under the \
             key-encryption key, but older copies and backups of the database still hold them \
             in plain text"
        );
    }
    Ok(())
}

/// Creates `dir` (and its parents) if missing; every directory it creates is owner-only (0700).
pub fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

/// Writes `contents` to a file only its owner may read (made so even if it was there).
pub fn write_private_file(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    // `mode` applies only to a file it creates: one left from an earlier run is made
    // owner-only too.
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(contents)?;
    file.sync_all()?;
    Ok(())
}

/// Starts the hub and serves it on `listen` until the process ends.
pub async fn serve(
    listen: SocketAddr,
    config: HubConfig,
    store: Arc<dyn Store>,
) -> anyhow::Result<()> {
    open_secrets(store.as_ref(), &config.kek).await?;
    let hub = Hub::start(config, store)
        .await
        .context("starting the hub")?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    tracing::info!(%listen, "hub listening");
    serve_app(listener, app(hub)).await.context("serving")
}

/// Serves `app` on `listener`, telling each request the address it came from (the rate
/// limits count by it: `renkei_hub::limits::PeerAddr`).
pub async fn serve_app(
    listener: tokio::net::TcpListener,
    app: axum::Router,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}

/// `renkei serve`'s rate limits and purge interval (`renkei_hub::limits`). A rate is
/// COUNT/UNIT or COUNT/UNIT:BURST, unit `s`, `min` or `h`: `30/min:10` is thirty a minute on
/// average and at most ten at once.
#[derive(Debug, Clone, clap::Args)]
pub struct LimitArgs {
    /// Enrolments and passkey sign-ins started, per client address (an IPv6 address counts
    /// as its /64). Behind a reverse proxy every request comes from the proxy's address.
    #[arg(long, env = "RENKEI_LIMIT_CEREMONIES_PER_ADDRESS", default_value_t = RateLimits::default().ceremonies_per_address)]
    pub limit_ceremonies_per_address: Rate,
    /// OAuth client authentications (token, introspection, revocation), per client address.
    #[arg(long, env = "RENKEI_LIMIT_OAUTH_PER_ADDRESS", default_value_t = RateLimits::default().oauth_per_address)]
    pub limit_oauth_per_address: Rate,
    /// OAuth client authentications, per client id.
    #[arg(long, env = "RENKEI_LIMIT_OAUTH_PER_CLIENT", default_value_t = RateLimits::default().oauth_per_client)]
    pub limit_oauth_per_client: Rate,
    /// Data requests, per service.
    #[arg(long, env = "RENKEI_LIMIT_DATA_REQUESTS_PER_CLIENT", default_value_t = RateLimits::default().data_requests_per_client)]
    pub limit_data_requests_per_client: Rate,
    /// How often expired challenges, ceremonies, codes and revoked token ids are deleted, in
    /// seconds.
    #[arg(long, env = "RENKEI_PURGE_INTERVAL_SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub purge_interval_seconds: u64,
}

impl LimitArgs {
    /// Sets `config`'s rate limits and purge interval to these.
    pub fn apply(&self, config: &mut HubConfig) {
        config.limits = RateLimits {
            ceremonies_per_address: self.limit_ceremonies_per_address,
            oauth_per_address: self.limit_oauth_per_address,
            oauth_per_client: self.limit_oauth_per_client,
            data_requests_per_client: self.limit_data_requests_per_client,
        };
        config.purge_interval = std::time::Duration::from_secs(self.purge_interval_seconds);
    }
}

/// The metrics token in `path`, which only its owner may read.
pub fn read_metrics_token(path: &Path) -> anyhow::Result<renkei_hub::metrics::MetricsToken> {
    let text = read_token_file(path, "the metrics token")?;
    renkei_hub::metrics::MetricsToken::new(&text)
        .with_context(|| format!("the metrics token in {}", path.display()))
}

/// The text of a token file (`what`), which only its owner may read.
fn read_token_file(path: &Path, what: &str) -> anyhow::Result<Zeroizing<String>> {
    refuse_open_to_others(path, what)?;
    Ok(Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    ))
}

/// Where the city's SOC hears of security events (`renkei serve`).
#[derive(clap::Args, Debug)]
pub struct SocArgs {
    /// A file holding the token the SOC presents when it polls `POST /v1/soc/events`
    /// (RFC 8936; at least 22 characters; owner-only). Without one, polling is off.
    #[arg(long, env = "RENKEI_SOC_TOKEN_FILE")]
    pub soc_token_file: Option<PathBuf>,
    /// The SOC's receiver, to which each security event is pushed (RFC 8935).
    #[arg(long, env = "RENKEI_SOC_PUSH_URL")]
    pub soc_push_url: Option<String>,
}

impl SocArgs {
    /// Sets the hub's SOC from these flags.
    pub fn apply(&self, config: &mut HubConfig) -> anyhow::Result<()> {
        if let Some(path) = &self.soc_token_file {
            let text = read_token_file(path, "the SOC token")?;
            config.soc.token = Some(
                renkei_hub::soc::SocToken::new(&text)
                    .with_context(|| format!("the SOC token in {}", path.display()))?,
            );
        }
        config.soc.push_url = self
            .soc_push_url
            .as_deref()
            .map(|url| {
                reqwest::Url::parse(url).with_context(|| format!("the SOC push URL `{url}`"))
            })
            .transpose()?;
        Ok(())
    }
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
pub async fn stored_log_verifier(
    store: &dyn Store,
    kek: &Kek,
) -> anyhow::Result<renkei_log::note::Verifier> {
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
    let seed = renkei_hub::kek::read_secret(store, kek, "log-signing-seed")
        .await
        .context("opening the log's signing seed with the key-encryption key")?
        .context("the database holds no log signing seed")?;
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
    role: renkei_domain::OperatorRole,
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
        role,
    };
    renkei_hub::accounts::put_operator(store, &operator).await?;
    Ok(operator)
}
