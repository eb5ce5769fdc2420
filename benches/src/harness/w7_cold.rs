//! W7: isolation of tail latency from cold reads. A separate topic of
//! `--cold-bytes` (4 GiB by default; less, with a warning, when the disk is
//! short) is produced, its segment files are `fdatasync`ed and dropped from
//! the page cache with `posix_fadvise(DONTNEED)`. Then W4 runs twice: alone
//! (the baseline) and while a lagging consumer reads the cold topic from
//! offset 0 as fast as it can (dropping it from the cache again after each
//! pass, so that it stays cold for the whole run), on a thread and runtime
//! of its own like another client process. The result is the second run,
//! with the baseline's percentiles and the p99 ratio beside it.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use anyhow::Context;
use nix::fcntl::{PosixFadviseAdvice, posix_fadvise};
use serde_json::json;
use sluice_protocol::wire::produce::Acks;

use super::bench::{Bench, PlotData, measured};
use super::meter::{Meter, Sampler};
use super::options::Params;
use super::report::Latency;
use super::w4_latency::{latency_result, run_latency, spec};
use super::workloads::{consume, create_topic, produce};

/// Free space left on the disk after the cold log is written.
const DISK_MARGIN: u64 = 2 << 30;

/// Bytes free for an unprivileged writer on the file system holding `dir`.
fn free_bytes(dir: &Path) -> anyhow::Result<u64> {
    let mut probe = dir;
    while !probe.exists() {
        probe = probe.parent().context("no existing parent directory")?;
    }
    let st = nix::sys::statvfs::statvfs(probe)?;
    Ok(st.blocks_available() as u64 * st.fragment_size() as u64)
}

/// `wanted` bytes, or less if the disk holding `dir` is short.
fn fit_to_disk(dir: Option<&Path>, wanted: u64) -> u64 {
    let Some(free) = dir.and_then(|d| free_bytes(d).ok()) else {
        return wanted;
    };
    let room = free.saturating_sub(DISK_MARGIN);
    if room >= wanted + wanted / 20 {
        return wanted;
    }
    let scaled = (room / 10 * 8) & !((1 << 20) - 1);
    eprintln!(
        "warning: W7 wants {} MiB of cold log but the disk has {} MiB free; using {} MiB",
        wanted >> 20,
        free >> 20,
        scaled >> 20
    );
    scaled
}

/// The page cache size in bytes, from `/proc/meminfo`.
fn page_cache_bytes() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("Cached:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// Flushes every segment file of `partition_dir` and drops its pages from
/// the page cache. Returns the bytes of segment files.
pub fn drop_from_cache(partition_dir: &Path) -> anyhow::Result<u64> {
    let mut bytes = 0;
    for entry in std::fs::read_dir(partition_dir)
        .with_context(|| format!("listing {}", partition_dir.display()))?
    {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "log") {
            continue;
        }
        let file = std::fs::File::open(&path)?;
        // Dirty pages cannot be dropped: write them back first.
        file.sync_data()?;
        posix_fadvise(
            file.as_raw_fd(),
            0,
            0,
            PosixFadviseAdvice::POSIX_FADV_DONTNEED,
        )?;
        bytes += file.metadata()?.len();
    }
    Ok(bytes)
}

/// Reads the whole cold log, drops it from the cache again and starts
/// over, until aborted: the log stays cold for the whole latency run.
async fn cold_reader(
    addr: std::net::SocketAddr,
    topic: String,
    p: Params,
    meter: Meter,
    dir: Option<PathBuf>,
    passes: Arc<AtomicU32>,
) -> anyhow::Result<()> {
    loop {
        consume(addr, &topic, &[(0, p.records)], &p, &meter).await?;
        passes.fetch_add(1, Ordering::Relaxed);
        if let Some(dir) = &dir {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || drop_from_cache(&dir)).await??;
        }
    }
}

/// The lagging reader, on a thread and tokio runtime of its own, as another
/// client process would be: sharing the harness's runtime, its turns
/// (walking an 8 MiB fetch response) would hold up the W4 producer's and
/// consumer's tasks on the same worker, and W7 would measure the harness
/// rather than the broker.
struct ColdReader {
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<anyhow::Result<()>>,
}

impl ColdReader {
    fn start(
        reader: impl std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    ) -> anyhow::Result<Self> {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("w7-cold-reader".into())
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::select! {
                        r = reader => r,
                        _ = stopped => Ok(()),
                    }
                })
            })?;
        Ok(Self { stop, thread })
    }

    /// Stops the reader (if it is still reading) and returns its error, if
    /// it failed.
    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        let thread = self.thread;
        tokio::task::spawn_blocking(move || thread.join())
            .await?
            .map_err(|_| anyhow::anyhow!("the cold reader's thread panicked"))?
    }
}

