//! `sluice-bench`: runs the standard workloads of `WORKLOADS.md` (W1–W8)
//! against a broker process it starts from the same build (or one given
//! with `--broker`), and reports throughput, latency and broker CPU as a
//! table, as JSON (`--json`) and as SVG pictures (`--plot`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use sluice_bench::harness::bench::{Bench, BrokerSource};
use sluice_bench::harness::options::{
    Options, TailFetch, ValueKind, parse_acks, parse_codecs, parse_value_kind,
};
use sluice_bench::harness::report::{
    WorkloadResult, print_compression, print_details, print_goals, print_table,
};
use sluice_bench::harness::{
    baseline, failover, goals, kafka_bench, plot, w1_produce, w2_fetch, w3_small, w4_latency,
    w7_cold, w8_partitions,
};
use sluice_protocol::batch::Compression;
use sluice_protocol::wire::produce::Acks;

/// Every workload, in the order they run.
const ALL: [&str; 8] = ["W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8"];

/// The workloads whose figures depend on the fetch path.
const READ_WORKLOADS: [&str; 2] = ["W2", "W6"];

/// Command-line options.
#[derive(Debug, Parser)]
#[command(
    name = "sluice-bench",
    version,
    about = "Sluice workload benchmarks (see docs/benchmarks.md)"
)]
struct Args {
    /// Comma-separated workloads (W1..W8), or `all`; or `failover`: leader
    /// SIGKILLs on a 3-node cluster (see --kills)
    #[arg(long, default_value = "W1,W2,W3,W4")]
    workload: String,
    /// Leader kills of `--workload failover`
    #[arg(long, default_value_t = 10)]
    kills: u32,
    /// Extra lines for the broker config file of `--workload failover`'s
    /// and `--cluster`'s nodes, e.g. "raft_heartbeat_ms = 20"
    #[arg(long, default_value = "")]
    cluster_config: String,
    /// Also run W1, W2 and W4 on a loopback cluster of this many brokers
    /// (replication factor = the number of brokers), after the single
    /// broker, and report both
    #[arg(long, default_value_t = 0)]
    cluster: u64,
    /// Records per workload [default: each workload's own: 1,000,000; W3 5,000,000]
    #[arg(long)]
    records: Option<u64>,
    /// Bytes per record value [default: 1024; W3 100]
    #[arg(long)]
    value_len: Option<usize>,
    /// Partitions of the W8 topic [default: 64]
    #[arg(long)]
    partitions: Option<u32>,
    /// Producers of W5 and W8 [default: 4]
    #[arg(long)]
    producers: Option<usize>,
    /// Consumers of W6 and W8 [default: 4]
    #[arg(long)]
    consumers: Option<usize>,
    /// Target bytes per record batch (throughput workloads)
    #[arg(long, default_value_t = 1 << 20)]
    batch_bytes: usize,
    /// Producer batch size of W4/W7 (1: each record is its own batch; with
    /// linger 0 a batch holds only what queued while the one before it
    /// waited to be sent)
    #[arg(long, default_value_t = 256 * 1024)]
    latency_batch_bytes: usize,
    /// Producer linger of W4/W7, in milliseconds
    #[arg(long, default_value_t = 0)]
    linger_ms: u64,
    /// Worker threads of the harness's own tokio runtime (its producers and
    /// consumers; the broker is another process)
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    client_threads: u16,
    /// Acknowledgement level for every workload: none, leader or all
    /// [default: leader; W5 all]
    #[arg(long, value_parser = parse_acks)]
    acks: Option<Acks>,
    /// Produce requests in flight per producer connection
    #[arg(long, default_value_t = 4)]
    in_flight: usize,
    /// Bytes per fetch
    #[arg(long, default_value_t = 8 << 20)]
    fetch_bytes: u32,
    /// Skip consumer CRC checks
    #[arg(long)]
    no_verify_crc: bool,
    /// How the W4/W7 tailing consumer reads: `stream` (one FetchStream
    /// request, each append sent as it comes) or `poll` (a long-poll Fetch
    /// per read)
    #[arg(long, default_value = "stream", value_parser = ["stream", "poll"])]
    tail_fetch: String,
    /// Records per second of W4 and W7
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// Measured seconds of W4 and W7
    #[arg(long, default_value_t = 30.0)]
    duration: f64,
    /// Seconds sent before W4/W7 start recording
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Bytes of cold log for W7 (scaled down if the disk is short)
    #[arg(long, default_value_t = 4 << 30)]
    cold_bytes: u64,
    /// Run the read workloads (W2, W6) on both the sendfile and the copy
    /// fetch path, restarting the broker on the same data
    #[arg(long)]
    compare_fetch_path: bool,
    /// Fetch path when not comparing: sendfile or copy
    #[arg(long, default_value = "sendfile")]
    fetch_path: String,
    /// Also measure the machine's own limits first (loopback sendfile,
    /// socket -> pwrite, O_DSYNC writes, with the workloads' sizes; bare
    /// request/response round trips at W4's rate; the CPUs' own gaps) and
    /// set W1/W2/W5/W6 against them and W4 beside them
    #[arg(long)]
    baseline: bool,
    /// Use a running broker instead of starting one
    #[arg(long)]
    broker: Option<std::net::SocketAddr>,
    /// Process id of the --broker, to measure its CPU time
    #[arg(long)]
    broker_pid: Option<u32>,
    /// Data directory of the --broker, for W7's page-cache dropping
    #[arg(long)]
    broker_data_dir: Option<PathBuf>,
    /// Where the temporary broker data directory goes [default: $TMPDIR]
    #[arg(long)]
    tmp_dir: Option<PathBuf>,
    /// Write results as JSON (an array, one object per workload run)
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write pictures (SVG) into this directory
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Comma-separated codecs the producers of W1, W2 (its log) and W3
    /// compress batches with; those workloads run once per codec and a
    /// table compares them
    #[arg(long, default_value = "none", value_parser = parse_codecs)]
    compression: std::vec::Vec<Compression>,
    /// Produced values: `random` bytes or JSON-like `text`
    #[arg(long, default_value = "random", value_parser = parse_value_kind)]
    value_kind: ValueKind,
    /// `kafka`: also run W1, W2 and W4 through the broker's Kafka listener
    /// (the harness's own Kafka-protocol producer and consumer), next to
    /// the native protocol, and report the ratio
    #[arg(long, default_value = "native", value_parser = ["native", "kafka"])]
    protocol: String,
    /// Kafka listener of the --broker (with --protocol kafka)
    #[arg(long)]
    kafka_broker: Option<std::net::SocketAddr>,
}

