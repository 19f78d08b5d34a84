//! The console's provider registry and vocabulary forms: an operator registers a data
//! provider (its names, endpoint or outbound connection, the categories it serves, its
//! public signing keys and contact), approves or suspends it, and adds a data category.
//! Every act goes through the hub's own methods, as the API's do, and is logged there.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use renkei_domain::{ControllerContact, PostalAddress, ProviderId};
use renkei_hub::HubError;
use renkei_hub::accounts::{CategoryRegistration, ProviderRegistration};
use serde::Deserialize;

use crate::PortalState;
use crate::console::signed_in;
use crate::ctx::Ctx;
use crate::error::PortalError;
use crate::extract::{Form, Path};

/// One registered provider as the list shows it.
pub struct ProviderRow {
    pub id: String,
    pub name: String,
    pub status: String,
    pub status_class: String,
    pub connection: String,
    pub categories: Vec<String>,
    pub kids: Vec<String>,
    pub contact: Option<String>,
    pub approved: bool,
}

/// A category offered as a checkbox of the registration form.
pub struct CategoryChoice {
    pub id: String,
    pub name: String,
    pub special_care: bool,
    pub checked: bool,
}

#[derive(Template)]
#[template(path = "console/providers.html")]
struct ProvidersPage {
    ctx: Ctx,
    providers: Vec<ProviderRow>,
    categories: Vec<CategoryChoice>,
    form: ProviderForm,
    error: Option<String>,
    message: Option<String>,
}

/// The registration form, kept as typed when it is refused.
#[derive(Debug, Default)]
pub struct ProviderForm {
    id: String,
    name_ja: String,
    name_en: String,
    /// `inbound` or `outbound`.
    connection: String,
    endpoint: String,
    /// A JWK Set, or one JWK, as `renkei provider keygen` prints it.
    signing_keys: String,
    contact: String,
    email: String,
    phone: String,
    postal_code: String,
    region: String,
    locality: String,
    street_address: String,
    categories: Vec<String>,
}

async fn page(
    state: &PortalState,
    ctx: Ctx,
    form: ProviderForm,
    error: Option<String>,
    message: Option<String>,
) -> Result<Response, PortalError> {
    let t = ctx.t;
    let providers = state
        .hub
        .provider_registrations()
        .await?
        .into_iter()
        .map(|p| ProviderRow {
            status: t.get_or(&format!("status-{}", p.status.as_str()), "status-other"),
            status_class: p.status.as_str().to_owned(),
            approved: p.receives_grants(),
            connection: match p.endpoint() {
                Some(endpoint) => endpoint.to_owned(),
                None => t.get("console-provider-outbound"),
            },
            name: t.pick(&p.name.ja, &p.name.en).to_owned(),
            categories: p.categories.iter().map(ToString::to_string).collect(),
            kids: p
                .signing_keys
                .keys()
                .iter()
                .map(|k| k.kid().to_owned())
                .collect(),
            contact: p
                .contact
                .map(|c| format!("{} <{}> {}", c.contact, c.email, c.phone)),
            id: p.id.to_string(),
        })
        .collect();
    let categories = state
        .hub
        .categories()
        .await?
        .into_iter()
        .map(|c| CategoryChoice {
            checked: form.categories.contains(&c.id),
            name: t.pick(&c.name_ja, &c.name_en).to_owned(),
            special_care: c.special_care,
            id: c.id,
        })
        .collect();
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = ProvidersPage {
        ctx: ctx.console("console-providers-title", "/console/providers", true),
        providers,
        categories,
        form,
        error,
        message,
    };
    Ok((status, Html(page.render()?)).into_response())
}

/// The registered providers and the registration form.
pub async fn providers(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
) -> Result<Response, PortalError> {
    signed_in(&state, &headers).await?;
    let form = ProviderForm {
        connection: "inbound".into(),
        ..ProviderForm::default()
    };
    page(&state, ctx, form, None, None).await
}

/// What a refused registration says: the hub's own words, which name the field.
fn refusal(e: HubError) -> Result<String, PortalError> {
    match e {
        HubError::Malformed(_) | HubError::UnknownCategory(_) | HubError::InvalidField { .. } => {
            Ok(e.to_string())
        }
        other => Err(other.into()),
    }
}

