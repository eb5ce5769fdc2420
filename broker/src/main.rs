//! `sluice-broker`: starts a Sluice broker.
//!
//! With no arguments it keeps data in `./sluice-data`, listens on
//! `127.0.0.1:9292` and serves metrics and health checks on
//! `127.0.0.1:9393`, and the Kafka protocol on `127.0.0.1:9092`. Prints
//! `sluice-broker metrics on ADDR` (when enabled), then `sluice-broker kafka
//! listening on ADDR` (when enabled) and `sluice-broker listening on ADDR`
//! once ready; with `--node-id N --cluster FILE`, `sluice-broker raft
//! listening on ADDR` before that last line. SIGINT or SIGTERM
//! shut it down cleanly.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use sluice_broker::config::{BrokerConfig, FetchPath, KafkaListen, MetricsListen};
use sluice_broker::metrics::Health;
use sluice_broker::replication::config::ClusterConfig;
use sluice_broker::replication::controller::Cluster;
use sluice_broker::replication::manager::{ReplicaManager, ReplicaObserver};
use sluice_broker::replication::partition::ReplicationConfig;
use sluice_broker::server::kafka::Advertised;
use sluice_broker::server::{Broker, run_then_close};
use tokio::signal::unix::{SignalKind, signal};

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (timestamp, level, target, fields).
    Json,
}

/// Command-line options; they override the config file.
#[derive(Debug, Parser)]
#[command(name = "sluice-broker", version, about = "Sluice log broker")]
struct Args {
    /// Data directory [default: ./sluice-data]
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Listen address, HOST:PORT [default: 127.0.0.1:9292]
    #[arg(long, value_name = "HOST:PORT", value_parser = sluice_broker::config::listen_addr)]
    listen: Option<SocketAddr>,
    /// TOML config file (see docs/operations.md)
    #[arg(long)]
    config: Option<PathBuf>,
    /// How fetched records reach the socket: sendfile or copy [default: sendfile]
    #[arg(long, value_name = "sendfile|copy")]
    fetch_path: Option<FetchPath>,
    /// Metrics and health endpoint, HOST:PORT or none [default: 127.0.0.1:9393]
    #[arg(long, value_name = "HOST:PORT|none")]
    metrics_listen: Option<MetricsListen>,
    /// Series per topic partition and committed offset in /metrics [default: true]
    #[arg(long, value_name = "BOOL")]
    metrics_per_partition: Option<bool>,
    /// Warn about requests slower than this (0: never) [default: 1000]
    #[arg(long, value_name = "MS")]
    slow_request_ms: Option<u64>,
    /// Kafka-protocol listener, HOST:PORT or none [default: 127.0.0.1:9092]
    #[arg(long, value_name = "HOST:PORT|none")]
    kafka_listen: Option<KafkaListen>,
    /// HOST:PORT Kafka clients are told to connect to [default: the bound address; bound to every interface, the address each client reached]
    #[arg(long, value_name = "HOST:PORT")]
    kafka_advertised: Option<String>,
    /// Create a topic that does not exist when a producer asks for it (a
    /// Kafka client's or the native client's Metadata request that names it
    /// and allows it; Kafka's auto.create.topics.enable) [default: false]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    auto_create_topics: Option<bool>,
    /// Log line format
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Log filter, RUST_LOG syntax (e.g. `info,sluice_broker::log=debug`);
    /// else the RUST_LOG (or SLUICE_LOG) environment variable, else `info`.
    /// openraft's own reports stay off (and its other lines below `warn`)
    /// unless the filter names openraft (`info,openraft=info`)
    #[arg(long, value_name = "FILTER")]
    log: Option<String>,
    /// This broker's id in the cluster file (with --cluster)
    #[arg(long, value_name = "N", requires = "cluster")]
    node_id: Option<u64>,
    /// Cluster file: TOML [[node]] entries with id, listen, raft, kafka
    /// (docs/replication.md); the broker takes its addresses from its entry
    #[arg(long, value_name = "FILE", requires = "node_id")]
    cluster: Option<PathBuf>,
}

