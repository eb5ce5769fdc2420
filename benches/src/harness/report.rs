//! Workload results: one JSON object per run, and tables for people.

use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{Map, Value};

use super::broker_proc::CpuTimes;

/// Latency percentiles in microseconds, from an HDR histogram of
/// nanoseconds (3 significant digits).
#[derive(Debug, Clone, Serialize, Default)]
pub struct Latency {
    /// Samples recorded.
    pub count: u64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest.
    pub max_us: f64,
}

impl Latency {
    /// Percentiles of a histogram whose values are nanoseconds.
    pub fn from_histogram(h: &Histogram<u64>) -> Self {
        let us = |q: f64| h.value_at_quantile(q) as f64 / 1e3;
        Latency {
            count: h.len(),
            p50_us: us(0.5),
            p90_us: us(0.9),
            p99_us: us(0.99),
            p999_us: us(0.999),
            max_us: h.max() as f64 / 1e3,
        }
    }
}

/// What a run moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Moved {
    /// Records.
    pub records: u64,
    /// Bytes of record values.
    pub value_bytes: u64,
    /// Bytes of record batches (what the broker stores and sends).
    pub batch_bytes: u64,
}

impl Moved {
    /// The sum of two amounts.
    pub fn plus(self, other: Moved) -> Moved {
        Moved {
            records: self.records + other.records,
            value_bytes: self.value_bytes + other.value_bytes,
            batch_bytes: self.batch_bytes + other.batch_bytes,
        }
    }
}

/// A goal from `WORKLOADS.md` beside what was measured.
#[derive(Debug, Clone, Serialize)]
pub struct Goal {
    /// The goal as written.
    pub goal: String,
    /// The measured figure it is judged on.
    pub measured: String,
    /// Met, missed, or `None` when this run cannot tell.
    pub met: Option<bool>,
}

/// The outcome of one workload run.
#[derive(Debug, Clone, Serialize)]
pub struct WorkloadResult {
    /// Workload id, such as `W2`.
    pub workload: String,
    /// What varied (`sendfile`, `copy`, `produce`, …).
    pub variant: String,
    /// Parameters.
    pub parameters: Map<String, Value>,
    /// Records moved.
    pub records: u64,
    /// Bytes of record values moved.
    pub value_bytes: u64,
    /// Bytes of record batches moved.
    pub batch_bytes: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Records per second.
    pub records_per_sec: f64,
    /// Megabytes (10^6 bytes) of record values per second.
    pub mb_per_sec: f64,
    /// Broker user CPU seconds during the run.
    pub broker_user_s: f64,
    /// Broker system CPU seconds during the run.
    pub broker_sys_s: f64,
    /// Broker CPU seconds per GiB of record batches moved.
    pub broker_cpu_s_per_gib: f64,
    /// End-to-end latency, where measured.
    pub latency: Option<Latency>,
    /// Workload-specific figures (W7's baseline, the cold reader, …).
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub details: Map<String, Value>,
    /// Bytes of record values moved in each 100 ms interval.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bytes_per_100ms: Vec<u64>,
    /// The goals judged on this result and whether each was met.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub goals: Vec<Goal>,
}

impl WorkloadResult {
    /// A result from what a run moved in `seconds` and the broker CPU it
    /// used.
    pub fn new(
        workload: &str,
        variant: &str,
        parameters: Map<String, Value>,
        moved: Moved,
        seconds: f64,
        cpu: CpuTimes,
    ) -> Self {
        let gib = moved.batch_bytes as f64 / f64::from(1u32 << 30);
        let rate = |n: u64| {
            if seconds > 0.0 {
                n as f64 / seconds
            } else {
                0.0
            }
        };
        WorkloadResult {
            workload: workload.to_owned(),
            variant: variant.to_owned(),
            parameters,
            records: moved.records,
            value_bytes: moved.value_bytes,
            batch_bytes: moved.batch_bytes,
            seconds,
            records_per_sec: rate(moved.records),
            mb_per_sec: rate(moved.value_bytes) / 1e6,
            broker_user_s: cpu.user,
            broker_sys_s: cpu.sys,
            broker_cpu_s_per_gib: if gib > 0.0 { cpu.total() / gib } else { 0.0 },
            latency: None,
            details: Map::new(),
            bytes_per_100ms: Vec::new(),
            goals: Vec::new(),
        }
    }

