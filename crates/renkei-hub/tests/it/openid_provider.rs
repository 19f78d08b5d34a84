//! The OpenID provider driven by the `openidconnect` crate as the relying party: discovery,
//! code + PKCE, ID token checks (signature, `iss`, `aud`, `nonce`, `at_hash`), userinfo,
//! pairwise subjects, and the negative cases of RFC 6749 / 7636 / 7009 / 7662.
//!
//! The consent screen is a page of the portal; here the resident's answers are given by
//! calling the same hub operations the page calls.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails loudly"
)]

// Arbitrary form bodies at the token, introspection and revocation endpoints.
mod forms;

use std::future::Future;
use std::pin::Pin;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{TimeDelta, Utc};
use openidconnect::core::{
    CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreResponseType, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse,
};
use renkei_domain::{PurposeId, ResidentId, ServiceStatus, SigningAlg};
use renkei_hub::auth::ResidentSession;
use renkei_hub::oidc::{AuthorizationParams, AuthorizeError, ConsentAnswers};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common;
use crate::common::{HEALTH_CHECKUP, ISSUER, Town, TownService, redirect_uri};

type HttpFuture =
    Pin<Box<dyn Future<Output = Result<openidconnect::HttpResponse, reqwest::Error>> + Send>>;

/// The relying party's HTTP client: requests to the issuer's URL go to the test hub.
fn http_client(hub_url: String) -> impl Fn(openidconnect::HttpRequest) -> HttpFuture {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    move |request: openidconnect::HttpRequest| {
        let client = client.clone();
        let url = request.uri().to_string().replacen(ISSUER, &hub_url, 1);
        Box::pin(async move {
            let mut builder = client.request(request.method().clone(), url);
            for (name, value) in request.headers() {
                builder = builder.header(name, value);
            }
            let response = builder.body(request.body().clone()).send().await?;
            let mut out = openidconnect::http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                out = out.header(name, value);
            }
            Ok(out.body(response.bytes().await?.to_vec()).unwrap())
        })
    }
}

type Client = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

async fn relying_party(town: &Town, service: &TownService) -> Client {
    let http = http_client(town.hub_url.clone());
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(ISSUER.into()).unwrap(), &http)
            .await
            .unwrap();
    CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(service.id.to_string()),
        Some(ClientSecret::new(service.secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(redirect_uri(&service.id)).unwrap())
}

/// One authorization request as the relying party builds it.
struct Started {
    params: AuthorizationParams,
    csrf: CsrfToken,
    nonce: Nonce,
    verifier: PkceCodeVerifier,
}

fn start(client: &Client, scopes: &[&str]) -> Started {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client.authorize_url(
        AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
        CsrfToken::new_random,
        Nonce::new_random,
    );
    for scope in scopes {
        request = request.add_scope(Scope::new((*scope).to_owned()));
    }
    let (url, csrf, nonce) = request.set_pkce_challenge(challenge).url();
    assert!(
        url.as_str()
            .starts_with(&format!("{ISSUER}/oauth/authorize?"))
    );
    let params: AuthorizationParams = serde_urlencoded::from_str(url.query().unwrap()).unwrap();
    Started {
        params,
        csrf,
        nonce,
        verifier,
    }
}

