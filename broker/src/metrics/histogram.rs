//! A latency histogram of fixed buckets, lock-free to observe.
//!
//! `prometheus-client`'s `Histogram` takes a write lock on every
//! observation; request and fsync latencies are observed on the hot path, so
//! they use this one instead: one relaxed `fetch_add` per bucket, count and
//! sum. The exposition ([`crate::metrics::collector`]) turns it into a
//! Prometheus histogram at scrape time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in microseconds (the `+Inf` bucket is
/// implied): 50 µs to 30 s.
pub const BOUNDS_MICROS: [u64; 18] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000, 30_000_000,
];

/// Counts of observations per bucket (not cumulative), their number and
/// their sum. Relaxed atomics: each field is exact, a read of all of them
/// is not a snapshot (a scrape may see the count one ahead of the buckets).
#[derive(Debug)]
pub struct Histogram {
    buckets: [AtomicU64; BOUNDS_MICROS.len() + 1],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

/// A histogram's values as read at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// `(upper bound in seconds, observations in this bucket alone)`, ending
    /// with `+Inf` — not cumulative: that is the form
    /// `prometheus-client`'s `encode_histogram` takes (it writes the
    /// cumulative `le` series itself).
    pub buckets: Vec<(f64, u64)>,
    /// Number of observations.
    pub count: u64,
    /// Sum of the observations in seconds.
    pub sum_seconds: f64,
}

impl Histogram {
    /// An empty histogram (usable in a `static`).
    pub const fn new() -> Self {
        Histogram {
            buckets: [const { AtomicU64::new(0) }; BOUNDS_MICROS.len() + 1],
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    /// Records one observation. No lock, no allocation.
    pub fn observe(&self, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = BOUNDS_MICROS.partition_point(|&b| b < micros);
        if let Some(b) = self.buckets.get(i) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Number of observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The buckets (not cumulative), count and sum.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut total = 0;
        let mut buckets = Vec::with_capacity(self.buckets.len());
        for (i, b) in self.buckets.iter().enumerate() {
            let n = b.load(Ordering::Relaxed);
            total += n;
            let bound = BOUNDS_MICROS
                .get(i)
                .map_or(f64::INFINITY, |&m| m as f64 / 1e6);
            buckets.push((bound, n));
        }
        HistogramSnapshot {
            buckets,
            // Never below the buckets' total, so the exposition stays valid.
            count: self.count.load(Ordering::Relaxed).max(total),
            sum_seconds: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let h = Histogram::new();
        h.observe(Duration::from_micros(50)); // le 0.00005
        h.observe(Duration::from_micros(51)); // le 0.0001
        h.observe(Duration::from_millis(3)); // le 0.005
        h.observe(Duration::from_secs(60)); // +Inf
        let s = h.snapshot();
        assert_eq!(s.count, 4);
        assert_eq!(s.buckets.first(), Some(&(0.00005, 1)));
        assert_eq!(s.buckets.get(1), Some(&(0.0001, 1)));
        assert_eq!(s.buckets.get(4), Some(&(0.001, 0)));
        assert_eq!(s.buckets.get(6), Some(&(0.005, 1)));
        assert_eq!(s.buckets.get(17), Some(&(30.0, 0)));
        assert_eq!(s.buckets.last(), Some(&(f64::INFINITY, 1)));
        assert_eq!(s.buckets.iter().map(|b| b.1).sum::<u64>(), 4);
        assert!(
            (s.sum_seconds - 60.003101).abs() < 1e-9,
            "{}",
            s.sum_seconds
        );
    }
}
