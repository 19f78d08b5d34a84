//! `renkei verify-package`: checks a disclosure package offline (the log's checkpoint and
//! its signature, every history entry's inclusion proof, the receipts), against the keys it
//! carries and, if given, against the hub's JWK Set and log key kept apart; with the
//! resident's key it opens what each provider sealed and checks it is that provider's signed
//! answer to this disclosure. `renkei disclosure-key` makes such a key.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use renkei_hub::disclosure::{DisclosurePackage, Trust, verify_package};
use renkei_protocol::envelope::ServiceKeyPair;
use renkei_protocol::keys::Jwks;

/// Reads `source`: an http(s) URL fetched, or a file.
async fn read_source(source: &str) -> anyhow::Result<String> {
    if source.starts_with("https://") || source.starts_with("http://") {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(30))
            .build()?;
        let response = client
            .get(source)
            .send()
            .await
            .with_context(|| format!("reading {source}"))?;
        if !response.status().is_success() {
            bail!("{source} answered {}", response.status());
        }
        return Ok(response.text().await?);
    }
    std::fs::read_to_string(source).with_context(|| format!("reading {source}"))
}

pub async fn run(
    file: &Path,
    jwks: Option<&str>,
    log_key: Option<&str>,
    key: Option<&Path>,
) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let package: DisclosurePackage = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a disclosure package", file.display()))?;
    let jwks: Option<Jwks> = match jwks {
        Some(source) => Some(
            serde_json::from_str(&read_source(source).await?)
                .with_context(|| format!("{source} is not a JWK Set"))?,
        ),
        None => None,
    };
    let log_key = match log_key {
        Some(source) if source.contains("://") || Path::new(source).is_file() => {
            Some(read_source(source).await?.trim().to_owned())
        }
        Some(text) => Some(text.trim().to_owned()),
        None => None,
    };
    let key = match key {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Some(ServiceKeyPair::from_private_b64(text.trim()).context("reading the key")?)
        }
        None => None,
    };
    let trust = Trust {
        jwks: jwks.as_ref(),
        log_key: log_key.as_deref(),
    };
    let report = verify_package(&package, trust, key.as_ref())
        .context("the package does not verify: refused")?;
    println!(
        "verified: disclosure {} of resident {}: {} log entries in the signed tree of {}, \
         {} receipts, {} requests that released data",
        report.disclosure,
        report.resident,
        report.entries,
        report.checkpoint_size,
        report.receipts,
        report.recipients,
    );
    if trust.jwks.is_none() && trust.log_key.is_none() {
        println!(
            "checked against the keys in the package: compare them with the hub's \
             (--jwks URL/.well-known/jwks.json, --log-key URL/log/key)"
        );
    }
    for part in &report.providers {
        match (&part.opened, key.is_some()) {
            (Some(claims), _) => println!(
                "{}: opened and verified, signed by the provider for this disclosure\n{}",
                part.provider,
                serde_json::to_string_pretty(&claims.data)?
            ),
            (None, true) => println!("{}: {}", part.provider, part.status),
            (None, false) => println!(
                "{}: {} (sealed to your key: open it with --key)",
                part.provider, part.status
            ),
        }
    }
    Ok(())
}

/// Makes a key pair for a disclosure: the private half to `out` (owner-only, never
/// overwritten), the public half printed, to send as `recipient_key`.
pub fn new_key(out: &Path) -> anyhow::Result<()> {
    let pair = ServiceKeyPair::generate().context("making a key")?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(out)
        .with_context(|| format!("creating {} (it must not exist)", out.display()))?;
    writeln!(file, "{}", pair.private_b64())?;
    println!("{}", pair.public_b64());
    Ok(())
}
