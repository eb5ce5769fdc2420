//! W2 (one consumer reads the W1 log from a warm page cache) and W6 (four
//! consumers each read it in full, at once), on the broker's current fetch
//! path; [`compare`] sets the sendfile and copy results side by side.

use serde_json::json;
use sluice_protocol::wire::produce::Acks;

use super::bench::{Bench, measured};
use super::meter::{Meter, Sampler};
use super::report::WorkloadResult;
use super::w1_produce::ensure_w1_log;
use super::workloads::{consume, consume_parallel};

/// W2 on the broker's current fetch path.
pub async fn w2(bench: &mut Bench) -> anyhow::Result<()> {
    let log = ensure_w1_log(bench).await?;
    let mut p = bench.opts.params(log.records, log.value_len, Acks::Leader);
    p.records = log.records;
    p.value_len = log.value_len;
    let addr = bench.leader(&log.topic).await?;
    // A first pass warms the page cache (and the broker's file handles).
    consume(addr, &log.topic, &[(0, log.records)], &p, &Meter::new()).await?;
    let meter = Meter::new();
    let sampler = Sampler::start(&meter, p.value_bytes(), "W2 consume");
    let (moved, secs, cpu) = measured(
        bench,
        consume(addr, &log.topic, &[(0, log.records)], &p, &meter),
    )
    .await?;
    let series = sampler.finish().await;
    let path = bench.fetch_path().to_owned();
    let mut r = WorkloadResult::new("W2", &path, bench.params_json(&p), moved, secs, cpu);
    r.parameters.insert("consumers".into(), json!(1));
    r.bytes_per_100ms = series;
    bench.results.push(r);
    Ok(())
}

/// W6 on the broker's current fetch path; figures are the aggregate.
pub async fn w6(bench: &mut Bench) -> anyhow::Result<()> {
    let log = ensure_w1_log(bench).await?;
    let mut p = bench.opts.params(log.records, log.value_len, Acks::Leader);
    p.records = log.records;
    p.value_len = log.value_len;
    let consumers = bench.opts.consumers.unwrap_or(4).max(1);
    let addr = bench.addr()?;
    consume(addr, &log.topic, &[(0, log.records)], &p, &Meter::new()).await?;
    let jobs = vec![vec![(0, log.records)]; consumers];
    let meter = Meter::new();
    let total = p.value_bytes() * consumers as u64;
    let sampler = Sampler::start(&meter, total, "W6 fan-out");
    let (moved, secs, cpu) =
        measured(bench, consume_parallel(addr, &log.topic, jobs, &p, &meter)).await?;
    let series = sampler.finish().await;
    let variant = format!("{} x{consumers}", bench.fetch_path());
    let mut r = WorkloadResult::new("W6", &variant, bench.params_json(&p), moved, secs, cpu);
    r.parameters.insert("consumers".into(), json!(consumers));
    r.bytes_per_100ms = series;
    bench.results.push(r);
    Ok(())
}

/// Ratios between the sendfile and copy results of W2 and W6, recorded as
/// details of the copy rows and printed.
pub fn compare(bench: &mut Bench) {
    for id in ["W2", "W6"] {
        let find = |path: &str| {
            bench
                .results
                .iter()
                .position(|r| r.workload == id && r.variant.starts_with(path))
        };
        let (Some(s), Some(c)) = (find("sendfile"), find("copy")) else {
            continue;
        };
        let (Some(send), Some(copy)) = (bench.results.get(s), bench.results.get(c)) else {
            continue;
        };
        let throughput = send.mb_per_sec / copy.mb_per_sec;
        let cpu = send.broker_cpu_s_per_gib / copy.broker_cpu_s_per_gib;
        println!(
            "{id} sendfile vs copy: {:.0} vs {:.0} MB/s (ratio {throughput:.2}); broker {:.3} vs {:.3} CPU-s/GiB (ratio {cpu:.2})",
            send.mb_per_sec, copy.mb_per_sec, send.broker_cpu_s_per_gib, copy.broker_cpu_s_per_gib
        );
        if let Some(copy) = bench.results.get_mut(c) {
            copy.detail("sendfile_over_copy_throughput", throughput);
            copy.detail("sendfile_over_copy_cpu_per_gib", cpu);
        }
    }
}
