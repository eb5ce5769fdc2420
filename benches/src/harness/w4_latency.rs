//! W4: end-to-end latency at a fixed rate — 1 KiB records at 10,000
//! records/s for 30 s through the client library's `Producer`, one
//! `Consumer` tailing the partition: by default with one FetchStream
//! request (`--tail-fetch stream`, `ConsumerConfig::fetch_stream`), or with
//! a long-poll Fetch per read (`--tail-fetch poll`).
//!
//! Each value starts with the nanoseconds from a shared [`Instant`] to the
//! record's *intended* send time, then its sequence number. The sender runs
//! on its own thread (timer slack 1 ns) on a fixed schedule; if it falls
//! behind it sends the late records at once and their latency still counts
//! from when they should have left, so a stall is not hidden (no coordinated
//! omission). Latency = receipt time − intended send time, into an HDR
//! histogram (nanoseconds, 3 significant digits). The first `warmup` of
//! records is sent but not recorded. The producer lingers 0, so batching
//! delay is not measured: a record waits in a batch only while the batch
//! before it waits for a request slot (a sender that fell behind then
//! catches up in large requests).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use serde_json::json;
use sluice_client::{
    Consumer, ConsumerConfig, DeliveryFuture, Producer, ProducerConfig, ProducerRecord,
};
use sluice_protocol::wire::produce::Acks;

use super::bench::{Bench, PlotData, measured};
use super::meter::progress_bar;
use super::options::{TailFetch, acks_name};
use super::report::{Latency, Moved, WorkloadResult};
use super::workloads::create_topic;

/// Largest latency the histograms hold (one hour, in nanoseconds).
const MAX_NS: u64 = 3_600_000_000_000;

/// A record later than this is part of a stall.
pub const STALL_NS: u64 = 10_000_000;

/// Stall starts kept per run (the count goes on past them).
const MAX_STALL_STARTS: usize = 16;

/// Counts stalls in a stream of latencies taken in receipt order: a stall
/// is a maximal run of consecutive latencies each above [`STALL_NS`].
#[derive(Debug, Clone, Default)]
pub struct StallCounter {
    /// Latencies above [`STALL_NS`].
    pub over: u64,
    /// Stalls.
    pub stalls: u64,
    /// When the first record of each stall was due to be sent, in
    /// milliseconds from the run's start (warm-up included); the first
    /// [`MAX_STALL_STARTS`] stalls only.
    pub starts_ms: Vec<u64>,
    in_stall: bool,
}

impl StallCounter {
    /// Takes the next latency, in nanoseconds, of a record due to be sent
    /// `sent_ns` after the run's start.
    pub fn record(&mut self, ns: u64, sent_ns: u64) {
        let late = ns > STALL_NS;
        if late {
            self.over += 1;
            if !self.in_stall {
                self.stalls += 1;
                if self.starts_ms.len() < MAX_STALL_STARTS {
                    self.starts_ms.push(sent_ns / 1_000_000);
                }
            }
        }
        self.in_stall = late;
    }
}

/// How long the consumer may wait for the last records after sending ends.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// A fixed-rate latency run.
#[derive(Debug, Clone)]
pub struct LatencySpec {
    /// Records per second.
    pub rate: u64,
    /// Measured time.
    pub duration: Duration,
    /// Time sent before recording starts.
    pub warmup: Duration,
    /// Bytes per record value (at least 16).
    pub value_len: usize,
    /// Producer linger.
    pub linger: Duration,
    /// Producer batch size in bytes.
    pub batch_bytes: usize,
    /// Acknowledgement level.
    pub acks: Acks,
    /// Whether the consumer verifies CRCs.
    pub verify_crc: bool,
    /// How the tailing consumer reads.
    pub tail_fetch: TailFetch,
}

