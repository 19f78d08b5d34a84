//! The authorization matrix: every route the binary serves (the API, the resident portal and
//! the operator console, as `renkei::run::routed_app` builds them) called by every kind of
//! caller, each answer checked against what the route table (`renkei_hub::routes`) says that
//! caller may do.
//!
//! One hub on SQLite in a temporary directory, requests in-process. Each cell gets fresh
//! credentials and, for routes that use something up (a consent revoked, an appointment
//! ended, a passkey removed, a code accepted), a fresh one of that thing, so no cell depends
//! on another. Path parameters and bodies name real things of the resident (Alice), so that
//! a caller the table admits really reaches the handler and is answered by it: that answer
//! must not be a refusal; a caller the table does not admit must be refused (401/403, the
//! "not found" the hub answers for another resident's things, or, on pages, a way to the
//! sign-in page). Portal forms carry a valid CSRF token, so that CSRF is not what refuses
//! them.
mod counter;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::Utc;
use passkey::authenticator::{Authenticator, UiHint, UserCheck, UserValidationMethod};
use passkey::client::{Client, DefaultClientData};
use passkey::crypto::aws_lc_rs::AwsLcRsBackend;
use passkey::types::Passkey;
use passkey::types::ctap2::{Aaguid, Ctap2Error};
use renkei_domain::{
    Actor, CategoryId, ConsentChannel, ConsentId, DataCategory, LegalBasis, LocalizedText,
    OperatorId, ProxyAppointment, ProxyId, ProxyScope, PurposeId, ResidentId, Service,
    ServiceClient, ServiceId, ServiceStatus, SigningAlg,
};
use renkei_hub::accounts::{ProxyInvitationBody, ResidentRequestBody};
use renkei_hub::auth::{ProxyPermission, ResidentSession};
use renkei_hub::consents::GrantConsentBody;
use renkei_hub::oidc::{AuthorizationParams, ConsentAnswers, pkce_challenge};
use renkei_hub::routes::{Access, Proxies, RouteAccess};
use renkei_hub::{Hub, HubConfig, HubError};
use renkei_portal::security::{
    CSRF_COOKIE, CSRF_HEADER, OPERATOR_COOKIE, OWN_SESSION_COOKIE, SESSION_COOKIE, csrf_token,
};
use renkei_store::{PurposeDraft, SqliteStore, Store, StoredPasskey};
use serde_json::{Value, json};
use tower::ServiceExt;
use webauthn_rs::prelude::Url;

const ISSUER: &str = "https://hub.renkei-town.example.jp";
const HOST: &str = "hub.renkei-town.example.jp";
const HEALTH: &str = "health-advice";
const MOBILITY: &str = "town-mobility";
const REDIRECT_URI: &str = "https://health-advice.example/callback";
const PROVIDER: &str = "town-clinic";
/// The token the matrix's metrics scraper presents.
const SCRAPER_TOKEN: &str = "matrix-metrics-scraper-token";
/// The token the matrix's SOC presents.
const SOC_TOKEN: &str = "matrix-security-operations-token";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

// ------------------------------------------------------------------ the callers

/// A kind of caller, and what they hold.
#[derive(Clone)]
enum Kind {
    Anonymous,
    /// Alice herself.
    Resident,
    /// Someone acting for Alice under an active appointment.
    Proxy(ProxyAppointment),
    /// Someone whose appointment by Alice ended (their session token is still unexpired).
    EndedProxy(ProxyAppointment),
    /// Carol, who has nothing to do with Alice.
    OtherResident,
    /// A service's client credentials and client-credentials token.
    Service {
        id: ServiceId,
        secret: String,
    },
    /// A suspended service's.
    SuspendedService {
        id: ServiceId,
        secret: String,
    },
    /// A client-credentials token its service revoked (RFC 7009).
    RevokedServiceToken(String),
    /// A city operator: the operator session, and (for the routes that want it) the
    /// operator's own identity signed in.
    Operator,
    /// An operator token for an operator id that does not exist: what anyone holding the
    /// hub's token key could make (it is issued here with the hub's own key).
    GhostOperator,
    /// Counter staff (an operator account of role `counter_staff`): the counter and nothing
    /// else of what operators do.
    CounterStaff,
    /// A session of Alice's that she signed out of (at the portal).
    SignedOut(String),
    /// A code-flow access token health-advice holds for Alice.
    UserToken(String),
    /// One its service revoked.
    RevokedUserToken(String),
    /// The ID token of that code flow, presented as a bearer token.
    IdToken(String),
    /// A data provider's token (as its client assertion gets it).
    Provider,
    /// A metrics scraper with the configured metrics token.
    Scraper,
    /// The city's SOC with the configured SOC token.
    Soc,
}

#[derive(Clone)]
struct Principal {
    name: String,
    kind: Kind,
}

/// What a caller presents in one request.
#[derive(Default)]
struct Credentials {
    bearer: Option<String>,
    basic: Option<(String, String)>,
    cookies: Vec<(&'static str, String)>,
}

// ------------------------------------------------------------------ the town

struct World {
    app: Router,
    table: Vec<RouteAccess>,
    api_rows: BTreeSet<(Method, String)>,
    hub: Hub,
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
    alice: ResidentId,
    carol: ResidentId,
    dave: ResidentId,
    operator: OperatorId,
    operator_identity: ResidentId,
    staff: OperatorId,
    staff_identity: ResidentId,
    /// Alice's consent to health-advice's `advice`, which the code-flow tokens are bound to.
    advice: ConsentId,
    /// Alice's request about health-advice.
    request: String,
    /// A service waiting for review.
    pending: ServiceId,
    subject: String,
    card: renkei_identity::IssuedCertificate,
    principals: Vec<Principal>,
}

fn text(s: &str) -> LocalizedText {
    LocalizedText::new(s, s)
}

fn cat(s: &str) -> CategoryId {
    CategoryId::new(s).unwrap()
}

/// Registers a service straight in storage (as an operator's registration leaves it).
async fn put_service(
    store: &dyn Store,
    id: &str,
    sector: &str,
    status: ServiceStatus,
    purposes: &[(&str, &str)],
) -> String {
    let service = ServiceId::new(id).unwrap();
    let keys = renkei_protocol::envelope::ServiceKeyPair::generate().unwrap();
    let secret = format!("{id}-secret-{}", uuid::Uuid::new_v4());
    store
        .put_service(
            &Service {
                id: service.clone(),
                name: text(id),
                sector: sector.into(),
                hpke_public_key: keys.public_b64(),
                webhook_url: None,
                status,
            },
            &renkei_hub::auth::hash_client_secret(&secret),
        )
        .await
        .unwrap();
    store
        .put_service_client(&ServiceClient {
            service: service.clone(),
            redirect_uris: vec![format!("https://{id}.example/callback")],
            privacy_impact: Default::default(),
            registered_at: Utc::now(),
            id_token_signed_response_alg: SigningAlg::default(),
            controller: None,
        })
        .await
        .unwrap();
    for (purpose, category) in purposes {
        store
            .publish_purpose(
                &PurposeDraft {
                    service: service.clone(),
                    id: PurposeId::new(*purpose).unwrap(),
                    title: text(purpose),
                    description: text(purpose),
                    categories: BTreeSet::from([cat(category)]),
                    retention_days: 30,
                    legal_basis: LegalBasis::Consent,
                    emergency_only: false,
                    location: None,
                },
                Utc::now(),
            )
            .await
            .unwrap();
    }
    secret
}

async fn new_resident(store: &dyn Store) -> ResidentId {
    let id = ResidentId::from_uuid(uuid::Uuid::new_v4());
    store.add_resident(id, Utc::now()).await.unwrap();
    id
}

async fn appoint(
    store: &dyn Store,
    resident: ResidentId,
    proxy: ResidentId,
    scope: ProxyScope,
) -> ProxyAppointment {
    let appointment = ProxyAppointment {
        id: ProxyId::from_uuid(uuid::Uuid::new_v4()),
        resident,
        proxy,
        label: "matrix".into(),
        scope,
        appointed_at: Utc::now(),
        ended_at: None,
        representation: None,
    };
    store.appoint_proxy(&appointment).await.unwrap();
    appointment
}

/// Every permission a resident can entrust, on every service. A field added to `ProxyScope`
/// must be added here; the matrix then has a proxy entrusted with it alone.
fn full_scope() -> ProxyScope {
    ProxyScope {
        services: BTreeSet::new(),
        manage_consents: true,
        view_history: true,
        file_requests: true,
        sign_in_to_services: true,
    }
}

/// One scope per permission `ProxyScope` has, entrusting that permission alone (its fields
/// read through serde, so a new field gets its proxy), named by the field.
fn single_permission_scopes() -> Vec<(String, ProxyScope)> {
    let full = serde_json::to_value(full_scope()).unwrap();
    let fields: Vec<String> = full
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, v)| v.is_boolean())
        .map(|(k, _)| k.clone())
        .collect();
    assert!(fields.len() >= 3, "ProxyScope's permissions: {fields:?}");
    fields
        .iter()
        .map(|only| {
            let mut scope = full.clone();
            for field in &fields {
                scope[field] = Value::Bool(field == only);
            }
            (only.clone(), serde_json::from_value(scope).unwrap())
        })
        .collect()
}

