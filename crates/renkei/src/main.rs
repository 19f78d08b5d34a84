//! `renkei`: run the hub, the demo town, open a data response with a service's key, or
//! check a disclosure package.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use renkei::demo::{self, DemoOptions};
use renkei::run::{self, KekArgs, LimitArgs, Pkcs11Args};
use renkei_hub::HubConfig;

mod backup;
mod decrypt;
mod dev_ca;
mod incident;
mod provider;
mod verify_package;

/// mimalloc rather than glibc's malloc: the hub allocates and frees across threads all the
/// time (requests, buffers, decision batches), where glibc's arenas cost about 15% of a
/// brokered request's CPU (README, performance).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "renkei",
    version,
    about = "Consent-first personal-data linkage hub"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the demo town ひかり台市: the hub, three providers, 1,000 residents.
    Demo {
        /// Where the demo keeps its database and the services' private keys.
        #[arg(long, default_value = "renkei-data")]
        data_dir: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// The registry, clinic and payment provider listen on this port and the next two.
        #[arg(long, default_value_t = 8081)]
        provider_port: u16,
        #[arg(long, default_value_t = 1000)]
        residents: usize,
    },
    /// Run the hub.
    Serve {
        /// A SQLite file path, or a `postgres://` URL.
        #[arg(long, env = "RENKEI_DATABASE", default_value = "renkei-data/renkei.db")]
        database: String,
        #[arg(long, env = "RENKEI_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// The hub's public base URL (the issuer of everything it signs).
        #[arg(long, env = "RENKEI_ISSUER")]
        issuer: String,
        /// How long to wait for a provider, in milliseconds.
        #[arg(long, default_value_t = 3000)]
        provider_timeout_ms: u64,
        /// How long a request waits for a PostgreSQL connection before it is answered 503
        /// (storage unavailable, retry), in milliseconds.
        #[arg(long, env = "RENKEI_STORAGE_TIMEOUT_MS", default_value_t = 1000)]
        storage_timeout_ms: u64,
        /// A root certificate (PEM or DER) enrolment certificates must chain to, e.g. JPKI's
        /// signing-certificate root. Repeatable; without one, enrolment is off.
        #[arg(long)]
        trust_anchor: Vec<PathBuf>,
        /// A certificate revocation list (PEM or DER) the operator supplies. Repeatable.
        #[arg(long)]
        crl: Vec<PathBuf>,
        /// Let registered endpoints, webhooks and redirects be plain http on loopback or
        /// private addresses, and the hub connect to them: for a hub and providers on one
        /// closed network, or on one machine. Off, the hub calls only https URLs on public
        /// addresses (outbound-only providers need neither).
        #[arg(long)]
        allow_local_network: bool,
        /// A file holding the token a metrics scraper presents at `GET /metrics` (at least
        /// 22 characters; owner-only, like the KEK file). Without one, `/metrics` is off.
        #[arg(long, env = "RENKEI_METRICS_TOKEN_FILE")]
        metrics_token_file: Option<PathBuf>,
        /// In how many days a resident's request (開示・訂正・削除・利用停止) is due a first
        /// answer: shown to the resident and operators, flagged in the console once past.
        #[arg(long, env = "RENKEI_REQUEST_ANSWER_DAYS", default_value_t = renkei_domain::rights::DEFAULT_ANSWER_DAYS, value_parser = clap::value_parser!(u32).range(1..=365))]
        request_answer_days: u32,
        /// The city's SOC: where it hears of security events.
        #[command(flatten)]
        soc: Box<run::SocArgs>,
        #[command(flatten)]
        kek: KekArgs,
        #[command(flatten)]
        pkcs11: Pkcs11Args,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// Copy the hub's database while it runs (SQLite: `VACUUM INTO`; PostgreSQL: `pg_dump`),
    /// with a manifest naming the log's latest signed checkpoint. The KEK is not in it: keep
    /// the KEK apart.
    Backup(backup::BackupArgs),
    /// Restore a backup into a new database, then run the restore drill: verify the restored
    /// log as `renkei log verify` does, holding it to the manifest's checkpoint. Exits 1 if it
    /// does not verify.
    Restore(backup::RestoreArgs),
    /// The key-encryption key (KEK) under which the hub's secrets (token keys, the log's
    /// signing seed, the private signing keys) are wrapped in the database.
    Kek {
        #[command(subcommand)]
        command: KekCommand,
    },
    /// City operator accounts.
    Operator {
        #[command(subcommand)]
        command: OperatorCommand,
    },
    /// The hub's signing keys (ID tokens, consent receipts, grants, webhooks) and their
    /// rotation. A running hub picks up changes within 30 seconds.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// The tamper-evident access log.
    Log {
        #[command(subcommand)]
        command: LogCommand,
    },
    /// A development certificate authority standing in for JPKI, to try enrolment without a
    /// My Number card (never for production).
    DevCa {
        #[command(subcommand)]
        command: dev_ca::DevCaCommand,
    },
    /// Data providers: the kit a city runs beside a provider's own system, its signing key,
    /// and registering, approving and suspending providers at a hub.
    Provider {
        #[command(subcommand)]
        command: provider::ProviderCommand,
    },
    /// What a service's requests reached, for an incident's reports and notices.
    Incident {
        #[command(subcommand)]
        command: incident::IncidentCommand,
    },
    /// The hub's data-category vocabulary.
    Category {
        #[command(subcommand)]
        command: provider::CategoryCommand,
    },
    /// Open the sealed payloads of a data response (read from standard input) with a
    /// service's private key, as the service would, and verify each is its provider's
    /// signed answer to this request (an answer that does not verify is an error).
    Decrypt {
        /// The service the response was made for (answers signed for another are refused).
        #[arg(long)]
        service: String,
        #[arg(long)]
        key: PathBuf,
        /// The hub whose published provider keys (`GET /v1/providers`) the answers must
        /// verify with.
        #[arg(long, env = "RENKEI_HUB", required_unless_present = "provider_keys")]
        hub: Option<String>,
        /// `PROVIDER=FILE`: a provider's public keys (a JWK Set, or one JWK), instead of the
        /// hub's list. Repeatable.
        #[arg(long)]
        provider_keys: Vec<String>,
    },
    /// Check a disclosure package offline: the checkpoint's signature, every history entry's
    /// inclusion proof, the receipts; with --key, open what each provider sealed to you.
    VerifyPackage {
        /// The package file.
        file: PathBuf,
        /// The hub's JWK Set (a file, or its URL: `<hub>/.well-known/jwks.json`): the
        /// receipts must verify with it too.
        #[arg(long)]
        jwks: Option<String>,
        /// The log's verifier key (the text, a file, or its URL: `<hub>/log/key`): the
        /// package's must be it.
        #[arg(long)]
        log_key: Option<String>,
        /// Your private key (the file the portal saved, or `renkei disclosure-key` made).
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Make a key for a disclosure package: the private half to OUT, the public half
    /// printed (send it as `recipient_key` to `POST /v1/me/disclosures`).
    DisclosureKey {
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum OperatorCommand {
    /// Sign in as an operator without a browser: enrol with the certificate chain and a
    /// signature by its key over the hub's challenge, trade that for an operator session,
    /// and write the operator token (valid for an hour) to OUT, owner-only.
    SignIn {
        #[arg(long, env = "RENKEI_HUB")]
        hub: String,
        /// The operator's certificate chain (PEM), as they enrolled with it.
        #[arg(long)]
        certificate: PathBuf,
        /// The certificate's private key (PEM).
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Give the operator role to the person who enrolled with this certificate.
    Add {
        #[arg(long, env = "RENKEI_DATABASE", default_value = "renkei-data/renkei.db")]
        database: String,
        /// A short id, e.g. `tanaka`.
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        /// The certificate (PEM) they enrolled with.
        #[arg(long)]
        certificate: PathBuf,
        /// `operator` (everything operators do) or `counter_staff` (the city's counter only).
        #[arg(long, default_value = "operator", value_parser = parse_role)]
        role: renkei_domain::OperatorRole,
    },
}

fn parse_role(s: &str) -> Result<renkei_domain::OperatorRole, String> {
    renkei_domain::OperatorRole::parse(s)
        .ok_or_else(|| format!("`{s}` is not a role: `operator` or `counter_staff`"))
}

#[derive(Subcommand)]
enum KeysCommand {
    /// List every key: its algorithm (EdDSA or RS256), from when it signs, whether it is
    /// retired, and the PKCS#11 token keeping it if one does.
    List {
        #[arg(long, env = "RENKEI_DATABASE", default_value = "renkei-data/renkei.db")]
        database: String,
    },
    /// Add a new key of each algorithm (EdDSA and RS256), published in the JWK Set at once and
    /// signing after the delay, so that services and providers caching the set know them
    /// before they are used. Old keys stay published, so what they signed still verifies.
    Rotate {
        #[arg(long, env = "RENKEI_DATABASE", default_value = "renkei-data/renkei.db")]
        database: String,
        #[command(flatten)]
        kek: KekArgs,
        /// With a token, the new keys are made and kept in it.
        #[command(flatten)]
        pkcs11: Pkcs11Args,
        /// Minutes until the new key signs (0 after a compromise, then retire the old key).
        #[arg(long, default_value_t = 24 * 60)]
        activate_after_minutes: u32,
    },
    /// Take a key out of the JWK Set for good (after a compromise): what it signed no longer
    /// verifies. The last published key of an algorithm cannot be retired.
    Retire {
        #[arg(long, env = "RENKEI_DATABASE", default_value = "renkei-data/renkei.db")]
        database: String,
        /// The key id (`kid`), as `renkei keys list` shows it. A kid is base64url and may
        /// begin with `-`; it is still the key id, not an option.
        #[arg(allow_hyphen_values = true)]
        kid: String,
    },
}

#[derive(Subcommand)]
enum LogCommand {
    /// Re-derive the whole Merkle tree from storage, check it against every signed checkpoint,
    /// and name the first entry that was altered, removed or reordered. Exits 1 if any was.
    Verify {
        /// A SQLite file path, or a `postgres://` URL.
        #[arg(long, env = "RENKEI_DATABASE", default_value = "renkei-data/renkei.db")]
        database: String,
        /// The log's verifier key (`GET /log/key`); by default the one in storage.
        #[arg(long)]
        key: Option<String>,
        /// A file holding a checkpoint note kept from `GET /log/checkpoint` earlier; the log
        /// must still match it (repeatable).
        #[arg(long)]
        checkpoint: Vec<PathBuf>,
        /// A file holding the `log_promise` of a data-request answer; the log must hold the
        /// promised entry at its position (repeatable).
        #[arg(long)]
        promise: Vec<PathBuf>,
        /// Opens the stored key when `--key` is not given.
        #[command(flatten)]
        kek: KekArgs,
    },
}

#[derive(Subcommand)]
enum KekCommand {
    /// Write a new random key-encryption key to a file (owner-only; an existing file is never
    /// replaced).
    New {
        #[arg(long)]
        out: PathBuf,
    },
    /// Rewrap every secret in the database from the old KEK to the new one, in one
    /// transaction. Stop the hubs first (or restart them with the new KEK at once): a running
    /// hub cannot read keys rotated after this.
    Rotate {
        #[arg(long, env = "RENKEI_DATABASE", default_value = "renkei-data/renkei.db")]
        database: String,
        /// The file holding the KEK the secrets are wrapped under now.
        #[arg(long)]
        old: PathBuf,
        /// The file holding the KEK to wrap them under (`renkei kek new` makes one).
        #[arg(long)]
        new: PathBuf,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Demo {
            data_dir,
            listen,
            provider_port,
            residents,
        } => {
            let options = DemoOptions {
                data_dir,
                hub: listen,
                first_provider_port: provider_port,
                residents,
            };
            run::create_private_dir(&options.data_dir)?;
            let database = options.data_dir.join("renkei.db");
            let store = run::open_store(&database.to_string_lossy()).await?;
            let mut town = demo::build(&options, store.clone()).await?;
            let listener = tokio::net::TcpListener::bind(options.hub)
                .await
                .with_context(|| format!("binding {}", options.hub))?;
            // The hub serves first: the town is registered through its API, and the
            // providers fetch its key set when they start.
            let hub = tokio::spawn(run::serve_app(listener, run::app(town.hub.clone())));
            let hub_url = format!("http://{}", options.hub);
            demo::register(&options, store.as_ref(), &mut town, &hub_url)
                .await
                .context("registering the demo town through the hub's API")?;
            let _kits = demo::start_providers(&options, &town.hub, &hub_url, &town.people).await?;
            println!("{}", demo::guide(&options, &town));
            hub.await.context("the hub stopped")??;
        }
        Command::Serve {
            database,
            listen,
            issuer,
            provider_timeout_ms,
            storage_timeout_ms,
            trust_anchor,
            crl,
            allow_local_network,
            metrics_token_file,
            request_answer_days,
            soc,
            kek,
            pkcs11,
            limits,
        } => {
            let mut config = HubConfig::new(issuer, kek.read()?);
            config.allow_local_network = allow_local_network;
            config.metrics_token = metrics_token_file
                .as_deref()
                .map(run::read_metrics_token)
                .transpose()?;
            config.request_answer_days = request_answer_days;
            config.pkcs11 = pkcs11.read()?;
            soc.apply(&mut config)?;
            limits.apply(&mut config);
            config.provider_timeout = Duration::from_millis(provider_timeout_ms);
            config.trust_anchors =
                run::trust_anchors(&trust_anchor, &crl)?.map(std::sync::Arc::new);
            let store =
                run::open_store_with_timeout(&database, Duration::from_millis(storage_timeout_ms))
                    .await?;
            run::serve(listen, config, store).await?;
        }
        Command::Log {
            command:
                LogCommand::Verify {
                    database,
                    key,
                    checkpoint,
                    promise,
                    kek,
                },
        } => {
            let store = run::open_store(&database).await?;
            let verifier = match key {
                Some(k) => k
                    .trim()
                    .parse()
                    .context("--key is not a signed-note verifier key")?,
                None => run::stored_log_verifier(store.as_ref(), &kek.read()?).await?,
            };
            let pinned = checkpoint
                .iter()
                .map(|p| {
                    std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let promises = promise
                .iter()
                .map(|p| {
                    std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let report =
                renkei_hub::log::verify(store.as_ref(), &verifier, &pinned, &promises).await?;
            println!(
                "entries: {}  checkpoints: {}",
                report.entries, report.checkpoints
            );
            for c in &report.bad_checkpoints {
                println!("BAD CHECKPOINT: {c}");
            }
            for p in &report.bad_promises {
                println!("BAD PROMISE: {p}");
            }
            for m in &report.state_mismatches {
                println!("STATE DIFFERS FROM THE LOG: {m}");
            }
            match &report.first_bad_entry {
                Some((seq, why)) => {
                    println!("FIRST BAD ENTRY: {seq}: {why}");
                    std::process::exit(1);
                }
                None if !report.ok() => std::process::exit(1),
                None => println!(
                    "OK: every entry matches every signed checkpoint, and every consent its entries"
                ),
            }
        }
        Command::Backup(args) => backup::backup(args).await?,
        Command::Restore(args) => backup::restore(args).await?,
        Command::DevCa { command } => dev_ca::run(command)?,
        Command::Keys { command } => keys(command).await?,
        Command::Kek { command } => kek(command).await?,
        Command::Provider { command } => provider::run(command).await?,
        Command::Category { command } => provider::category(command).await?,
        Command::Incident { command } => incident::run(command).await?,
        Command::Operator {
            command:
                OperatorCommand::SignIn {
                    hub,
                    certificate,
                    key,
                    out,
                },
        } => {
            let chain = std::fs::read_to_string(&certificate)
                .with_context(|| format!("reading {}", certificate.display()))?;
            let key_pem = zeroize::Zeroizing::new(
                std::fs::read_to_string(&key)
                    .with_context(|| format!("reading {}", key.display()))?,
            );
            let client = renkei::admin::OperatorClient::sign_in_with_card(&hub, &chain, |c| {
                use base64::Engine;
                let signature = renkei_identity::sign_challenge(&key_pem, c)
                    .with_context(|| format!("signing with {}", key.display()))?;
                Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature))
            })
            .await?;
            run::write_private_file(&out, client.token().as_bytes())?;
            println!(
                "operator token written to {} (owner-only, valid for an hour)",
                out.display()
            );
        }
        Command::Operator {
            command:
                OperatorCommand::Add {
                    database,
                    id,
                    name,
                    certificate,
                    role,
                },
        } => {
            let store = run::open_store(&database).await?;
            let operator =
                run::add_operator(store.as_ref(), &id, &name, &certificate, role).await?;
            println!(
                "operator `{}` added: they sign in to the console as themselves",
                operator.id
            );
        }
        Command::Decrypt {
            service,
            key,
            hub,
            provider_keys,
        } => decrypt::run(&service, &key, hub.as_deref(), &provider_keys).await?,
        Command::VerifyPackage {
            file,
            jwks,
            log_key,
            key,
        } => {
            verify_package::run(&file, jwks.as_deref(), log_key.as_deref(), key.as_deref()).await?;
        }
        Command::DisclosureKey { out } => verify_package::new_key(&out)?,
    }
    Ok(())
}

async fn keys(command: KeysCommand) -> anyhow::Result<()> {
    use renkei_hub::signing_keys;
    let now = chrono::Utc::now();
    match command {
        KeysCommand::List { database } => {
            let store = run::open_store(&database).await?;
            for key in signing_keys::list(store.as_ref()).await? {
                let state = match key.retired_at {
                    Some(at) => format!("retired {}", at.to_rfc3339()),
                    None if key.active_from > now => "published, not signing yet".to_owned(),
                    None => "published".to_owned(),
                };
                let kept = match &key.token {
                    Some(token) => format!("  in token `{token}`"),
                    None => String::new(),
                };
                println!(
                    "{}  {:<5}  signs from {}  {state}{kept}",
                    key.kid,
                    key.alg,
                    key.active_from.to_rfc3339()
                );
            }
        }
        KeysCommand::Rotate {
            database,
            activate_after_minutes,
            kek,
            pkcs11,
        } => {
            let kek = kek.read()?;
            let token = pkcs11.open().await?;
            let store = run::open_store(&database).await?;
            run::open_secrets(store.as_ref(), &kek).await?;
            let delay = chrono::TimeDelta::minutes(i64::from(activate_after_minutes));
            let added =
                signing_keys::rotate_with(store.as_ref(), &kek, token.as_ref(), now, delay).await?;
            let place = match &token {
                Some(token) => format!(" (kept in PKCS#11 token `{}`)", token.label()),
                None => String::new(),
            };
            for key in added {
                println!(
                    "new {} key {} published{place}; it signs from {}",
                    key.alg,
                    key.kid,
                    key.active_from.to_rfc3339()
                );
            }
        }
        KeysCommand::Retire { database, kid } => {
            let store = run::open_store(&database).await?;
            signing_keys::retire(store.as_ref(), &kid, now).await?;
            println!("key {kid} retired: it is no longer published");
        }
    }
    Ok(())
}

async fn kek(command: KekCommand) -> anyhow::Result<()> {
    match command {
        KekCommand::New { out } => {
            let kek = run::write_new_kek(&out)?;
            println!(
                "key-encryption key {} written to {}: keep it owner-only and apart from the \
                 database and its backups; without it the hub's secrets cannot be opened",
                kek.id(),
                out.display()
            );
        }
        KekCommand::Rotate { database, old, new } => {
            let old = run::read_kek_file(&old)?;
            let new = run::read_kek_file(&new)?;
            let store = run::open_store(&database).await?;
            let count = renkei_hub::kek::rotate(store.as_ref(), &old, &new)
                .await
                .context("rewrapping the hub's secrets")?;
            println!(
                "{count} secrets rewrapped from key-encryption key {} to {}: start every hub with \
                 the new KEK, then destroy the old one",
                old.id(),
                new.id()
            );
        }
    }
    Ok(())
}
