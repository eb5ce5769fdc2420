//! Settings of a harness run: what the command line chose, and each
//! workload's defaults from `WORKLOADS.md` where it chose nothing.

use std::time::Duration;

use sluice_protocol::batch::Compression;
use sluice_protocol::wire::produce::Acks;

/// What the produced record values look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ValueKind {
    /// Random bytes: incompressible.
    #[default]
    Random,
    /// JSON-like event text ([`crate::text_values`]): compresses like real data.
    Text,
}

impl ValueKind {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            ValueKind::Random => "random",
            ValueKind::Text => "text",
        }
    }
}

/// How the W4/W7 tailing consumer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TailFetch {
    /// One FetchStream request; the broker sends each append as it comes.
    #[default]
    Stream,
    /// A long-poll Fetch per read.
    Poll,
}

impl TailFetch {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            TailFetch::Stream => "stream",
            TailFetch::Poll => "poll",
        }
    }
}

/// What the command line set. `None` means "the workload's own default".
#[derive(Debug, Clone)]
pub struct Options {
    /// Records per count-based workload (W1, W2, W3, W5, W6, W8).
    pub records: Option<u64>,
    /// Bytes per record value (W4 and W7 need at least 8).
    pub value_len: Option<usize>,
    /// Partitions of the W8 topic.
    pub partitions: Option<u32>,
    /// Producers of W5 and W8.
    pub producers: Option<usize>,
    /// Consumers of W6 and W8.
    pub consumers: Option<usize>,
    /// Target bytes per record batch for the throughput workloads.
    pub batch_bytes: usize,
    /// Target bytes per record batch of the W4/W7 producer (1: every record
    /// is sealed into its own batch at once).
    pub latency_batch_bytes: usize,
    /// Linger of the W4/W7 producer.
    pub linger: Duration,
    /// Acknowledgement level, overriding each workload's.
    pub acks: Option<Acks>,
    /// Produce requests in flight per raw producer connection.
    pub in_flight: usize,
    /// Bytes asked for per fetch.
    pub fetch_bytes: u32,
    /// Whether consumers verify batch CRCs.
    pub verify_crc: bool,
    /// How the W4/W7 tailing consumer reads.
    pub tail_fetch: TailFetch,
    /// Records per second of W4 and W7.
    pub rate: u64,
    /// Measured duration of W4 and W7.
    pub duration: Duration,
    /// Time sent before the W4/W7 measurement starts (not recorded).
    pub warmup: Duration,
    /// Bytes of cold log the W7 lagging consumer reads.
    pub cold_bytes: u64,
    /// Codec the raw producers of W1, W2's log and W3 compress each batch
    /// with (the harness runs them once per codec of `--compression`).
    pub compression: Compression,
    /// What the produced values look like.
    pub value_kind: ValueKind,
}

/// One workload's effective produce/consume settings.
#[derive(Debug, Clone)]
pub struct Params {
    /// Records in total.
    pub records: u64,
    /// Bytes per record value.
    pub value_len: usize,
    /// Target bytes per record batch.
    pub batch_bytes: usize,
    /// Produce requests in flight per producer.
    pub in_flight: usize,
    /// Acknowledgement level.
    pub acks: Acks,
    /// Bytes asked for per fetch.
    pub fetch_bytes: u32,
    /// Whether consumers verify batch CRCs.
    pub verify_crc: bool,
    /// Codec of the produced batches.
    pub compression: Compression,
    /// What the produced values look like.
    pub value_kind: ValueKind,
    /// Whether producers stamp a producer id and sequence numbers into
    /// their batches (idempotent produce), so the broker checks them.
    pub idempotent: bool,
}

impl Params {
    /// Records per batch so that a batch holds about `batch_bytes`.
    pub fn records_per_batch(&self) -> usize {
        (self.batch_bytes / (self.value_len + 8)).max(1)
    }

    /// Bytes of record values in total.
    pub fn value_bytes(&self) -> u64 {
        self.records * self.value_len as u64
    }
}

impl Options {
    /// Settings for a workload whose defaults are `records` records of
    /// `value_len` bytes acknowledged with `acks`.
    pub fn params(&self, records: u64, value_len: usize, acks: Acks) -> Params {
        Params {
            records: self.records.unwrap_or(records),
            value_len: self.value_len.unwrap_or(value_len),
            batch_bytes: self.batch_bytes,
            in_flight: self.in_flight,
            acks: self.acks.unwrap_or(acks),
            fetch_bytes: self.fetch_bytes,
            verify_crc: self.verify_crc,
            compression: self.compression,
            value_kind: self.value_kind,
            idempotent: false,
        }
    }
}

/// Parses a comma-separated list of codecs (`none`, `gzip`, `snappy`, `lz4`,
/// `zstd`).
pub fn parse_codecs(s: &str) -> Result<Vec<Compression>, String> {
    s.split(',')
        .map(|c| match c.trim() {
            "none" => Ok(Compression::None),
            "gzip" => Ok(Compression::Gzip),
            "snappy" => Ok(Compression::Snappy),
            "lz4" => Ok(Compression::Lz4),
            "zstd" => Ok(Compression::Zstd),
            other => Err(format!(
                "compression must be none, gzip, snappy, lz4 or zstd, not {other:?}"
            )),
        })
        .collect()
}

/// Parses `random` or `text`.
pub fn parse_value_kind(s: &str) -> Result<ValueKind, String> {
    match s {
        "random" => Ok(ValueKind::Random),
        "text" => Ok(ValueKind::Text),
        other => Err(format!("value kind must be random or text, not {other:?}")),
    }
}

/// The name of an acknowledgement level as written on the command line.
pub fn acks_name(acks: Acks) -> &'static str {
    match acks {
        Acks::None => "none",
        Acks::Leader => "leader",
        Acks::All => "all",
    }
}

/// Parses `none`, `leader` (or `1`) and `all` (or `-1`).
pub fn parse_acks(s: &str) -> Result<Acks, String> {
    match s {
        "none" | "0" => Ok(Acks::None),
        "leader" | "1" => Ok(Acks::Leader),
        "all" | "-1" => Ok(Acks::All),
        other => Err(format!("acks must be none, leader or all, not {other:?}")),
    }
}
