//! W3: per-record overhead — produce, then consume, 5,000,000 records of
//! 100 B on one partition. Two results: `produce` and `consume`.

use serde_json::json;
use sluice_protocol::wire::produce::Acks;

use super::bench::{Bench, PlotData, measured};
use super::meter::{Meter, Sampler};
use super::report::WorkloadResult;
use super::workloads::{consume, create_topic, produce};

/// Runs W3.
pub async fn w3(bench: &mut Bench) -> anyhow::Result<()> {
    let p = bench.opts.params(5_000_000, 100, Acks::Leader);
    let topic = bench.topic("w3");
    let addr = bench.addr()?;
    create_topic(addr, &topic, 1, None).await?;
    let job = [(0, p.records)];

    let meter = Meter::new();
    let sampler = Sampler::start(&meter, p.value_bytes(), "W3 produce");
    let (moved, secs, cpu) = measured(bench, produce(addr, &topic, &job, &p, 3, &meter)).await?;
    let produced = sampler.finish().await;
    let mut r = WorkloadResult::new("W3", "produce", bench.params_json(&p), moved, secs, cpu);
    r.parameters
        .insert("records_per_batch".into(), json!(p.records_per_batch()));
    r.bytes_per_100ms = produced.clone();
    bench.results.push(r);

    let meter = Meter::new();
    let sampler = Sampler::start(&meter, p.value_bytes(), "W3 consume");
    let (moved, secs, cpu) = measured(bench, consume(addr, &topic, &job, &p, &meter)).await?;
    let consumed = sampler.finish().await;
    let mut r = WorkloadResult::new("W3", "consume", bench.params_json(&p), moved, secs, cpu);
    r.bytes_per_100ms = consumed.clone();
    bench.results.push(r);

    bench.plots.push(PlotData::Throughput {
        name: "w3-throughput".into(),
        title: format!(
            "W3, {} × {} B: produce then consume (MB/s per 100 ms)",
            p.records, p.value_len
        ),
        series: vec![("produce".into(), produced), ("consume".into(), consumed)],
    });
    Ok(())
}
