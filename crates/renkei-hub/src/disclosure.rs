//! Disclosure (開示, APPI 第33条): everything the hub knows of a resident, and what each
//! provider holds about them, in one file they can check offline ([`package`]).
//!
//! The resident (or a proxy entrusted with requests, for every service)
//! sends an X25519 public key made in their browser or by `renkei`. The hub appends the
//! disclosure to the log as an access record whose recipient is the data subject and whose
//! basis is `data-subject-access`, durable before any provider is asked; then it sends each
//! approved provider holding the resident a grant with that basis for every category the
//! provider is registered for, and the provider seals its signed answer to the resident's
//! key (so the hub relays ciphertext, as for services, and keeps nothing of it). Beside those
//! answers the package holds the resident's consents with receipts, their whole history in
//! the log with inclusion proofs against a checkpoint that covers the disclosure itself,
//! the services that received data and when, and the keys that check all of it.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use chrono::Utc;
use futures_util::future::join_all;
use renkei_domain::ids::DATA_SUBJECT_ACCESS;
use renkei_domain::{
    CategoryId, LogEntry, Provider, ProviderConnection, ProviderId, PurposeId, RequestId, ServiceId,
};
use renkei_protocol::grant::{GrantClaims, sign_grant};
use renkei_store::{AccessQuery, Disclosure, LogOrder, StoredCheckpoint};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::api_identity::PROBLEM;
use crate::auth::{ProxyPermission, ResidentCaller, ResidentSession};
use crate::broker::FetchOutcome;
use crate::history::LogEntryView;
use crate::problem::{ApiJson, Problem};
use crate::{Hub, HubError};

pub mod package;

pub use package::{
    DisclosurePackage, PACKAGE_FORMAT, PackageConsent, PackageError, PackageLog, PackageReport,
    ProviderPart, Trust, verify_package,
};

/// How long a disclosure waits for a checkpoint that covers its own entry (one comes every
/// second or so).
const CHECKPOINT_WAIT: Duration = Duration::from_secs(10);

/// How many history entries are read at a time.
const PAGE: u32 = 500;

/// The request for a disclosure package.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisclosureBody {
    /// The resident's X25519 public key (base64url without padding, 32 bytes): the
    /// providers seal their answers to it. Make it in the browser or with `renkei`, and keep
    /// its private half: the hub never sees it and cannot open the answers. (A low-order
    /// point, with which no seal can be made, is refused with 400.)
    #[schema(pattern = "^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$")]
    pub recipient_key: String,
}

