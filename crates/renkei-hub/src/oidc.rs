//! The OpenID provider (認可): discovery, the authorization code flow with PKCE (S256
//! only), ID tokens with pairwise subjects, userinfo with consented claims only, token
//! introspection (RFC 7662) and revocation (RFC 7009).
//!
//! The consent screen itself is a page (the portal renders it); this module checks the
//! authorization request, records the resident's answers as consents of the core, and
//! issues the code. Tokens issued for a code are bound to those consents: they stop
//! working the moment one is revoked, whatever their expiry.

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use renkei_domain::{
    ConsentChannel, ConsentId, ConsentState, Purpose, PurposeId, Service, ServiceId, ServiceStatus,
    SigningAlg,
};
use renkei_store::{AuthorizationCodeRecord, CodeMismatch, CodePresentation, CodeRedemption};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{
    AccessClaims, Act, ActingParty, ProxyPermission, ResidentSession, USER_AUDIENCE,
    USER_TOKEN_SECONDS, UserGrant,
};
use crate::consents::GrantConsentBody;
use crate::consents::now_ms;
use crate::{Hub, HubError};

/// How long an authorization code may wait before it is redeemed.
pub const CODE_SECONDS: i64 = 60;
/// How long an ID token is valid.
pub const ID_TOKEN_SECONDS: i64 = 600;
/// The scope that releases the verified name (`name` claim) from userinfo and the ID token.
pub const PROFILE_SCOPE: &str = "profile";

/// The query of an authorization request, as a browser brings it.
#[derive(Debug, Clone, Default, Deserialize, Serialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
pub struct AuthorizationParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    /// `openid`, optionally `profile`, and the ids of the service's purposes to ask for.
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
}

/// A checked authorization request: what the consent screen asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationRequest {
    pub service: Service,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    /// The purposes asked for, current versions, each answered on its own.
    pub purposes: Vec<Purpose>,
    /// Whether the service asks for the verified name.
    pub profile: bool,
}

/// Why an authorization request cannot go on.
#[derive(Debug)]
pub enum AuthorizeError {
    /// The client or redirect URI cannot be trusted: show the error, never redirect.
    Show(HubError),
    /// Tell the service, at this URL (its redirect URI with `error`, `state` and `iss`).
    Redirect(String),
}

/// The resident's answers on the consent screen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsentAnswers {
    /// Purposes answered はい.
    pub yes: BTreeSet<PurposeId>,
    /// Whether the verified name may be shared.
    pub share_profile: bool,
}

/// What the token endpoint returns for a code.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CodeTokens {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
    pub id_token: String,
    pub scope: String,
}

/// An RFC 7662 introspection answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Set when a proxy signed in for the resident: who acted (RFC 8693 `act`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub act: Option<ActingParty>,
}

#[derive(Serialize)]
struct IdTokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    at_hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    /// Set when a proxy signed in for the resident (RFC 8693 `act`).
    #[serde(skip_serializing_if = "Option::is_none")]
    act: Option<&'a ActingParty>,
}

/// The PKCE S256 transform (RFC 7636 §4.2).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A verifier or challenge: 43 to 128 unreserved characters (RFC 7636 §4.1).
fn is_pkce_value(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Codes are kept by hash only.
fn code_hash(code: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(code.as_bytes()))
}

/// `at_hash` (OpenID Connect Core §3.1.3.6): the left half of the access token's hash, with
/// the hash of the ID token's algorithm: SHA-256 for RS256, SHA-512 for EdDSA (Ed25519).
fn at_hash(alg: SigningAlg, access_token: &str) -> String {
    let hash = match alg {
        SigningAlg::Rs256 => Sha256::digest(access_token.as_bytes()).to_vec(),
        SigningAlg::EdDsa => Sha512::digest(access_token.as_bytes()).to_vec(),
    };
    let (left, _) = hash.split_at(hash.len() / 2);
    URL_SAFE_NO_PAD.encode(left)
}

fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let mut url = base.to_owned();
    let mut sep = if base.contains('?') { '&' } else { '?' };
    for (k, v) in pairs {
        url.push(sep);
        url.push_str(k);
        url.push('=');
        url.push_str(&urlencode(v));
        sep = '&';
    }
    url
}

