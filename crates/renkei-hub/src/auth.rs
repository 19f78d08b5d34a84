//! The hub's own secrets and the bearer tokens it issues to services and residents.
//!
//! Access tokens are only ever checked by the hub itself, so they are HS256 JWTs under a
//! key every replica shares through storage: cheap to check on every request. What a token
//! may do is decided afresh each time (consents, service status), never from the token.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::{HeaderMap, header, request::Parts};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use renkei_domain::{
    Actor, ConsentChannel, ConsentId, OperatorId, ProxyAppointment, ResidentId, ServiceId,
    ServiceSubject,
};
use renkei_protocol::keys::{Jwks, SigningKey};
use renkei_store::Store;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Hub;
use crate::HubError;
use crate::kek::Kek;
use crate::signing_keys::LoadedKeys;

/// How long a service's access token lasts.
pub const SERVICE_TOKEN_SECONDS: i64 = 300;
/// How long a resident's (demo) session token lasts.
pub const RESIDENT_TOKEN_SECONDS: i64 = 3600;

/// How long a code-flow access token lasts (what it may do is checked on every use).
pub const USER_TOKEN_SECONDS: i64 = 300;

pub(crate) const SERVICE_AUDIENCE: &str = "renkei:service";
const RESIDENT_AUDIENCE: &str = "renkei:resident";
const OPERATOR_AUDIENCE: &str = "renkei:operator";
pub(crate) const USER_AUDIENCE: &str = "renkei:user";
pub(crate) const PROVIDER_AUDIENCE: &str = "renkei:provider";

/// The keys every replica shares (kept in storage, created on first start).
pub struct HubKeys {
    /// The keys that sign what others verify (Ed25519, and RSA for RS256 ID tokens;
    /// rotated, see `signing_keys`).
    pub signing: LoadedKeys,
    token_encoding: EncodingKey,
    token_decoding: DecodingKey,
    pairwise: Vec<u8>,
    /// Signs the transparency log's checkpoints.
    pub log: crate::log::LogIdentity,
}