impl Hub {
    /// Assembles the resident's disclosure package (see the module's documentation). A proxy
    /// needs requests entrusted, for every service.
    pub async fn disclose(
        &self,
        me: &ResidentSession,
        recipient_key: &str,
    ) -> Result<DisclosurePackage, HubError> {
        // A disclosure request is a request (開示請求) about everything: a proxy entrusted with
        // requests for every service may make it for the resident.
        me.require_about(ProxyPermission::FileRequests, None)?;
        if renkei_protocol::envelope::check_recipient_key(recipient_key).is_err() {
            return Err(HubError::InvalidField {
                field: "recipient_key".into(),
                detail: "`recipient_key` must be an X25519 public key: 32 bytes in base64url \
                         without padding, not a low-order point"
                    .into(),
            });
        }
        let resident = me.resident;
        let approved: BTreeMap<ProviderId, Provider> = self
            .store()
            .providers()
            .await?
            .into_iter()
            .filter(Provider::receives_grants)
            .map(|p| (p.id.clone(), p))
            .collect();
        // One grant per provider and reference there, for every category it is registered
        // for: the resident may have data there the hub has no locator of.
        let mut asks: BTreeMap<(ProviderId, String), Vec<CategoryId>> = BTreeMap::new();
        for l in self.store().locators_of(resident).await? {
            if let Some(p) = approved.get(&l.provider) {
                asks.entry((l.provider, l.reference))
                    .or_insert_with(|| p.categories.iter().cloned().collect());
            }
        }
        let disclosure = Disclosure {
            request: RequestId::from_uuid(uuid::Uuid::now_v7()),
            resident,
            proxy: me.proxy.as_ref().map(|a| a.proxy),
            categories: asks.values().flatten().cloned().collect(),
            providers: asks.keys().map(|(p, _)| p.clone()).collect(),
        };
        // INVARIANT: the disclosure is in the log, durably, before any provider is asked.
        let record = self
            .store()
            .record_disclosure(&disclosure, Utc::now())
            .await?;
        let fetches = asks.into_iter().map(|((provider, reference), categories)| {
            let connection = approved.get(&provider).map(|p| {
                let limit = p
                    .max_answer_bytes
                    .unwrap_or(self.config().provider_answer_limit);
                (p.connection.clone(), limit)
            });
            async move {
                let grant = self
                    .disclosure_grant(
                        disclosure.request,
                        &provider,
                        &reference,
                        &categories,
                        recipient_key,
                    )
                    .await;
                let outcome: FetchOutcome = match (connection, grant) {
                    (_, Err(e)) => {
                        tracing::error!(provider = %provider, error = %e, "a disclosure grant could not be signed");
                        Err((
                            "hub-failure",
                            "the hub could not sign a grant for this provider".to_owned(),
                        ))
                    }
                    (Some((ProviderConnection::Inbound { endpoint }, limit)), Ok(grant)) => {
                        self.fetch(&endpoint, &grant, limit).await
                    }
                    (Some((ProviderConnection::Outbound, limit)), Ok(grant)) => {
                        self.fetch_outbound(&provider, grant, limit).await
                    }
                    (None, Ok(_)) => Err((
                        "provider-unreachable",
                        "the provider has no endpoint".to_owned(),
                    )),
                };
                (provider, categories, outcome)
            }
        });
        let outcomes = join_all(fetches).await;
        let providers = outcomes
            .into_iter()
            .map(|(provider, categories, outcome)| {
                let signing_keys = approved
                    .get(&provider)
                    .and_then(|p| serde_json::to_value(&p.signing_keys).ok())
                    .unwrap_or_else(|| serde_json::json!({ "keys": [] }));
                let (status, payload, detail) = match outcome {
                    Ok(sealed) => ("ok".to_owned(), Some(sealed.into()), None),
                    Err((status, detail)) => {
                        tracing::warn!(provider = %provider, status, "a disclosure's provider part is missing");
                        (status.to_owned(), None, Some(detail))
                    }
                };
                ProviderPart {
                    provider: provider.to_string(),
                    categories: categories.iter().map(ToString::to_string).collect(),
                    status,
                    payload,
                    detail,
                    signing_keys,
                }
            })
            .collect();
        let consents = self.consents_with_receipts(resident).await?;
        let checkpoint = self.checkpoint_covering(record.seq).await?;
        let (entries, views) = self.history_at(resident, &checkpoint).await?;
        Ok(DisclosurePackage {
            format: PACKAGE_FORMAT.to_owned(),
            disclosure_id: disclosure.request.to_string(),
            resident: resident.to_string(),
            issuer: self.config().issuer.clone(),
            issued_at: Utc::now(),
            recipient_key: recipient_key.to_owned(),
            log: PackageLog {
                checkpoint: checkpoint.note,
                verifier_key: self.keys().log.verifier_key(),
                entries: views,
            },
            jwks: serde_json::to_value(self.keys().jwks()).unwrap_or_default(),
            consents,
            recipients: package::recipients_of(&entries),
            providers,
        })
    }

    /// A grant with the basis `data-subject-access`: to the data subject, sealed to their key.
    async fn disclosure_grant(
        &self,
        disclosure: RequestId,
        provider: &ProviderId,
        reference: &str,
        categories: &[CategoryId],
        recipient_key: &str,
    ) -> Result<String, HubError> {
        let now = Utc::now();
        let lifetime = i64::try_from(self.config().grant_lifetime.as_secs())
            .unwrap_or(30)
            .clamp(1, 60);
        let claims = GrantClaims {
            iss: self.config().issuer.clone(),
            aud: provider.clone(),
            sub: reference.to_owned(),
            jti: uuid::Uuid::new_v4(),
            iat: now.timestamp(),
            exp: now.timestamp() + lifetime,
            request_id: disclosure,
            service: ServiceId::data_subject(),
            purpose: PurposeId::data_subject_access(),
            purpose_version: 1,
            categories: categories.to_vec(),
            service_hpke_key: recipient_key.to_owned(),
            consent: None,
            emergency: None,
            basis: DATA_SUBJECT_ACCESS.to_owned(),
            location: BTreeMap::new(),
        };
        self.keys()
            .sign_with(move |key| sign_grant(key, &claims))
            .await?
            .map_err(|e| HubError::internal(format!("grant signing: {e}")))
    }

