//! [`Bench`]: the state one `sluice-bench` invocation carries from workload
//! to workload — the broker (started here or given), its data directory,
//! the W1 log the read workloads share, results and plot data.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use serde_json::{Map, Value, json};
use sluice_client::Connection;

use super::broker_proc::{BrokerProc, CpuTimes, Target};
use super::options::{Options, Params, acks_name};

/// A log written by one workload and read by others.
#[derive(Debug, Clone)]
pub struct Log {
    /// Topic name.
    pub topic: String,
    /// Records in partition 0.
    pub records: u64,
    /// Bytes per record value.
    pub value_len: usize,
}

/// Data for one picture.
#[derive(Debug, Clone)]
pub enum PlotData {
    /// Bytes of record values per 100 ms interval, one series per phase.
    Throughput {
        /// File name without extension.
        name: String,
        /// Title.
        title: String,
        /// (label, bytes per interval).
        series: Vec<(String, Vec<u64>)>,
    },
    /// Latency distributions (nanoseconds), one per condition.
    Latency {
        /// File name without extension.
        name: String,
        /// Title.
        title: String,
        /// (label, histogram).
        series: Vec<(String, Histogram<u64>)>,
    },
}

/// Where the broker comes from.
#[derive(Debug, Clone)]
pub enum BrokerSource {
    /// Started by the harness on a temporary data directory under `tmp_base`
    /// (the system's temporary directory if `None`).
    Spawn {
        /// Parent of the temporary data directory.
        tmp_base: Option<PathBuf>,
    },
    /// A loopback cluster of `nodes` brokers started by the harness under
    /// `tmp_base`; topics get replication factor `nodes`.
    Cluster {
        /// Parent of the temporary data directories.
        tmp_base: Option<PathBuf>,
        /// Nodes.
        nodes: u64,
        /// Extra broker config file lines of every node.
        config: String,
    },
    /// Already running.
    External {
        /// Its address.
        addr: SocketAddr,
        /// Its process id, to measure its CPU.
        pid: Option<u32>,
        /// Its data directory, for W7's cache dropping.
        data_dir: Option<PathBuf>,
    },
}

/// The state of one harness run.
#[derive(Debug)]
pub struct Bench {
    /// Command-line settings.
    pub opts: Options,
    source: BrokerSource,
    _tmp: Option<tempfile::TempDir>,
    data_dir: Option<PathBuf>,
    broker: Option<Target>,
    fetch_path: String,
    run_id: String,
    /// The log W1 wrote, which W2 and W6 read.
    pub w1_log: Option<Log>,
    /// Results so far, in run order.
    pub results: Vec<crate::harness::report::WorkloadResult>,
    /// Pictures to draw with `--plot`.
    pub plots: Vec<PlotData>,
    /// Also run W1 and W2 through the Kafka listener (`--protocol kafka`).
    pub kafka: bool,
    /// The Kafka listener of an external broker (`--kafka-broker`).
    pub kafka_broker: Option<SocketAddr>,
    /// The run measures the machine's limits (`--baseline`).
    pub baseline: bool,
}

impl Bench {
    /// A run against `source`, starting with fetch path `fetch_path`.
    pub fn new(opts: Options, source: BrokerSource, fetch_path: &str) -> anyhow::Result<Self> {
        let (tmp, data_dir) = match &source {
            BrokerSource::Spawn { tmp_base } | BrokerSource::Cluster { tmp_base, .. } => {
                let tmp = match tmp_base {
                    Some(base) => tempfile::Builder::new()
                        .prefix("sluice-bench-")
                        .tempdir_in(base)?,
                    None => tempfile::Builder::new().prefix("sluice-bench-").tempdir()?,
                };
                let data = tmp.path().join("data");
                (Some(tmp), Some(data))
            }
            BrokerSource::External { data_dir, .. } => (None, data_dir.clone()),
        };
        Ok(Bench {
            opts,
            source,
            _tmp: tmp,
            data_dir,
            broker: None,
            fetch_path: fetch_path.to_owned(),
            run_id: std::process::id().to_string(),
            w1_log: None,
            results: Vec::new(),
            plots: Vec::new(),
            kafka: false,
            kafka_broker: None,
            baseline: false,
        })
    }

    /// Whether the harness starts (and can restart) the broker.
    pub fn spawns_broker(&self) -> bool {
        matches!(self.source, BrokerSource::Spawn { .. })
    }

    /// The broker's data directory, if known.
    pub fn data_dir(&self) -> Option<&Path> {
        self.data_dir.as_deref()
    }

    /// The fetch path the broker uses (as far as the harness knows).
    pub fn fetch_path(&self) -> &str {
        &self.fetch_path
    }

    /// A topic name unique to this run.
    pub fn topic(&self, name: &str) -> String {
        match self.opts.compression {
            sluice_protocol::batch::Compression::None => format!("{name}-{}", self.run_id),
            codec => format!("{name}-{codec}-{}", self.run_id),
        }
    }