fn urlencode(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl Hub {
    /// The discovery document (`/.well-known/openid-configuration`).
    pub fn openid_configuration(&self) -> serde_json::Value {
        let issuer = &self.config().issuer;
        serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/oauth/authorize"),
            "token_endpoint": format!("{issuer}/oauth/token"),
            "userinfo_endpoint": format!("{issuer}/oauth/userinfo"),
            "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
            "introspection_endpoint": format!("{issuer}/oauth/introspect"),
            "revocation_endpoint": format!("{issuer}/oauth/revoke"),
            "scopes_supported": ["openid", PROFILE_SCOPE],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "client_credentials"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": SigningAlg::ALL.map(SigningAlg::as_str),
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "name", "act"],
            "authorization_response_iss_parameter_supported": true,
        })
    }

    /// Checks an authorization request. Client and redirect URI first: until both hold,
    /// nothing is sent anywhere (RFC 6749 §4.1.2.1).
    pub async fn check_authorization_request(
        &self,
        p: &AuthorizationParams,
    ) -> Result<AuthorizationRequest, AuthorizeError> {
        let show = |msg: String| AuthorizeError::Show(HubError::oauth_request(msg));
        let client_id = p
            .client_id
            .as_deref()
            .ok_or_else(|| show("`client_id` is missing".into()))?;
        let service_id =
            ServiceId::new(client_id).map_err(|_| show(format!("unknown client `{client_id}`")))?;
        let service = self
            .store()
            .service(&service_id)
            .await
            .map_err(|e| AuthorizeError::Show(e.into()))?
            .ok_or_else(|| show(format!("unknown client `{client_id}`")))?;
        let client = self
            .store()
            .service_client(&service_id)
            .await
            .map_err(|e| AuthorizeError::Show(e.into()))?
            .ok_or_else(|| {
                show(format!(
                    "client `{client_id}` has no registered redirect URI"
                ))
            })?;
        let redirect_uri = p
            .redirect_uri
            .clone()
            .ok_or_else(|| show("`redirect_uri` is missing".into()))?;
        if !client.redirect_uris.contains(&redirect_uri) {
            return Err(show(format!(
                "`{redirect_uri}` is not a redirect URI registered for `{client_id}`"
            )));
        }
        // From here on the service is told, at its own redirect URI.
        let state = p.state.clone();
        let fail = |error: &str, description: &str| {
            let mut pairs = vec![("error", error), ("error_description", description)];
            if let Some(s) = &state {
                pairs.push(("state", s));
            }
            pairs.push(("iss", &self.config().issuer));
            AuthorizeError::Redirect(with_query(&redirect_uri, &pairs))
        };
        if service.status != ServiceStatus::Approved {
            return Err(fail("unauthorized_client", "the service is not approved"));
        }
        if p.response_type.as_deref() != Some("code") {
            return Err(fail(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
        let challenge = match (
            p.code_challenge.as_deref(),
            p.code_challenge_method.as_deref(),
        ) {
            (Some(c), Some("S256")) if is_pkce_value(c) => c.to_owned(),
            (Some(_), Some("S256")) => {
                return Err(fail("invalid_request", "malformed code_challenge"));
            }
            _ => {
                return Err(fail(
                    "invalid_request",
                    "PKCE is required: code_challenge with code_challenge_method=S256",
                ));
            }
        };
        let scope = p.scope.as_deref().unwrap_or_default();
        let mut words: BTreeSet<&str> = scope.split(' ').filter(|w| !w.is_empty()).collect();
        if !words.remove("openid") {
            return Err(fail("invalid_scope", "the scope must include `openid`"));
        }
        let profile = words.remove(PROFILE_SCOPE);
        let declared = self
            .store()
            .purposes(&service_id)
            .await
            .map_err(|e| AuthorizeError::Show(e.into()))?;
        let mut purposes = Vec::new();
        for word in words {
            match declared.iter().find(|d| d.id.as_str() == word) {
                Some(purpose) => purposes.push(purpose.clone()),
                None => {
                    return Err(fail(
                        "invalid_scope",
                        &format!("`{word}` is not a purpose of this service"),
                    ));
                }
            }
        }
        Ok(AuthorizationRequest {
            service,
            redirect_uri,
            state,
            nonce: p.nonce.clone(),
            code_challenge: challenge,
            purposes,
            profile,
        })
    }

    /// The redirect that tells the service the resident said no to signing in.
    pub fn deny_authorization(&self, request: &AuthorizationRequest) -> String {
        let mut pairs = vec![
            ("error", "access_denied"),
            ("error_description", "the resident declined"),
        ];
        if let Some(s) = &request.state {
            pairs.push(("state", s));
        }
        pairs.push(("iss", &self.config().issuer));
        with_query(&request.redirect_uri, &pairs)
    }

    /// Records the consent screen's answers — one consent per purpose answered yes,
    /// given through the sign-in screen (or by the proxy) — and issues the code. Returns the
    /// redirect URL that carries it to the service.
    pub async fn complete_authorization(
        &self,
        session: &ResidentSession,
        request: &AuthorizationRequest,
        answers: &ConsentAnswers,
    ) -> Result<String, HubError> {
        // Signing in for someone is its own permission, for the services entrusted, whatever
        // else the answers do: reuse consents, ask for `openid` alone, or share the name.
        session.require(ProxyPermission::SignInToServices, Some(&request.service.id))?;
        let resident = session.resident;
        let now = now_ms();
        let existing = self.store().consents_of(resident).await?;
        let mut consents: Vec<ConsentId> = Vec::new();
        let mut granted_scope = vec!["openid".to_owned()];
        for purpose in &request.purposes {
            if !answers.yes.contains(&purpose.id) {
                continue;
            }
            let reference = purpose.reference();
            let active = existing
                .iter()
                .find(|c| c.purpose == reference && c.state_at(now) == ConsentState::Active);
            let id = match active {
                Some(c) => c.id,
                None => {
                    session.require(ProxyPermission::ManageConsents, Some(&request.service.id))?;
                    let granted = self
                        .grant_consent(
                            resident,
                            GrantConsentBody {
                                service: request.service.id.to_string(),
                                purpose: purpose.id.to_string(),
                                valid_days: None,
                            },
                            session.channel(ConsentChannel::SignInScreen),
                            session.actor(),
                        )
                        .await?;
                    granted
                        .consent
                        .id
                        .parse()
                        .map_err(|_| HubError::internal("a consent id did not parse"))?
                }
            };
            consents.push(id);
            granted_scope.push(purpose.id.to_string());
        }
        if request.profile && answers.share_profile {
            granted_scope.push(PROFILE_SCOPE.to_owned());
        }
        let subject = self.keys().subject(&request.service.sector, resident);
        self.store()
            .link_subject(&request.service.sector, &subject, resident)
            .await?;
        let code = URL_SAFE_NO_PAD.encode(crate::auth::random_bytes());
        self.store()
            .put_authorization_code(&AuthorizationCodeRecord {
                code_hash: code_hash(&code),
                service: request.service.id.clone(),
                resident,
                redirect_uri: request.redirect_uri.clone(),
                code_challenge: request.code_challenge.clone(),
                nonce: request.nonce.clone(),
                scope: granted_scope.join(" "),
                consents,
                acting_proxy: session.proxy.as_ref().map(|a| a.proxy),
                acting_appointment: session.proxy.as_ref().map(|a| a.id),
                auth_time: now,
                expires_at: now + TimeDelta::seconds(CODE_SECONDS),
            })
            .await?;
        let mut pairs = vec![("code", code.as_str())];
        if let Some(s) = &request.state {
            pairs.push(("state", s));
        }
        pairs.push(("iss", &self.config().issuer));
        Ok(with_query(&request.redirect_uri, &pairs))
    }

    /// The token endpoint's `authorization_code` grant, for an authenticated client.
    pub async fn redeem_code(
        &self,
        client: &ServiceId,
        code: Option<&str>,
        redirect_uri: Option<&str>,
        verifier: Option<&str>,
    ) -> Result<CodeTokens, HubError> {
        let code = code.ok_or_else(|| HubError::oauth_request("`code` is missing"))?;
        let now = now_ms();
        // Checked by storage against the code before anything is written: a code presented by
        // another client, to another redirect URI or without its verifier stays as it was.
        let presented = CodePresentation {
            client: client.clone(),
            redirect_uri: redirect_uri.map(str::to_owned),
            code_challenge: verifier.filter(|v| is_pkce_value(v)).map(pkce_challenge),
        };
        let record = match self
            .store()
            .redeem_authorization_code(&code_hash(code), &presented, now)
            .await?
        {
            CodeRedemption::Redeemed(r) => *r,
            CodeRedemption::Reused => {
                return Err(HubError::invalid_grant(
                    "the code was already used; the tokens issued for it are revoked",
                ));
            }
            CodeRedemption::Mismatch(CodeMismatch::Client) => {
                return Err(HubError::invalid_grant(
                    "the code was issued to another client",
                ));
            }
            CodeRedemption::Mismatch(CodeMismatch::RedirectUri) => {
                return Err(HubError::invalid_grant(
                    "`redirect_uri` differs from the authorization request's",
                ));
            }
            CodeRedemption::Mismatch(CodeMismatch::Verifier) => {
                return Err(HubError::invalid_grant(
                    "a `code_verifier` matching the code challenge is required",
                ));
            }
            CodeRedemption::Expired => return Err(HubError::invalid_grant("the code expired")),
            CodeRedemption::Unknown => return Err(HubError::invalid_grant("unknown code")),
        };
        let service = self.approved_service(client).await?;
        let actor = self
            .acting_party(&record, &service)
            .await
            .map_err(|e| match e {
                HubError::TokenInactive => HubError::invalid_grant(
                    "the proxy appointment the code was issued under has ended",
                ),
                e => e,
            })?;
        let alg = self
            .store()
            .service_client(client)
            .await?
            .map(|c| c.id_token_signed_response_alg)
            .unwrap_or_default();
        let subject = self.keys().subject(&service.sector, record.resident);
        let grant = UserGrant {
            service: client.clone(),
            subject: subject.to_string(),
            scope: record.scope.clone(),
            consents: record.consents.clone(),
            code_hash: record.code_hash.clone(),
            actor,
        };
        let access_token = self.keys().issue_user_token(&grant, now)?;
        let name = if has_scope(&record.scope, PROFILE_SCOPE) {
            self.verified_name(record.resident).await?
        } else {
            None
        };
        let claims = IdTokenClaims {
            iss: &self.config().issuer,
            sub: subject.as_str(),
            aud: client.as_str(),
            exp: now.timestamp() + ID_TOKEN_SECONDS,
            iat: now.timestamp(),
            auth_time: record.auth_time.timestamp(),
            nonce: record.nonce.as_deref(),
            at_hash: at_hash(alg, &access_token),
            name,
            act: grant.actor.as_ref(),
        };
        let id_token = self.keys().sign_id_token(alg, &claims, now).await?;
        Ok(CodeTokens {
            access_token,
            token_type: "Bearer".into(),
            expires_in: USER_TOKEN_SECONDS,
            id_token,
            scope: record.scope,
        })
    }

    /// The name a resident's enrolment proved, if they enrolled with a card.
    pub async fn verified_name(
        &self,
        resident: renkei_domain::ResidentId,
    ) -> Result<Option<String>, HubError> {
        Ok(self.store().enrolment_of(resident).await?.and_then(|e| {
            e.attributes
                .get("name")
                .and_then(|n| n.as_str())
                .map(str::to_owned)
        }))
    }

    /// Who acted for the resident when the code was issued to a proxy, as `service` knows
    /// them; `None` when the resident signed in themselves. `TokenInactive` once the
    /// appointment has ended: everything issued under it ends with it.
    async fn acting_party(
        &self,
        record: &AuthorizationCodeRecord,
        service: &Service,
    ) -> Result<Option<ActingParty>, HubError> {
        let id = match (record.acting_appointment, record.acting_proxy) {
            (None, None) => return Ok(None),
            (Some(id), _) => id,
            // A proxy acted, but under which appointment was not recorded: nothing to check
            // it against, so nothing is issued on it.
            (None, Some(_)) => return Err(HubError::TokenInactive),
        };
        match self.store().proxy_appointment(id).await? {
            Some(a)
                if a.resident == record.resident
                    && self.appointment_holds(&a, chrono::Utc::now()).await? =>
            {
                Ok(Some(ActingParty {
                    sub: self.keys().subject(&service.sector, a.proxy).to_string(),
                }))
            }
            _ => Err(HubError::TokenInactive),
        }
    }

    /// Whether a code-flow token still holds: not revoked (nor its code), its service
    /// approved, every consent it was issued under still active, and, when a proxy signed in,
    /// their appointment not ended. Read from storage on every use, so a revocation,
    /// suspension or ended appointment takes effect at once.
    pub(crate) async fn user_token_active(
        &self,
        claims: &AccessClaims,
    ) -> Result<UserGrant, HubError> {
        let (Some(client), Some(cid)) = (&claims.client_id, &claims.cid) else {
            return Err(HubError::Unauthorized);
        };
        let service = ServiceId::new(client.clone()).map_err(|_| HubError::Unauthorized)?;
        if self.store().token_revoked(&claims.jti, Some(cid)).await? {
            return Err(HubError::TokenInactive);
        }
        let approved = match self.store().service(&service).await? {
            Some(s) if s.status == ServiceStatus::Approved => s,
            _ => return Err(HubError::TokenInactive),
        };
        let consents = claims.consents.clone().unwrap_or_default();
        let now = Utc::now();
        for id in &consents {
            match self.store().consent(*id).await? {
                Some(c) if c.state_at(now) == ConsentState::Active => {}
                _ => return Err(HubError::TokenInactive),
            }
        }
        // The token says whether a proxy acted (it is signed: a token without `act` was
        // issued to the resident themselves); only then is the appointment read.
        let actor = match &claims.act {
            None => None,
            Some(Act::Actor(said)) => {
                let record = self
                    .store()
                    .authorization_code(cid)
                    .await?
                    .ok_or(HubError::TokenInactive)?;
                match self.acting_party(&record, &approved).await? {
                    Some(now) if now == *said => Some(now),
                    _ => return Err(HubError::TokenInactive),
                }
            }
            Some(Act::Appointment(_)) => return Err(HubError::Unauthorized),
        };
        Ok(UserGrant {
            service,
            subject: claims.sub.clone(),
            scope: claims.scope.clone().unwrap_or_default(),
            consents,
            code_hash: cid.clone(),
            actor,
        })
    }
}

fn has_scope(scope: &str, word: &str) -> bool {
    scope.split(' ').any(|w| w == word)
}

mod tokens;

#[cfg(test)]
mod tests;