impl Args {
    fn options(&self) -> Options {
        Options {
            records: self.records,
            value_len: self.value_len,
            partitions: self.partitions,
            producers: self.producers,
            consumers: self.consumers,
            batch_bytes: self.batch_bytes,
            latency_batch_bytes: self.latency_batch_bytes,
            linger: Duration::from_millis(self.linger_ms),
            acks: self.acks,
            in_flight: self.in_flight,
            fetch_bytes: self.fetch_bytes,
            verify_crc: !self.no_verify_crc,
            tail_fetch: match self.tail_fetch.as_str() {
                "poll" => TailFetch::Poll,
                _ => TailFetch::Stream,
            },
            rate: self.rate,
            duration: Duration::from_secs_f64(self.duration.max(0.0)),
            warmup: Duration::from_secs_f64(self.warmup.max(0.0)),
            cold_bytes: self.cold_bytes,
            compression: self
                .compression
                .first()
                .copied()
                .unwrap_or(Compression::None),
            value_kind: self.value_kind,
        }
    }

    fn workloads(&self) -> anyhow::Result<Vec<&'static str>> {
        if self.workload.trim().eq_ignore_ascii_case("all") {
            return Ok(ALL.to_vec());
        }
        let mut wanted = Vec::new();
        for w in self.workload.split(',') {
            let w = w.trim().to_uppercase();
            let Some(id) = ALL.iter().find(|id| **id == w) else {
                bail!("unknown workload {w:?}: choose from W1..W8 or all");
            };
            wanted.push(*id);
        }
        // Run in the standard order, each once.
        Ok(ALL
            .iter()
            .copied()
            .filter(|id| wanted.contains(id))
            .collect())
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.workload.trim().eq_ignore_ascii_case("failover") {
        return failover_main(&args);
    }
    let workloads = args.workloads()?;
    if !["sendfile", "copy"].contains(&args.fetch_path.as_str()) {
        bail!("--fetch-path must be sendfile or copy");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(usize::from(args.client_threads))
        .enable_all()
        .build()?;
    let source = match args.broker {
        Some(addr) => BrokerSource::External {
            addr,
            pid: args.broker_pid,
            data_dir: args.broker_data_dir.clone(),
        },
        None => BrokerSource::Spawn {
            tmp_base: args.tmp_dir.clone(),
        },
    };
    let first_path = if args.compare_fetch_path {
        "sendfile"
    } else {
        &args.fetch_path
    };
    let mut bench = Bench::new(args.options(), source, first_path)?;
    bench.kafka = args.protocol == "kafka";
    bench.kafka_broker = args.kafka_broker;
    bench.baseline = args.baseline;
    if args.baseline {
        // Before the broker starts, so that nothing else runs meanwhile.
        baseline::run(&mut bench)?;
    }
    let outcome = rt.block_on(run(&mut bench, &args, &workloads));
    bench.stop()?;
    outcome?;
    if args.cluster > 0 {
        let mut results = rt.block_on(run_cluster(&args, &workloads))?;
        bench.results.append(&mut results);
    }
    goals::judge_all(&mut bench.results);
    print_table(&bench.results);
    println!();
    if args.compression.len() > 1 || args.compression.first() != Some(&Compression::None) {
        print_compression(&bench.results);
        println!();
    }
    print_details(&bench.results);
    if args.compare_fetch_path {
        w2_fetch::compare(&mut bench);
    }
    print_goals(&bench.results);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&bench.results)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(dir) = &args.plot {
        for p in plot::write_all(dir, &bench.plots)? {
            eprintln!("wrote {}", p.display());
        }
    }
    Ok(())
}