/// Registers a provider, pending review; refused (422, the form as typed, why) when the hub
/// refuses it.
pub async fn register(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, PortalError> {
    let op = signed_in(&state, &headers).await?;
    let mut form = ProviderForm::default();
    for (name, value) in fields {
        let field = match name.as_str() {
            "id" => &mut form.id,
            "name_ja" => &mut form.name_ja,
            "name_en" => &mut form.name_en,
            "connection" => &mut form.connection,
            "endpoint" => &mut form.endpoint,
            "signing_keys" => &mut form.signing_keys,
            "contact" => &mut form.contact,
            "email" => &mut form.email,
            "phone" => &mut form.phone,
            "postal_code" => &mut form.postal_code,
            "region" => &mut form.region,
            "locality" => &mut form.locality,
            "street_address" => &mut form.street_address,
            "category" => {
                form.categories.push(value);
                continue;
            }
            _ => continue,
        };
        *field = value;
    }
    let keys = serde_json::from_str::<serde_json::Value>(form.signing_keys.trim())
        .map(|v| {
            if v.get("keys").is_some() {
                v
            } else {
                serde_json::json!({ "keys": [v] })
            }
        })
        .unwrap_or(serde_json::Value::Null);
    let outbound = form.connection == "outbound";
    let registration = ProviderRegistration {
        id: form.id.trim().to_owned(),
        name_ja: form.name_ja.clone(),
        name_en: form.name_en.clone(),
        endpoint: (!outbound).then(|| form.endpoint.trim().to_owned()),
        outbound,
        categories: form.categories.clone(),
        signing_keys: keys,
        contact: ControllerContact {
            contact: form.contact.clone(),
            address: PostalAddress {
                country: "JP".into(),
                postal_code: form.postal_code.clone(),
                region: form.region.clone(),
                locality: form.locality.clone(),
                street_address: form.street_address.clone(),
            },
            email: form.email.clone(),
            phone: form.phone.clone(),
        },
    };
    match state.hub.register_provider(&op.id, registration).await {
        Ok(p) => {
            let message = ctx.t.arg("console-provider-registered", "id", &p.id);
            let empty = ProviderForm {
                connection: "inbound".into(),
                ..ProviderForm::default()
            };
            page(&state, ctx, empty, None, Some(message)).await
        }
        Err(e) => {
            let why = refusal(e)?;
            page(&state, ctx, form, Some(why), None).await
        }
    }
}

fn provider_id(id: &str) -> Result<ProviderId, PortalError> {
    ProviderId::new(id).map_err(|_| PortalError::NotFound)
}

/// Approves a provider: it is sent grants from the next request on.
pub async fn approve(
    State(state): State<PortalState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, PortalError> {
    let op = signed_in(&state, &headers).await?;
    state
        .hub
        .approve_provider(&op.id, &provider_id(&id)?)
        .await?;
    Ok(Redirect::to("/console/providers").into_response())
}

/// Suspends a provider: no request is sent to it from now on.
pub async fn suspend(
    State(state): State<PortalState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, PortalError> {
    let op = signed_in(&state, &headers).await?;
    state
        .hub
        .suspend_provider(&op.id, &provider_id(&id)?)
        .await?;
    Ok(Redirect::to("/console/providers").into_response())
}

/// The category form's fields.
#[derive(Deserialize)]
pub struct CategoryForm {
    id: String,
    name_ja: String,
    name_en: String,
    /// A ticked checkbox sends `on`; an unticked one sends nothing.
    #[serde(default)]
    special_care: Option<String>,
}

/// Adds a category to the vocabulary; the vocabulary page again, saying what came of it.
pub async fn add_category(
    State(state): State<PortalState>,
    ctx: Ctx,
    headers: HeaderMap,
    Form(form): Form<CategoryForm>,
) -> Result<Response, PortalError> {
    let op = signed_in(&state, &headers).await?;
    let registration = CategoryRegistration {
        id: form.id.trim().to_owned(),
        name_ja: form.name_ja,
        name_en: form.name_en,
        special_care: form.special_care.is_some(),
        location: false,
    };
    let (error, message) = match state.hub.register_category(&op.id, registration).await {
        Ok(c) => (None, Some(ctx.t.arg("console-category-added", "id", &c.id))),
        Err(e) => (Some(refusal(e)?), None),
    };
    crate::console::categories_page(&state, ctx, error, message).await
}