impl HubKeys {
    /// Opens the keys in `store` with `kek` (first wrapping any a database from before KEKs
    /// holds in plain text), creating those it lacks. Fails, creating nothing, when a stored
    /// secret does not open under `kek`.
    pub async fn load(
        store: &dyn Store,
        issuer: &str,
        kek: Arc<Kek>,
        token: Option<Arc<crate::pkcs11::Token>>,
        now: DateTime<Utc>,
    ) -> Result<Self, HubError> {
        renkei_protocol::keys::install_crypto_provider();
        crate::kek::seal_stored_secrets(store, &kek).await?;
        let secret = |name: &'static str| {
            let kek = kek.clone();
            async move { crate::kek::ensure_secret(store, &kek, name, &random_bytes(), now).await }
        };
        let access = secret("access-token-key").await?;
        let pairwise = secret("pairwise-subject-key").await?.to_vec();
        let log_seed = secret("log-signing-seed").await?;
        let log = crate::log::LogIdentity::new(issuer, &log_seed)?;
        let signing = LoadedKeys::load(store, kek, token, now).await?;
        Ok(Self {
            log,
            signing,
            token_encoding: EncodingKey::from_secret(&access),
            token_decoding: DecodingKey::from_secret(&access),
            pairwise,
        })
    }

    /// The Ed25519 key that signs receipts, grants and events now.
    pub fn signing_key(&self) -> Arc<SigningKey> {
        self.signing.ring().signing_key(Utc::now())
    }

    /// Runs `sign` with the Ed25519 key that signs now: at once for a key in memory, on a
    /// blocking thread for one in a PKCS#11 token (each call into it blocks).
    pub async fn sign_with<R: Send + 'static>(
        &self,
        sign: impl FnOnce(&SigningKey) -> R + Send + 'static,
    ) -> Result<R, HubError> {
        let key = self.signing_key();
        if !key.is_external() {
            return Ok(sign(&key));
        }
        tokio::task::spawn_blocking(move || sign(&key))
            .await
            .map_err(|e| HubError::internal(format!("signing panicked: {e}")))
    }

    /// Signs `claims` as an ID token with the `alg` key that signs at `now` (on a blocking
    /// thread if that key is in a token).
    pub async fn sign_id_token<T: serde::Serialize>(
        &self,
        alg: renkei_domain::SigningAlg,
        claims: &T,
        now: DateTime<Utc>,
    ) -> Result<String, HubError> {
        let ring = self.signing.ring();
        let failed =
            |e: renkei_protocol::SignError| HubError::internal(format!("id token signing: {e}"));
        if !ring.id_token_key(alg, now).is_external() {
            return renkei_protocol::sign_jwt(ring.id_token_key(alg, now), claims).map_err(failed);
        }
        let claims = serde_json::to_value(claims)
            .map_err(|e| HubError::internal(format!("id token claims: {e}")))?;
        tokio::task::spawn_blocking(move || {
            renkei_protocol::sign_jwt(ring.id_token_key(alg, now), &claims)
        })
        .await
        .map_err(|e| HubError::internal(format!("signing panicked: {e}")))?
        .map_err(failed)
    }

    /// The published keys (`/.well-known/jwks.json`).
    pub fn jwks(&self) -> Jwks {
        self.signing.ring().jwks().clone()
    }

    /// The resident's pairwise subject for services of `sector`: stable within a sector,
    /// unlinkable across sectors without the hub's key.
    #[expect(
        clippy::unreachable,
        reason = "HMAC takes keys of any length; its base64url output is a valid subject"
    )]
    pub fn subject(&self, sector: &str, resident: ResidentId) -> ServiceSubject {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.pairwise)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(sector.as_bytes());
        mac.update(&[0]);
        mac.update(resident.as_uuid().as_bytes());
        let encoded = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        ServiceSubject::new(encoded)
            .unwrap_or_else(|_| unreachable!("43 base64url characters are a valid subject"))
    }

    pub fn issue_service_token(
        &self,
        service: &ServiceId,
        now: DateTime<Utc>,
    ) -> Result<String, HubError> {
        self.issue(&AccessClaims::new(
            service.as_str(),
            SERVICE_AUDIENCE,
            now,
            SERVICE_TOKEN_SECONDS,
        ))
    }

    pub fn issue_resident_token(
        &self,
        resident: ResidentId,
        now: DateTime<Utc>,
    ) -> Result<String, HubError> {
        self.issue(&AccessClaims::new(
            &resident.to_string(),
            RESIDENT_AUDIENCE,
            now,
            RESIDENT_TOKEN_SECONDS,
        ))
    }

    /// A session in which `appointment.proxy` acts for `appointment.resident`.
    pub fn issue_proxy_token(
        &self,
        appointment: &ProxyAppointment,
        now: DateTime<Utc>,
    ) -> Result<String, HubError> {
        let mut claims = AccessClaims::new(
            &appointment.resident.to_string(),
            RESIDENT_AUDIENCE,
            now,
            RESIDENT_TOKEN_SECONDS,
        );
        claims.act = Some(Act::Appointment(appointment.id.to_string()));
        self.issue(&claims)
    }

    /// A data provider's token for the provider routes (after its client assertion).
    pub fn issue_provider_token(
        &self,
        provider: &renkei_domain::ProviderId,
        now: DateTime<Utc>,
    ) -> Result<String, HubError> {
        self.issue(&AccessClaims::new(
            provider.as_str(),
            PROVIDER_AUDIENCE,
            now,
            crate::provider_sync::PROVIDER_TOKEN_SECONDS,
        ))
    }

    pub fn issue_operator_token(
        &self,
        operator: &OperatorId,
        now: DateTime<Utc>,
    ) -> Result<String, HubError> {
        self.issue(&AccessClaims::new(
            operator.as_str(),
            OPERATOR_AUDIENCE,
            now,
            RESIDENT_TOKEN_SECONDS,
        ))
    }

    /// An access token a service holds for one resident after the code flow: bound to the
    /// consents given on the consent screen and to the code it was issued for.
    pub fn issue_user_token(
        &self,
        grant: &UserGrant,
        now: DateTime<Utc>,
    ) -> Result<String, HubError> {
        let mut claims = AccessClaims::new(&grant.subject, USER_AUDIENCE, now, USER_TOKEN_SECONDS);
        claims.client_id = Some(grant.service.to_string());
        claims.scope = Some(grant.scope.clone());
        claims.consents = Some(grant.consents.clone());
        claims.cid = Some(grant.code_hash.clone());
        claims.act = grant.actor.clone().map(Act::Actor);
        self.issue(&claims)
    }

    fn issue(&self, claims: &AccessClaims) -> Result<String, HubError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.token_encoding)
            .map_err(|e| HubError::internal(format!("token signing: {e}")))
    }

    /// The claims of a token this hub issued for `aud`, if its signature and times hold.
    pub(crate) fn check(&self, token: &str, aud: &str) -> Result<AccessClaims, HubError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[aud]);
        validation.leeway = 5;
        jsonwebtoken::decode::<AccessClaims>(token, &self.token_decoding, &validation)
            .map(|data| data.claims)
            .map_err(|_| HubError::Unauthorized)
    }
}