/// The log filter without `--log`, `RUST_LOG` or `SLUICE_LOG`: `info`, but
/// openraft at `warn`: its info lines (a dozen per partition group as it
/// forms or elects, naming no topic or partition) made thousands of lines
/// for a topic of a few hundred partitions; the broker logs each change of
/// a partition's or the controller's leader itself. Also without openraft's
/// per-replication-stream reports, which repeat for every
/// partition's Raft group several times a second while a peer is down (the
/// transport logs an unreachable peer itself, at most twice a minute), and
/// for its Raft core's, which report each failed call to a peer at `error`
/// (a vote request, a leadership confirmation for a read), once per call
/// and partition group while a peer is down, paused or slow, besides its
/// elections step by step; and for its reports of a call into a core that
/// has stopped (`raft`, `raft_inner`), one per call, which a clean shutdown of a
/// node with many partitions made by the dozen as peers' calls met groups
/// stopping. A core that stops is reported by the broker with its cause
/// (the replica is opened again, or its log taken offline). And without
/// its engine's one error line (`engine_impl`: "Can not initialize"), which
/// a group formed by its first replica logs when a peer's vote reaches it
/// between the broker's check that it is not formed yet and the forming
/// itself: the broker takes that refusal as the group being formed.
fn init_logs(args: &Args) -> anyhow::Result<()> {
    use sluice_broker::log_filter::{default_filter, with_openraft_quiet};
    use tracing_subscriber::EnvFilter;
    // A bad --log is refused; a bad environment variable is passed over,
    // as before.
    let text = match &args.log {
        Some(f) => with_openraft_quiet(f).map_err(|e| anyhow::anyhow!("--log {f:?}: {e}"))?,
        None => ["RUST_LOG", "SLUICE_LOG"]
            .into_iter()
            .find_map(|var| with_openraft_quiet(&std::env::var(var).ok()?).ok())
            .unwrap_or_else(default_filter),
    };
    let filter = EnvFilter::try_new(&text).with_context(|| format!("log filter {text:?}"))?;
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        // A log line that cannot be written (stderr a pipe whose reader
        // is gone) is dropped: reporting that on stderr would panic the
        // thread that logged, a request's task or the broker's start.
        .log_internal_errors(false);
    match args.log_format {
        LogFormat::Text => fmt.init(),
        LogFormat::Json => fmt.json().flatten_event(true).init(),
    }
    Ok(())
}

