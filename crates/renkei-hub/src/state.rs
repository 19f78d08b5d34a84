//! The hub's shared state and start-up: configuration, keys, storage and background tasks.

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use renkei_domain::CategoryId;
use renkei_store::Store;
use tokio::sync::Notify;

use crate::HubError;
use crate::auth::HubKeys;
use crate::broker::DecisionBatcher;
use crate::kek::Kek;
use crate::limits::{Limiters, RateLimits};
use crate::metrics::Metrics;
use crate::outbound::OutboundRelay;

/// How a hub runs.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// The hub's public base URL: the `iss` of everything it signs.
    pub issuer: String,
    /// Enables `POST /demo/sign-in`, which signs in any resident without proof. Never on
    /// outside the demo town.
    pub demo_mode: bool,
    /// How long the hub waits for a provider before reporting it failed.
    pub provider_timeout: Duration,
    /// The largest answer the hub reads from a provider without a limit of its own, in bytes.
    pub provider_answer_limit: u64,
    /// Lifetime of a grant (at most 60 s).
    pub grant_lifetime: Duration,
    /// The roots (and CRLs) enrolment certificates must chain to; enrolment is off without.
    pub trust_anchors: Option<Arc<renkei_identity::TrustAnchors>>,
    /// Lets registered URLs use http and loopback or private addresses, and the hub connect
    /// to them (see [`crate::egress`]). Only the demo town and tests turn it on: their
    /// providers listen on 127.0.0.1. Off, the hub calls only https URLs on public addresses.
    pub allow_local_network: bool,
    /// The key-encryption key the hub's secrets are wrapped under in storage.
    pub kek: Arc<Kek>,
    /// How often one address or client may do what costs a stored row or a secret check.
    pub limits: RateLimits,
    /// How often expired challenges, ceremonies, codes and revoked token ids are deleted
    /// (and the rate limiters forget idle callers).
    pub purge_interval: Duration,
    /// The PKCS#11 token that makes and keeps the signing keys, if any; without one their
    /// private halves are stored wrapped under `kek`.
    pub pkcs11: Option<crate::pkcs11::Pkcs11Config>,
    /// How long after a declaration's end time its notices wait, so that a decision batch
    /// that read the clock just before the end has committed (`notices.rs`). An early end
    /// needs no wait.
    pub notice_grace: Duration,
    /// How often the hub looks for declarations whose notices are due.
    pub notice_interval: Duration,
    /// The token a metrics scraper presents at `GET /metrics`; without one the route is off.
    pub metrics_token: Option<crate::metrics::MetricsToken>,
    /// In how many days a resident's request is due a first answer (a city setting;
    /// `renkei serve --request-answer-days`).
    pub request_answer_days: u32,
    /// Where the city's SOC hears of security events, and what raises one.
    pub soc: crate::soc::SocConfig,
}

impl HubConfig {
    /// A hub at `issuer` whose secrets in storage are wrapped under `kek`.
    pub fn new(issuer: impl Into<String>, kek: Kek) -> Self {
        Self {
            issuer: issuer.into(),
            demo_mode: false,
            provider_timeout: Duration::from_secs(3),
            // A sealed answer about one resident is a few kilobytes; 8 MiB leaves room for
            // documents without letting one answer take the hub's memory.
            provider_answer_limit: 8 * 1024 * 1024,
            grant_lifetime: Duration::from_secs(30),
            trust_anchors: None,
            allow_local_network: false,
            kek: Arc::new(kek),
            limits: RateLimits::default(),
            purge_interval: Duration::from_secs(60),
            pkcs11: None,
            notice_grace: Duration::from_secs(60),
            notice_interval: Duration::from_secs(5),
            metrics_token: None,
            request_answer_days: renkei_domain::rights::DEFAULT_ANSWER_DAYS,
            soc: crate::soc::SocConfig::default(),
        }
    }
}

/// The hub: cheap to clone, shared by every request handler and background task. What it
/// holds is reached through its methods, never directly.
#[derive(Clone)]
pub struct Hub(Arc<HubInner>);

struct HubInner {
    config: HubConfig,
    store: Arc<dyn Store>,
    keys: HubKeys,
    http: reqwest::Client,
    decisions: DecisionBatcher,
    /// Woken when a webhook message is written, so it goes out at once.
    outbox_written: Arc<Notify>,
    /// The WebAuthn relying party, or the issuer that cannot be one (not a domain name).
    webauthn: Result<webauthn_rs::Webauthn, String>,
    /// The category vocabulary as last read; reread whenever a name is not in it.
    vocabulary: RwLock<BTreeSet<CategoryId>>,
    /// The rate limiters of [`HubConfig::limits`].
    limiters: Limiters,
    /// Grants waiting for outbound-only providers' polls.
    outbound: OutboundRelay,
    /// What `GET /metrics` reports.
    metrics: Arc<Metrics>,
    /// What raises security events, and who waits for them.
    soc: crate::soc::Soc,
}

