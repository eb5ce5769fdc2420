//! `sluice-broker`: starts a Sluice broker.
//!
//! With no arguments it keeps data in `./sluice-data` and listens on
//! `127.0.0.1:9292`. Prints `sluice-broker listening on ADDR` once ready.
//! SIGINT or SIGTERM shut it down cleanly.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use sluice_broker::config::{BrokerConfig, FetchPath};
use sluice_broker::server::{Broker, run};
use tokio::signal::unix::{SignalKind, signal};

/// Command-line options; they override the config file.
#[derive(Debug, Parser)]
#[command(name = "sluice-broker", version, about = "Sluice log broker")]
struct Args {
    /// Data directory [default: ./sluice-data]
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Listen address [default: 127.0.0.1:9292]
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// TOML config file (see docs/operations.md)
    #[arg(long)]
    config: Option<PathBuf>,
    /// How fetched records reach the socket: sendfile or copy
    #[arg(long)]
    fetch_path: Option<FetchPath>,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading config file {}", path.display()))?;
            BrokerConfig::from_toml(&text).with_context(|| format!("parsing {}", path.display()))?
        }
        None => BrokerConfig::default(),
    };
    if let Some(d) = args.data_dir {
        config.data_dir = d;
    }
    if let Some(l) = args.listen {
        config.listen = l;
    }
    if let Some(f) = args.fetch_path {
        config.fetch_path = f;
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if config.runtime_threads > 0 {
        builder.worker_threads(config.runtime_threads);
    }
    let runtime = builder
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let listen = config.listen;
        let broker = tokio::task::spawn_blocking(move || Broker::open(config))
            .await?
            .context("opening the data directory")?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, data_dir = %broker.config.data_dir.display(), fetch_path = ?broker.config.fetch_path, "broker ready");
        println!("sluice-broker listening on {addr}");
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        };
        run(listener, broker, shutdown).await?;
        anyhow::Ok(())
    })
}