    /// Adds a workload-specific figure.
    pub fn detail(&mut self, name: &str, value: impl Into<Value>) {
        self.details.insert(name.to_owned(), value.into());
    }
}

/// Builds a parameter map from `name, value` pairs.
pub fn params(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// Prints, for the results of runs with a `compression` parameter, each
/// codec side by side: compression ratio (value bytes / batch bytes), MB/s
/// of values, and broker CPU seconds per GiB of values and of batches.
pub fn print_compression(results: &[WorkloadResult]) {
    println!(
        "{:<4} {:<10} {:<7} {:<7} {:>7} {:>9} {:>13} {:>13}",
        "id", "variant", "codec", "values", "ratio", "MB/s", "s/GiB values", "s/GiB stored"
    );
    for r in results {
        let param = |k: &str| {
            r.parameters
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("-")
                .to_owned()
        };
        if !["W1", "W2", "W3"].contains(&r.workload.as_str()) {
            continue;
        }
        let gib = |b: u64| b as f64 / f64::from(1u32 << 30);
        let cpu = r.broker_user_s + r.broker_sys_s;
        let per = |b: u64| if b > 0 { cpu / gib(b) } else { 0.0 };
        let ratio = if r.batch_bytes > 0 {
            r.value_bytes as f64 / r.batch_bytes as f64
        } else {
            0.0
        };
        println!(
            "{:<4} {:<10} {:<7} {:<7} {:>7.2} {:>9.1} {:>13.3} {:>13.3}",
            r.workload,
            r.variant,
            param("compression"),
            param("value_kind"),
            ratio,
            r.mb_per_sec,
            per(r.value_bytes),
            per(r.batch_bytes),
        );
    }
}

/// Prints results as an aligned table.
pub fn print_table(results: &[WorkloadResult]) {
    println!(
        "{:<4} {:<16} {:>11} {:>9} {:>8} {:>8} {:>8} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7}",
        "id",
        "variant",
        "records/s",
        "MB/s",
        "seconds",
        "brk usr",
        "brk sys",
        "s/GiB",
        "p50 us",
        "p90 us",
        "p99 us",
        "p99.9 us",
        "max us",
        "% base"
    );
    for r in results {
        let l = r.latency.as_ref();
        let f = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0}"));
        println!(
            "{:<4} {:<16} {:>11.0} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>9.3} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7}",
            r.workload,
            r.variant,
            r.records_per_sec,
            r.mb_per_sec,
            r.seconds,
            r.broker_user_s,
            r.broker_sys_s,
            r.broker_cpu_s_per_gib,
            f(l.map(|l| l.p50_us)),
            f(l.map(|l| l.p90_us)),
            f(l.map(|l| l.p99_us)),
            f(l.map(|l| l.p999_us)),
            f(l.map(|l| l.max_us)),
            r.details
                .get("of_baseline")
                .and_then(serde_json::Value::as_f64)
                .map_or("-".to_owned(), |v| format!("{:.0}%", 100.0 * v)),
        );
    }
}

/// Prints each result's goal, the measured figure and the verdict.
pub fn print_goals(results: &[WorkloadResult]) {
    let with_goal: Vec<_> = results
        .iter()
        .flat_map(|r| r.goals.iter().map(move |g| (r, g)))
        .collect();
    if with_goal.is_empty() {
        return;
    }
    println!();
    println!(
        "{:<4} {:<16} {:<7} {:<62} measured",
        "id", "variant", "verdict", "goal"
    );
    for (r, g) in with_goal {
        let verdict = match g.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "n/a",
        };
        println!(
            "{:<4} {:<16} {:<7} {:<62} {}",
            r.workload, r.variant, verdict, g.goal, g.measured
        );
    }
}

/// Prints the W7 tail-latency comparison and any other details.
pub fn print_details(results: &[WorkloadResult]) {
    for r in results.iter().filter(|r| !r.details.is_empty()) {
        let text: Vec<String> = r
            .details
            .iter()
            .map(|(k, v)| match v.as_f64() {
                Some(f) if f.fract() != 0.0 => format!("{k}={f:.3}"),
                _ => format!("{k}={v}"),
            })
            .collect();
        println!("{} {}: {}", r.workload, r.variant, text.join(" "));
    }
}
