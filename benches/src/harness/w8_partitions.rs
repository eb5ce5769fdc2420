//! W8: many partitions — a 64-partition topic, four producers each writing
//! a quarter of the partitions (one batch per partition in turn), then four
//! consumers each reading a quarter of them. Two aggregate results,
//! `produce` and `consume`, set against W1 and W2.

use serde_json::json;
use sluice_protocol::wire::produce::Acks;

use super::bench::{Bench, measured};
use super::meter::{Meter, Sampler};
use super::report::WorkloadResult;
use super::workloads::{consume_parallel, create_topic, produce_parallel};

/// Partition `i` of `n` goes to worker `i % workers`; each gets
/// `per_partition` records.
fn jobs(partitions: u32, workers: usize, per_partition: u64) -> Vec<Vec<(u32, u64)>> {
    let workers = workers.max(1);
    let mut jobs = vec![Vec::new(); workers];
    for part in 0..partitions {
        if let Some(job) = jobs.get_mut(part as usize % workers) {
            job.push((part, per_partition));
        }
    }
    jobs.retain(|j| !j.is_empty());
    jobs
}

/// Runs W8.
pub async fn w8(bench: &mut Bench) -> anyhow::Result<()> {
    let mut p = bench.opts.params(1_000_000, 1024, Acks::Leader);
    let partitions = bench.opts.partitions.unwrap_or(64).max(1);
    let producers = bench.opts.producers.unwrap_or(4).max(1);
    let consumers = bench.opts.consumers.unwrap_or(4).max(1);
    let per_partition = (p.records / u64::from(partitions)).max(1);
    p.records = per_partition * u64::from(partitions);
    let topic = bench.topic("w8");
    let addr = bench.addr()?;
    create_topic(addr, &topic, partitions, None).await?;

    let meter = Meter::new();
    let sampler = Sampler::start(&meter, p.value_bytes(), "W8 produce");
    let (moved, secs, cpu) = measured(
        bench,
        produce_parallel(
            addr,
            &topic,
            jobs(partitions, producers, per_partition),
            &p,
            &meter,
        ),
    )
    .await?;
    let series = sampler.finish().await;
    let mut r = WorkloadResult::new("W8", "produce", bench.params_json(&p), moved, secs, cpu);
    r.parameters.insert("partitions".into(), json!(partitions));
    r.parameters.insert("producers".into(), json!(producers));
    r.bytes_per_100ms = series;
    bench.results.push(r);

    let meter = Meter::new();
    let sampler = Sampler::start(&meter, p.value_bytes(), "W8 consume");
    let (moved, secs, cpu) = measured(
        bench,
        consume_parallel(
            addr,
            &topic,
            jobs(partitions, consumers, per_partition),
            &p,
            &meter,
        ),
    )
    .await?;
    let series = sampler.finish().await;
    let mut r = WorkloadResult::new("W8", "consume", bench.params_json(&p), moved, secs, cpu);
    r.parameters.insert("partitions".into(), json!(partitions));
    r.parameters.insert("consumers".into(), json!(consumers));
    r.bytes_per_100ms = series;
    bench.results.push(r);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::jobs;

    #[test]
    fn partitions_are_dealt_round_robin() {
        let j = jobs(64, 4, 10);
        assert_eq!(j.len(), 4);
        assert!(j.iter().all(|w| w.len() == 16));
        assert_eq!(j.first().and_then(|w| w.get(1)), Some(&(4, 10)));
        assert_eq!(jobs(2, 4, 1).len(), 2);
    }
}
