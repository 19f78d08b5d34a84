//! The demo town registered as a city registers its own: through the hub's API, as its
//! operator. The demo operator signs in the demo's way (the demo sign-in for their identity,
//! traded for an operator session), then adds the category vocabulary, registers the three
//! providers with the public halves of the signing keys their kits sign with, approves them,
//! and registers and approves the three services. Each service's client secret, shown once
//! by the hub, is kept in `<data dir>/service-secrets/<id>` (owner-only).

use std::path::{Path, PathBuf};

use anyhow::Context;
use renkei_domain::LegalBasis;
use renkei_hub::accounts::{
    CategoryRegistration, ProviderRegistration, PurposeDeclaration, ServiceRegistration,
};
use renkei_protocol::envelope::ServiceKeyPair;

use crate::admin::OperatorClient;
use crate::demo::{
    CATEGORIES, DEMO_OPERATOR_IDENTITY, DemoOptions, PROVIDERS, SERVICES, demo_redirect_uri,
};

fn secrets_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("service-secrets")
}

/// Where a provider's kit files (and its signing key) are.
pub fn provider_dir(data_dir: &Path, id: &str) -> PathBuf {
    data_dir.join("providers").join(id)
}

/// Registers the town's catalogue at the hub serving at `hub_url`.
pub async fn register_town(options: &DemoOptions, hub_url: &str) -> anyhow::Result<()> {
    let operator = OperatorClient::demo_sign_in(hub_url, DEMO_OPERATOR_IDENTITY).await?;
    for (id, ja, en, special_care) in CATEGORIES {
        operator
            .add_category(&CategoryRegistration {
                id: (*id).to_owned(),
                name_ja: (*ja).to_owned(),
                name_en: (*en).to_owned(),
                special_care: *special_care,
                location: false,
            })
            .await?;
    }
    for (i, p) in PROVIDERS.iter().enumerate() {
        let port = options.first_provider_port + u16::try_from(i)?;
        let key = crate::demo_kit::signing_key(&provider_dir(&options.data_dir, p.id))?;
        operator
            .add_provider(&ProviderRegistration {
                id: p.id.to_owned(),
                name_ja: p.name.0.to_owned(),
                name_en: p.name.1.to_owned(),
                endpoint: Some(format!("http://127.0.0.1:{port}")),
                outbound: false,
                categories: p.categories.iter().map(|c| (*c).to_owned()).collect(),
                signing_keys: serde_json::json!({ "keys": [key.public_jwk()] }),
                contact: p.contact.contact()?,
            })
            .await?;
        operator.approve_provider(p.id).await?;
    }
    let keys_dir = options.data_dir.join("service-keys");
    crate::run::create_private_dir(&keys_dir)?;
    crate::run::create_private_dir(&secrets_dir(&options.data_dir))?;
    for s in &SERVICES {
        let keys = ServiceKeyPair::generate()?;
        crate::run::write_private_file(
            &keys_dir.join(format!("{}.key", s.id)),
            format!("{}\n", keys.private_b64()).as_bytes(),
        )?;
        let registered = operator
            .add_service(&ServiceRegistration {
                id: s.id.to_owned(),
                name_ja: s.name.0.to_owned(),
                name_en: s.name.1.to_owned(),
                sector: Some(s.sector.to_owned()),
                hpke_public_key: keys.public_b64(),
                webhook_url: None,
                redirect_uris: vec![demo_redirect_uri(s.id)],
                purposes: vec![PurposeDeclaration {
                    id: s.purpose.to_owned(),
                    title_ja: s.title.0.to_owned(),
                    title_en: s.title.1.to_owned(),
                    description_ja: s.description.0.to_owned(),
                    description_en: s.description.1.to_owned(),
                    categories: s.categories.iter().map(|c| (*c).to_owned()).collect(),
                    retention_days: s.retention_days,
                    legal_basis: LegalBasis::Consent,
                    emergency_only: false,
                    location_precision: None,
                    location_retention_days: None,
                }],
                privacy_impact: Default::default(),
                id_token_signed_response_alg: Default::default(),
                controller: s.controller.contact()?,
            })
            .await?;
        crate::run::write_private_file(
            &secrets_dir(&options.data_dir).join(&registered.id),
            registered.client_secret.as_bytes(),
        )?;
        // The demo operator has read the demo's purposes: their special-care flags are
        // confirmed as a reviewing operator would tick them.
        operator
            .approve_service_confirming_its_risks(&registered.id)
            .await?;
    }
    Ok(())
}

/// The services' client secrets, as registration showed them: `(service id, secret)`.
pub fn client_secrets(data_dir: &Path) -> anyhow::Result<Vec<(String, String)>> {
    SERVICES
        .iter()
        .map(|s| {
            let path = secrets_dir(data_dir).join(s.id);
            let secret = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            Ok((s.id.to_owned(), secret.trim().to_owned()))
        })
        .collect()
}
