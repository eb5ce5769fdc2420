//! Counting bytes as a workload moves them: a shared [`Meter`], and a
//! [`Sampler`] that reads it every 100 ms into a throughput series and
//! drives a progress bar on stderr.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Interval between throughput samples.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

/// Runs shorter than this show no progress bar.
const QUIET_FOR: Duration = Duration::from_secs(2);

/// Bytes of record values moved so far; cheap to clone and share between
/// tasks.
#[derive(Debug, Clone, Default)]
pub struct Meter(Arc<AtomicU64>);

impl Meter {
    /// A meter at zero.
    pub fn new() -> Self {
        Meter::default()
    }

    /// Counts `n` more bytes.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Bytes counted so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Samples a [`Meter`] every [`SAMPLE_INTERVAL`] until stopped.
#[derive(Debug)]
pub struct Sampler {
    task: tokio::task::JoinHandle<Vec<u64>>,
    stop: Arc<tokio::sync::Notify>,
}

impl Sampler {
    /// Starts sampling `meter`, whose run will count about `total` bytes
    /// (0 if unknown); `label` names the progress bar, which appears on a
    /// terminal once the run has lasted a couple of seconds.
    pub fn start(meter: &Meter, total: u64, label: &str) -> Self {
        let meter = meter.clone();
        let stop = Arc::new(tokio::sync::Notify::new());
        let stopped = Arc::clone(&stop);
        let bar = progress_bar(total, label);
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let mut tick = tokio::time::interval(SAMPLE_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            let mut series = Vec::new();
            let mut last = meter.get();
            let mut shown = false;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = stopped.notified() => break,
                }
                let now = meter.get();
                series.push(now - last);
                last = now;
                if !shown && started.elapsed() >= QUIET_FOR {
                    bar.set_draw_target(ProgressDrawTarget::stderr());
                    shown = true;
                }
                bar.set_position(now);
            }
            bar.finish_and_clear();
            series
        });
        Sampler { task, stop }
    }

    /// Stops sampling; returns the bytes counted in each interval.
    pub async fn finish(self) -> Vec<u64> {
        self.stop.notify_one();
        self.task.await.unwrap_or_default()
    }
}

/// A progress bar, hidden until shown; counts bytes when `total` is known.
pub fn progress_bar(total: u64, label: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
    let template = if total > 0 {
        "{prefix:>12} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
    } else {
        "{prefix:>12} [{elapsed_precise}] {bytes} {bytes_per_sec}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_prefix(label.to_owned());
    bar
}

/// A series of bytes per [`SAMPLE_INTERVAL`] as MB/s (10^6 bytes).
pub fn series_mb_per_sec(series: &[u64]) -> Vec<f64> {
    let secs = SAMPLE_INTERVAL.as_secs_f64();
    series.iter().map(|&b| b as f64 / 1e6 / secs).collect()
}