/// What a code-flow access token is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserGrant {
    pub service: ServiceId,
    /// The resident's pairwise subject for the service's sector.
    pub subject: String,
    pub scope: String,
    pub consents: Vec<ConsentId>,
    /// The hash of the authorization code the token was issued for.
    pub code_hash: String,
    /// Set when a proxy signed in for the resident: who acted, as the service knows them.
    pub actor: Option<ActingParty>,
}

/// Who acted for the resident, as a service is told (RFC 8693 §4.1's `act` claim): the
/// proxy's pairwise subject in the service's sector, so the service can tell one proxy from
/// another (and knows them if they use it themselves) but learns nothing the hub's resident
/// ids would link across sectors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ActingParty {
    pub sub: String,
}

/// The `act` claim of the hub's bearer tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum Act {
    /// In a resident session: the proxy appointment it acts under, by id (checked on every
    /// use; never shown to a service).
    Appointment(String),
    /// In a code-flow token issued while a proxy acted: who acted, as the service knows them.
    Actor(ActingParty),
}

/// The claims of every bearer token the hub issues; which optional members are set
/// depends on the audience.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AccessClaims {
    pub sub: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    /// Who acts for the resident (RFC 8693's `act`): in a resident session the proxy
    /// appointment by reference, in a code-flow token the proxy as the service knows them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Act>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consents: Option<Vec<ConsentId>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cid: Option<String>,
}

impl AccessClaims {
    fn new(sub: &str, aud: &str, now: DateTime<Utc>, seconds: i64) -> Self {
        Self {
            sub: sub.to_owned(),
            aud: aud.to_owned(),
            iat: now.timestamp(),
            exp: now.timestamp() + seconds,
            jti: uuid::Uuid::new_v4().to_string(),
            act: None,
            client_id: None,
            scope: None,
            consents: None,
            cid: None,
        }
    }
}

/// 256 random bits: secrets, codes and challenges.
pub(crate) fn random_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// A new client secret (shown once) and the hash the hub keeps.
pub fn new_client_secret() -> (String, String) {
    let secret = URL_SAFE_NO_PAD.encode(random_bytes());
    let hash = hash_client_secret(&secret);
    (secret, hash)
}

/// Client secrets are 256-bit random strings, so a plain SHA-256 is enough to keep them
/// useless to whoever reads the database.
pub fn hash_client_secret(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bearer token of an `Authorization` header.
pub(crate) fn bearer(headers: &axum::http::HeaderMap) -> Result<&str, HubError> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or(HubError::Unauthorized)
}

/// The service a data request comes from, proven by its bearer token: a client-credentials
/// token, or a code-flow token it holds for one resident (then still active, see
/// `Hub::user_token_active`).
///
/// A client-credentials token's revocation is not read here: its `jti` goes into the
/// decision, which reads the revoked tokens in its own batch transaction (as it reads the
/// consents), so a token revoked before the request started is refused all the same.
#[derive(Debug, Clone)]
pub struct DataRequester {
    pub service: ServiceId,
    /// For a code-flow token: the resident's pairwise subject it was issued for.
    pub on_behalf_of: Option<String>,
    /// The client-credentials token's `jti`, for the decision to check; `None` for a
    /// code-flow token (checked here, with its consents and code).
    pub token_id: Option<String>,
}