/// A fresh X25519 public key, as a resident sends for a disclosure package.
fn disclosure_key() -> String {
    renkei_protocol::envelope::ServiceKeyPair::generate()
        .unwrap()
        .public_b64()
}

/// Whether `scope` entrusts `permission` (the table's words, read against the scope's fields).
fn entrusts(scope: &ProxyScope, permission: ProxyPermission) -> bool {
    match permission {
        ProxyPermission::ManageConsents => scope.manage_consents,
        ProxyPermission::ViewHistory => scope.view_history,
        ProxyPermission::FileRequests => scope.file_requests,
        ProxyPermission::ViewConsents => scope.may_view_consents(),
        ProxyPermission::SignInToServices => scope.sign_in_to_services,
        ProxyPermission::ManageAccount => false,
    }
}

/// Runs the code flow for Alice at health-advice: (access token, ID token).
async fn code_flow(hub: &Hub, alice: ResidentId) -> (String, String) {
    let params = AuthorizationParams {
        response_type: Some("code".into()),
        client_id: Some(HEALTH.into()),
        redirect_uri: Some(REDIRECT_URI.into()),
        scope: Some("openid advice".into()),
        state: Some("st".into()),
        nonce: Some("n".into()),
        code_challenge: Some(pkce_challenge(VERIFIER)),
        code_challenge_method: Some("S256".into()),
    };
    let request = match hub.check_authorization_request(&params).await {
        Ok(r) => r,
        Err(_) => panic!("the authorization request is refused"),
    };
    let answers = ConsentAnswers {
        yes: BTreeSet::from([PurposeId::new("advice").unwrap()]),
        share_profile: false,
    };
    let back = hub
        .complete_authorization(&ResidentSession::resident(alice), &request, &answers)
        .await
        .unwrap();
    let code = query_param(&back, "code").unwrap();
    let tokens = hub
        .redeem_code(
            &ServiceId::new(HEALTH).unwrap(),
            Some(&code),
            Some(REDIRECT_URI),
            Some(VERIFIER),
        )
        .await
        .unwrap();
    (tokens.access_token, tokens.id_token)
}

fn query_param(url: &str, name: &str) -> Option<String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(url.split_once('?')?.1)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

impl World {
    async fn new() -> Self {
        renkei_protocol::keys::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(&dir.path().join("hub.sqlite"))
                .await
                .unwrap(),
        );
        for (id, special_care) in [("health.checkup", true), ("payment.history", false)] {
            store
                .put_category(&DataCategory {
                    id: cat(id),
                    name: text(id),
                    special_care,
                    location: false,
                })
                .await
                .unwrap();
        }
        let health_secret = put_service(
            store.as_ref(),
            HEALTH,
            "health",
            ServiceStatus::Approved,
            &[
                ("advice", "health.checkup"),
                ("reminders", "health.checkup"),
            ],
        )
        .await;
        put_service(
            store.as_ref(),
            MOBILITY,
            "mobility",
            ServiceStatus::Approved,
            &[("rides", "payment.history")],
        )
        .await;
        // In health-advice's sector, so it knows Alice's subject: what refuses it is its status.
        let suspended_secret = put_service(
            store.as_ref(),
            "closed-shop",
            "health",
            ServiceStatus::Suspended,
            &[("offers", "payment.history")],
        )
        .await;
        let pending = ServiceId::new("waiting-room").unwrap();
        put_service(
            store.as_ref(),
            pending.as_str(),
            "health",
            ServiceStatus::Pending,
            &[("checkups", "health.checkup")],
        )
        .await;

        let ca =
            renkei_identity::DevCa::generate(renkei_identity::KeyAlgorithm::EcdsaP256).unwrap();
        let card = ca
            .issue_resident(
                &renkei_identity::IdentityAttributes::new("山田 花子"),
                renkei_identity::Validity::days_from(Utc::now(), 365),
                renkei_identity::KeyAlgorithm::EcdsaP256,
            )
            .unwrap();
        let anchors = renkei_identity::TrustAnchors::new(&[ca.root_der()]).unwrap();
        let mut config = HubConfig::new(ISSUER, renkei_hub::kek::Kek::generate());
        config.demo_mode = true;
        // The matrix's services register `.example` URLs, which resolve nowhere.
        config.allow_local_network = true;
        config.trust_anchors = Some(Arc::new(anchors));
        // Every principal calls every route from one address: the matrix is not about limits.
        config.limits = renkei_hub::limits::RateLimits::GENEROUS;
        config.metrics_token = Some(renkei_hub::metrics::MetricsToken::new(SCRAPER_TOKEN).unwrap());
        config.soc.token = Some(renkei_hub::soc::SocToken::new(SOC_TOKEN).unwrap());
        let hub = Hub::start(config, store.clone()).await.unwrap();

        let alice = new_resident(store.as_ref()).await;
        let carol = new_resident(store.as_ref()).await;
        let dave = new_resident(store.as_ref()).await;
        let operator_identity = new_resident(store.as_ref()).await;
        let operator = OperatorId::new("olga").unwrap();
        hub.add_operator(operator.clone(), "Olga".into(), operator_identity)
            .await
            .unwrap();
        let staff_identity = new_resident(store.as_ref()).await;
        let staff = OperatorId::new("sato").unwrap();
        hub.add_operator_as(
            staff.clone(),
            "佐藤".into(),
            staff_identity,
            renkei_domain::OperatorRole::CounterStaff,
        )
        .await
        .unwrap();

        let advice = hub
            .grant_consent(
                alice,
                GrantConsentBody {
                    service: HEALTH.into(),
                    purpose: "advice".into(),
                    valid_days: None,
                },
                ConsentChannel::Portal,
                Actor::Resident,
            )
            .await
            .unwrap();
        let subject = advice.subject.clone();
        let advice: ConsentId = advice.consent.id.parse().unwrap();
        let (user_token, id_token) = code_flow(&hub, alice).await;
        let (revoked_user_token, _) = code_flow(&hub, alice).await;
        let health = ServiceId::new(HEALTH).unwrap();
        hub.revoke_token(&health, &revoked_user_token)
            .await
            .unwrap();
        let revoked_service_token = hub.keys().issue_service_token(&health, Utc::now()).unwrap();
        hub.revoke_token(&health, &revoked_service_token)
            .await
            .unwrap();
        let request = hub
            .file_request(
                &ResidentSession::resident(alice),
                ResidentRequestBody {
                    kind: "disclosure".into(),
                    service: Some(HEALTH.into()),
                    category: None,
                    details: "what do you hold".into(),
                },
            )
            .await
            .unwrap()
            .id
            .to_string();