impl Hub {
    /// How this hub runs.
    pub fn config(&self) -> &HubConfig {
        &self.0.config
    }

    /// The hub's storage: for the binary's commands, the benchmark and tests. The hub's
    /// operations are the way in for everything else (the portal never touches storage).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.0.store
    }

    /// The keys the hub signs and checks with.
    pub fn keys(&self) -> &HubKeys {
        &self.0.keys
    }

    /// The client the hub calls providers and services with (names resolved through
    /// [`crate::egress::GuardedResolver`], redirects never followed).
    pub fn http(&self) -> &reqwest::Client {
        &self.0.http
    }

    pub(crate) fn decisions(&self) -> &DecisionBatcher {
        &self.0.decisions
    }

    /// Woken when a webhook message is written, so it goes out at once.
    pub(crate) fn outbox_written(&self) -> &Arc<Notify> {
        &self.0.outbox_written
    }

    /// The WebAuthn relying party (`passkeys-unavailable` when the issuer cannot be one).
    pub(crate) fn webauthn(&self) -> Result<&webauthn_rs::Webauthn, HubError> {
        self.0
            .webauthn
            .as_ref()
            .map_err(|issuer| HubError::PasskeysUnavailable(issuer.clone()))
    }

    /// The rate limiters of [`HubConfig::limits`].
    pub(crate) fn limiters(&self) -> &Limiters {
        &self.0.limiters
    }

    /// Grants waiting for outbound-only providers' polls, and their answers.
    pub(crate) fn outbound(&self) -> &OutboundRelay {
        &self.0.outbound
    }

    /// The operational metrics (`GET /metrics`).
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// The watch on what raises security events.
    pub(crate) fn soc(&self) -> &crate::soc::Soc {
        &self.0.soc
    }

    /// A handle for a background task, which must not keep the hub alive.
    pub(crate) fn downgrade(&self) -> WeakHub {
        WeakHub(Arc::downgrade(&self.0))
    }
}

/// The hub as a background task holds it: the task ends once every [`Hub`] is dropped.
pub(crate) struct WeakHub(Weak<HubInner>);

impl WeakHub {
    /// The hub, while anyone else still holds it.
    pub(crate) fn upgrade(&self) -> Option<Hub> {
        self.0.upgrade().map(Hub)
    }
}

impl Hub {
    /// Loads (or creates) the hub's keys and starts its background tasks: the decision
    /// batcher and the webhook sender. Needs a Tokio runtime.
    pub async fn start(config: HubConfig, store: Arc<dyn Store>) -> Result<Self, HubError> {
        let token = match config.pkcs11.clone() {
            Some(pkcs11) => Some(
                tokio::task::spawn_blocking(move || crate::pkcs11::Token::open(&pkcs11))
                    .await
                    .map_err(|e| {
                        HubError::internal(format!("opening the token panicked: {e}"))
                    })??,
            ),
            None => None,
        };
        let keys = HubKeys::load(
            store.as_ref(),
            &config.issuer,
            config.kek.clone(),
            token,
            Utc::now(),
        )
        .await?;
        // A grant goes to the endpoint its provider registered and nowhere else: a provider's
        // redirect is its answer (`provider-refused`), never followed with the grant. Names
        // resolve through the guarded resolver at each connection, and no proxy stands in
        // between (it would resolve them instead): an internal address is never reached.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(crate::egress::GuardedResolver {
                allow_local: config.allow_local_network,
            }))
            .timeout(config.provider_timeout)
            .pool_max_idle_per_host(256)
            .build()
            .map_err(|e| HubError::internal(format!("http client: {e}")))?;
        let metrics = Arc::new(Metrics::new());
        let decisions = DecisionBatcher::start(store.clone(), metrics.clone());
        let outbox_written = Arc::new(Notify::new());
        let vocabulary = RwLock::new(BTreeSet::new());
        let webauthn = crate::passkeys::relying_party(&config.issuer);
        let limiters = Limiters::new(&config.limits);
        let soc = crate::soc::Soc::new(&config.soc);
        let hub = Self(Arc::new(HubInner {
            config,
            store,
            keys,
            webauthn,
            http,
            decisions,
            outbox_written,
            vocabulary,
            limiters,
            outbound: OutboundRelay::default(),
            metrics,
            soc,
        }));
        crate::log::integrate_once(hub.store().as_ref(), &hub.keys().log).await?;
        crate::log::start_integrator(&hub);
        crate::webhooks::start_sender(hub.clone());
        start_expiry_recorder(&hub);
        start_key_reloader(&hub);
        start_purger(&hub);
        crate::notices::start_notifier(&hub);
        crate::soc::start_pusher(&hub)?;
        Ok(hub)
    }
}

