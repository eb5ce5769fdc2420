//! `sluice-bench`: runs the standard workloads against a broker process it
//! starts from the same build, and reports throughput and broker CPU.

use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use sluice_bench::harness::broker_proc::{BrokerProc, Target};
use sluice_bench::harness::report::{WorkloadResult, print_table};
use sluice_bench::harness::workloads::{self, Params};
use sluice_protocol::wire::produce::Acks;

/// Command-line options.
#[derive(Debug, Parser)]
#[command(name = "sluice-bench", version, about = "Sluice workload benchmarks")]
struct Args {
    /// Comma-separated workloads (W1, W2)
    #[arg(long, default_value = "W1,W2")]
    workload: String,
    /// Records to produce
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Bytes per record value
    #[arg(long, default_value_t = 1024)]
    value_len: usize,
    /// Target bytes per record batch
    #[arg(long, default_value_t = 1 << 20)]
    batch_bytes: usize,
    /// Produce requests in flight
    #[arg(long, default_value_t = 4)]
    in_flight: usize,
    /// Bytes per fetch
    #[arg(long, default_value_t = 8 << 20)]
    fetch_bytes: u32,
    /// Run the read workloads against both the sendfile and the copy fetch path
    #[arg(long)]
    compare_fetch_path: bool,
    /// Fetch path when not comparing: sendfile or copy
    #[arg(long, default_value = "sendfile")]
    fetch_path: String,
    /// Skip consumer CRC checks
    #[arg(long)]
    no_verify_crc: bool,
    /// Use a running broker instead of starting one (its CPU is not measured
    /// unless --broker-pid is given; --compare-fetch-path is not possible)
    #[arg(long)]
    broker: Option<std::net::SocketAddr>,
    /// Process id of the --broker, to measure its CPU time
    #[arg(long)]
    broker_pid: Option<u32>,
    /// Write results as JSON to this file
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let results = rt.block_on(run(&args))?;
    print_table(&results);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&results)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

async fn run(args: &Args) -> anyhow::Result<Vec<WorkloadResult>> {
    let wanted: Vec<String> = args
        .workload
        .split(',')
        .map(|w| w.trim().to_uppercase())
        .collect();
    let p = Params {
        records: args.records,
        value_len: args.value_len,
        batch_bytes: args.batch_bytes,
        in_flight: args.in_flight,
        acks: Acks::Leader,
        fetch_bytes: args.fetch_bytes,
        verify_crc: !args.no_verify_crc,
    };
    let params = vec![
        ("records".to_owned(), p.records.to_string()),
        ("value_len".to_owned(), p.value_len.to_string()),
        ("batch_bytes".to_owned(), p.batch_bytes.to_string()),
        ("in_flight".to_owned(), p.in_flight.to_string()),
        ("fetch_bytes".to_owned(), p.fetch_bytes.to_string()),
        ("verify_crc".to_owned(), p.verify_crc.to_string()),
    ];
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    let paths: Vec<&str> = if args.compare_fetch_path && args.broker.is_none() {
        vec!["sendfile", "copy"]
    } else {
        vec![args.fetch_path.as_str()]
    };
    let start = |path: &str| -> anyhow::Result<Target> {
        Ok(match args.broker {
            Some(addr) => Target::External {
                addr,
                pid: args.broker_pid,
            },
            None => Target::Spawned(BrokerProc::start(&data, path, "")?),
        })
    };
    let mut results = Vec::new();
    let broker = start(paths[0])?;
    let topic = format!("bench-{}", std::process::id());
    workloads::create_topic(broker.addr(), &topic, 1, None).await?;
    // W1 fills the log the read workloads read.
    let cpu = broker.cpu();
    let t = Instant::now();
    let moved = workloads::produce(broker.addr(), &topic, 0, p.records, &p, 1).await?;
    if wanted.iter().any(|w| w == "W1") {
        results.push(workloads::result(
            "W1",
            "leader",
            params.clone(),
            moved,
            t,
            broker.cpu().since(cpu),
        ));
    }
    broker.stop()?;
    if wanted.iter().any(|w| w == "W2") {
        for path in &paths {
            let broker = start(path)?;
            // Warm-up pass so the page cache holds the log.
            workloads::consume(broker.addr(), &topic, 0, p.records, &p).await?;
            let cpu = broker.cpu();
            let t = Instant::now();
            let moved = workloads::consume(broker.addr(), &topic, 0, p.records, &p).await?;
            results.push(workloads::result(
                "W2",
                path,
                params.clone(),
                moved,
                t,
                broker.cpu().since(cpu),
            ));
            broker.stop()?;
        }
    }
    Ok(results)
}
