//! Broker counters, readable through the Stats API.

use std::sync::atomic::{AtomicU64, Ordering};

use sluice_protocol::wire::stats::{Counter, StatsResponse};
use sluice_protocol::wire::{ApiKey, ErrorCode};

use crate::metrics::histogram::Histogram;

/// Slots of per-API counters: one per [`ApiKey`], and a last one for frames
/// whose API is unknown or could not be read.
pub const API_SLOTS: usize = ApiKey::ALL.len() + 1;
/// Slots of per-API counters of the Kafka listener: one per served Kafka
/// API key (in `sluice_protocol::kafka::ApiKey::ALL` order), and a last
/// one for keys it does not serve.
pub const KAFKA_API_SLOTS: usize = sluice_protocol::kafka::ApiKey::ALL.len() + 1;
/// Slots of error counters per API: one per error code number below this;
/// larger numbers share the last slot.
pub const ERROR_SLOTS: usize = 64;

/// Requests, errors and latency of one API.
#[derive(Debug)]
pub struct ApiStats {
    /// Requests received (decoded or not).
    pub requests: AtomicU64,
    /// Requests answered with a whole-request error, by error code number.
    pub errors: ErrorCounts,
    /// Time from a whole frame read to its response written (a fetch's
    /// long-poll wait included).
    pub latency: Histogram,
}

/// One [`ApiStats`] per API slot (an array longer than the standard
/// library's `Default` covers).
#[derive(Debug)]
pub struct PerApi<const N: usize>(pub [ApiStats; N]);

impl<const N: usize> Default for PerApi<N> {
    fn default() -> Self {
        PerApi(std::array::from_fn(|_| ApiStats::default()))
    }
}

impl<const N: usize> std::ops::Deref for PerApi<N> {
    type Target = [ApiStats; N];
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Default for ApiStats {
    fn default() -> Self {
        ApiStats {
            requests: AtomicU64::new(0),
            errors: ErrorCounts::default(),
            latency: Histogram::new(),
        }
    }
}

impl ApiStats {
    /// The slot of an API key number: its index in [`ApiKey::ALL`], or
    /// [`API_SLOTS`] - 1 when unknown.
    pub fn slot(api_key: Option<u16>) -> usize {
        api_key
            .and_then(|n| ApiKey::ALL.iter().position(|k| *k as u16 == n))
            .unwrap_or(API_SLOTS - 1)
    }

    /// Counts a whole-request error.
    pub fn error(&self, code: ErrorCode) {
        self.errors.count(code);
    }
}

/// Counters by error code number: one per number below [`ERROR_SLOTS`];
/// larger numbers share the last.
#[derive(Debug)]
pub struct ErrorCounts([AtomicU64; ERROR_SLOTS]);

impl Default for ErrorCounts {
    fn default() -> Self {
        ErrorCounts([const { AtomicU64::new(0) }; ERROR_SLOTS])
    }
}

impl std::ops::Deref for ErrorCounts {
    type Target = [AtomicU64; ERROR_SLOTS];

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl ErrorCounts {
    /// Each error code counted at least once, with its count (the last
    /// slot under the code of its number).
    pub fn counted(&self) -> impl Iterator<Item = (ErrorCode, u64)> + '_ {
        self.0.iter().enumerate().filter_map(|(i, c)| {
            let n = c.load(Ordering::Relaxed);
            (n > 0).then(|| (ErrorCode::from_u16(i as u16), n))
        })
    }

    /// Adds one to the counter of `code`.
    pub fn count(&self, code: ErrorCode) {
        let i = usize::from(u16::from(code)).min(ERROR_SLOTS - 1);
        if let Some(c) = self.0.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Counters since the broker started. Relaxed atomics: each is exact, the set
/// is not a snapshot.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections accepted.
    pub connections_accepted: AtomicU64,
    /// Connections closed at once because `max_connections` were open.
    pub connections_rejected: AtomicU64,
    /// Connections closed to seat a new one while `max_connections` were
    /// open, because they had been silent past their grace.
    pub connections_displaced: AtomicU64,
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
    /// Bytes of the cold ranges counted in `cold_reads`.
    pub cold_bytes: AtomicU64,
    /// Fetch responses sent from a blocking-pool thread instead of the
    /// reactor (catch-up reads while other connections are open).
    pub offloaded_sends: AtomicU64,
    /// Per API (slot [`ApiStats::slot`]): requests, errors, latency.
    pub apis: [ApiStats; API_SLOTS],
    /// Microseconds the broker took to open its data directory (recovery
    /// included) at startup.
    pub recovery_micros: AtomicU64,
    /// When these counters were created (the broker's data directory open).
    pub started: Started,
    /// Per Kafka API (slot [`KAFKA_API_SLOTS`]): requests, latency, and
    /// errors by Kafka error code number (35 UNSUPPORTED_VERSION: API or
    /// version not served; 42 INVALID_REQUEST: the connection was closed
    /// instead of an answer).
    pub kafka_apis: PerApi<KAFKA_API_SLOTS>,
    /// Partitions of produce requests (either protocol) whose records the
    /// service did not append, or appended but could not make as durable
    /// as asked, by error code number: a full disk shows here while whole
    /// requests still succeed.
    pub produce_partition_errors: ErrorCounts,
}

/// An instant that defaults to the moment it is created.
#[derive(Debug, Clone, Copy)]
pub struct Started(pub std::time::Instant);

impl Default for Started {
    fn default() -> Self {
        Started(std::time::Instant::now())
    }
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
                c("cold_bytes", &self.cold_bytes),
                c("response_sends", &self.response_sends),
                c("offloaded_sends", &self.offloaded_sends),
                c("connections_displaced", &self.connections_displaced),
            ],
        }
    }
}