/// Writes `line` on stdout (the lines scripts wait for, such as the
/// listening address). A stdout whose reader is gone is passed over, where
/// `println!` would panic.
fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out
        .write_fmt(line)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logs(&args)?;
    match sluice_broker::fd_limit::raise_open_file_limit() {
        Ok((before, after)) if after > before => {
            tracing::info!(from = before, to = after, "raised the open-file limit");
        }
        Ok((_, limit)) => tracing::debug!(limit, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
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
    // The node's own entry gives its addresses; explicit flags still win.
    let cluster = match (args.node_id, &args.cluster) {
        (Some(id), Some(path)) => {
            let c = ClusterConfig::load(path, id)?;
            let me = c.local_node();
            config.listen = me.listen;
            if let Some(k) = me.kafka {
                config.kafka_listen = KafkaListen::On(k);
            }
            Some(c)
        }
        _ => None,
    };
    if let Some(l) = args.listen {
        config.listen = l;
    }
    if let Some(f) = args.fetch_path {
        config.fetch_path = f;
    }
    if let Some(m) = args.metrics_listen {
        config.metrics_listen = m;
    }
    if let Some(p) = args.metrics_per_partition {
        config.metrics_per_partition = p;
    }
    if let Some(ms) = args.slow_request_ms {
        config.slow_request_ms = ms;
    }
    if let Some(k) = args.kafka_listen {
        config.kafka_listen = k;
    }
    if let Some(a) = args.kafka_advertised {
        config.kafka_advertised = a;
    }
    if let Some(a) = args.auto_create_topics {
        config.auto_create_topics = a;
    }
    // What the open-file limit cannot hold is not promised: a client could
    // otherwise take the broker past it with partitions or connections it
    // is allowed.
    match sluice_broker::fd_limit::open_file_limit() {
        Ok(limit) => {
            let clustered = cluster.is_some();
            let fit = sluice_broker::fd_limit::fit(
                limit,
                clustered,
                config.max_partitions,
                config.max_connections,
            );
            sluice_broker::log::open_sealed::set_limit(fit.sealed_segments);
            let needed = sluice_broker::fd_limit::needed(
                clustered,
                config.max_partitions,
                config.max_connections,
            );
            if let Some((partitions, connections)) = config.fit_open_files(limit, clustered) {
                tracing::warn!(
                    open_file_limit = limit,
                    max_partitions = config.max_partitions,
                    configured_max_partitions = partitions,
                    max_connections = config.max_connections,
                    configured_max_connections = connections,
                    needed,
                    "the open-file limit holds fewer partitions or connections than configured; \
                     lowered to fit (raise the hard limit to `needed`, with ulimit -Hn or \
                     systemd's LimitNOFILE=, to keep the configured values)"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not read the open-file limit"),
    }
    // Checked here too (opening the broker checks again), so that a bad
    // setting is reported as one, before any thread or listener starts.
    config
        .validate()
        .map_err(anyhow::Error::msg)
        .context("invalid configuration")?;
    // A default factor over the nodes there are would refuse every topic
    // created without a factor of its own (auto-created ones too).
    let nodes = cluster.as_ref().map_or(1, |c| c.nodes.len());
    if usize::from(config.default_replication_factor) > nodes {
        anyhow::bail!(
            "invalid configuration: default_replication_factor {} is more than the brokers \
             there are ({nodes}{})",
            config.default_replication_factor,
            if cluster.is_some() {
                " in the cluster file"
            } else {
                ": no --cluster"
            }
        );
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
        let mut config = config;
        let listen = config.listen;
        let health = Arc::new(Health::default());
        let (stop_metrics, stop_rx) = tokio::sync::watch::channel(false);
        // The metrics endpoint comes up first, so that `/health/live`
        // answers while recovery runs.
        let metrics_addr = match config.metrics_listen {
            MetricsListen::Off => None,
            MetricsListen::On(addr) => {
                let l = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding the metrics endpoint {addr}"))?;
                let bound = l.local_addr()?;
                tokio::spawn(sluice_broker::metrics::http::serve(
                    l,
                    Arc::clone(&health),
                    stop_rx,
                ));
                say(format_args!("sluice-broker metrics on {bound}"));
                // Status reports name the bound address, not port 0.
                config.metrics_listen = MetricsListen::On(bound);
                Some(bound)
            }
        };
        let started = Instant::now();
        let broker = tokio::task::spawn_blocking(move || Broker::open(config))
            .await?
            .context("opening the data directory")?;
        let recovery = started.elapsed();
        broker.stats.recovery_micros.store(
            recovery.as_micros() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        let cluster = match cluster {
            None => None,
            Some(c) => {
                let manager = ReplicaManager::new(
                    c.local,
                    Arc::downgrade(&broker.service),
                    Arc::clone(&broker.single_node),
                    tokio::runtime::Handle::current(),
                    ReplicationConfig {
                        heartbeat_ms: broker.config.raft_heartbeat_ms,
                        election_timeout_min_ms: broker.config.raft_election_timeout_min_ms,
                        election_timeout_max_ms: broker.config.raft_election_timeout_max_ms,
                        leader_rebalance_interval_ms: broker.config.leader_rebalance_interval_ms,
                        leader_imbalance_percent: broker.config.leader_imbalance_percent,
                        ..ReplicationConfig::default()
                    },
                );
                let observer = Arc::new(ReplicaObserver::new(
                    Arc::downgrade(&broker.service),
                    Arc::clone(&manager),
                ));
                let timeout = std::time::Duration::from_millis(broker.config.controller_timeout_ms);
                let cluster = Cluster::start(
                    c,
                    &broker.config.data_dir,
                    observer,
                    timeout,
                    broker.config.tcp_congestion.clone(),
                )
                .await
                .context("starting the cluster")?;
                say(format_args!("sluice-broker raft listening on {}", cluster.raft_addr()));
                let _ = broker.cluster.set(Arc::clone(&cluster));
                // Produce and leadership go through the partition groups
                // before any client is served.
                let _ = broker.replicas.set(Arc::clone(&manager));
                broker.leadership_slot.install(Arc::clone(&manager) as _);
                // Group state goes through the replicated group-state
                // topic from now on (the local offsets log is not used).
                broker.service.offsets.use_replicated(Arc::new(
                    sluice_broker::replication::group_state::ReplicatedGroupLog::new(
                        &manager,
                        Arc::clone(&cluster),
                    ),
                ));
                broker.service.groups.drop_groups(|_| true);
                manager.attach(Arc::clone(&cluster)).await;
                tokio::spawn(sluice_broker::replication::group_state::run(
                    Arc::downgrade(&broker.service),
                    Arc::clone(&manager),
                    Arc::clone(&cluster),
                ));
                Some((cluster, manager))
            }
        };
        health.set_broker(Arc::clone(&broker));
        // A listener that cannot be bound (its port taken, say) ends the
        // start with the logs closed cleanly, as a shutdown leaves them: the
        // next start need not recover every partition.
        let bound: anyhow::Result<_> = async {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            sluice_broker::tcp::check(&listener, &broker.config.tcp_congestion)
                .map_err(anyhow::Error::msg)?;
            let addr = listener.local_addr()?;
            let _ = broker.bound_listen.set(addr);
            broker.single_node.set_listen(addr.to_string());
            let kafka = match broker.config.kafka_listen {
                KafkaListen::Off => None,
                KafkaListen::On(kafka_addr) => {
                    let l = tokio::net::TcpListener::bind(kafka_addr)
                        .await
                        .with_context(|| format!("binding the Kafka listener {kafka_addr}"))?;
                    sluice_broker::tcp::check(&l, &broker.config.tcp_congestion)
                        .map_err(anyhow::Error::msg)?;
                    let bound = l.local_addr()?;
                    let _ = broker.bound_kafka.set(bound);
                    let advertised = match sluice_broker::config::split_host_port(
                        &broker.config.kafka_advertised,
                    ) {
                        Some((host, port)) => (host.to_owned(), port),
                        None => (bound.ip().to_string(), bound.port()),
                    };
                    say(format_args!("sluice-broker kafka listening on {bound}"));
                    broker
                        .single_node
                        .set_kafka(format!("{}:{}", advertised.0, advertised.1));
                    Some((
                        l,
                        Advertised {
                            // Kafka node ids are i32; the cluster file's ids
                            // are checked to fit (`ClusterConfig`).
                            node_id: args
                                .node_id
                                .map_or(0, |id| i32::try_from(id).unwrap_or(i32::MAX)),
                            host: advertised.0,
                            port: i32::from(advertised.1),
                        },
                    ))
                }
            };
            anyhow::Ok((listener, addr, kafka))
        }
        .await;
        let (listener, addr, kafka) = match bound {
            Ok(bound) => bound,
            Err(e) => {
                if let Some((c, manager)) = &cluster {
                    manager.shutdown().await;
                    c.shutdown().await;
                }
                let b = Arc::clone(&broker);
                let _ = tokio::task::spawn_blocking(move || b.shutdown()).await;
                return Err(e);
            }
        };
        health.set_listeners_up();
        tracing::info!(
            listen = %addr,
            metrics_listen = %metrics_addr.map_or_else(|| "none".to_owned(), |a| a.to_string()),
            data_dir = %broker.config.data_dir.display(),
            fetch_path = ?broker.config.fetch_path,
            topics = broker.topics.list().len(),
            partitions = broker.topics.all_partitions().len(),
            partitions_offline = broker.stats.partitions_offline_at_open.load(std::sync::atomic::Ordering::Relaxed),
            recovery_ms = recovery.as_millis() as u64,
            version = env!("CARGO_PKG_VERSION"),
            "broker ready"
        );
        say(format_args!("sluice-broker listening on {addr}"));
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        // A controller core that stops on its own (a fatal storage error)
        // never applies a metadata change again: shut down as on a signal,
        // then exit with that error, for a supervisor to restart the node.
        let controller = cluster.as_ref().map(|(c, _)| Arc::clone(c));
        let (ended_tx, ended_rx) = tokio::sync::oneshot::channel::<String>();
        let shutdown = async move {
            let core_ended = async {
                match &controller {
                    Some(c) => c.core_ended().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
                why = core_ended => {
                    tracing::error!(reason = %why, "the controller's Raft core stopped; shutting down");
                    let _ = ended_tx.send(why);
                }
            }
        };
        // The partition groups and the controller stop before the logs
        // close: nothing is written after a log's clean-shutdown marker.
        let stop_groups = async move {
            if let Some((c, manager)) = cluster {
                manager.shutdown().await;
                c.shutdown().await;
            }
        };
        run_then_close(listener, kafka, broker, shutdown, stop_groups).await?;
        let _ = stop_metrics.send(true);
        if let Ok(why) = ended_rx.await {
            anyhow::bail!("the controller's Raft core stopped ({why}); the broker shut down");
        }
        anyhow::Ok(())
    })
}