        store
            .put_provider(&renkei_domain::Provider {
                id: renkei_domain::ProviderId::new(PROVIDER).unwrap(),
                name: text("診療所"),
                // Outbound-only, so that its poll is answered; no poll waits, so a grant
                // for it fails at once, as one for a dead endpoint does.
                connection: renkei_domain::ProviderConnection::Outbound,
                categories: [cat("health.checkup")].into(),
                max_answer_bytes: None,
                signing_keys: Default::default(),
                contact: None,
                status: renkei_domain::ProviderStatus::Approved,
            })
            .await
            .unwrap();
        let mut principals = vec![
            Principal {
                name: "anonymous".into(),
                kind: Kind::Anonymous,
            },
            Principal {
                name: "a data provider".into(),
                kind: Kind::Provider,
            },
            Principal {
                name: "the metrics scraper".into(),
                kind: Kind::Scraper,
            },
            Principal {
                name: "the SOC".into(),
                kind: Kind::Soc,
            },
            Principal {
                name: "the resident".into(),
                kind: Kind::Resident,
            },
        ];
        for (field, scope) in single_permission_scopes() {
            let proxy = new_resident(store.as_ref()).await;
            principals.push(Principal {
                name: format!("their proxy entrusted with {field} only"),
                kind: Kind::Proxy(appoint(store.as_ref(), alice, proxy, scope).await),
            });
        }
        let mut scoped = full_scope();
        scoped.services = BTreeSet::from([ServiceId::new(MOBILITY).unwrap()]);
        let proxy = new_resident(store.as_ref()).await;
        principals.push(Principal {
            name: format!("their proxy entrusted with everything for {MOBILITY} only"),
            kind: Kind::Proxy(appoint(store.as_ref(), alice, proxy, scoped).await),
        });
        let proxy = new_resident(store.as_ref()).await;
        let ended = appoint(store.as_ref(), alice, proxy, full_scope()).await;
        store.end_proxy(alice, ended.id, Utc::now()).await.unwrap();
        principals.extend([
            Principal {
                name: "their proxy whose appointment ended".into(),
                kind: Kind::EndedProxy(ended),
            },
            Principal {
                name: "another resident".into(),
                kind: Kind::OtherResident,
            },
            Principal {
                name: "a service".into(),
                kind: Kind::Service {
                    id: health.clone(),
                    secret: health_secret,
                },
            },
            Principal {
                name: "a suspended service".into(),
                kind: Kind::SuspendedService {
                    id: ServiceId::new("closed-shop").unwrap(),
                    secret: suspended_secret,
                },
            },
            Principal {
                name: "a revoked service token".into(),
                kind: Kind::RevokedServiceToken(revoked_service_token),
            },
            Principal {
                name: "an operator".into(),
                kind: Kind::Operator,
            },
            Principal {
                name: "an operator id that does not exist".into(),
                kind: Kind::GhostOperator,
            },
            Principal {
                name: "counter staff".into(),
                kind: Kind::CounterStaff,
            },
            Principal {
                name: "a code-flow user token".into(),
                kind: Kind::UserToken(user_token),
            },
            Principal {
                name: "a revoked user token".into(),
                kind: Kind::RevokedUserToken(revoked_user_token),
            },
            Principal {
                name: "an ID token as bearer".into(),
                kind: Kind::IdToken(id_token),
            },
        ]);

        // The log's proofs need a signed checkpoint covering the entries above.
        let size = store.log_size().await.unwrap();
        for _ in 0..100 {
            if store
                .latest_checkpoint()
                .await
                .unwrap()
                .is_some_and(|c| c.size >= size)
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }

        let (app, table) = renkei::run::routed_app(hub.clone());
        // Alice signs out of one session at the portal: its token must stop working then,
        // not when it expires.
        let signed_out = hub.keys().issue_resident_token(alice, Utc::now()).unwrap();
        let sign_out = Credentials {
            cookies: vec![(SESSION_COOKIE, signed_out.clone())],
            ..Credentials::default()
        };
        let answer = send(
            &app,
            Method::POST,
            &sign_out,
            &Call::to("/portal/sign-out").form(&[]),
        )
        .await;
        assert!(answer.status.is_redirection(), "signing out");
        principals.push(Principal {
            name: "a session signed out of".into(),
            kind: Kind::SignedOut(signed_out),
        });
        let api_rows = renkei_hub::routed(hub.clone())
            .1
            .into_iter()
            .map(|r| (r.method, r.path))
            .collect();
        Self {
            app,
            table,
            api_rows,
            hub,
            store,
            _dir: dir,
            alice,
            carol,
            dave,
            operator,
            operator_identity,
            staff,
            staff_identity,
            advice,
            request,
            pending,
            subject,
            card,
            principals,
        }
    }

    fn credentials(&self, principal: &Principal, access: Access) -> Credentials {
        let keys = &self.hub.keys();
        let now = Utc::now();
        let resident = |id| keys.issue_resident_token(id, now).unwrap();
        let session = |token: String| Credentials {
            bearer: Some(token.clone()),
            cookies: vec![(SESSION_COOKIE, token)],
            ..Credentials::default()
        };
        let bearer = |token: &str| Credentials {
            bearer: Some(token.to_owned()),
            ..Credentials::default()
        };
        match &principal.kind {
            Kind::Anonymous => Credentials::default(),
            Kind::Resident => session(resident(self.alice)),
            Kind::SignedOut(token) => session(token.clone()),
            Kind::OtherResident => session(resident(self.carol)),
            Kind::Proxy(a) | Kind::EndedProxy(a) => {
                let mut c = session(keys.issue_proxy_token(a, now).unwrap());
                c.cookies.push((OWN_SESSION_COOKIE, resident(a.proxy)));
                c
            }
            Kind::Service { id, secret } | Kind::SuspendedService { id, secret } => {
                if access == Access::Client {
                    Credentials {
                        basic: Some((id.to_string(), secret.clone())),
                        ..Credentials::default()
                    }
                } else {
                    bearer(&keys.issue_service_token(id, now).unwrap())
                }
            }
            Kind::RevokedServiceToken(t)
            | Kind::UserToken(t)
            | Kind::RevokedUserToken(t)
            | Kind::IdToken(t) => bearer(t),
            Kind::Operator if access == Access::OperatorIdentity => {
                session(resident(self.operator_identity))
            }
            Kind::Scraper => bearer(SCRAPER_TOKEN),
            Kind::CounterStaff if access == Access::OperatorIdentity => {
                session(resident(self.staff_identity))
            }
            Kind::Soc => bearer(SOC_TOKEN),
            Kind::Provider => bearer(
                &keys
                    .issue_provider_token(&renkei_domain::ProviderId::new(PROVIDER).unwrap(), now)
                    .unwrap(),
            ),
            Kind::Operator | Kind::GhostOperator | Kind::CounterStaff => {
                let id = match principal.kind {
                    Kind::Operator => self.operator.clone(),
                    Kind::CounterStaff => self.staff.clone(),
                    _ => OperatorId::new("ghost").unwrap(),
                };
                let token = keys.issue_operator_token(&id, now).unwrap();
                Credentials {
                    bearer: Some(token.clone()),
                    cookies: vec![(OPERATOR_COOKIE, token)],
                    ..Credentials::default()
                }
            }
        }
    }

    /// Whether the table admits `principal` to a route of `access` acting on `call`'s target.
    fn admits(&self, access: Access, principal: &Principal, call: &Call) -> bool {
        let resident = |proxies: Proxies| match &principal.kind {
            Kind::Resident => true,
            // Their own things, never Alice's.
            Kind::OtherResident => !call.alices,
            Kind::Proxy(a) => {
                let entrusted = match proxies {
                    Proxies::Any => true,
                    Proxies::Entrusted(p) => entrusts(&a.scope, p),
                    Proxies::Never => false,
                };
                entrusted
                    && call
                        .service
                        .is_none_or(|s| a.scope.covers_service(&ServiceId::new(s).unwrap()))
            }
            _ => false,
        };
        match access {
            Access::Public | Access::DemoOnly => true,
            Access::Client => matches!(principal.kind, Kind::Service { .. }),
            Access::ServiceToken => {
                matches!(principal.kind, Kind::Service { .. } | Kind::UserToken(_))
            }
            Access::UserToken => matches!(principal.kind, Kind::UserToken(_)),
            Access::Resident(p) | Access::ResidentOrSignIn(p) => resident(p),
            Access::Operator => matches!(principal.kind, Kind::Operator),
            // Counter staff trade their identity for their session as operators do.
            Access::OperatorIdentity | Access::Counter => {
                matches!(principal.kind, Kind::Operator | Kind::CounterStaff)
            }
            Access::Provider => matches!(principal.kind, Kind::Provider),
            Access::Scraper => matches!(principal.kind, Kind::Scraper),
            Access::Soc => matches!(principal.kind, Kind::Soc),
        }
    }
}

// ------------------------------------------------------------------ what each route is asked

enum Payload {
    None,
    Json(Value),
    Form(Vec<(String, String)>),
}

