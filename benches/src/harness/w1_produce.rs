//! W1 (produce throughput, acks after append) and W5 (the same with acks
//! after `fdatasync` on a `flush = before-ack` topic, four producers).

use serde_json::json;
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::FlushMode;

use super::bench::{Bench, Log, PlotData, measured};
use super::meter::{Meter, Sampler};
use super::report::WorkloadResult;
use super::workloads::{create_topic, produce, produce_parallel, split};

/// W1: one producer, one partition, 1,000,000 × 1 KiB by default.
pub async fn w1(bench: &mut Bench) -> anyhow::Result<()> {
    let p = bench.opts.params(1_000_000, 1024, Acks::Leader);
    let topic = bench.topic("w1");
    let addr = bench.addr()?;
    create_topic(addr, &topic, 1, None).await?;
    let meter = Meter::new();
    let sampler = Sampler::start(&meter, p.value_bytes(), "W1 produce");
    let (moved, secs, cpu) = measured(
        bench,
        produce(addr, &topic, &[(0, p.records)], &p, 1, &meter),
    )
    .await?;
    let series = sampler.finish().await;
    let mut r = WorkloadResult::new("W1", "produce", bench.params_json(&p), moved, secs, cpu);
    r.parameters.insert("producers".into(), json!(1));
    r.bytes_per_100ms = series.clone();
    bench.results.push(r);
    bench.plots.push(PlotData::Throughput {
        name: "w1-throughput".into(),
        title: format!(
            "W1 produce, {} × {} B, one producer (MB/s per 100 ms)",
            p.records, p.value_len
        ),
        series: vec![("produce".into(), series)],
    });
    bench.w1_log = Some(Log {
        topic,
        records: p.records,
        value_len: p.value_len,
    });
    w1_idempotent(bench).await
}

/// W1 again in the same run with idempotent batches (a producer id and
/// sequence numbers the broker checks), to show what idempotence costs.
async fn w1_idempotent(bench: &mut Bench) -> anyhow::Result<()> {
    let mut p = bench.opts.params(1_000_000, 1024, Acks::Leader);
    p.idempotent = true;
    let topic = bench.topic("w1-idempotent");
    let addr = bench.addr()?;
    create_topic(addr, &topic, 1, None).await?;
    let meter = Meter::new();
    let sampler = Sampler::start(&meter, p.value_bytes(), "W1 idempotent produce");
    let (moved, secs, cpu) = measured(
        bench,
        produce(addr, &topic, &[(0, p.records)], &p, 1, &meter),
    )
    .await?;
    sampler.finish().await;
    let mut r = WorkloadResult::new(
        "W1",
        "idempotent produce",
        bench.params_json(&p),
        moved,
        secs,
        cpu,
    );
    r.parameters.insert("producers".into(), json!(1));
    bench.results.push(r);
    Ok(())
}

/// Produces the W1 log without reporting it, if no W1 ran yet, so that the
/// read workloads have something to read.
pub async fn ensure_w1_log(bench: &mut Bench) -> anyhow::Result<Log> {
    if let Some(log) = &bench.w1_log {
        return Ok(log.clone());
    }
    let p = bench.opts.params(1_000_000, 1024, Acks::Leader);
    let topic = bench.topic("w1");
    let addr = bench.addr()?;
    create_topic(addr, &topic, 1, None).await?;
    let meter = Meter::new();
    let sampler = Sampler::start(&meter, p.value_bytes(), "W1 log");
    produce(addr, &topic, &[(0, p.records)], &p, 1, &meter).await?;
    sampler.finish().await;
    let log = Log {
        topic,
        records: p.records,
        value_len: p.value_len,
    };
    bench.w1_log = Some(log.clone());
    Ok(log)
}

/// W5: four producers, acks=all, on a `flush = before-ack` topic.
pub async fn w5(bench: &mut Bench) -> anyhow::Result<()> {
    let p = bench.opts.params(1_000_000, 1024, Acks::All);
    let producers = bench.opts.producers.unwrap_or(4).max(1);
    let topic = bench.topic("w5");
    let addr = bench.addr()?;
    create_topic(addr, &topic, 1, Some(FlushMode::BeforeAck)).await?;
    let jobs = split(p.records, producers)
        .into_iter()
        .map(|n| vec![(0, n)])
        .collect();
    let meter = Meter::new();
    let sampler = Sampler::start(&meter, p.value_bytes(), "W5 produce");
    let (moved, secs, cpu) =
        measured(bench, produce_parallel(addr, &topic, jobs, &p, &meter)).await?;
    let series = sampler.finish().await;
    let mut r = WorkloadResult::new(
        "W5",
        "fsync produce",
        bench.params_json(&p),
        moved,
        secs,
        cpu,
    );
    r.parameters.insert("producers".into(), json!(producers));
    r.parameters.insert("flush".into(), json!("before-ack"));
    r.bytes_per_100ms = series;
    bench.results.push(r);
    Ok(())
}