/// The resident answers the consent screen: yes to `yes`, name shared or not.
async fn consent_screen(
    town: &Town,
    resident: ResidentId,
    params: &AuthorizationParams,
    yes: &[&str],
    share_profile: bool,
) -> String {
    let request = match town.hub.check_authorization_request(params).await {
        Ok(r) => r,
        Err(AuthorizeError::Show(e)) => panic!("authorization request refused: {e}"),
        Err(AuthorizeError::Redirect(url)) => panic!("authorization request refused: {url}"),
    };
    let answers = ConsentAnswers {
        yes: yes.iter().map(|p| PurposeId::new(*p).unwrap()).collect(),
        share_profile,
    };
    town.hub
        .complete_authorization(&ResidentSession::resident(resident), &request, &answers)
        .await
        .unwrap()
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// A resident enrolled with a certificate, so the hub holds a verified name.
async fn enrolled_resident(town: &Town, name: &str) -> ResidentId {
    let now = Utc::now();
    let card = town
        .dev_ca
        .issue_resident(
            &renkei_identity::IdentityAttributes::new(name),
            renkei_identity::Validity::days_from(now, 365),
            renkei_identity::KeyAlgorithm::EcdsaP256,
        )
        .unwrap();
    let challenge = town
        .hub
        .enrolment_challenge(common::local_peer())
        .await
        .unwrap();
    let bytes = URL_SAFE_NO_PAD.decode(&challenge.challenge).unwrap();
    let signature = renkei_identity::sign_challenge(&card.key_pem, &bytes).unwrap();
    town.hub
        .enrol(&renkei_hub::enrolment::EnrolmentBody {
            challenge_id: challenge.id,
            certificate_chain: card.cert_pem,
            signature: URL_SAFE_NO_PAD.encode(signature),
        })
        .await
        .unwrap()
        .resident
}

struct SignedIn {
    access_token: String,
    subject: String,
    id_token_name: Option<String>,
    /// The key id in the ID token's header (after the library verified it).
    id_token_kid: Option<String>,
    id_token_alg: jsonwebtoken::Algorithm,
}

/// The whole code flow, checked the way a relying party checks it with the library's
/// default ID token verifier; services registered with the default get RS256 ID tokens.
async fn sign_in(
    town: &Town,
    service: &TownService,
    resident: ResidentId,
    scopes: &[&str],
    yes: &[&str],
) -> SignedIn {
    let signed = sign_in_accepting(town, service, resident, scopes, yes, None).await;
    assert_eq!(signed.id_token_alg, jsonwebtoken::Algorithm::RS256);
    signed
}

/// The whole code flow, the relying party accepting only `algs` for ID tokens if given.
async fn sign_in_accepting(
    town: &Town,
    service: &TownService,
    resident: ResidentId,
    scopes: &[&str],
    yes: &[&str],
    algs: Option<Vec<CoreJwsSigningAlgorithm>>,
) -> SignedIn {
    let client = relying_party(town, service).await;
    let started = start(&client, scopes);
    let back = consent_screen(town, resident, &started.params, yes, true).await;
    assert!(back.starts_with(&redirect_uri(&service.id)));
    assert_eq!(
        query_param(&back, "state").as_deref(),
        Some(started.csrf.secret().as_str())
    );
    assert_eq!(query_param(&back, "iss").as_deref(), Some(ISSUER));
    let code = query_param(&back, "code").unwrap();
    let http = http_client(town.hub_url.clone());
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(started.verifier)
        .request_async(&http)
        .await
        .unwrap();
    let id_token = tokens.id_token().expect("an ID token");
    let verifier = match algs {
        Some(algs) => client.id_token_verifier().set_allowed_algs(algs),
        None => client.id_token_verifier(),
    };
    let claims = id_token.claims(&verifier, &started.nonce).unwrap();
    assert_eq!(claims.issuer().as_str(), ISSUER);
    assert_eq!(claims.audiences()[0].as_str(), service.id.as_str());
    let expected_hash = claims.access_token_hash().expect("at_hash");
    let actual_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(&actual_hash, expected_hash);
    let jwt = serde_json::to_value(id_token).unwrap();
    let header = jsonwebtoken::decode_header(jwt.as_str().unwrap()).unwrap();
    SignedIn {
        id_token_alg: header.alg,
        id_token_kid: header.kid,
        access_token: tokens.access_token().secret().clone(),
        subject: claims.subject().to_string(),
        id_token_name: claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_signs_a_resident_in_with_code_pkce_and_a_verified_id_token() {
    let town = Town::new().await;
    let hanako = enrolled_resident(&town, "山田 花子").await;
    let signed = sign_in(
        &town,
        &town.health,
        hanako,
        &["profile", "advice"],
        &["advice"],
    )
    .await;
    assert_eq!(signed.id_token_name.as_deref(), Some("山田 花子"));

    // Userinfo, through the library, names the same subject and the shared name.
    let client = relying_party(&town, &town.health).await;
    let http = http_client(town.hub_url.clone());
    let info: CoreUserInfoClaims = client
        .user_info(
            openidconnect::AccessToken::new(signed.access_token.clone()),
            None,
        )
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(info.subject().as_str(), signed.subject);
    assert_eq!(
        info.name().and_then(|n| n.get(None)).map(|n| n.as_str()),
        Some("山田 花子")
    );

    // The yes on the consent screen is a consent of the core, given through the sign-in screen.
    let consents = town
        .hub
        .consents(&ResidentSession::resident(hanako))
        .await
        .unwrap();
    assert_eq!(consents.len(), 1);
    assert_eq!(consents[0].purpose, "advice");
    assert_eq!(consents[0].given_via, "sign_in_screen");

    // The code-flow token fetches the resident's data for that purpose.
    let response = town
        .request_data(
            &signed.access_token,
            &signed.subject,
            "advice",
            &[HEALTH_CHECKUP],
        )
        .await;
    // Hanako has no data at the providers, but the decision granted: no problem `type`.
    let status = response.status().as_u16();
    assert!(status == 200 || status == 502, "status {status}");
}

/// Registers `service` again, for ID tokens signed with `alg`.
async fn register_id_token_alg(town: &Town, service: &TownService, alg: SigningAlg) {
    let mut client = town
        .store
        .service_client(&service.id)
        .await
        .unwrap()
        .unwrap();
    client.id_token_signed_response_alg = alg;
    town.store.put_service_client(&client).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_registered_for_eddsa_gets_eddsa_id_tokens_and_the_default_gets_rs256() {
    let town = Town::new().await;
    let hanako = enrolled_resident(&town, "山田 花子").await;
    register_id_token_alg(&town, &town.mobility, SigningAlg::EdDsa).await;
    let eddsa = sign_in_accepting(
        &town,
        &town.mobility,
        hanako,
        &["profile"],
        &[],
        Some(vec![CoreJwsSigningAlgorithm::EdDsa]),
    )
    .await;
    assert_eq!(eddsa.id_token_alg, jsonwebtoken::Algorithm::EdDSA);
    assert_eq!(eddsa.id_token_name.as_deref(), Some("山田 花子"));
    let rs256 = sign_in(&town, &town.health, hanako, &["advice"], &["advice"]).await;
    assert_eq!(rs256.id_token_alg, jsonwebtoken::Algorithm::RS256);

    // Each ID token's key is published with its algorithm.
    let published = town.published_jwks().await;
    for (signed, alg) in [(&eddsa, "EdDSA"), (&rs256, "RS256")] {
        let jwk = published
            .find(signed.id_token_kid.as_deref().unwrap())
            .unwrap();
        assert_eq!(serde_json::to_value(jwk).unwrap()["alg"], alg);
    }

    // A relying party that accepts only RS256 (what the library accepts unless discovery
    // says more) refuses the EdDSA one: the service's choice is not silently ignored.
    let client = relying_party(&town, &town.mobility).await;
    let started = start(&client, &[]);
    let back = consent_screen(&town, hanako, &started.params, &[], false).await;
    let tokens = client
        .exchange_code(AuthorizationCode::new(query_param(&back, "code").unwrap()))
        .unwrap()
        .set_pkce_verifier(started.verifier)
        .request_async(&http_client(town.hub_url.clone()))
        .await
        .unwrap();
    let id_token = tokens.id_token().unwrap();
    let rs256_only = client
        .id_token_verifier()
        .set_allowed_algs(vec![CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256]);
    assert!(id_token.claims(&rs256_only, &started.nonce).is_err());
    let eddsa_only = client
        .id_token_verifier()
        .set_allowed_algs(vec![CoreJwsSigningAlgorithm::EdDsa]);
    assert!(id_token.claims(&eddsa_only, &started.nonce).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn userinfo_withholds_the_name_when_the_resident_did_not_share_it() {
    let town = Town::new().await;
    let hanako = enrolled_resident(&town, "山田 花子").await;
    let client = relying_party(&town, &town.health).await;
    let started = start(&client, &["profile"]);
    let back = consent_screen(&town, hanako, &started.params, &[], false).await;
    let http = http_client(town.hub_url.clone());
    let tokens = client
        .exchange_code(AuthorizationCode::new(query_param(&back, "code").unwrap()))
        .unwrap()
        .set_pkce_verifier(started.verifier)
        .request_async(&http)
        .await
        .unwrap();
    let info: Value = town
        .get("/oauth/userinfo")
        .bearer_auth(tokens.access_token().secret())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(info["sub"].is_string());
    assert!(info.get("name").is_none(), "{info}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subjects_are_pairwise_per_sector_and_stable_within_one() {
    let town = Town::new().await;
    let alice = town.alice;
    let health = sign_in(&town, &town.health, alice, &["advice"], &["advice"]).await;
    let again = sign_in(&town, &town.health, alice, &["advice"], &["advice"]).await;
    let reminder = sign_in(&town, &town.reminder, alice, &["reminders"], &["reminders"]).await;
    let mobility = sign_in(&town, &town.mobility, alice, &["rides"], &["rides"]).await;
    let bob = sign_in(&town, &town.health, town.bob, &["advice"], &["advice"]).await;
    assert_eq!(health.subject, again.subject, "stable within a service");
    assert_eq!(
        health.subject, reminder.subject,
        "shared within the health sector"
    );
    assert_ne!(health.subject, mobility.subject, "different across sectors");
    assert_ne!(health.subject, bob.subject);
    // The hub's internal resident id is never what a service sees.
    assert!(!health.subject.contains(&alice.to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unregistered_redirect_uri_is_shown_an_error_and_never_redirected_to() {
    let town = Town::new().await;
    let client = relying_party(&town, &town.health).await;
    let mut started = start(&client, &["advice"]);
    started.params.redirect_uri = Some("https://attacker.example/callback".into());
    assert!(matches!(
        town.hub.check_authorization_request(&started.params).await,
        Err(AuthorizeError::Show(_))
    ));
    started.params.redirect_uri = None;
    assert!(matches!(
        town.hub.check_authorization_request(&started.params).await,
        Err(AuthorizeError::Show(_))
    ));
    started.params.redirect_uri = Some(redirect_uri(&town.health.id));
    started.params.client_id = Some("no-such-service".into());
    assert!(matches!(
        town.hub.check_authorization_request(&started.params).await,
        Err(AuthorizeError::Show(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_pkce_s256_is_sent_back_with_invalid_request() {
    let town = Town::new().await;
    let client = relying_party(&town, &town.health).await;
    for method in [None, Some("plain")] {
        let mut started = start(&client, &["advice"]);
        started.params.code_challenge_method = method.map(str::to_owned);
        if method.is_none() {
            started.params.code_challenge = None;
        }
        match town.hub.check_authorization_request(&started.params).await {
            Err(AuthorizeError::Redirect(url)) => {
                assert!(url.starts_with(&redirect_uri(&town.health.id)));
                assert_eq!(
                    query_param(&url, "error").as_deref(),
                    Some("invalid_request")
                );
                assert_eq!(
                    query_param(&url, "state").as_deref(),
                    Some(started.csrf.secret().as_str())
                );
            }
            other => panic!("expected a redirect with an error, got {:?}", other.is_ok()),
        }
    }
    let mut started = start(&client, &["no-such-purpose"]);
    started.params.scope = Some("openid no-such-purpose".into());
    match town.hub.check_authorization_request(&started.params).await {
        Err(AuthorizeError::Redirect(url)) => {
            assert_eq!(query_param(&url, "error").as_deref(), Some("invalid_scope"));
        }
        _ => panic!("an unknown purpose scope is invalid_scope"),
    }
}

/// Trades a code at the token endpoint by hand (the library would refuse to send bad input).
async fn redeem(
    town: &Town,
    service: &TownService,
    code: &str,
    verifier: Option<&str>,
    redirect: &str,
) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code.to_owned()),
        ("redirect_uri", redirect.to_owned()),
        ("client_id", service.id.to_string()),
        ("client_secret", service.secret.clone()),
    ];
    if let Some(v) = verifier {
        form.push(("code_verifier", v.to_owned()));
    }
    let response = town
        .post("/oauth/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(&form).unwrap())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_wrong_pkce_verifier_gets_no_tokens() {
    let town = Town::new().await;
    let client = relying_party(&town, &town.health).await;
    let redirect = redirect_uri(&town.health.id);
    for verifier in [None, Some("x".repeat(43)), Some("too-short".to_owned())] {
        let started = start(&client, &["advice"]);
        let back = consent_screen(&town, town.alice, &started.params, &["advice"], false).await;
        let code = query_param(&back, "code").unwrap();
        let (status, body) =
            redeem(&town, &town.health, &code, verifier.as_deref(), &redirect).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"], "invalid_grant");
        assert!(body.get("access_token").is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_is_redeemed_once_and_its_reuse_revokes_the_tokens_it_issued() {
    let town = Town::new().await;
    let client = relying_party(&town, &town.health).await;
    let redirect = redirect_uri(&town.health.id);
    let started = start(&client, &["advice"]);
    let back = consent_screen(&town, town.alice, &started.params, &["advice"], false).await;
    let code = query_param(&back, "code").unwrap();
    let verifier = started.verifier.secret().clone();
    let (status, first) = redeem(&town, &town.health, &code, Some(&verifier), &redirect).await;
    assert_eq!(status, 200, "{first}");
    let access = first["access_token"].as_str().unwrap().to_owned();
    assert!(
        introspect(&town, &town.health, &access).await["active"]
            .as_bool()
            .unwrap()
    );

    let (status, second) = redeem(&town, &town.health, &code, Some(&verifier), &redirect).await;
    assert_eq!(status, 400);
    assert_eq!(second["error"], "invalid_grant");
    // RFC 6749 §4.1.2: the tokens issued for the code are revoked.
    assert_eq!(
        introspect(&town, &town.health, &access).await["active"],
        false
    );
    let (status, body) = common::problem(
        town.get("/oauth/userinfo")
            .bearer_auth(&access)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_for_another_redirect_uri_or_client_is_refused() {
    let town = Town::new().await;
    let client = relying_party(&town, &town.health).await;
    let started = start(&client, &["advice"]);
    let back = consent_screen(&town, town.alice, &started.params, &["advice"], false).await;
    let code = query_param(&back, "code").unwrap();
    let verifier = started.verifier.secret().clone();
    let (status, body) = redeem(
        &town,
        &town.reminder,
        &code,
        Some(&verifier),
        &redirect_uri(&town.health.id),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    let started = start(&client, &["advice"]);
    let back = consent_screen(&town, town.alice, &started.params, &["advice"], false).await;
    let code = query_param(&back, "code").unwrap();
    let (status, body) = redeem(
        &town,
        &town.health,
        &code,
        Some(started.verifier.secret()),
        "https://health-advice.example/other",
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whoever_merely_saw_a_code_can_neither_spend_it_nor_revoke_its_tokens() {
    let town = Town::new().await;
    let client = relying_party(&town, &town.health).await;
    let redirect = redirect_uri(&town.health.id);
    let started = start(&client, &["advice"]);
    let back = consent_screen(&town, town.alice, &started.params, &["advice"], false).await;
    let code = query_param(&back, "code").unwrap();
    let verifier = started.verifier.secret().clone();
    let wrong_verifier = "w".repeat(43);
    // Another client (even with the verifier), another redirect URI, no or a wrong verifier.
    let attempts: [(&TownService, Option<&str>, &str); 4] = [
        (&town.reminder, Some(&verifier), &redirect),
        (
            &town.health,
            Some(&verifier),
            "https://health-advice.example/other",
        ),
        (&town.health, None, &redirect),
        (&town.health, Some(&wrong_verifier), &redirect),
    ];
    for (service, verifier, redirect) in attempts {
        let (status, body) = redeem(&town, service, &code, verifier, redirect).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant"))
        );
    }

    // The code is still the rightful client's to redeem...
    let (status, tokens) = redeem(&town, &town.health, &code, Some(&verifier), &redirect).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_owned();

    // ...and replaying it as anyone else afterwards revokes none of its tokens.
    for (service, verifier, redirect) in attempts {
        let (status, _) = redeem(&town, service, &code, verifier, redirect).await;
        assert_eq!(status, 400);
    }
    assert_eq!(
        introspect(&town, &town.health, &access).await["active"],
        true
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_code_is_refused() {
    let town = Town::new().await;
    let code = "an-expired-code-known-to-the-test-0123456789";
    let verifier = "v".repeat(43);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let now = Utc::now();
    town.store
        .put_authorization_code(&renkei_store::AuthorizationCodeRecord {
            code_hash: URL_SAFE_NO_PAD.encode(Sha256::digest(code.as_bytes())),
            service: town.health.id.clone(),
            resident: town.alice,
            redirect_uri: redirect_uri(&town.health.id),
            code_challenge: challenge,
            nonce: None,
            scope: "openid".into(),
            consents: vec![],
            acting_proxy: None,
            acting_appointment: None,
            auth_time: now - TimeDelta::minutes(5),
            expires_at: now - TimeDelta::minutes(4),
        })
        .await
        .unwrap();
    let (status, body) = redeem(
        &town,
        &town.health,
        code,
        Some(&verifier),
        &redirect_uri(&town.health.id),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_token_with_another_nonce_is_rejected_by_the_relying_party() {
    let town = Town::new().await;
    let client = relying_party(&town, &town.health).await;
    let started = start(&client, &["advice"]);
    let back = consent_screen(&town, town.alice, &started.params, &["advice"], false).await;
    let http = http_client(town.hub_url.clone());
    let tokens = client
        .exchange_code(AuthorizationCode::new(query_param(&back, "code").unwrap()))
        .unwrap()
        .set_pkce_verifier(started.verifier)
        .request_async(&http)
        .await
        .unwrap();
    let verifier = client.id_token_verifier();
    let id_token = tokens.id_token().unwrap();
    assert!(id_token.claims(&verifier, &started.nonce).is_ok());
    assert!(
        id_token
            .claims(&verifier, &Nonce::new("another-nonce".into()))
            .is_err()
    );
}

async fn introspect(town: &Town, service: &TownService, token: &str) -> Value {
    let form = [
        ("token", token),
        ("client_id", service.id.as_str()),
        ("client_secret", service.secret.as_str()),
    ];
    let response = town
        .post("/oauth/introspect")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(form).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_the_consent_makes_the_token_inactive_at_once_whatever_its_expiry() {
    let town = Town::new().await;
    let signed = sign_in(&town, &town.health, town.alice, &["advice"], &["advice"]).await;
    let status = introspect(&town, &town.health, &signed.access_token).await;
    assert_eq!(status["active"], true);
    assert_eq!(status["sub"], signed.subject.as_str());
    assert!(status["scope"].as_str().unwrap().contains("advice"));
    // Another service cannot learn anything about the token.
    assert_eq!(
        introspect(&town, &town.mobility, &signed.access_token).await,
        serde_json::json!({ "active": false })
    );
    let granted = town
        .request_data(
            &signed.access_token,
            &signed.subject,
            "advice",
            &[HEALTH_CHECKUP],
        )
        .await;
    assert_eq!(granted.status(), 200);

    // Revocation answered: the very next introspection and data request see it (zero staleness).
    let consent = town
        .hub
        .consents(&ResidentSession::resident(town.alice))
        .await
        .unwrap()[0]
        .id
        .clone();
    let resident_token = town.sign_in(town.alice).await;
    assert_eq!(town.revoke(&resident_token, &consent).await.status(), 200);
    assert_eq!(
        introspect(&town, &town.health, &signed.access_token).await["active"],
        false
    );
    let refused = town
        .request_data(
            &signed.access_token,
            &signed.subject,
            "advice",
            &[HEALTH_CHECKUP],
        )
        .await;
    common::expect_problem(refused, 401, "/problems/token-inactive").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_access_token_stops_working_and_revocation_of_unknown_tokens_is_quiet() {
    let town = Town::new().await;
    let signed = sign_in(&town, &town.health, town.alice, &["advice"], &["advice"]).await;
    let revoke = |token: String| {
        let form = [
            ("token", token),
            ("client_id", town.health.id.to_string()),
            ("client_secret", town.health.secret.clone()),
        ];
        town.post("/oauth/revoke")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).unwrap())
            .send()
    };
    assert_eq!(revoke("not-a-token".into()).await.unwrap().status(), 200);
    assert_eq!(
        introspect(&town, &town.health, &signed.access_token).await["active"],
        true
    );
    assert_eq!(
        revoke(signed.access_token.clone()).await.unwrap().status(),
        200
    );
    assert_eq!(
        introspect(&town, &town.health, &signed.access_token).await["active"],
        false
    );
    // A client-credentials token the service revokes is refused at the data endpoint too.
    let service_token = town.service_token(&town.health).await;
    assert_eq!(revoke(service_token.clone()).await.unwrap().status(), 200);
    let refused = town
        .request_data(&service_token, &signed.subject, "advice", &[HEALTH_CHECKUP])
        .await;
    common::expect_problem(refused, 401, "/problems/token-inactive").await;
    // The decision itself refused it, so the attempt is in the resident's log.
    let newest = town
        .store
        .access_records(&renkei_store::AccessQuery {
            order: renkei_store::LogOrder::NewestFirst,
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        newest[0].outcome,
        renkei_domain::AccessOutcome::Denied {
            reason: "token-revoked".into()
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_services_code_flow_tokens_stop_at_once() {
    let town = Town::new().await;
    let signed = sign_in(&town, &town.health, town.alice, &["advice"], &["advice"]).await;
    town.store
        .set_service_status(&town.health.id, ServiceStatus::Suspended)
        .await
        .unwrap();
    let refused = town
        .request_data(
            &signed.access_token,
            &signed.subject,
            "advice",
            &[HEALTH_CHECKUP],
        )
        .await;
    common::expect_problem(refused, 401, "/problems/token-inactive").await;
    // It cannot even authenticate to introspect any more.
    let form = [
        ("token", signed.access_token.as_str()),
        ("client_id", town.health.id.as_str()),
        ("client_secret", town.health.secret.as_str()),
    ];
    let response = town
        .post("/oauth/introspect")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(form).unwrap())
        .send()
        .await
        .unwrap();
    // Refused form credentials: RFC 6749 §5.2's 400 `invalid_client`.
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_flow_token_cannot_fetch_another_residents_data() {
    let town = Town::new().await;
    let alice = sign_in(&town, &town.health, town.alice, &["advice"], &["advice"]).await;
    let bob = sign_in(&town, &town.health, town.bob, &["advice"], &["advice"]).await;
    let refused = town
        .request_data(
            &alice.access_token,
            &bob.subject,
            "advice",
            &[HEALTH_CHECKUP],
        )
        .await;
    common::expect_problem(refused, 403, "/problems/forbidden").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_advertises_pkce_s256_pairwise_subjects_and_every_endpoint() {
    let town = Town::new().await;
    let doc: Value = town
        .get("/.well-known/openid-configuration")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], ISSUER);
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        doc["subject_types_supported"],
        serde_json::json!(["pairwise"])
    );
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256", "EdDSA"]),
        "RS256 is required (OpenID Connect Discovery §3)"
    );
    for endpoint in [
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "introspection_endpoint",
        "revocation_endpoint",
    ] {
        assert!(
            doc[endpoint].as_str().unwrap().starts_with(ISSUER),
            "{endpoint}"
        );
    }
}

/// The published key ids of one algorithm, in the order the set lists them.
fn kids(jwks: &renkei_protocol::keys::Jwks, alg: &str) -> Vec<String> {
    jwks.keys
        .iter()
        .filter(|k| serde_json::to_value(k).unwrap()["alg"] == alg)
        .filter_map(|k| k.common.key_id.clone())
        .collect()
}

/// The key ids of a rotation, EdDSA then RS256.
fn rotated(keys: &[renkei_hub::signing_keys::SigningKeyView]) -> (String, String) {
    assert_eq!(
        keys.iter().map(|k| k.alg).collect::<Vec<_>>(),
        [SigningAlg::EdDsa, SigningAlg::Rs256],
        "a rotation makes one key of each algorithm"
    );
    assert_eq!(keys[0].active_from, keys[1].active_from);
    (keys[0].kid.clone(), keys[1].kid.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_is_published_before_it_signs_and_what_old_keys_signed_still_verifies() {
    use renkei_hub::signing_keys::{self, RetireError};
    let town = Town::new().await;
    register_id_token_alg(&town, &town.mobility, SigningAlg::EdDsa).await;
    let eddsa_only = || Some(vec![CoreJwsSigningAlgorithm::EdDsa]);
    let alice = town.sign_in(town.alice).await;
    let receipt = town.grant(&alice, "health-advice", "advice").await.receipt;
    let hanako = enrolled_resident(&town, "山田 花子").await;
    let jwks = town.published_jwks().await;
    let (first, first_rs) = (kids(&jwks, "EdDSA"), kids(&jwks, "RS256"));
    assert_eq!((first.len(), first_rs.len(), jwks.keys.len()), (1, 1, 2));
    let signed = sign_in(&town, &town.health, hanako, &["advice"], &["advice"]).await;
    assert_eq!(signed.id_token_kid.as_ref(), Some(&first_rs[0]));
    let signed = sign_in_accepting(&town, &town.mobility, hanako, &[], &[], eddsa_only()).await;
    assert_eq!(signed.id_token_kid.as_ref(), Some(&first[0]));

    // Rotation with a delay: the next keys are published at once but do not sign yet.
    let (next, next_rs) = rotated(
        &signing_keys::rotate(
            town.store.as_ref(),
            &town.config.kek,
            Utc::now(),
            TimeDelta::hours(1),
        )
        .await
        .unwrap(),
    );
    town.hub
        .keys()
        .signing
        .reload(town.store.as_ref())
        .await
        .unwrap();
    let jwks = town.published_jwks().await;
    assert_eq!(kids(&jwks, "EdDSA"), [first[0].clone(), next.clone()]);
    assert_eq!(kids(&jwks, "RS256"), [first_rs[0].clone(), next_rs.clone()]);
    let signed = sign_in(&town, &town.health, hanako, &["advice"], &["advice"]).await;
    assert_eq!(signed.id_token_kid.as_ref(), Some(&first_rs[0]));
    let signed = sign_in_accepting(&town, &town.mobility, hanako, &[], &[], eddsa_only()).await;
    assert_eq!(signed.id_token_kid.as_ref(), Some(&first[0]));

    // An immediate rotation (as after a compromise): the newest keys sign ID tokens the
    // relying party verifies from the published set, and grants providers that re-fetched
    // the set accept.
    let (now_key, now_rs) = rotated(
        &signing_keys::rotate(
            town.store.as_ref(),
            &town.config.kek,
            Utc::now(),
            TimeDelta::zero(),
        )
        .await
        .unwrap(),
    );
    town.hub
        .keys()
        .signing
        .reload(town.store.as_ref())
        .await
        .unwrap();
    for provider in [&town.clinic, &town.payments] {
        let p = provider.provider.as_ref().unwrap();
        p.verifier.replace_jwks(town.published_jwks().await);
    }
    let signed = sign_in(&town, &town.health, hanako, &["advice"], &["advice"]).await;
    assert_eq!(signed.id_token_kid, Some(now_rs.clone()));
    let signed = sign_in_accepting(&town, &town.mobility, hanako, &[], &[], eddsa_only()).await;
    assert_eq!(signed.id_token_kid, Some(now_key.clone()));
    let token = town.service_token(&town.health).await;
    let subject = town.hub.keys().subject("health", town.alice).to_string();
    let answer = town
        .data(&token, &subject, "advice", &[HEALTH_CHECKUP])
        .await;
    assert_eq!(answer.results[0].status, "ok", "{:?}", answer.results);

    // The receipt signed by the first key still verifies, until that key is retired.
    renkei_protocol::receipt::verify_receipt(&receipt, &town.published_jwks().await).unwrap();
    signing_keys::retire(town.store.as_ref(), &first[0], Utc::now())
        .await
        .unwrap();
    town.hub
        .keys()
        .signing
        .reload(town.store.as_ref())
        .await
        .unwrap();
    let published = town.published_jwks().await;
    // In the order they sign: the immediate key now, the delayed one from its time on.
    assert_eq!(kids(&published, "EdDSA"), [now_key.clone(), next.clone()]);
    assert!(renkei_protocol::receipt::verify_receipt(&receipt, &published).is_err());

    // The last published key of an algorithm cannot be retired: the hub must always be
    // able to sign with both.
    for (old, last, alg) in [
        (vec![next.clone()], now_key.clone(), SigningAlg::EdDsa),
        (
            vec![first_rs[0].clone(), next_rs.clone()],
            now_rs.clone(),
            SigningAlg::Rs256,
        ),
    ] {
        for kid in old {
            signing_keys::retire(town.store.as_ref(), &kid, Utc::now())
                .await
                .unwrap();
        }
        let refused = signing_keys::retire(town.store.as_ref(), &last, Utc::now()).await;
        assert!(
            matches!(&refused, Err(RetireError::LastKey { alg: a, .. }) if *a == alg),
            "{refused:?}"
        );
    }
    let unknown = signing_keys::retire(town.store.as_ref(), &first[0], Utc::now()).await;
    assert!(
        matches!(unknown, Err(RetireError::Unknown(_))),
        "{unknown:?}"
    );
}

// --- proxies signing in for the resident ---

/// A proxy's session for `resident`, appointed (by `resident`'s own token) with `scope`.
async fn proxy_for(town: &Town, resident: ResidentId, scope: Value) -> (String, ResidentSession) {
    let resident_token = town.sign_in(resident).await;
    let bob = town.sign_in(town.bob).await;
    let code = town.invite_proxy(&resident_token, scope).await;
    let (appointment, token) = town.act_for(&bob, &code).await;
    let session = town.hub.resident_session(&token).await.unwrap();
    assert!(session.proxy.is_some());
    (appointment, session)
}

/// The consent screen answered in `session`: the redirect with the code, or the refusal.
async fn answer_as(
    town: &Town,
    session: &ResidentSession,
    params: &AuthorizationParams,
    yes: &[&str],
    share_profile: bool,
) -> Result<String, renkei_hub::HubError> {
    let Ok(request) = town.hub.check_authorization_request(params).await else {
        panic!("the authorization request itself is fine");
    };
    let answers = ConsentAnswers {
        yes: yes.iter().map(|p| PurposeId::new(*p).unwrap()).collect(),
        share_profile,
    };
    town.hub
        .complete_authorization(session, &request, &answers)
        .await
}

/// The claims of a compact JWS, unverified (its signature is checked elsewhere).
fn payload(jws: &str) -> Value {
    let part = jws.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_to_a_service_for_someone_needs_its_own_permission_within_the_scope() {
    let town = Town::new().await;
    let hanako = enrolled_resident(&town, "山田 花子").await;
    // Hanako agreed to health advice herself: a proxy would reuse her consent.
    let own = town.sign_in(hanako).await;
    town.grant(&own, "health-advice", "advice").await;
    let client = relying_party(&town, &town.health).await;

    // Everything but signing in, for health-advice.
    let (_, everything_else) = proxy_for(
        &town,
        hanako,
        json!({ "services": ["health-advice"], "manage_consents": true, "view_history": true, "file_requests": true }),
    )
    .await;
    // Signing in, but for another service.
    let (_, elsewhere) = proxy_for(
        &town,
        hanako,
        json!({ "services": ["town-mobility"], "manage_consents": true, "view_history": true, "file_requests": true, "sign_in_to_services": true }),
    )
    .await;
    for session in [&everything_else, &elsewhere] {
        for (scopes, yes) in [
            (&["profile", "advice"][..], &["advice"][..]),
            (&["profile"][..], &[][..]),
            (&[][..], &[][..]),
        ] {
            let started = start(&client, scopes);
            let refused = answer_as(&town, session, &started.params, yes, true).await;
            assert!(
                matches!(refused, Err(renkei_hub::HubError::Forbidden(_))),
                "{scopes:?}: {refused:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_issued_to_a_proxy_say_so_and_end_with_the_appointment() {
    let town = Town::new().await;
    let hanako = enrolled_resident(&town, "山田 花子").await;
    let own = town.sign_in(hanako).await;
    town.grant(&own, "health-advice", "advice").await;
    let (appointment, session) = proxy_for(
        &town,
        hanako,
        json!({ "services": ["health-advice"], "manage_consents": false, "view_history": false, "file_requests": false, "sign_in_to_services": true }),
    )
    .await;
    let client = relying_party(&town, &town.health).await;
    let started = start(&client, &["profile", "advice"]);
    let back = answer_as(&town, &session, &started.params, &["advice"], true)
        .await
        .unwrap();
    let code = query_param(&back, "code").unwrap();
    let http = http_client(town.hub_url.clone());
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(started.verifier)
        .request_async(&http)
        .await
        .unwrap();
    let id_token = tokens.id_token().expect("an ID token");
    let verified = id_token
        .claims(&client.id_token_verifier(), &started.nonce)
        .unwrap();
    let hanako_subject = verified.subject().to_string();

    // The ID token says a proxy acted, naming them as the service knows them (their own
    // pairwise subject in its sector), never by the hub's resident id.
    let jwt = serde_json::to_value(id_token).unwrap();
    let claims = payload(jwt.as_str().unwrap());
    let bob_subject = town.hub.keys().subject("health", town.bob).to_string();
    assert_eq!(claims["act"], json!({ "sub": bob_subject }), "{claims}");
    assert_ne!(bob_subject, hanako_subject);
    assert!(!claims.to_string().contains(&town.bob.to_string()));
    assert!(!claims.to_string().contains(&hanako.to_string()));

    // So do the access token's introspection and the token itself.
    let access = tokens.access_token().secret().clone();
    let status = introspect(&town, &town.health, &access).await;
    assert_eq!(status["active"], true);
    assert_eq!(status["act"], json!({ "sub": bob_subject }), "{status}");
    assert_eq!(payload(&access)["act"], json!({ "sub": bob_subject }));
    let userinfo = town
        .get("/oauth/userinfo")
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), 200);

    // Hanako ends the appointment: every token issued under it ends with it.
    let ended = town
        .post(&format!("/v1/me/proxies/{appointment}/end"))
        .bearer_auth(&own)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 200);
    assert_eq!(
        introspect(&town, &town.health, &access).await,
        json!({ "active": false })
    );
    let (status, body) = common::problem(
        town.get("/oauth/userinfo")
            .bearer_auth(&access)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    let refused = town
        .request_data(&access, &hanako_subject, "advice", &[HEALTH_CHECKUP])
        .await;
    common::expect_problem(refused, 401, "/problems/token-inactive").await;
}

/// `client_secret_basic` as RFC 6749 §2.3.1 says and openid-client (Node) sends it: id and
/// secret form-urlencoded, then joined by `:` and Base64-encoded. Every byte is encoded
/// here, so `health-advice` travels as `%68%65...%2D...`, a stricter case of the library's
/// `health%2Dadvice`.
fn form_encoded_basic(service: &TownService) -> String {
    let encode = |s: &str| s.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
    let pair = format!(
        "{}:{}",
        encode(service.id.as_str()),
        encode(&service.secret)
    );
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_urlencoded_basic_credentials_authenticate_at_token_introspection_and_revocation() {
    let town = Town::new().await;
    let basic = form_encoded_basic(&town.health);
    let post = |path: &str, body: String| {
        town.post(path)
            .header("authorization", basic.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    // The library's own spelling of the id, `-` encoded and the secret as it is.
    let library = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("health%2Dadvice:{}", town.health.secret))
    );
    let response = town
        .post("/oauth/token")
        .header("authorization", library)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());

    let response = post("/oauth/token", "grant_type=client_credentials".into())
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());

    // The code flow's token request, with a code the consent screen gave.
    let client = relying_party(&town, &town.health).await;
    let started = start(&client, &["advice"]);
    let back = consent_screen(&town, town.alice, &started.params, &["advice"], true).await;
    let code = query_param(&back, "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", &redirect_uri(&town.health.id)),
        ("code_verifier", started.verifier.secret()),
    ];
    let response = post("/oauth/token", serde_urlencoded::to_string(form).unwrap())
        .await
        .unwrap();
    let tokens: Value = response.json().await.unwrap();
    let access_token = tokens["access_token"].as_str().expect("tokens").to_owned();

    let introspected = post(
        "/oauth/introspect",
        serde_urlencoded::to_string([("token", &access_token)]).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(introspected.status(), 200);
    assert_eq!(introspected.json::<Value>().await.unwrap()["active"], true);
    let revoked = post(
        "/oauth/revoke",
        serde_urlencoded::to_string([("token", &access_token)]).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(
        introspect(&town, &town.health, &access_token).await["active"],
        false
    );
}
