//! `renkei incident report`: what a service's granted requests reached in a window, for the
//! APPI 漏えい等報告 (report of a leak to the Personal Information Protection Commission) and
//! the notices to the residents concerned. It asks the hub's operator API, so the report is
//! an entry of the log like any other search of it.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::Subcommand;
use renkei::admin::OperatorClient;

#[derive(Subcommand)]
pub enum IncidentCommand {
    /// List the residents and the categories released about each by a service's granted
    /// requests from FROM to TO (RFC 3339 times; TO excluded), as JSON.
    Report {
        #[arg(long, env = "RENKEI_HUB")]
        hub: String,
        /// The operator token, as `renkei operator sign-in` wrote it.
        #[arg(long)]
        operator_token_file: PathBuf,
        #[arg(long)]
        service: String,
        #[arg(long)]
        from: DateTime<Utc>,
        #[arg(long)]
        to: DateTime<Utc>,
    },
}

pub async fn run(command: IncidentCommand) -> anyhow::Result<()> {
    match command {
        IncidentCommand::Report {
            hub,
            operator_token_file,
            service,
            from,
            to,
        } => {
            let client = OperatorClient::from_token_file(&hub, &operator_token_file)?;
            let report = client.incident_report(&service, from, to).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
    }
    Ok(())
}