/// The workloads `--cluster` runs again on the cluster.
const CLUSTER_WORKLOADS: [&str; 3] = ["W1", "W2", "W4"];

/// W1, W2 and W4 (those of `workloads`) on a loopback cluster of
/// `--cluster` brokers; each result's variant names the cluster.
async fn run_cluster(args: &Args, workloads: &[&str]) -> anyhow::Result<Vec<WorkloadResult>> {
    let source = BrokerSource::Cluster {
        tmp_base: args.tmp_dir.clone(),
        nodes: args.cluster,
        config: args.cluster_config.replace("\\n", "\n"),
    };
    let mut bench = Bench::new(args.options(), source, &args.fetch_path)?;
    bench.opts.compression = args
        .compression
        .first()
        .copied()
        .unwrap_or(Compression::None);
    let label = format!("{} nodes RF={}", args.cluster, args.cluster);
    let mut outcome = Ok(());
    for id in workloads.iter().filter(|w| CLUSTER_WORKLOADS.contains(*w)) {
        eprintln!("running {id} on {label}");
        outcome = match *id {
            "W1" => w1_produce::w1(&mut bench).await,
            "W2" => w2_fetch::w2(&mut bench).await,
            _ => w4_latency::w4(&mut bench).await,
        };
        if outcome.is_err() {
            break;
        }
    }
    bench.stop()?;
    outcome?;
    let mut results = std::mem::take(&mut bench.results);
    for r in &mut results {
        r.variant = format!("{} [{label}]", r.variant);
        r.parameters
            .insert("cluster_nodes".into(), serde_json::json!(args.cluster));
    }
    Ok(results)
}