impl Hub {
    /// Rejects category names that are not in the vocabulary (`unknown-category`).
    /// Malformed names are left to the request parser, which says why.
    pub(crate) async fn check_categories(&self, names: &[String]) -> Result<(), HubError> {
        let known = |name: &str| {
            self.0
                .vocabulary
                .read()
                .map(|v| v.iter().any(|c| c.as_str() == name))
                .unwrap_or(false)
        };
        if names.iter().all(|n| known(n)) {
            return Ok(());
        }
        let fresh: BTreeSet<CategoryId> = self
            .store()
            .categories()
            .await?
            .into_iter()
            .map(|c| c.id)
            .collect();
        if let Ok(mut v) = self.0.vocabulary.write() {
            *v = fresh;
        }
        match names
            .iter()
            .find(|n| CategoryId::new(n.as_str()).is_ok() && !known(n))
        {
            Some(unknown) => Err(HubError::UnknownCategory(unknown.clone())),
            None => Ok(()),
        }
    }
}

/// Writes an `expired` log entry for each consent shortly after it expires, so the log shows
/// every consent change (its effect needs no such entry: decisions compare times).
fn start_expiry_recorder(hub: &Hub) {
    let weak = hub.downgrade();
    tokio::spawn(async move {
        loop {
            let Some(hub) = weak.upgrade() else { return };
            let result = hub.store().record_expiries(Utc::now(), 1000).await;
            drop(hub);
            let pause = match result {
                Ok(1000) => Duration::ZERO,
                Ok(_) => Duration::from_secs(30),
                Err(e) => {
                    tracing::error!(error = %e, "recording consent expiries failed");
                    Duration::from_secs(30)
                }
            };
            tokio::time::sleep(pause).await;
        }
    });
}

/// Re-reads the signing keys now and then, so a rotation made elsewhere (`renkei keys
/// rotate`, another replica) is published and used here without a restart.
fn start_key_reloader(hub: &Hub) {
    let weak = hub.downgrade();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(crate::signing_keys::KEY_RELOAD_INTERVAL).await;
            let Some(hub) = weak.upgrade() else { return };
            hub.reload_signing_keys().await;
        }
    });
}

impl Hub {
    /// Re-reads the signing keys; a key published now that was not before is a rotation,
    /// which the SOC hears of.
    pub async fn reload_signing_keys(&self) {
        let published = |hub: &Hub| -> std::collections::BTreeSet<String> {
            hub.keys()
                .jwks()
                .keys
                .iter()
                .filter_map(|k| k.common.key_id.clone())
                .collect()
        };
        let before = published(self);
        if let Err(e) = self.keys().signing.reload(self.store().as_ref()).await {
            return tracing::error!(error = %e, "re-reading the signing keys failed");
        }
        for kid in published(self).difference(&before) {
            self.raise_security_event(
                renkei_protocol::event::security::SecurityEvent::KeyRotated { kid: kid.clone() },
            )
            .await;
        }
    }
}

/// How long past its expiry a revoked token id (or anything else) is kept before the purger
/// deletes it: a request authenticated just before its token expired is still decided
/// against the revocation.
const PURGE_GRACE: TimeDelta = TimeDelta::minutes(5);

/// Deletes expired challenges, ceremonies, unredeemed codes and revoked token ids every
/// [`HubConfig::purge_interval`] (the first time at start), and lets the rate limiters forget
/// callers that went quiet. Every replica runs it; deleting twice deletes nothing more.
fn start_purger(hub: &Hub) {
    let weak = hub.downgrade();
    let interval = hub.config().purge_interval;
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval.max(Duration::from_millis(1)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(hub) = weak.upgrade() else { return };
            match hub.store().purge_expired(Utc::now() - PURGE_GRACE).await {
                Ok(0) => {}
                Ok(purged) => tracing::debug!(purged, "purged expired rows"),
                Err(e) => tracing::error!(error = %e, "purging expired rows failed"),
            }
            let before = Utc::now() - crate::soc::ACKNOWLEDGED_KEPT;
            if let Err(e) = hub
                .store()
                .forget_acknowledged_security_events(before)
                .await
            {
                tracing::error!(error = %e, "forgetting acknowledged security events failed");
            }
            hub.limiters().forget_idle();
        }
    });
}
