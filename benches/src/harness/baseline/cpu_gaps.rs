//! The `cpu gaps` row: stretches in which a CPU ran nothing of a thread
//! pinned to it.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;

use super::{CPU_GAPS, ID};
use crate::harness::broker_proc::CpuTimes;
use crate::harness::report::{Moved, WorkloadResult, params};

/// How long each CPU is watched for gaps.
pub const CPU_GAP_TIME: Duration = Duration::from_secs(3);

/// The shortest stretch between two clock readings counted as a gap (a
/// reading takes tens of nanoseconds).
pub const CPU_GAP_MIN: Duration = Duration::from_micros(500);

/// What one CPU's watcher saw.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuGaps {
    /// The CPU watched.
    pub cpu: usize,
    /// Seconds watched.
    pub seconds: f64,
    /// Gaps of at least [`CPU_GAP_MIN`].
    pub gaps: u64,
    /// Their total length, in seconds.
    pub gap_seconds: f64,
    /// The longest, in µs.
    pub longest_us: f64,
}

/// Watches each CPU this process may run on for `time` at once (see the
/// module docs); one entry per CPU.
pub fn cpu_gaps(time: Duration) -> anyhow::Result<Vec<CpuGaps>> {
    use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
    use nix::unistd::Pid;

    let allowed = sched_getaffinity(Pid::from_raw(0)).context("sched_getaffinity")?;
    let cpus: Vec<usize> = (0..CpuSet::count())
        .filter(|&c| allowed.is_set(c).unwrap_or(false))
        .collect();
    let watchers: Vec<_> = cpus
        .into_iter()
        .map(|cpu| {
            std::thread::spawn(move || -> anyhow::Result<CpuGaps> {
                let mut only = CpuSet::new();
                only.set(cpu)?;
                sched_setaffinity(Pid::from_raw(0), &only).context("sched_setaffinity")?;
                let mut seen = CpuGaps {
                    cpu,
                    ..CpuGaps::default()
                };
                let started = Instant::now();
                let mut last = started;
                loop {
                    let now = Instant::now();
                    let gap = now.duration_since(last);
                    if gap >= CPU_GAP_MIN {
                        seen.gaps += 1;
                        seen.gap_seconds += gap.as_secs_f64();
                        seen.longest_us = seen.longest_us.max(gap.as_secs_f64() * 1e6);
                    }
                    last = now;
                    if now.duration_since(started) >= time {
                        seen.seconds = now.duration_since(started).as_secs_f64();
                        return Ok(seen);
                    }
                }
            })
        })
        .collect();
    watchers
        .into_iter()
        .map(|w| {
            w.join()
                .map_err(|_| anyhow::anyhow!("CPU watcher panicked"))?
        })
        .collect()
}

pub(super) fn cpu_gaps_row(all: &[CpuGaps]) -> WorkloadResult {
    let seconds = all.iter().map(|g| g.seconds).fold(0.0, f64::max);
    let mut r = WorkloadResult::new(
        ID,
        CPU_GAPS,
        params(&[
            ("cpus", json!(all.len())),
            ("min_gap_us", json!(CPU_GAP_MIN.as_micros() as u64)),
        ]),
        Moved::default(),
        seconds,
        CpuTimes::default(),
    );
    let watched: f64 = all.iter().map(|g| g.seconds).sum();
    let lost: f64 = all.iter().map(|g| g.gap_seconds).sum();
    let gaps: u64 = all.iter().map(|g| g.gaps).sum();
    r.detail(
        "gaps_per_cpu_second",
        gaps as f64 / watched.max(f64::MIN_POSITIVE),
    );
    r.detail("lost_share", lost / watched.max(f64::MIN_POSITIVE));
    r.detail(
        "longest_gap_us",
        all.iter().map(|g| g.longest_us).fold(0.0, f64::max),
    );
    for g in all {
        r.detail(&format!("cpu{}_gaps", g.cpu), g.gaps);
        r.detail(&format!("cpu{}_longest_gap_us", g.cpu), g.longest_us);
    }
    r
}