impl DataRequester {
    /// Authenticates a data request's bearer token (the route's guard does, see `routes.rs`).
    pub(crate) async fn authenticate(hub: &Hub, headers: &HeaderMap) -> Result<Self, HubError> {
        let token = bearer(headers)?;
        if let Ok(claims) = hub.keys().check(token, SERVICE_AUDIENCE) {
            let service = ServiceId::new(claims.sub).map_err(|_| HubError::Unauthorized)?;
            return Ok(Self {
                service,
                on_behalf_of: None,
                token_id: Some(claims.jti),
            });
        }
        let claims = hub.keys().check(token, USER_AUDIENCE)?;
        let grant = hub.user_token_active(&claims).await?;
        Ok(Self {
            service: grant.service,
            on_behalf_of: Some(grant.subject),
            token_id: None,
        })
    }
}

/// The caller the route's guard admitted (`routes.rs`), put in the request's extensions by
/// it. A handler asking for one on a route whose access does not admit such callers gets an
/// internal error, never a caller nobody checked.
pub(crate) fn admitted<T: Clone + Send + Sync + 'static>(
    parts: &Parts,
    kind: &str,
) -> Result<T, HubError> {
    parts
        .extensions
        .get::<T>()
        .cloned()
        .ok_or_else(|| HubError::internal(format!("the route's access admits no {kind}")))
}

impl FromRequestParts<Hub> for DataRequester {
    type Rejection = HubError;

    async fn from_request_parts(parts: &mut Parts, _: &Hub) -> Result<Self, HubError> {
        admitted(parts, "service token")
    }
}

/// What a proxy may be asked to do; residents themselves may do all of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyPermission {
    ManageConsents,
    ViewHistory,
    FileRequests,
    /// Reading consents (list, detail, receipt): managing consents or viewing the history
    /// allows it (see [`renkei_domain::ProxyScope::may_view_consents`]).
    ViewConsents,
    /// Signing in to a service as the resident (OpenID Connect): its own permission, since it
    /// releases whatever the resident's consents to that service and the name release allow.
    SignInToServices,
    /// Passkeys and proxy appointments: never delegated.
    ManageAccount,
}

/// A signed-in resident, or a proxy acting for one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResidentSession {
    /// Whose data and consents the session acts on.
    pub resident: ResidentId,
    /// Set when a proxy acts for the resident; still active when the session was checked.
    pub proxy: Option<ProxyAppointment>,
}

impl ResidentSession {
    pub fn resident(resident: ResidentId) -> Self {
        Self {
            resident,
            proxy: None,
        }
    }

    /// Who is acting, as consent records and access records name them.
    pub fn actor(&self) -> Actor {
        match &self.proxy {
            Some(a) => Actor::Proxy { proxy: a.proxy },
            None => Actor::Resident,
        }
    }

    /// The channel a consent given in this session came through.
    pub fn channel(&self, own: ConsentChannel) -> ConsentChannel {
        if self.proxy.is_some() {
            ConsentChannel::Proxy
        } else {
            own
        }
    }

    /// Refuses what the resident did not entrust to their proxy.
    pub fn require(
        &self,
        permission: ProxyPermission,
        service: Option<&ServiceId>,
    ) -> Result<(), HubError> {
        let Some(appointment) = &self.proxy else {
            return Ok(());
        };
        let scope = &appointment.scope;
        let allowed = match permission {
            ProxyPermission::ManageConsents => scope.manage_consents,
            ProxyPermission::ViewHistory => scope.view_history,
            ProxyPermission::FileRequests => scope.file_requests,
            ProxyPermission::ViewConsents => scope.may_view_consents(),
            ProxyPermission::SignInToServices => scope.sign_in_to_services,
            ProxyPermission::ManageAccount => false,
        } && service.is_none_or(|s| scope.covers_service(s));
        if allowed {
            Ok(())
        } else {
            Err(not_entrusted())
        }
    }

    /// [`Self::require`] for an act about `service`, or about the hub itself (`None`), which
    /// concerns every service: a proxy needs a scope over all services for that.
    pub fn require_about(
        &self,
        permission: ProxyPermission,
        service: Option<&ServiceId>,
    ) -> Result<(), HubError> {
        self.require(permission, service)?;
        if self.covers(service) {
            Ok(())
        } else {
            Err(not_entrusted())
        }
    }

    /// Whether the session may see what concerns `service`, or the hub itself (`None`):
    /// always for the resident, within the scope's services for a proxy.
    pub fn covers(&self, service: Option<&ServiceId>) -> bool {
        self.proxy.as_ref().is_none_or(|a| a.scope.covers(service))
    }

