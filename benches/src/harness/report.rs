//! Workload results: one JSON object per run, and a table.

use serde::Serialize;

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Latency {
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

/// The outcome of one workload run.
#[derive(Debug, Clone, Serialize)]
pub struct WorkloadResult {
    /// Workload id, such as `W2`.
    pub workload: String,
    /// What varied (`sendfile`, `copy`, …).
    pub variant: String,
    /// Parameters, as `name=value` pairs.
    pub parameters: Vec<(String, String)>,
    /// Records moved.
    pub records: u64,
    /// Bytes of record values moved.
    pub value_bytes: u64,
    /// Bytes of record batches moved (what the broker stores and sends).
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
}

/// Prints results as an aligned table.
pub fn print_table(results: &[WorkloadResult]) {
    println!(
        "{:<5} {:<10} {:>12} {:>12} {:>10} {:>9} {:>9} {:>12} {:>9} {:>9}",
        "id",
        "variant",
        "records/s",
        "MB/s",
        "seconds",
        "brk usr",
        "brk sys",
        "brk s/GiB",
        "p50 us",
        "p99 us"
    );
    for r in results {
        let (p50, p99) = r.latency.as_ref().map_or(("-".into(), "-".into()), |l| {
            (format!("{:.0}", l.p50_us), format!("{:.0}", l.p99_us))
        });
        println!(
            "{:<5} {:<10} {:>12.0} {:>12.1} {:>10.3} {:>9.3} {:>9.3} {:>12.3} {:>9} {:>9}",
            r.workload,
            r.variant,
            r.records_per_sec,
            r.mb_per_sec,
            r.seconds,
            r.broker_user_s,
            r.broker_sys_s,
            r.broker_cpu_s_per_gib,
            p50,
            p99
        );
    }
}
