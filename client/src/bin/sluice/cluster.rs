//! `sluice cluster describe`.

use std::io::Write;

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;

use crate::{Outcome, Output, connect_admin, describe};

/// Cluster commands.
#[derive(Debug, Subcommand)]
pub(crate) enum ClusterCommand {
    /// List the cluster's brokers, one per line: ID LISTEN KAFKA (a broker
    /// without `--cluster` is node 0, alone)
    Describe {
        /// Output format
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

/// Runs one cluster command.
pub(crate) async fn run(broker: &str, cmd: ClusterCommand) -> anyhow::Result<Outcome> {
    let mut admin = connect_admin(broker).await?;
    let mut out = std::io::stdout().lock();
    match cmd {
        ClusterCommand::Describe { output } => {
            let meta = admin
                .metadata(Some(Vec::new()))
                .await
                .map_err(|e| anyhow::anyhow!("cannot describe the cluster: {}", describe(&e)))?;
            let mut brokers = meta.brokers;
            brokers.sort_by_key(|b| b.id);
            match output {
                Output::Text => {
                    writeln!(out, "{:>6} {:<24} kafka", "id", "listen")?;
                    for b in &brokers {
                        let kafka = b.kafka.as_deref().unwrap_or("-");
                        writeln!(out, "{:>6} {:<24} {}", b.id, b.listen, kafka)?;
                    }
                }
                Output::Json => {
                    let list: Vec<_> = brokers
                        .iter()
                        .map(|b| json!({"id": b.id, "listen": b.listen, "kafka": b.kafka}))
                        .collect();
                    writeln!(out, "{}", json!({ "brokers": list }))?;
                }
            }
        }
    }
    out.flush().context("writing to stdout")?;
    Ok(Outcome::Success)
}