/// One request to a route: where, with what, and what it acts on.
struct Call {
    path: String,
    payload: Payload,
    /// It names something of Alice's (another resident is refused, "not found" allowed).
    alices: bool,
    /// The service it acts on (a proxy's scope must cover it).
    service: Option<&'static str>,
    /// Statuses besides 2xx and 3xx with which a caller the table admits is answered by
    /// the handler itself (e.g. a forged passkey answer, refused by its check).
    handler_statuses: &'static [u16],
    /// Statuses besides the usual refusals with which the handler refuses a caller acting on
    /// what is not theirs (the same request from its owner succeeds).
    refusal_statuses: &'static [u16],
}

impl Call {
    fn to(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            payload: Payload::None,
            alices: false,
            service: None,
            handler_statuses: &[],
            refusal_statuses: &[],
        }
    }
    fn json(mut self, body: Value) -> Self {
        self.payload = Payload::Json(body);
        self
    }
    fn form(mut self, pairs: &[(&str, &str)]) -> Self {
        self.payload = Payload::Form(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        self
    }
    fn alices(mut self) -> Self {
        self.alices = true;
        self
    }
    fn about(mut self, service: &'static str) -> Self {
        self.service = Some(service);
        self
    }
    fn answered_with(mut self, statuses: &'static [u16]) -> Self {
        self.handler_statuses = statuses;
        self
    }
    fn refused_with(mut self, statuses: &'static [u16]) -> Self {
        self.refusal_statuses = statuses;
        self
    }
}

/// A software authenticator that always finds its user present and verified.
struct AlwaysThere;

#[async_trait::async_trait]
impl UserValidationMethod for AlwaysThere {
    type PasskeyItem = Passkey;

    async fn check_user<'a>(
        &self,
        _hint: UiHint<'a, Passkey>,
        _presence: bool,
        _verification: bool,
    ) -> Result<UserCheck, Ctap2Error> {
        Ok(UserCheck {
            presence: true,
            verification: true,
        })
    }

    fn is_verification_enabled(&self) -> Option<bool> {
        Some(true)
    }

    fn is_presence_enabled(&self) -> bool {
        true
    }
}

/// A forged WebAuthn assertion: well-formed, signed by nobody.
fn forged_assertion() -> Value {
    json!({
        "id": "AAAA", "rawId": "AAAA", "type": "public-key",
        "response": {"authenticatorData": "AAAA", "clientDataJSON": "AAAA", "signature": "AAAA", "userHandle": null},
        "extensions": {}
    })
}

impl World {
    /// A registration ceremony Alice started, and a real authenticator's answer to it.
    async fn alices_registration(&self) -> (String, Value) {
        let start = self
            .hub
            .start_passkey_registration(self.alice)
            .await
            .unwrap();
        let start = serde_json::to_value(start).unwrap();
        let options = serde_json::from_value(start["options"].clone()).unwrap();
        let mut authenticator =
            Authenticator::new(Aaguid::new_empty(), None, AlwaysThere, AwsLcRsBackend);
        authenticator.set_make_credentials_with_signature_counter(true);
        let mut device: Client<
            Option<Passkey>,
            AlwaysThere,
            AwsLcRsBackend,
            public_suffix::PublicSuffixList,
            (),
        > = Client::new(authenticator);
        let created = device
            .register(&Url::parse(ISSUER).unwrap(), options, DefaultClientData)
            .await
            .unwrap();
        (
            start["ceremony"].as_str().unwrap().to_owned(),
            serde_json::to_value(created).unwrap(),
        )
    }