/// What a latency run saw.
#[derive(Debug, Clone)]
pub struct LatencyRun {
    /// Send-to-receipt latency of the recorded records, in nanoseconds.
    pub latency: Histogram<u64>,
    /// How late the sender thread was against its schedule, nanoseconds.
    pub send_lag: Histogram<u64>,
    /// Records sent (warm-up included).
    pub sent: u64,
    /// Records received (warm-up included).
    pub received: u64,
    /// Recorded records whose latency exceeded [`STALL_NS`].
    pub records_over_stall: u64,
    /// Stalls: maximal runs of consecutively received recorded records each
    /// later than [`STALL_NS`] (one stall of the broker delays many
    /// records; it counts once).
    pub stalls: u64,
    /// When each stall's first record was due, ms from the run's start
    /// ([`StallCounter::starts_ms`]).
    pub stall_starts_ms: Vec<u64>,
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, MAX_NS, 3)?)
}

/// The W4 settings from the command line.
pub fn spec(bench: &Bench) -> LatencySpec {
    let o = &bench.opts;
    LatencySpec {
        rate: o.rate.max(1),
        duration: o.duration,
        warmup: o.warmup,
        value_len: o.value_len.unwrap_or(1024).max(16),
        linger: o.linger,
        batch_bytes: o.latency_batch_bytes,
        acks: o.acks.unwrap_or(Acks::Leader),
        verify_crc: o.verify_crc,
        tail_fetch: o.tail_fetch,
    }
}

/// Sends `spec.rate` records/s to partition 0 of `topic` and measures how
/// long each takes to reach a tailing consumer.
pub async fn run_latency(
    addr: SocketAddr,
    topic: &str,
    spec: &LatencySpec,
    label: &str,
) -> anyhow::Result<LatencyRun> {
    let total = (spec.rate as f64 * (spec.warmup + spec.duration).as_secs_f64()) as u64;
    let warm = (spec.rate as f64 * spec.warmup.as_secs_f64()) as u64;
    let base = Instant::now();

    let receipts = Receipts {
        hist: histogram()?,
        received: 0,
        stalls: StallCounter::default(),
        warm,
        base,
    };
    let mut consumer = Consumer::connect(ConsumerConfig {
        max_wait: Duration::from_millis(500),
        verify_crc: spec.verify_crc,
        fetch_stream: spec.tail_fetch == TailFetch::Stream,
        ..ConsumerConfig::new(addr.to_string())
    })
    .await?;
    consumer.assign(vec![(topic.to_owned(), 0)]).await?;
    let receiver = tokio::spawn(tail(consumer, receipts, total));

    let producer = Arc::new(Producer::new(ProducerConfig {
        acks: spec.acks,
        linger: spec.linger,
        batch_bytes: spec.batch_bytes.max(1),
        ..ProducerConfig::new(addr.to_string())
    }));
    // Learn the partition count before the clock starts.
    producer.partition_count(topic).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<DeliveryFuture>();
    let checker = tokio::spawn(async move {
        let mut acked = 0u64;
        while let Some(f) = rx.recv().await {
            f.await?;
            acked += 1;
        }
        anyhow::Ok(acked)
    });
    let sender = {
        let (producer, topic, handle) = (
            Arc::clone(&producer),
            topic.to_owned(),
            tokio::runtime::Handle::current(),
        );
        let (rate, value_len) = (spec.rate, spec.value_len);
        let bar = progress_bar(0, label);
        std::thread::spawn(move || -> anyhow::Result<Histogram<u64>> {
            // Sleep to the microsecond rather than the default 50 µs slack.
            let _ = nix::sys::prctl::set_timerslack(1);
            let mut lag = histogram()?;
            let mut value = vec![0u8; value_len];
            crate::XorShift::new(4).fill(&mut value);
            let start = Instant::now() + Duration::from_millis(10);
            let mut shown = false;
            for i in 0..total {
                let intended = start
                    + Duration::from_nanos(
                        (u128::from(i) * 1_000_000_000 / u128::from(rate)) as u64,
                    );
                let now = Instant::now();
                if intended > now {
                    std::thread::sleep(intended - now);
                }
                lag.record(intended.elapsed().as_nanos().max(1) as u64)?;
                let stamp = intended.duration_since(base).as_nanos() as u64;
                value
                    .get_mut(..8)
                    .context("short value")?
                    .copy_from_slice(&stamp.to_le_bytes());
                value
                    .get_mut(8..16)
                    .context("short value")?
                    .copy_from_slice(&i.to_le_bytes());
                let record = ProducerRecord {
                    topic: &topic,
                    partition: Some(0),
                    value: Some(&value),
                    ..Default::default()
                };
                let delivery = handle.block_on(producer.send_record(record))?;
                if tx.send(delivery).is_err() {
                    bail!("delivery checker stopped");
                }
                if i % rate == 0 {
                    if !shown && i >= 2 * rate {
                        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                        shown = true;
                    }
                    bar.set_message(format!("{i} records"));
                    bar.set_position(i * value_len as u64);
                }
            }
            bar.finish_and_clear();
            Ok(lag)
        })
    };
    let send_lag = tokio::task::spawn_blocking(move || sender.join())
        .await?
        .map_err(|_| anyhow::anyhow!("sender thread panicked"))??;
    producer.flush().await;
    let acked = checker.await??;
    let Receipts {
        hist: latency,
        received,
        stalls,
        ..
    } = tokio::time::timeout(DRAIN_LIMIT + DRAIN_LIMIT, receiver)
        .await
        .context("consumer did not finish")???;
    producer.close().await;
    if acked != total {
        bail!("{acked} of {total} records acknowledged");
    }
    Ok(LatencyRun {
        latency,
        send_lag,
        sent: total,
        received,
        records_over_stall: stalls.over,
        stalls: stalls.stalls,
        stall_starts_ms: stalls.starts_ms,
    })
}