/// W7.
pub async fn w7(bench: &mut Bench) -> anyhow::Result<()> {
    let spec = spec(bench);
    let addr = bench.addr()?;
    let wanted = bench.opts.cold_bytes;
    let cold_bytes = fit_to_disk(bench.data_dir(), wanted);

    // The cold log: 1 KiB records, whatever --records and --value-len say.
    let mut p = bench.opts.params(0, 1024, Acks::Leader);
    p.value_len = 1024;
    p.acks = Acks::Leader;
    // The lagging reader only walks the batches: what is measured is the
    // broker's isolation, not the bench process's CRC work on 2 cores.
    p.verify_crc = false;
    p.records = (cold_bytes / p.value_len as u64).max(1);
    let cold_topic = bench.topic("w7-cold");
    create_topic(addr, &cold_topic, 1, None).await?;
    let meter = Meter::new();
    let sampler = Sampler::start(&meter, p.value_bytes(), "W7 cold log");
    produce(addr, &cold_topic, &[(0, p.records)], &p, 7, &meter).await?;
    sampler.finish().await;

    let partition_dir = bench.data_dir().map(|d| d.join(format!("{cold_topic}-0")));
    let drop_cache = |dir: &Option<PathBuf>| -> anyhow::Result<Option<(u64, u64)>> {
        let Some(dir) = dir else {
            eprintln!(
                "warning: W7 does not know the broker's data directory; the cold log may be warm"
            );
            return Ok(None);
        };
        let before = page_cache_bytes();
        let files = drop_from_cache(dir)?;
        Ok(Some((files, before.saturating_sub(page_cache_bytes()))))
    };
    let first_drop = drop_cache(&partition_dir)?;

    // Baseline: W4 alone.
    let base_topic = bench.topic("w7-base");
    create_topic(addr, &base_topic, 1, None).await?;
    let (base, _, _) =
        measured(bench, run_latency(addr, &base_topic, &spec, "W7 baseline")).await?;

    // W4 again, with the lagging consumer reading the cold log.
    drop_cache(&partition_dir)?;
    let tail_topic = bench.topic("w7-tail");
    create_topic(addr, &tail_topic, 1, None).await?;
    let cold_reads = bench.counter("cold_reads").await;
    let produced = bench.counter("produce_bytes").await;
    let cold_meter = Meter::new();
    let passes = Arc::new(AtomicU32::new(0));
    let reader = ColdReader::start(cold_reader(
        addr,
        cold_topic.clone(),
        p.clone(),
        cold_meter.clone(),
        partition_dir.clone(),
        Arc::clone(&passes),
    ))?;
    let started = Instant::now();
    let (run, secs, cpu) =
        measured(bench, run_latency(addr, &tail_topic, &spec, "W7 cold")).await?;
    let read_for = started.elapsed();
    let cold_read = cold_meter.get();
    reader.stop().await?;
    let passes = f64::from(passes.load(Ordering::Relaxed)) + {
        let whole = p.value_bytes().max(1) as f64;
        (cold_read as f64 % whole) / whole
    };
    let cold_reads = bench.counter("cold_reads").await.saturating_sub(cold_reads);
    let produced = bench
        .counter("produce_bytes")
        .await
        .saturating_sub(produced);

    let mut r = latency_result(bench, "W7", "tail+cold", &spec, &run, produced, (secs, cpu));
    let b = Latency::from_histogram(&base.latency);
    let with = Latency::from_histogram(&run.latency);
    r.parameters.insert("cold_bytes".into(), json!(cold_bytes));
    r.parameters
        .insert("cold_bytes_requested".into(), json!(wanted));
    r.detail("baseline_p50_us", b.p50_us);
    r.detail("baseline_p99_us", b.p99_us);
    r.detail("baseline_p999_us", b.p999_us);
    r.detail("baseline_max_us", b.max_us);
    r.detail("p99_ratio", with.p99_us / b.p99_us.max(f64::MIN_POSITIVE));
    r.detail("cold_read_mb", cold_read as f64 / 1e6);
    r.detail(
        "cold_read_mb_per_sec",
        cold_read as f64 / 1e6 / read_for.as_secs_f64(),
    );
    r.detail("cold_read_passes", passes);
    r.detail("broker_cold_reads", cold_reads);
    if let Some((files, dropped)) = first_drop {
        r.detail("cold_segment_mib", files >> 20);
        r.detail("page_cache_dropped_mib", dropped >> 20);
    }
    bench.results.push(r);
    bench.plots.push(PlotData::Latency {
        name: "w7-latency".into(),
        title: format!(
            "W7: W4 latency with and without a reader of {} MiB of cold log",
            cold_bytes >> 20
        ),
        series: vec![
            ("W4 alone".into(), base.latency),
            ("with cold reader".into(), run.latency),
        ],
    });
    Ok(())
}