/// `--workload failover`: leader kills on a 3-node cluster.
fn failover_main(args: &Args) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let tmp = match &args.tmp_dir {
        Some(base) => tempfile::Builder::new()
            .prefix("sluice-failover-")
            .tempdir_in(base)?,
        None => tempfile::Builder::new()
            .prefix("sluice-failover-")
            .tempdir()?,
    };
    let spec = failover::FailoverSpec {
        kills: args.kills.max(1),
        value_len: args.value_len.unwrap_or(1024),
        extra_toml: args.cluster_config.replace("\\n", "\n"),
    };
    let results = rt.block_on(failover::run(tmp.path(), &spec))?;
    failover::print(&results);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&results)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

async fn run(bench: &mut Bench, args: &Args, workloads: &[&str]) -> anyhow::Result<()> {
    if let Some(pid) = bench.addr().ok().and(bench.broker_pid()) {
        eprintln!("broker pid {pid} at {}", bench.addr()?);
    }
    // W1, W2 and W3 run once per codec; the others once, with the first.
    for (i, codec) in args.compression.iter().enumerate() {
        bench.opts.compression = *codec;
        bench.w1_log = None;
        for id in workloads
            .iter()
            .filter(|id| i == 0 || COMPRESSED_WORKLOADS.contains(*id))
        {
            eprintln!("running {id} ({codec})");
            run_one(bench, id).await?;
        }
    }
    if let Some(first) = args.compression.first() {
        bench.opts.compression = *first;
    }
    run_reads_again(bench, args, workloads).await
}

/// The workloads `--compression` applies to.
const COMPRESSED_WORKLOADS: [&str; 3] = ["W1", "W2", "W3"];

async fn run_one(bench: &mut Bench, id: &str) -> anyhow::Result<()> {
    {
        match id {
            "W1" => {
                w1_produce::w1(bench).await?;
                if bench.kafka {
                    kafka_bench::w1(bench).await?;
                }
            }
            "W2" => {
                w2_fetch::w2(bench).await?;
                if bench.kafka {
                    kafka_bench::w2(bench).await?;
                }
            }
            "W3" => w3_small::w3(bench).await?,
            "W4" => {
                w4_latency::w4(bench).await?;
                if bench.kafka {
                    kafka_bench::w4(bench).await?;
                }
            }
            "W5" => w1_produce::w5(bench).await?,
            "W6" => w2_fetch::w6(bench).await?,
            "W7" => w7_cold::w7(bench).await?,
            "W8" => w8_partitions::w8(bench).await?,
            _ => {}
        }
    }
    Ok(())
}

async fn run_reads_again(bench: &mut Bench, args: &Args, workloads: &[&str]) -> anyhow::Result<()> {
    let reads: Vec<&str> = workloads
        .iter()
        .copied()
        .filter(|w| READ_WORKLOADS.contains(w))
        .collect();
    if args.compare_fetch_path && !reads.is_empty() {
        if !bench.spawns_broker() {
            eprintln!("warning: --compare-fetch-path needs a broker the harness starts; skipped");
            return Ok(());
        }
        bench.set_fetch_path("copy")?;
        eprintln!("broker restarted with the copy fetch path");
        for id in reads {
            eprintln!("running {id} (copy)");
            match id {
                "W2" => w2_fetch::w2(bench).await?,
                _ => w2_fetch::w6(bench).await?,
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_harness_runtime_has_two_threads_unless_told_and_never_none() {
        let parse = |extra: &[&str]| {
            Args::try_parse_from(std::iter::once("sluice-bench").chain(extra.iter().copied()))
        };
        assert_eq!(parse(&[]).map(|a| a.client_threads).ok(), Some(2));
        assert_eq!(
            parse(&["--client-threads", "1"])
                .map(|a| a.client_threads)
                .ok(),
            Some(1)
        );
        assert!(parse(&["--client-threads", "0"]).is_err());
    }
}