/// What the tailing consumer has received so far.
struct Receipts {
    hist: Histogram<u64>,
    received: u64,
    stalls: StallCounter,
    /// Records with a sequence number below this are not recorded.
    warm: u64,
    /// The instant the values' timestamps count from.
    base: Instant,
}

impl Receipts {
    /// Records the latency of a record with `value`, received at `now_ns`.
    fn record(&mut self, value: &[u8], now_ns: u64) -> anyhow::Result<()> {
        let field = |at: usize| -> anyhow::Result<u64> {
            let bytes = value
                .get(at..at + 8)
                .context("value shorter than 16 bytes")?;
            Ok(u64::from_le_bytes(bytes.try_into()?))
        };
        if field(8)? >= self.warm {
            let sent = field(0)?;
            let ns = now_ns.saturating_sub(sent).max(1);
            self.hist.record(ns)?;
            self.stalls.record(ns, sent);
        }
        self.received += 1;
        Ok(())
    }
}

/// Tails through the client library's consumer until `total` records
/// arrived.
async fn tail(
    mut consumer: Consumer,
    mut receipts: Receipts,
    total: u64,
) -> anyhow::Result<Receipts> {
    while receipts.received < total {
        let records = tokio::time::timeout(DRAIN_LIMIT, consumer.poll())
            .await
            .context("consumer saw nothing for 30 s")??;
        let now = receipts.base.elapsed().as_nanos() as u64;
        for r in &records {
            receipts.record(r.value(), now)?;
        }
    }
    Ok(receipts)
}

