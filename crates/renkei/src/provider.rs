//! `renkei provider …`: the provider side, run by a city beside a data provider's own
//! system. `serve` runs the provider kit from its configuration file (see
//! `renkei_provider::kit::config` for the format).

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use renkei_provider::kit::{self, config::KitConfig};

#[derive(Subcommand)]
pub enum ProviderCommand {
    /// Answer the hub's grants from the provider's own database and CSV files, as the
    /// configuration file says, keeping the provider's own access log.
    Serve {
        /// The kit's configuration (`provider.toml`).
        #[arg(long, env = "RENKEI_PROVIDER_CONFIG")]
        config: PathBuf,
    },
}

pub async fn run(command: ProviderCommand) -> anyhow::Result<()> {
    match command {
        ProviderCommand::Serve { config } => {
            let config = KitConfig::load(&config)?;
            let running = kit::start(&config)
                .await
                .with_context(|| format!("starting provider `{}`", config.provider))?;
            println!(
                "provider `{}` answers grants on {} (hub {}, access log {})",
                config.provider,
                running.addr,
                config.hub,
                config.access_log.display()
            );
            tokio::select! {
                stopped = running.server => stopped.context("the provider's server stopped")?,
                signal = tokio::signal::ctrl_c() => signal.context("waiting for Ctrl-C")?,
            }
            Ok(())
        }
    }
}
