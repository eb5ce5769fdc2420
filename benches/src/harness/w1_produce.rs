//! W1 (produce throughput, acks after append) and W5 (the same with acks
//! after `fdatasync` on a `flush = before-ack` topic, four producers).

use serde_json::json;
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::FlushMode;

use std::path::Path;

use super::baseline;
use super::bench::{Bench, Log, PlotData, measured};
use super::broker_proc::CpuTimes;
use super::meter::{Meter, Sampler};
use super::report::{Moved, WorkloadResult};
use super::workloads::{create_topic, produce, produce_parallel, split};

/// W1: one producer, one partition, 1,000,000 × 1 KiB by default.
pub async fn w1(bench: &mut Bench) -> anyhow::Result<()> {
    let p = bench.opts.params(1_000_000, 1024, Acks::Leader);
    let topic = bench.topic("w1");
    let addr = bench.addr()?;
    create_topic(addr, &topic, 1, None).await?;
    let addr = bench.leader(&topic).await?;
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
    if bench.is_cluster() {
        // The idempotence comparison is a single-broker figure.
        return Ok(());
    }
    w1_idempotent(bench).await
}

/// Rounds of the idempotence comparison.
const IDEMPOTENCE_ROUNDS: u64 = 4;

/// What idempotence costs, in the same run: W1's records again, split into
/// [`IDEMPOTENCE_ROUNDS`] pairs of a plain and an idempotent pass (each on
/// a topic of its own; which one goes first alternates), so both see the
/// same page-cache and writeback state. Reported as W1 `plain (paired)` and
/// W1 `idempotent produce`, each the sum of its passes.
///
/// With `--baseline`, each round ends with a raw receive-and-write pass of
/// the same bytes into a new file kept until the rounds end: the `base` row
/// `recv+pwrite paired`, the limit the paired rows are judged against. It
/// goes after the round's two passes, not between them, so that the plain
/// and idempotent passes stay back to back as without `--baseline` (a raw
/// pass between them made the idempotent passes 10–30% slower than the
/// plain ones in every run tried, against 0–10% without it).
async fn w1_idempotent(bench: &mut Bench) -> anyhow::Result<()> {
    let base = bench.opts.params(1_000_000, 1024, Acks::Leader);
    let mut per = base.clone();
    per.records = (base.records / IDEMPOTENCE_ROUNDS).max(1);
    let addr = bench.addr()?;
    let mut sums = [(Moved::default(), 0.0, CpuTimes::default()); 2];
    let raw_dir = match bench.baseline {
        true => Some(baseline::dir(bench)?),
        false => None,
    };
    let raw_bytes = per.records * per.value_len as u64;
    let chunk = bench.opts.batch_bytes.max(1);
    let mut raw = RawPasses::default();
    for round in 0..IDEMPOTENCE_ROUNDS {
        for k in 0..2 {
            let idempotent = (k + round) % 2 == 1;
            let mut p = per.clone();
            p.idempotent = idempotent;
            let topic = bench.topic(&format!("w1-pair{round}-{}", u8::from(idempotent)));
            create_topic(addr, &topic, 1, None).await?;
            let meter = Meter::new();
            let (moved, secs, cpu) = measured(
                bench,
                produce(addr, &topic, &[(0, p.records)], &p, 1, &meter),
            )
            .await?;
            let sum = &mut sums[usize::from(idempotent)];
            sum.0 = sum.0.plus(moved);
            sum.1 += secs;
            sum.2 = CpuTimes {
                user: sum.2.user + cpu.user,
                sys: sum.2.sys + cpu.sys,
            };
        }
        if let Some(dir) = &raw_dir {
            raw.pass(dir, raw_bytes, chunk).await?;
        }
    }
    if let (Some(dir), Some(sum)) = (&raw_dir, &raw.sum) {
        let passes = raw.files.len() as u64;
        bench
            .results
            .push(baseline::paired_row(sum, chunk, passes, dir));
    }
    // The raw passes' files go only now, so that no pass wrote into pages
    // another one gave back.
    drop(raw);
    for (idempotent, (moved, secs, cpu)) in [false, true].into_iter().zip(sums) {
        let mut p = per.clone();
        p.records = per.records * IDEMPOTENCE_ROUNDS;
        p.idempotent = idempotent;
        let variant = match idempotent {
            true => "idempotent produce",
            false => "plain (paired)",
        };
        let mut r = WorkloadResult::new("W1", variant, bench.params_json(&p), moved, secs, cpu);
        r.parameters.insert("producers".into(), json!(1));
        r.parameters
            .insert("rounds".into(), json!(IDEMPOTENCE_ROUNDS));
        bench.results.push(r);
    }
    Ok(())
}

/// The raw receive-and-write passes run in turns with W1's paired passes.
/// Each writes a new file, as the broker's passes write new segments, so
/// both fill page-cache pages the kernel hands out anew; each file is
/// written back after its pass and all are removed when the passes end.
#[derive(Default)]
struct RawPasses {
    /// Each pass's file, kept until the passes end.
    files: Vec<tempfile::NamedTempFile>,
    /// The passes so far, summed.
    sum: Option<baseline::Limit>,
}

impl RawPasses {
    /// One pass of `bytes` into a new file in `dir`, off the runtime.
    async fn pass(&mut self, dir: &Path, bytes: u64, chunk: usize) -> anyhow::Result<()> {
        let file = baseline::new_pwrite_file(dir)?;
        let (file, limit) = tokio::task::spawn_blocking(move || {
            let limit = baseline::recv_pwrite_into(&file, bytes, chunk).and_then(|limit| {
                // Untimed: written back now, the kept file adds nothing to
                // the dirty pages the later passes are throttled by (the
                // broker's passes keep only theirs), and gives back no pages
                // for them to reuse.
                file.as_file().sync_data()?;
                Ok(limit)
            });
            (file, limit)
        })
        .await?;
        let limit = limit?;
        self.files.push(file);
        self.sum = Some(match &self.sum {
            Some(sum) => sum.plus(&limit),
            None => limit,
        });
        Ok(())
    }
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
    let addr = bench.leader(&topic).await?;
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
