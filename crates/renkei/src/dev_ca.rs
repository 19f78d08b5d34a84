//! `renkei dev-ca`: a development certificate authority on disk that stands in for JPKI (the
//! My Number card's signing certificates), so enrolment can be tried without a card. Never for
//! production: its root key sits in a plain file.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use chrono::{Duration, NaiveDate, Utc};
use clap::Subcommand;
use renkei_identity::dev_ca::{CRL_FILE, CRL_LIFETIME_DAYS, ROOT_KEY_FILE};
use renkei_identity::{DevCa, IdentityAttributes, KeyAlgorithm, Validity, sign_challenge};

#[derive(Subcommand)]
pub enum DevCaCommand {
    /// Create a root certificate and key and an empty revocation list in DIR.
    Init {
        #[arg(long)]
        dir: PathBuf,
        /// The root's key type: `rsa` (2048 bits, as JPKI) or `ecdsa` (P-256).
        #[arg(long, default_value = "rsa")]
        algorithm: KeyAlgorithm,
    },
    /// Issue a resident's signing certificate and private key under the root in DIR.
    Issue {
        #[arg(long)]
        dir: PathBuf,
        /// The resident's name (the certificate's commonName; Japanese is fine).
        #[arg(long)]
        name: String,
        /// The resident's key type: `rsa` or `ecdsa`.
        #[arg(long, default_value = "rsa")]
        algorithm: KeyAlgorithm,
        /// How many days the certificate is valid, from now.
        #[arg(long, default_value_t = 365)]
        days: i64,
        /// Writes PREFIX.pem (certificate) and PREFIX-key.pem (private key); by default
        /// DIR/resident-<serial>.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Optional subject serialNumber (printable ASCII).
        #[arg(long)]
        serial_number: Option<String>,
        /// Optional address (streetAddress).
        #[arg(long)]
        address: Option<String>,
        /// Optional date of birth, YYYY-MM-DD.
        #[arg(long)]
        birth_date: Option<NaiveDate>,
    },
    /// Revoke a certificate issued by the CA in DIR and rewrite DIR/crl.pem.
    Revoke {
        #[arg(long)]
        dir: PathBuf,
        /// The certificate to revoke (PEM or DER).
        #[arg(long)]
        cert: PathBuf,
    },
    /// Rewrite DIR/crl.pem with a fresh nextUpdate (a CRL goes stale after 30 days).
    Crl {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Sign a challenge (base64url) with a resident's private key, as the card would, and
    /// print the signature (base64url, no padding).
    Sign {
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        challenge: String,
    },
}

pub fn run(command: DevCaCommand) -> anyhow::Result<()> {
    match command {
        DevCaCommand::Init { dir, algorithm } => init(&dir, algorithm),
        DevCaCommand::Issue {
            dir,
            name,
            algorithm,
            days,
            out,
            serial_number,
            address,
            birth_date,
        } => {
            let attributes = IdentityAttributes {
                name,
                serial_number,
                address,
                date_of_birth: birth_date,
            };
            issue(&dir, &attributes, algorithm, days, out)
        }
        DevCaCommand::Revoke { dir, cert } => revoke(&dir, &cert),
        DevCaCommand::Crl { dir } => {
            let ca = load(&dir)?;
            let path = write_crl(&ca, &dir)?;
            println!("wrote {} ({})", path.display(), crl_summary(&ca));
            Ok(())
        }
        DevCaCommand::Sign { key, challenge } => {
            let key_pem = std::fs::read_to_string(&key)
                .with_context(|| format!("reading {}", key.display()))?;
            let challenge = decode_base64url(&challenge).context("--challenge is not base64url")?;
            let signature = sign_challenge(&key_pem, &challenge)
                .with_context(|| format!("signing with {}", key.display()))?;
            println!("{}", URL_SAFE_NO_PAD.encode(signature));
            Ok(())
        }
    }
}

fn init(dir: &Path, algorithm: KeyAlgorithm) -> anyhow::Result<()> {
    if dir.join(ROOT_KEY_FILE).exists() {
        bail!(
            "{} already holds a development CA; choose another --dir",
            dir.display()
        );
    }
    let ca = DevCa::generate(algorithm)?;
    let [cert, key, crl] = ca.save(dir)?;
    println!("development CA ({algorithm}) for trying enrolment, never for production:");
    println!(
        "  root certificate (the trust anchor to configure): {}",
        cert.display()
    );
    println!("  root private key: {}", key.display());
    println!(
        "  revocation list: {} ({})",
        crl.display(),
        crl_summary(&ca)
    );
    Ok(())
}

fn issue(
    dir: &Path,
    attributes: &IdentityAttributes,
    algorithm: KeyAlgorithm,
    days: i64,
    out: Option<PathBuf>,
) -> anyhow::Result<()> {
    if !(1..=3650).contains(&days) {
        bail!("--days must be between 1 and 3650");
    }
    let ca = load(dir)?;
    let issued = ca.issue_resident(attributes, Validity::days_from(Utc::now(), days), algorithm)?;
    let prefix = out.unwrap_or_else(|| dir.join(format!("resident-{}", hex(&issued.serial))));
    let cert_path = with_suffix(&prefix, ".pem");
    let key_path = with_suffix(&prefix, "-key.pem");
    write(&cert_path, issued.cert_pem.as_bytes(), false)?;
    write(&key_path, issued.key_pem.as_bytes(), true)?;
    println!(
        "resident certificate ({algorithm}, serial {}, valid {days} days):",
        hex(&issued.serial)
    );
    println!("  certificate: {}", cert_path.display());
    println!("  private key: {}", key_path.display());
    Ok(())
}

fn revoke(dir: &Path, cert: &Path) -> anyhow::Result<()> {
    let mut ca = load(dir)?;
    let bytes = std::fs::read(cert).with_context(|| format!("reading {}", cert.display()))?;
    let serial = ca
        .revoke_certificate(&bytes)
        .with_context(|| format!("revoking {}", cert.display()))?;
    let path = write_crl(&ca, dir)?;
    println!("revoked serial {}", hex(&serial));
    println!(
        "  revocation list: {} ({})",
        path.display(),
        crl_summary(&ca)
    );
    Ok(())
}

fn load(dir: &Path) -> anyhow::Result<DevCa> {
    DevCa::load(dir).with_context(|| {
        format!(
            "no development CA in {} (create one with `renkei dev-ca init --dir {}`)",
            dir.display(),
            dir.display()
        )
    })
}

fn write_crl(ca: &DevCa, dir: &Path) -> anyhow::Result<PathBuf> {
    let path = dir.join(CRL_FILE);
    write(&path, ca.crl_pem()?.as_bytes(), false)?;
    Ok(path)
}

fn crl_summary(ca: &DevCa) -> String {
    let fresh_until = Utc::now() + Duration::days(CRL_LIFETIME_DAYS);
    format!(
        "{} revoked, fresh until {}",
        ca.revoked_serials().count(),
        fresh_until.format("%Y-%m-%d %H:%M UTC")
    )
}

fn decode_base64url(s: &str) -> anyhow::Result<Vec<u8>> {
    let s = s.trim();
    Ok(if s.ends_with('=') {
        URL_SAFE.decode(s)?
    } else {
        URL_SAFE_NO_PAD.decode(s)?
    })
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut name = prefix.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes a file; a private key is readable by its owner only (on Unix).
fn write(path: &Path, contents: &[u8], secret: bool) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(contents)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
