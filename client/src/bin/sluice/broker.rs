//! `sluice broker status`.

use std::io::Write;

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;

use crate::{Outcome, Output, connect_admin, describe};

/// Broker commands.
#[derive(Debug, Subcommand)]
pub(crate) enum BrokerCommand {
    /// Version, uptime, node id, listeners, data directory, disk space,
    /// connections, topics and offline partitions
    Status {
        /// Output format
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

/// Runs one broker command.
pub(crate) async fn run(broker: &str, cmd: BrokerCommand) -> anyhow::Result<Outcome> {
    let mut admin = connect_admin(broker).await?;
    let mut out = std::io::stdout().lock();
    match cmd {
        BrokerCommand::Status { output } => {
            let status = admin
                .broker_status()
                .await
                .map_err(|e| anyhow::anyhow!("cannot read the broker status: {}", describe(&e)))?;
            let s = &status.v0;
            // Empty from a broker that answers version 0 only.
            let v1 = !status.kafka_listen.is_empty();
            let node_id = status
                .node_id
                .map_or_else(|| "none".to_owned(), |n| n.to_string());
            match output {
                Output::Text => {
                    writeln!(out, "version: {}", s.version)?;
                    writeln!(out, "uptime-seconds: {}", s.uptime_ms / 1000)?;
                    if v1 {
                        writeln!(out, "node-id: {node_id}")?;
                    }
                    writeln!(out, "listen: {}", s.listen)?;
                    if v1 {
                        writeln!(out, "kafka-listen: {}", status.kafka_listen)?;
                    }
                    writeln!(out, "metrics-listen: {}", s.metrics_listen)?;
                    writeln!(out, "data-dir: {}", s.data_dir)?;
                    writeln!(out, "disk-total-bytes: {}", s.disk_total_bytes)?;
                    writeln!(out, "disk-free-bytes: {}", s.disk_free_bytes)?;
                    writeln!(out, "connections: {}", s.connections_open)?;
                    writeln!(out, "topics: {}", s.topics)?;
                    writeln!(out, "partitions: {}", s.partitions)?;
                    writeln!(out, "partitions-offline: {}", s.partitions_offline)?;
                }
                Output::Json => writeln!(
                    out,
                    "{}",
                    json!({
                        "version": s.version,
                        "uptime_ms": s.uptime_ms,
                        "node_id": status.node_id,
                        "listen": s.listen,
                        "kafka_listen": v1.then_some(&status.kafka_listen),
                        "metrics_listen": s.metrics_listen,
                        "data_dir": s.data_dir,
                        "disk_total_bytes": s.disk_total_bytes,
                        "disk_free_bytes": s.disk_free_bytes,
                        "connections_open": s.connections_open,
                        "topics": s.topics,
                        "partitions": s.partitions,
                        "partitions_offline": s.partitions_offline,
                    })
                )?,
            }
        }
    }
    out.flush().context("writing to stdout")?;
    Ok(Outcome::Success)
}
