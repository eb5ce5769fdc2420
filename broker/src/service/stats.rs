//! Broker counters, readable through the Stats API.

use std::sync::atomic::{AtomicU64, Ordering};

use sluice_protocol::wire::stats::{Counter, StatsResponse};

/// Counters since the broker started. Relaxed atomics: each is exact, the set
/// is not a snapshot.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections accepted.
    pub connections_accepted: AtomicU64,
    /// Connections closed at once because `max_connections` were open.
    pub connections_rejected: AtomicU64,
    /// Connections currently open.
    pub connections_open: AtomicU64,
    /// Requests served, all APIs.
    pub requests: AtomicU64,
    /// Requests answered with a frame-level error or dropped as malformed.
    pub bad_requests: AtomicU64,
    /// Record bytes appended by produce requests.
    pub produce_bytes: AtomicU64,
    /// Record bytes sent by fetches through `sendfile(2)`.
    pub fetch_bytes_sendfile: AtomicU64,
    /// Record bytes sent by fetches through the copy path.
    pub fetch_bytes_copy: AtomicU64,
    /// Fetch ranges that were not in the page cache and were read in off
    /// the reactor first.
    pub cold_reads: AtomicU64,
    /// Partitions that recovery opened offline at startup because flushed
    /// data is damaged (nothing was removed; see `docs/durability.md`).
    pub partitions_offline_at_open: AtomicU64,
    /// Sends of response bytes: one per batch of pipelined responses that
    /// leave together, one per fetch response.
    pub response_sends: AtomicU64,
}

impl Stats {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The counters as a Stats response.
    pub fn snapshot(&self) -> StatsResponse {
        let c = |name: &str, v: &AtomicU64| Counter {
            name: name.to_owned(),
            value: v.load(Ordering::Relaxed),
        };
        StatsResponse {
            counters: vec![
                c("connections_accepted", &self.connections_accepted),
                c("connections_rejected", &self.connections_rejected),
                c("connections_open", &self.connections_open),
                c("requests", &self.requests),
                c("bad_requests", &self.bad_requests),
                c("produce_bytes", &self.produce_bytes),
                c("fetch_bytes_sendfile", &self.fetch_bytes_sendfile),
                c("fetch_bytes_copy", &self.fetch_bytes_copy),
                c("cold_reads", &self.cold_reads),
                c(
                    "partitions_offline_at_open",
                    &self.partitions_offline_at_open,
                ),
                c("response_sends", &self.response_sends),
            ],
        }
    }
}