    /// The broker's address, starting it first if needed.
    pub fn addr(&mut self) -> anyhow::Result<SocketAddr> {
        if self.broker.is_none() {
            let target = match &self.source {
                BrokerSource::Spawn { .. } => {
                    let data = self.data_dir.as_deref().context("no data dir")?;
                    Target::Spawned(BrokerProc::start(data, &self.fetch_path, "")?)
                }
                BrokerSource::Cluster { nodes, config, .. } => {
                    let data = self.data_dir.as_deref().context("no data dir")?;
                    Target::Cluster(super::cluster::ClusterProc::start(data, *nodes, config)?)
                }
                BrokerSource::External { addr, pid, .. } => Target::External {
                    addr: *addr,
                    pid: *pid,
                },
            };
            self.broker = Some(target);
        }
        Ok(self.broker.as_ref().context("no broker")?.addr())
    }

    /// Whether the run is against a cluster the harness started.
    pub fn is_cluster(&self) -> bool {
        matches!(self.source, BrokerSource::Cluster { .. })
    }

    /// Where partition 0 of `topic` is produced to and fetched from: the
    /// broker itself, or on a cluster the leader every node agrees on
    /// (and still the leader half a second later).
    pub async fn leader(&mut self, topic: &str) -> anyhow::Result<SocketAddr> {
        let addr = self.addr()?;
        match self.broker.as_ref() {
            Some(Target::Cluster(c)) => {
                let settle = std::time::Duration::from_millis(500);
                let id = c
                    .wait_for_stable_leader(topic, 0, settle, std::time::Duration::from_secs(60))
                    .await?;
                c.addr(id)
            }
            _ => Ok(addr),
        }
    }

    /// The broker's Kafka listener, starting the broker first if needed.
    pub fn kafka_addr(&mut self) -> anyhow::Result<SocketAddr> {
        self.addr()?;
        match self.broker.as_ref() {
            Some(Target::Spawned(b)) => b.kafka_addr.context("the broker has no Kafka listener"),
            _ => self
                .kafka_broker
                .context("--protocol kafka with --broker needs --kafka-broker"),
        }
    }

    /// The broker's process id, if known.
    pub fn broker_pid(&self) -> Option<u32> {
        match self.broker.as_ref()? {
            Target::Spawned(b) => Some(b.pid()),
            Target::Cluster(_) => None,
            Target::External { pid, .. } => *pid,
        }
    }

    /// Broker CPU used so far (zero when unknown).
    pub fn cpu(&self) -> CpuTimes {
        self.broker.as_ref().map(Target::cpu).unwrap_or_default()
    }

    /// Restarts the broker on the same data directory with another fetch
    /// path (it starts lazily on the next [`Bench::addr`]).
    pub fn set_fetch_path(&mut self, path: &str) -> anyhow::Result<()> {
        if path == self.fetch_path {
            return Ok(());
        }
        if !self.spawns_broker() {
            bail!("cannot change the fetch path of a broker the harness did not start");
        }
        self.stop()?;
        self.fetch_path = path.to_owned();
        Ok(())
    }

    /// Stops a broker the harness started.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        match self.broker.take() {
            Some(t) => t.stop(),
            None => Ok(()),
        }
    }

    /// One broker counter from the Stats API (0 when unavailable).
    pub async fn counter(&mut self, name: &str) -> u64 {
        let Ok(addr) = self.addr() else { return 0 };
        match Connection::connect(addr).await {
            Ok(mut c) => c.stats().await.ok().and_then(|s| s.get(name)).unwrap_or(0),
            Err(_) => 0,
        }
    }

    /// The parameters common to the produce/consume workloads.
    pub fn params_json(&self, p: &Params) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("records".into(), json!(p.records));
        m.insert("value_len".into(), json!(p.value_len));
        m.insert("batch_bytes".into(), json!(p.batch_bytes));
        m.insert("in_flight".into(), json!(p.in_flight));
        m.insert("acks".into(), json!(acks_name(p.acks)));
        m.insert("fetch_bytes".into(), json!(p.fetch_bytes));
        m.insert("verify_crc".into(), json!(p.verify_crc));
        m.insert("idempotent".into(), json!(p.idempotent));
        m.insert("fetch_path".into(), json!(self.fetch_path));
        m.insert("compression".into(), json!(p.compression.to_string()));
        m.insert("value_kind".into(), json!(p.value_kind.name()));
        m
    }
}

/// Runs `fut`, timing it and measuring the broker CPU it costs.
pub async fn measured<T>(
    bench: &Bench,
    fut: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<(T, f64, CpuTimes)> {
    let cpu = bench.cpu();
    let started = Instant::now();
    let out = fut.await?;
    let seconds = started.elapsed().as_secs_f64();
    Ok((out, seconds, bench.cpu().since(cpu)))
}