    /// The services a proxy's scope is limited to; `None` when the session sees every service
    /// (the resident, or a proxy for all services).
    pub fn services(&self) -> Option<&std::collections::BTreeSet<ServiceId>> {
        self.proxy
            .as_ref()
            .map(|a| &a.scope.services)
            .filter(|s| !s.is_empty())
    }
}

fn not_entrusted() -> HubError {
    HubError::Forbidden("the resident did not entrust this to their proxy".into())
}

impl Hub {
    /// The session a resident token stands for. A proxy's session ends the moment the
    /// resident ends the appointment; any session ends when it is signed out
    /// ([`Hub::end_session`]).
    pub async fn resident_session(&self, token: &str) -> Result<ResidentSession, HubError> {
        let claims = self.keys().check(token, RESIDENT_AUDIENCE)?;
        let resident: ResidentId = claims.sub.parse().map_err(|_| HubError::Unauthorized)?;
        if self.store().token_revoked(&claims.jti, None).await? {
            return Err(HubError::TokenInactive);
        }
        let act = match claims.act {
            None => return Ok(ResidentSession::resident(resident)),
            Some(Act::Appointment(act)) => act,
            Some(Act::Actor(_)) => return Err(HubError::Unauthorized),
        };
        let id = act.parse().map_err(|_| HubError::Unauthorized)?;
        match self.store().proxy_appointment(id).await? {
            // A parent's authority ends with the child's minority: judged now, at each use.
            Some(a) if a.resident == resident && self.appointment_holds(&a, Utc::now()).await? => {
                Ok(ResidentSession {
                    resident,
                    proxy: Some(a),
                })
            }
            _ => Err(HubError::TokenInactive),
        }
    }

    /// Signs a resident's (or a proxy's) session out for good: its token stops working now,
    /// wherever it was copied to, not at its expiry. A token that does not check (expired,
    /// foreign, malformed) has nothing to end and is ignored.
    pub async fn end_session(&self, token: &str) -> Result<(), HubError> {
        let Ok(claims) = self.keys().check(token, RESIDENT_AUDIENCE) else {
            return Ok(());
        };
        let now = Utc::now();
        let expires = DateTime::from_timestamp(claims.exp, 0).unwrap_or(now);
        self.store().revoke_token(&claims.jti, expires, now).await?;
        Ok(())
    }

    /// The operator an operator token stands for, if their account still exists: a valid
    /// signature shows only that the token key signed it, so every operator request also
    /// reads the operators table (an account removed there stops its tokens at once).
    ///
    /// Counter staff's accounts are refused here as if they were not operators: they reach
    /// only the counter's routes ([`Hub::staff_session`]).
    pub async fn operator_session(&self, token: &str) -> Result<OperatorId, HubError> {
        let operator = self.operator_account(token).await?;
        match operator.role {
            renkei_domain::OperatorRole::Operator => Ok(operator.id),
            renkei_domain::OperatorRole::CounterStaff => Err(HubError::Unauthorized),
        }
    }

    /// The account an operator token stands for, whatever its role, if it still exists.
    pub(crate) async fn operator_account(
        &self,
        token: &str,
    ) -> Result<renkei_domain::Operator, HubError> {
        let claims = self.keys().check(token, OPERATOR_AUDIENCE)?;
        let id = OperatorId::new(claims.sub).map_err(|_| HubError::Unauthorized)?;
        self.store()
            .operator(&id)
            .await?
            .ok_or(HubError::Unauthorized)
    }
}

/// The resident a request comes from (or a proxy acting for them), proven by their bearer
/// token and admitted by the route's access.
#[derive(Debug, Clone)]
pub struct ResidentCaller(pub ResidentSession);

impl FromRequestParts<Hub> for ResidentCaller {
    type Rejection = HubError;

    async fn from_request_parts(parts: &mut Parts, _: &Hub) -> Result<Self, HubError> {
        admitted(parts, "resident")
    }
}

/// A city operator, proven by their bearer token and admitted by the route's access.
#[derive(Debug, Clone)]
pub struct OperatorCaller(pub OperatorId);

impl FromRequestParts<Hub> for OperatorCaller {
    type Rejection = HubError;

    async fn from_request_parts(parts: &mut Parts, _: &Hub) -> Result<Self, HubError> {
        admitted(parts, "operator")
    }
}