    /// Every consent of the resident, newest first, each with its receipt issued anew.
    async fn consents_with_receipts(
        &self,
        resident: renkei_domain::ResidentId,
    ) -> Result<Vec<PackageConsent>, HubError> {
        let now = Utc::now();
        let mut out = Vec::new();
        for consent in self.store().consents_of(resident).await? {
            let service = self
                .store()
                .service(&consent.purpose.service)
                .await?
                .ok_or_else(|| HubError::UnknownService(consent.purpose.service.to_string()))?;
            let receipt = self
                .sign_receipt(&consent, &service, consent.granted_at)
                .await?;
            out.push(PackageConsent {
                consent: crate::consents::ConsentView::of(&consent, now),
                receipt,
            });
        }
        Ok(out)
    }

    /// The latest checkpoint once it covers log position `seq`, integrating at once if none
    /// does yet (another integration at the same time is harmless: the store keeps one).
    async fn checkpoint_covering(&self, seq: u64) -> Result<StoredCheckpoint, HubError> {
        let deadline = tokio::time::Instant::now() + CHECKPOINT_WAIT;
        let mut integrated = false;
        loop {
            if let Some(c) = self.store().latest_checkpoint().await?
                && c.size > seq
            {
                return Ok(c);
            }
            if !integrated {
                integrated = true;
                if let Err(e) =
                    crate::log::integrate_once(self.store().as_ref(), &self.keys().log).await
                {
                    tracing::warn!(error = %e, "integrating for a disclosure failed; waiting for the integrator");
                }
                continue;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(HubError::internal(
                    "no checkpoint covers the disclosure yet",
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every log entry naming the resident before `checkpoint`'s size, oldest first, with
    /// its inclusion proof against it.
    async fn history_at(
        &self,
        resident: renkei_domain::ResidentId,
        checkpoint: &StoredCheckpoint,
    ) -> Result<(Vec<LogEntry>, Vec<LogEntryView>), HubError> {
        let mut entries = Vec::new();
        let mut views = Vec::new();
        let mut after = None;
        loop {
            let rows = self
                .store()
                .resident_log(
                    resident,
                    &AccessQuery {
                        resident: Some(resident),
                        after_seq: after,
                        before_seq: Some(checkpoint.size),
                        order: LogOrder::OldestFirst,
                        limit: PAGE,
                        ..AccessQuery::default()
                    },
                )
                .await?;
            let full = rows.len() == PAGE as usize;
            let indexes: Vec<u64> = rows.iter().map(|(_, l)| l.seq).collect();
            let proofs =
                crate::log::inclusion_proofs(self.store().as_ref(), &indexes, checkpoint.size)
                    .await?;
            after = indexes.last().copied();
            for ((entry, leaf), proof) in rows.into_iter().zip(proofs) {
                views.push(crate::history::entry_view(&entry, leaf, Some(&proof)));
                entries.push(entry);
            }
            if !full {
                return Ok((entries, views));
            }
        }
    }
}

/// Everything the hub knows of me, in one file I can check offline: my consents with their
/// receipts, my whole history in the signed log with inclusion proofs against a checkpoint,
/// the services that received my data and when, and what each provider holds about me,
/// sealed to the key I send (the hub cannot read it). The disclosure is itself an entry of
/// the log (basis `data-subject-access`). A proxy needs requests entrusted, for every
/// service.
#[utoipa::path(post, path = "/v1/me/disclosures", request_body = DisclosureBody, security(("resident" = [])),
    responses((status = 200, body = DisclosurePackage), (status = 400, body = Problem, content_type = PROBLEM), (status = 401, body = Problem, content_type = PROBLEM), (status = 403, body = Problem, content_type = PROBLEM), (status = 415, body = Problem, content_type = PROBLEM)))]
pub(crate) async fn my_disclosure(
    State(hub): State<Hub>,
    ResidentCaller(me): ResidentCaller,
    ApiJson(body): ApiJson<DisclosureBody>,
) -> Result<Json<DisclosurePackage>, HubError> {
    Ok(Json(hub.disclose(&me, &body.recipient_key).await?))
}