/// A result row for a latency run that took `seconds` and `cpu`.
pub fn latency_result(
    bench: &Bench,
    id: &str,
    variant: &str,
    spec: &LatencySpec,
    run: &LatencyRun,
    produced_batch_bytes: u64,
    measured: (f64, super::broker_proc::CpuTimes),
) -> WorkloadResult {
    let moved = Moved {
        records: run.received,
        value_bytes: run.received * spec.value_len as u64,
        batch_bytes: produced_batch_bytes,
    };
    let mut r = WorkloadResult::new(
        id,
        variant,
        Default::default(),
        moved,
        measured.0,
        measured.1,
    );
    r.parameters.insert("rate".into(), json!(spec.rate));
    r.parameters
        .insert("duration_s".into(), json!(spec.duration.as_secs_f64()));
    r.parameters
        .insert("warmup_s".into(), json!(spec.warmup.as_secs_f64()));
    r.parameters
        .insert("value_len".into(), json!(spec.value_len));
    r.parameters
        .insert("linger_ms".into(), json!(spec.linger.as_secs_f64() * 1e3));
    r.parameters
        .insert("batch_bytes".into(), json!(spec.batch_bytes));
    r.parameters
        .insert("acks".into(), json!(acks_name(spec.acks)));
    r.parameters
        .insert("verify_crc".into(), json!(spec.verify_crc));
    r.parameters
        .insert("tail_fetch".into(), json!(spec.tail_fetch.name()));
    r.parameters
        .insert("fetch_path".into(), json!(bench.fetch_path()));
    r.latency = Some(Latency::from_histogram(&run.latency));
    let lag = Latency::from_histogram(&run.send_lag);
    r.detail("send_lag_p99_us", lag.p99_us);
    r.detail("send_lag_max_us", lag.max_us);
    r.detail("stalls_over_10ms", run.stalls);
    r.detail("records_over_10ms", run.records_over_stall);
    if !run.stall_starts_ms.is_empty() {
        // Where in the run they were: at its start, or spread through it.
        r.detail("stall_starts_ms", run.stall_starts_ms.clone());
    }
    if run.received > 0 {
        r.detail(
            "broker_cpu_us_per_record",
            measured.1.total() * 1e6 / run.received as f64,
        );
    }
    r
}

/// The write workloads (W1, W3) that ran earlier in this run and left dirty
/// pages behind, as `W1/W3`, if any.
fn after_writes(bench: &Bench) -> Option<String> {
    let ran: Vec<&str> = ["W1", "W3"]
        .into_iter()
        .filter(|id| bench.results.iter().any(|r| r.workload == *id))
        .collect();
    (!ran.is_empty()).then(|| ran.join("/"))
}

/// W4. Its variant is `tail` when it ran without W1 or W3 before it in
/// this run, and `tail after W1/W3` (or the one that ran) otherwise.
pub async fn w4(bench: &mut Bench) -> anyhow::Result<()> {
    let spec = spec(bench);
    let topic = bench.topic("w4");
    let addr = bench.addr()?;
    create_topic(addr, &topic, 1, None).await?;
    let addr = bench.leader(&topic).await?;
    let before = bench.counter("produce_bytes").await;
    let (run, secs, cpu) = measured(bench, run_latency(addr, &topic, &spec, "W4 latency")).await?;
    let produced = bench.counter("produce_bytes").await.saturating_sub(before);
    let variant = after_writes(bench).map_or("tail".to_owned(), |w| format!("tail after {w}"));
    let r = latency_result(bench, "W4", &variant, &spec, &run, produced, (secs, cpu));
    bench.results.push(r);
    bench.plots.push(PlotData::Latency {
        name: "w4-latency".into(),
        title: format!(
            "W4 end-to-end latency, {} × {} B records/s for {:.0} s",
            spec.rate,
            spec.value_len,
            spec.duration.as_secs_f64()
        ),
        series: vec![("W4".into(), run.latency)],
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_of_late_records_is_one_stall() {
        let mut c = StallCounter::default();
        let ms = 1_000_000;
        for (i, ns) in [
            ms,
            11 * ms,
            40 * ms,
            12 * ms,
            ms,
            10 * ms,
            15 * ms,
            ms,
            20 * ms,
        ]
        .into_iter()
        .enumerate()
        {
            c.record(ns, i as u64 * ms);
        }
        // 10 ms exactly is not a stall.
        assert_eq!((c.stalls, c.over), (3, 5));
        // Each stall's first record, by when it was due.
        assert_eq!(c.starts_ms, [1, 6, 8]);
    }
}