    /// A passkey of Alice's, as registering leaves it (its credential is never read here).
    async fn alices_passkey(&self) -> String {
        let id = URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes());
        self.store
            .add_passkey(&StoredPasskey {
                credential_id: id.clone(),
                resident: self.alice,
                name: "phone".into(),
                passkey: json!({}),
                created_at: Utc::now(),
                last_used_at: None,
            })
            .await
            .unwrap();
        id
    }

    /// An active consent of Alice's to health-advice's `reminders` (no token is bound to it).
    async fn alices_reminders_consent(&self) -> String {
        let granted = self
            .hub
            .grant_consent(
                self.alice,
                GrantConsentBody {
                    service: HEALTH.into(),
                    purpose: "reminders".into(),
                    valid_days: None,
                },
                ConsentChannel::Portal,
                Actor::Resident,
            )
            .await;
        match granted {
            Ok(g) => g.consent.id,
            Err(HubError::ConsentAlreadyActive(id)) => id.to_string(),
            Err(e) => panic!("granting reminders: {e}"),
        }
    }

    /// An invitation Dave made, for anyone to accept.
    async fn daves_invitation(&self) -> String {
        self.hub
            .invite_proxy(
                &ResidentSession::resident(self.dave),
                ProxyInvitationBody {
                    label: "neighbour".into(),
                    scope: full_scope(),
                },
            )
            .await
            .unwrap()
            .code
            .to_string()
    }

    /// A fresh service waiting for approval, and the keys of the risks its review flags.
    async fn pending_service(&self) -> (String, Vec<String>) {
        let id = format!("svc-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        put_service(
            self.store.as_ref(),
            &id,
            "misc",
            ServiceStatus::Pending,
            &[("checkups", "health.checkup")],
        )
        .await;
        let flags = self
            .hub
            .review_service(&ServiceId::new(id.as_str()).unwrap())
            .await
            .unwrap();
        (id, flags.iter().map(|f| f.key()).collect())
    }

    /// A fresh declaration releasing `health.checkup` to health-advice for an hour, taken
    /// `steps` steps by operators other than the matrix's own: declared (0), confirmed (1),
    /// a renewal proposed (2).
    async fn declaration(&self, steps: u8) -> String {
        use renkei_domain::{
            Area, Declaration, DeclarationDraft, DeclarationId, EmergencyLegalBasis,
            OperatorAction, OperatorActor,
        };
        let now = chrono::DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
        let draft = DeclarationDraft {
            reason: "大雨".into(),
            legal_basis: EmergencyLegalBasis::DisasterAct49_11,
            categories: [CategoryId::new("health.checkup").unwrap()].into(),
            services: [ServiceId::new(HEALTH).unwrap()].into(),
            area: Area::parse(["5339"]).unwrap(),
            starts_at: now,
            ends_at: now + chrono::TimeDelta::hours(1),
        };
        let id = DeclarationId::from_uuid(uuid::Uuid::new_v4());
        let (sato, suzuki) = (
            OperatorId::new("sato").unwrap(),
            OperatorId::new("suzuki").unwrap(),
        );
        let mut d = Declaration::declare(id, draft, sato.clone(), now).unwrap();
        let mut history = vec![d.clone()];
        if steps >= 1 {
            d = d.confirm(suzuki.clone(), now).unwrap();
            history.push(d.clone());
        }
        if steps >= 2 {
            d = d
                .propose_renewal(suzuki, now + chrono::TimeDelta::hours(2), now)
                .unwrap();
            history.push(d);
        }
        for d in history {
            let actor = OperatorActor::Operator { id: sato.clone() };
            let action = OperatorAction::EndEmergency { declaration: id };
            self.store
                .record_declaration_step(&d, &actor, &action, now)
                .await
                .unwrap();
        }
        id.to_string()
    }

    /// A fresh open request of Alice's, so that each call extending one has one to extend.
    async fn fresh_request(&self) -> String {
        self.hub
            .file_request(
                &ResidentSession::resident(self.alice),
                ResidentRequestBody {
                    kind: "correction".into(),
                    service: None,
                    category: None,
                    details: "my address".into(),
                },
            )
            .await
            .unwrap()
            .id
            .to_string()
    }

    /// A provider just registered, pending review: what approving or suspending acts on.
    async fn pending_provider(&self) -> String {
        let id = format!("prov-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        self.store
            .put_provider(&renkei_domain::Provider {
                id: renkei_domain::ProviderId::new(id.as_str()).unwrap(),
                name: renkei_domain::LocalizedText::new("保有者", "Provider"),
                connection: renkei_domain::ProviderConnection::Outbound,
                categories: ["payment.history".parse().unwrap()].into(),
                max_answer_bytes: None,
                signing_keys: provider_keys(),
                contact: None,
                status: renkei_domain::ProviderStatus::Pending,
            })
            .await
            .unwrap();
        id
    }

    /// What to send `row`'s route; `None` for a route the matrix does not know yet.
    async fn call(&self, row: &RouteAccess, principal: &Principal) -> Option<Call> {
        let alice = self.alice.to_string();
        let size = self.store.latest_checkpoint().await.unwrap().unwrap().size;
        let advice = self.advice.to_string();
        let call = match (row.method.as_str(), row.path.as_str()) {
            // --- the API: public ---
            ("GET", "/healthz" | "/readyz" | "/openapi.json" | "/.well-known/jwks.json") => {
                Call::to(&row.path)
            }
            ("GET", "/.well-known/openid-configuration") => Call::to(&row.path),
            ("GET", "/problems/{code}") => Call::to("/problems/malformed-request"),
            ("GET", "/v1/categories" | "/v1/services") => Call::to(&row.path),
            ("GET", "/log/checkpoint" | "/log/key" | "/metrics") => Call::to(&row.path),
            ("GET", "/log/checkpoints/{size}") => Call::to(format!("/log/checkpoints/{size}")),
            ("GET", "/log/tile/{*path}") => Call::to(if size >= 256 {
                "/log/tile/0/000".to_owned()
            } else {
                format!("/log/tile/0/000.p/{size}")
            }),
            ("GET", "/log/proof/inclusion") => {
                Call::to(format!("/log/proof/inclusion?index=0&size={size}"))
            }
            ("GET", "/log/proof/consistency") => {
                Call::to(format!("/log/proof/consistency?from=1&to={size}"))
            }
            ("POST", "/v1/enrolment/challenges" | "/v1/passkeys/sign-in") => Call::to(&row.path),
            ("POST", "/v1/enrolment") => {
                let (id, signature) = self.signed_challenge().await;
                Call::to(&row.path).json(json!({
                    "challenge_id": id, "certificate_chain": self.card.cert_pem, "signature": signature
                }))
            }
            // The forged assertion is the handler's to refuse (403 passkey-refused).
            ("POST", "/v1/passkeys/sign-in/{ceremony}") => {
                let start = self.hub.start_passkey_sign_in(PEER.into()).await.unwrap();
                Call::to(format!("/v1/passkeys/sign-in/{}", start.ceremony))
                    .json(forged_assertion())
                    .answered_with(&[403])
            }
            ("POST", "/demo/sign-in") => Call::to(&row.path).json(json!({ "resident": alice })),
            // --- OAuth ---
            ("POST", "/oauth/token") => {
                Call::to(&row.path).form(&[("grant_type", "client_credentials")])
            }
            ("GET" | "POST", "/oauth/userinfo") => Call::to(&row.path),
            ("POST", "/oauth/introspect") => {
                let token = self
                    .hub
                    .keys()
                    .issue_service_token(&ServiceId::new(HEALTH).unwrap(), Utc::now())
                    .unwrap();
                Call::to(&row.path).form(&[("token", &token)])
            }
            ("POST", "/oauth/revoke") => {
                let token = self
                    .hub
                    .keys()
                    .issue_service_token(&ServiceId::new(HEALTH).unwrap(), Utc::now())
                    .unwrap();
                Call::to(&row.path).form(&[("token", &token)])
            }
            ("POST", "/v1/data-requests") => Call::to(&row.path)
                .json(json!({
                    "subject": self.subject, "purpose": "advice", "categories": ["health.checkup"]
                }))
                .alices(),
            // --- providers ---
            ("GET", "/v1/me/provider-codes" | "/v1/provider/locators") => Call::to(&row.path),
            ("POST", "/v1/provider/locators/sync") => Call::to(&row.path)
                .json(json!({ "batch_id": uuid::Uuid::new_v4(), "upserts": [], "removals": [] })),
            ("POST", "/v1/provider/poll") => {
                Call::to(&row.path).json(json!({ "max": 1, "wait_ms": 0 }))
            }
            // No grant waits under a fresh ticket: the provider reaches the handler, which
            // reports it unknown.
            ("POST", "/v1/provider/answers") => Call::to(&row.path).json(json!({
                "answers": [{ "ticket": uuid::Uuid::new_v4(), "status": 200, "body": {} }]
            })),
            // The same form each time: the first call that reaches the handler records it, the
            // next are answered with it (a retry); 409 if Alice consented to it otherwise.
            ("POST", "/v1/provider/consents") => {
                let code = self
                    .hub
                    .provider_subject(&renkei_domain::ProviderId::new(PROVIDER).unwrap(), self.alice)
                    .await
                    .unwrap();
                Call::to(&row.path)
                    .json(json!({
                        "subject": code.to_string(), "service": HEALTH, "purpose": "reminders",
                        "staff_id": "N-0042", "form_reference": "F-2026-0001",
                    }))
                    .answered_with(&[409])
            }
            // --- a resident's own account ---
            ("GET", "/v1/me/passkeys" | "/v1/me/proxies" | "/v1/me/acting-for") => {
                Call::to(&row.path)
            }
            ("POST", "/v1/me/passkeys/registrations") => Call::to(&row.path),
            ("POST", "/v1/me/passkeys/registrations/{ceremony}") => {
                let (ceremony, credential) = self.alices_registration().await;
                Call::to(format!("/v1/me/passkeys/registrations/{ceremony}"))
                    .json(json!({ "name": "phone", "credential": credential }))
                    .alices()
            }
            ("POST", "/v1/me/passkeys/{id}/remove") => {
                Call::to(format!("/v1/me/passkeys/{}/remove", self.alices_passkey().await))
                    .alices()
            }
            ("POST", "/v1/me/proxies") => Call::to(&row.path)
                .json(json!({ "label": "daughter", "scope": full_scope() })),
            ("POST", "/v1/me/proxies/{id}/end") => {
                let a = appoint(self.store.as_ref(), self.alice, self.dave, full_scope()).await;
                Call::to(format!("/v1/me/proxies/{}/end", a.id)).alices()
            }
            ("POST", "/v1/proxy-invitations/{code}/accept") => Call::to(format!(
                "/v1/proxy-invitations/{}/accept",
                self.daves_invitation().await
            )),
            ("POST", "/v1/me/acting-for/{id}/session") => {
                let a = appoint(self.store.as_ref(), self.dave, self.alice, full_scope()).await;
                Call::to(format!("/v1/me/acting-for/{}/session", a.id)).alices()
            }
            // --- a resident's consents, history and requests ---
            ("GET", "/v1/me/consents" | "/v1/me/access-records" | "/v1/me/requests") => {
                Call::to(&row.path)
            }
            ("GET", "/v1/me/log") => Call::to(&row.path),
            ("GET", "/v1/me/notices") => Call::to(&row.path),
            // Stopping always succeeds (starting needs a service with a webhook).
            ("POST", "/v1/me/notice-channels") => {
                Call::to(&row.path).json(json!({ "service": HEALTH, "on": false }))
            }
            // Granted, or already active (409) from an earlier cell.
            ("POST", "/v1/me/consents") => Call::to(&row.path)
                .json(json!({ "service": HEALTH, "purpose": "reminders" }))
                .about(HEALTH)
                .answered_with(&[409]),
            ("GET", "/v1/me/consents/{id}") => Call::to(format!("/v1/me/consents/{advice}"))
                .alices()
                .about(HEALTH),
            ("GET", "/v1/me/consents/{id}/receipt") => {
                Call::to(format!("/v1/me/consents/{advice}/receipt"))
                    .alices()
                    .about(HEALTH)
            }
            ("POST", "/v1/me/consents/{id}/revoke") => Call::to(format!(
                "/v1/me/consents/{}/revoke",
                self.alices_reminders_consent().await
            ))
            .alices()
            .about(HEALTH),
            ("POST", "/v1/me/requests") => Call::to(&row.path)
                .json(json!({ "kind": "disclosure", "service": HEALTH, "details": "what do you hold" }))
                .about(HEALTH),
            // --- the SOC, and the incident report ---
            ("POST", "/v1/soc/events") => Call::to(&row.path)
                .json(json!({ "maxEvents": 1, "returnImmediately": true })),
            ("GET", "/v1/operator/incidents/report") => Call::to(format!(
                "/v1/operator/incidents/report?service={HEALTH}&from=2026-01-01T00:00:00Z&to=2099-01-01T00:00:00Z"
            )),
            // --- operators ---
            ("POST", "/v1/operator/session") => Call::to(&row.path),
            ("POST", "/v1/operator/services") => {
                let id = format!("svc-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
                let key = renkei_protocol::envelope::ServiceKeyPair::generate()
                    .unwrap()
                    .public_b64();
                Call::to(&row.path).json(json!({
                    "id": id, "name_ja": "新サービス", "name_en": "New service", "sector": "misc",
                    "hpke_public_key": key, "webhook_url": null,
                    "redirect_uris": [format!("https://{id}.example/callback")],
                    "purposes": [{
                        "id": "reminders", "title_ja": "お知らせ", "title_en": "Reminders",
                        "description_ja": "お知らせ", "description_en": "Reminders",
                        "categories": ["payment.history"], "retention_days": 30, "legal_basis": "consent"
                    }],
                    "controller": {
                        "contact": "窓口", "email": format!("privacy@{id}.example"),
                        "phone": "03-0000-0000",
                        "address": {"country": "JP", "postal_code": "999-0001", "region": "ひかり県",
                          "locality": "ひかり台市", "street_address": "中央1-1"}
                    }
                }))
            }
            ("GET", "/v1/operator/services/{id}/review") => {
                Call::to(format!("/v1/operator/services/{}/review", self.pending))
            }
            ("POST", "/v1/operator/services/{id}/approve") => {
                let (id, flags) = self.pending_service().await;
                Call::to(format!("/v1/operator/services/{id}/approve"))
                    .json(json!({ "acknowledged": flags }))
            }
            ("POST", "/v1/operator/services/{id}/suspend") => {
                let (id, _) = self.pending_service().await;
                Call::to(format!("/v1/operator/services/{id}/suspend"))
            }
            ("GET", "/v1/operator/requests" | "/v1/operator/providers" | "/v1/providers") => {
                Call::to(&row.path)
            }
            ("POST", "/v1/operator/categories") => Call::to(&row.path).json(json!({
                "id": format!("cat-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]),
                "name_ja": "項目", "name_en": "Category", "special_care": false
            })),
            ("POST", "/v1/operator/providers") => {
                let id = format!("prov-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
                Call::to(&row.path).json(json!({
                    "id": id, "name_ja": "保有者", "name_en": "Provider",
                    "endpoint": format!("https://{id}.example"),
                    "categories": ["payment.history"],
                    "signing_keys": provider_keys().to_json(),
                    "contact": {
                        "contact": "窓口", "email": format!("data@{id}.example"),
                        "phone": "03-0000-0000",
                        "address": {"country": "JP", "postal_code": "999-0001", "region": "ひかり県",
                          "locality": "ひかり台市", "street_address": "中央1-1"}
                    }
                }))
            }
            ("POST", "/v1/operator/providers/{id}/approve" | "/v1/operator/providers/{id}/suspend") => {
                let action = row.path.rsplit('/').next().unwrap_or_default();
                Call::to(format!("/v1/operator/providers/{}/{action}", self.pending_provider().await))
            }
            ("POST", "/v1/operator/services/{id}/purposes") => {
                let (id, _) = self.pending_service().await;
                Call::to(format!("/v1/operator/services/{id}/purposes")).json(json!({
                    "id": "reminders", "title_ja": "お知らせ", "title_en": "Reminders",
                    "description_ja": "お知らせ", "description_en": "Reminders",
                    "categories": ["payment.history"], "retention_days": 30, "legal_basis": "consent"
                }))
            }
            ("POST", "/v1/operator/requests/{id}") => {
                Call::to(format!("/v1/operator/requests/{}", self.request))
                    .json(json!({ "status": "in_progress", "response": "looking" }))
            }

            // --- declared emergencies ---
            ("GET", "/v1/declarations") => Call::to(&row.path),
            ("GET", "/v1/declarations/{id}") => {
                Call::to(format!("/v1/declarations/{}", self.declaration(0).await))
            }
            ("POST", "/v1/operator/declarations") => Call::to(&row.path).json(json!({
                "reason": "大雨", "legal_basis": "disaster_act49_11",
                "categories": ["health.checkup"], "services": [HEALTH], "area": ["5339"],
                "ends_at": Utc::now() + chrono::TimeDelta::hours(1),
            })),
            ("POST", "/v1/operator/declarations/{id}/confirm") => Call::to(format!(
                "/v1/operator/declarations/{}/confirm",
                self.declaration(0).await
            )),
            ("POST", "/v1/operator/declarations/{id}/renewal") => Call::to(format!(
                "/v1/operator/declarations/{}/renewal",
                self.declaration(1).await
            ))
            .json(json!({ "ends_at": Utc::now() + chrono::TimeDelta::hours(3) })),
            ("POST", "/v1/operator/declarations/{id}/renewal/confirm") => Call::to(format!(
                "/v1/operator/declarations/{}/renewal/confirm",
                self.declaration(2).await
            )),
            ("POST", "/v1/operator/declarations/{id}/end") => Call::to(format!(
                "/v1/operator/declarations/{}/end",
                self.declaration(1).await
            )),
            ("POST", "/v1/area-lists") => Call::to(&row.path).json(json!({
                "declaration": self.declaration(1).await, "purpose": "advice",
                "categories": ["health.checkup"], "area": ["533945"],
            })),

            // --- the portal: public pages and sign-in ---
            ("GET", "/" | "/portal/sign-in" | "/portal/enrol" | "/console/sign-in") => {
                Call::to(&row.path)
            }
            ("GET", "/static/{file}") => Call::to("/static/portal.css"),
            ("GET", "/portal/acting/ended") => Call::to(&row.path),
            ("POST", "/portal/sign-out" | "/console/sign-out" | "/portal/acting/stop") => {
                Call::to(&row.path).form(&[])
            }
            ("POST", "/portal/sign-in/demo") => Call::to(&row.path).form(&[("resident", &alice)]),
            ("POST", "/console/sign-in/demo") => Call::to(&row.path)
                .form(&[("identity", &self.operator_identity.to_string())]),
            ("POST", "/portal/sign-in/passkey/start") => Call::to(&row.path).json(json!({})),
            ("POST", "/portal/sign-in/passkey/finish") => {
                let start = self.hub.start_passkey_sign_in(PEER.into()).await.unwrap();
                Call::to(&row.path)
                    .json(json!({ "ceremony": start.ceremony, "credential": forged_assertion() }))
            }
            ("POST", "/portal/enrol") => {
                let (id, signature) = self.signed_challenge().await;
                Call::to(&row.path).form(&[
                    ("challenge_id", &id),
                    ("certificate_chain", &self.card.cert_pem),
                    ("signature", &signature),
                ])
            }
            // --- disclosure (開示): one block ---
            // A disclosure concerns every service: the proxy scoped to another is refused,
            // as about a service its scope does not cover.
            ("POST", "/v1/me/disclosures") => Call::to(&row.path)
                .json(json!({ "recipient_key": disclosure_key() }))
                .about(HEALTH),
            ("GET", "/portal/disclosure") => Call::to(&row.path),
            ("POST", "/portal/disclosure") => Call::to(&row.path)
                .form(&[("recipient_key", &disclosure_key())])
                .about(HEALTH),
            // --- the portal: a resident's pages ---
            ("GET", "/portal" | "/portal/services" | "/portal/history" | "/portal/requests") => {
                Call::to(&row.path)
            }
            ("GET", "/portal/passkeys" | "/portal/proxies" | "/portal/provider-codes") => {
                Call::to(&row.path)
            }
            ("GET", "/portal/notices" | "/portal/declarations") => Call::to(&row.path),
            ("GET", "/portal/declarations/{id}") => {
                Call::to(format!("/portal/declarations/{}", self.declaration(1).await))
            }
            ("POST", "/portal/notices/channels") => {
                Call::to(&row.path).form(&[("service", HEALTH), ("on", "off")])
            }
            ("POST", "/portal/passkeys/register/start") => Call::to(&row.path).json(json!({})),
            // Another resident finishing Alice's ceremony is told "not accepted" (400), as a
            // forged answer is.
            ("POST", "/portal/passkeys/register/finish") => {
                let (ceremony, credential) = self.alices_registration().await;
                Call::to(&row.path)
                    .json(json!({ "ceremony": ceremony, "name": "phone", "credential": credential }))
                    .alices()
                    .refused_with(&[400])
            }
            ("POST", "/portal/passkeys/remove") => {
                let id = self.alices_passkey().await;
                Call::to(&row.path).form(&[("id", &id)]).alices()
            }
            ("GET", "/oauth/authorize") => Call::to(format!(
                "/oauth/authorize?{}",
                serde_urlencoded::to_string(authorize_params()).unwrap()
            ))
            .about(HEALTH),
            ("POST", "/oauth/authorize") => {
                let mut form = authorize_params();
                form.extend([
                    ("version-reminders", "1".to_owned()),
                    ("answer-reminders", "no".to_owned()),
                    ("decision", "continue".to_owned()),
                ]);
                let pairs: Vec<(&str, &str)> =
                    form.iter().map(|(k, v)| (*k, v.as_str())).collect();
                Call::to(&row.path).form(&pairs).about(HEALTH)
            }
            ("POST", "/portal/services/switch") => {
                let consent = self.alices_reminders_consent().await;
                Call::to(&row.path)
                    .form(&[
                        ("service", HEALTH),
                        ("purpose", "reminders"),
                        ("action", "stop"),
                        ("consent", &consent),
                    ])
                    .alices()
                    .about(HEALTH)
            }
            ("GET", "/portal/consents/{id}/receipt") => {
                Call::to(format!("/portal/consents/{advice}/receipt"))
                    .alices()
                    .about(HEALTH)
            }
            ("POST", "/portal/requests") => Call::to(&row.path)
                .form(&[
                    ("kind", "disclosure"),
                    ("service", HEALTH),
                    ("details", "what do you hold"),
                ])
                .about(HEALTH),
            ("POST", "/portal/proxies/invite") => Call::to(&row.path)
                .form(&[("label", "daughter"), ("manage_consents", "on")]),
            ("POST", "/portal/proxies/{id}/end") => {
                let a = appoint(self.store.as_ref(), self.alice, self.dave, full_scope()).await;
                Call::to(format!("/portal/proxies/{}/end", a.id))
                    .form(&[])
                    .alices()
            }
            ("POST", "/portal/acting/accept") => {
                let code = self.daves_invitation().await;
                Call::to(&row.path).form(&[("code", &code)])
            }
            ("POST", "/portal/acting/start") => {
                let a = appoint(self.store.as_ref(), self.dave, self.alice, full_scope()).await;
                Call::to(&row.path)
                    .form(&[("appointment", &a.id.to_string())])
                    .alices()
            }
            // --- the console ---
            (
                "GET",
                "/console"
                | "/console/categories"
                | "/console/requests"
                | "/console/providers"
                | "/console/location-deletions",
            ) => Call::to(&row.path),
            // One deletion owed, recorded again before each call: the first operator call
            // confirms it, a later one finds nothing left to confirm.
            ("POST", "/console/location-deletions/confirm") => {
                let now = Utc::now();
                self.store
                    .record_location_deletions(&[renkei_domain::LocationDeletion {
                        service: ServiceId::new(MOBILITY).unwrap(),
                        purpose: PurposeId::new("rides").unwrap(),
                        purpose_version: 1,
                        ended_at: now,
                        due_at: now,
                        confirmed_at: None,
                        confirmed_by: None,
                    }])
                    .await
                    .unwrap();
                Call::to(&row.path)
                    .form(&[("service", MOBILITY), ("purpose", "rides"), ("version", "1")])
                    .answered_with(&[404])
            }
            ("POST", "/console/categories") => {
                let id = format!("cat-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
                Call::to(&row.path).form(&[
                    ("id", id.as_str()),
                    ("name_ja", "項目"),
                    ("name_en", "Category"),
                ])
            }
            ("POST", "/console/providers") => {
                let id = format!("prov-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
                let endpoint = format!("https://{id}.example");
                let keys = provider_keys().to_json().to_string();
                Call::to(&row.path).form(&[
                    ("id", id.as_str()),
                    ("name_ja", "保有者"),
                    ("name_en", "Provider"),
                    ("connection", "inbound"),
                    ("endpoint", endpoint.as_str()),
                    ("category", "payment.history"),
                    ("signing_keys", keys.as_str()),
                    ("contact", "窓口"),
                    ("email", "data@provider.example"),
                    ("phone", "03-0000-0000"),
                    ("postal_code", "999-0001"),
                    ("region", "ひかり県"),
                    ("locality", "ひかり台市"),
                    ("street_address", "中央1-1"),
                ])
            }
            ("POST", "/console/providers/{id}/approve" | "/console/providers/{id}/suspend") => {
                let action = row.path.rsplit('/').next().unwrap_or_default();
                Call::to(format!("/console/providers/{}/{action}", self.pending_provider().await))
                    .form(&[])
            }
            ("GET", "/console/audit") => Call::to(format!("/console/audit?resident={alice}&reason=matrix")),
            ("GET", "/console/declarations") => Call::to(&row.path),
            ("POST", "/console/declarations") => {
                let ends = tokyo_local(Utc::now() + chrono::TimeDelta::hours(2));
                Call::to(&row.path).form(&[
                    ("reason", "大雨"),
                    ("legal_basis", "disaster_act49_11"),
                    ("category", "health.checkup"),
                    ("service", HEALTH),
                    ("area", "5339"),
                    ("ends_at", ends.as_str()),
                ])
            }
            ("POST", "/console/declarations/{id}/confirm") => Call::to(format!(
                "/console/declarations/{}/confirm",
                self.declaration(0).await
            ))
            .form(&[]),
            ("POST", "/console/declarations/{id}/renewal") => {
                let ends = tokyo_local(Utc::now() + chrono::TimeDelta::hours(3));
                Call::to(format!(
                    "/console/declarations/{}/renewal",
                    self.declaration(1).await
                ))
                .form(&[("ends_at", ends.as_str())])
            }
            ("POST", "/console/declarations/{id}/renewal/confirm") => Call::to(format!(
                "/console/declarations/{}/renewal/confirm",
                self.declaration(2).await
            ))
            .form(&[]),
            ("POST", "/console/declarations/{id}/end") => Call::to(format!(
                "/console/declarations/{}/end",
                self.declaration(1).await
            ))
            .form(&[]),
            ("POST", "/console/sign-in/portal") => Call::to(&row.path).form(&[]),
            ("GET", "/console/services/{id}") => {
                Call::to(format!("/console/services/{}", self.pending))
            }
            ("POST", "/console/services/{id}/approve") => {
                let (id, flags) = self.pending_service().await;
                let pairs: Vec<(&str, &str)> = flags.iter().map(|f| ("ack", f.as_str())).collect();
                Call::to(format!("/console/services/{id}/approve")).form(&pairs)
            }
            ("POST", "/console/services/{id}/suspend") => {
                let (id, _) = self.pending_service().await;
                Call::to(format!("/console/services/{id}/suspend")).form(&[])
            }
            ("POST", "/console/requests/{id}/answer") => {
                Call::to(format!("/console/requests/{}/answer", self.request))
                    .form(&[("status", "in_progress"), ("response", "looking")])
            }
            // --- requests routed to whoever holds the data, and their deadlines ---
            ("POST", "/console/requests/{id}/extend") => {
                let due = tokyo_local(Utc::now() + chrono::TimeDelta::days(30));
                Call::to(format!("/console/requests/{}/extend", self.fresh_request().await))
                    .form(&[("due_at", due.as_str()), ("reason", "archive off-site")])
            }
            ("GET", "/v1/service/rights-requests" | "/v1/provider/rights-requests") => {
                Call::to(&row.path)
            }
            // Nothing is routed under a fresh id: the caller reaches the handler, which finds
            // no request routed to it.
            ("POST", "/v1/service/rights-requests/{id}/answer") => Call::to(format!(
                "/v1/service/rights-requests/{}/answer",
                uuid::Uuid::new_v4()
            ))
            .json(json!({ "answer": "done" }))
            .answered_with(&[404]),
            ("POST", "/v1/provider/rights-requests/{id}/answer") => Call::to(format!(
                "/v1/provider/rights-requests/{}/answer",
                uuid::Uuid::new_v4()
            ))
            .json(json!({ "answer": "done" }))
            .answered_with(&[404]),
            ("GET", "/v1/operator/request-summary") => Call::to(&row.path),
            ("POST", "/v1/operator/requests/{id}/extension") => Call::to(format!(
                "/v1/operator/requests/{}/extension",
                self.fresh_request().await
            ))
            .json(json!({
                "due_at": Utc::now() + chrono::TimeDelta::days(30), "reason": "archive off-site"
            })),
            _ => return self.counter_call(row, principal).await,
        };
        Some(call)
    }

    /// A fresh enrolment challenge signed with the card's key: (challenge id, signature).
    async fn signed_challenge(&self) -> (String, String) {
        let challenge = self.hub.enrolment_challenge(PEER.into()).await.unwrap();
        let bytes = URL_SAFE_NO_PAD.decode(&challenge.challenge).unwrap();
        let signature = renkei_identity::sign_challenge(&self.card.key_pem, &bytes).unwrap();
        (challenge.id.to_string(), URL_SAFE_NO_PAD.encode(signature))
    }

    /// Sends `call` to the app as `principal` would.
    async fn send(&self, row: &RouteAccess, principal: &Principal, call: &Call) -> Answer {
        let credentials = self.credentials(principal, row.access);
        send(&self.app, row.method.clone(), &credentials, call).await
    }
}

/// Sends `call` to `app` with `credentials`, a CSRF cookie and the token that goes with it,
/// The address every call comes from.
const PEER: std::net::SocketAddr =
    std::net::SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 40_000);

/// from this site (as a browser on the portal would; the API ignores all three).
async fn send(app: &Router, method: Method, credentials: &Credentials, call: &Call) -> Answer {
    let mut headers = HeaderMap::new();
    let csrf_cookie = URL_SAFE_NO_PAD
        .encode(uuid::Uuid::new_v4().as_bytes())
        .repeat(2)[..43]
        .to_owned();
    let mut cookies = vec![format!("{CSRF_COOKIE}={csrf_cookie}")];
    cookies.extend(credentials.cookies.iter().map(|(k, v)| format!("{k}={v}")));
    headers.insert(
        header::COOKIE,
        HeaderValue::from_str(&cookies.join("; ")).unwrap(),
    );
    let csrf = csrf_token(&csrf_cookie, &headers);
    let mut request = Request::builder()
        .method(method)
        .uri(&call.path)
        .header(header::HOST, HOST)
        .header(header::ORIGIN, ISSUER)
        .header(header::COOKIE, headers[header::COOKIE].clone())
        .header(CSRF_HEADER, csrf)
        // What the server's socket tells each request (`into_make_service_with_connect_info`).
        .extension(axum::extract::ConnectInfo(PEER));
    if let Some(token) = &credentials.bearer {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    if let Some((id, secret)) = &credentials.basic {
        let basic = STANDARD.encode(format!("{id}:{secret}"));
        request = request.header(header::AUTHORIZATION, format!("Basic {basic}"));
    }
    let body = match &call.payload {
        Payload::None => Body::empty(),
        Payload::Json(v) => {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Body::from(v.to_string())
        }
        Payload::Form(pairs) => {
            request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            Body::from(serde_urlencoded::to_string(pairs).unwrap())
        }
    };
    let response = app
        .clone()
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let location = response
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = to_bytes(response.into_body(), 1 << 24).await.unwrap();
    let problem = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v["type"].as_str().map(str::to_owned));
    Answer {
        status,
        location,
        problem,
    }
}

fn authorize_params() -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("client_id", HEALTH.into()),
        ("redirect_uri", REDIRECT_URI.into()),
        ("scope", "openid reminders".into()),
        ("state", "st".into()),
        ("nonce", "n".into()),
        ("code_challenge", pkce_challenge(VERIFIER)),
        ("code_challenge_method", "S256".into()),
    ]
}

// ------------------------------------------------------------------ judging the answers

struct Answer {
    status: StatusCode,
    location: Option<String>,
    problem: Option<String>,
}

impl Answer {
    fn describe(&self) -> String {
        let mut s = self.status.as_u16().to_string();
        if let Some(to) = &self.location {
            s.push_str(&format!(" → {to}"));
        }
        if let Some(p) = &self.problem {
            s.push_str(&format!(" ({p})"));
        }
        s
    }

    /// A refusal: 401 or 403; "not found" for something of someone else's; on pages, a way
    /// to a sign-in page (or back from an ended appointment), or the form's "failed".
    fn refused(&self, call: &Call) -> bool {
        let to = self.location.as_deref().unwrap_or_default();
        matches!(self.status.as_u16(), 401 | 403)
            || call.refusal_statuses.contains(&self.status.as_u16())
            || (self.status == StatusCode::NOT_FOUND && (call.alices || call.service.is_some()))
            || (self.status.is_redirection()
                && (to.starts_with("/portal/sign-in")
                    || to.starts_with("/console/sign-in")
                    || to.starts_with("/portal/acting/ended")
                    || to.contains("done=failed")))
    }

    /// Answered by the handler: not a refusal, not a failure, and (except where the call
    /// says otherwise) a success or a redirect on.
    fn reached(&self, call: &Call) -> bool {
        let status = self.status.as_u16();
        if call.handler_statuses.contains(&status) {
            return true;
        }
        (self.status.is_success() || self.status.is_redirection()) && !self.refused(call)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_admits_exactly_the_callers_its_table_row_names() {
    let started = std::time::Instant::now();
    let world = World::new().await;
    let rows: BTreeSet<(Method, &str)> = world
        .table
        .iter()
        .map(|r| (r.method.clone(), r.path.as_str()))
        .collect();
    assert_eq!(rows.len(), world.table.len(), "a route is listed twice");

    let mut missing = Vec::new();
    let mut failures = Vec::new();
    let mut cells = 0usize;
    let mut by_outcome: BTreeMap<&str, usize> = BTreeMap::new();
    for row in &world.table {
        let side = if world
            .api_rows
            .contains(&(row.method.clone(), row.path.clone()))
        {
            "api"
        } else {
            "pages"
        };
        for principal in &world.principals {
            let Some(call) = world.call(row, principal).await else {
                missing.push(format!("{} {}", row.method, row.path));
                break;
            };
            let admitted = world.admits(row.access, principal, &call);
            let public = matches!(row.access, Access::Public | Access::DemoOnly);
            let answer = world.send(row, principal, &call).await;
            cells += 1;
            let ok = if answer.status.is_server_error() {
                false
            } else if public {
                // Nothing to refuse: the handler answers everyone (and judges their proof).
                !matches!(answer.status.as_u16(), 401 | 403)
                    || call.handler_statuses.contains(&answer.status.as_u16())
            } else if admitted {
                answer.reached(&call)
            } else {
                answer.refused(&call)
            };
            *by_outcome
                .entry(if admitted { "admitted" } else { "refused" })
                .or_default() += 1;
            if !ok {
                failures.push(format!(
                    "{side} {} {} ({:?}) as {}: expected {}, got {}",
                    row.method,
                    row.path,
                    row.access,
                    principal.name,
                    if admitted {
                        "to reach the handler"
                    } else {
                        "a refusal"
                    },
                    answer.describe()
                ));
            }
        }
    }
    println!(
        "authorization matrix: {} routes × {} kinds of caller = {cells} cells ({} admitted, {} refused) in {:.1} s",
        world.table.len(),
        world.principals.len(),
        by_outcome.get("admitted").copied().unwrap_or(0),
        by_outcome.get("refused").copied().unwrap_or(0),
        started.elapsed().as_secs_f64()
    );
    assert!(
        missing.is_empty(),
        "routes in the table that the matrix does not call (give each a `Call`): {missing:#?}"
    );
    assert_eq!(cells, world.table.len() * world.principals.len());
    assert!(
        failures.is_empty(),
        "{} of {cells} cells disagree with the route table:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A provider's public signing keys (one Ed25519 key).
fn provider_keys() -> renkei_domain::ProviderKeys {
    let key = renkei_protocol::keys::SigningKey::generate().unwrap();
    renkei_domain::ProviderKeys::parse(&json!({ "keys": [key.public_jwk()] })).unwrap()
}

/// A `datetime-local` form value in Japan time (UTC+9, no summer time), as the console
/// reads it.
fn tokyo_local(at: chrono::DateTime<Utc>) -> String {
    let jst = chrono::FixedOffset::east_opt(9 * 3600).unwrap();
    at.with_timezone(&jst).format("%Y-%m-%dT%H:%M").to_string()
}
