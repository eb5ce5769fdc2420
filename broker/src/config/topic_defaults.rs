//! Defaults for new topics (`[topic_defaults]`), each of which a topic may
//! override.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sluice_protocol::wire::topic_config::{FlushMode, TopicCompression, TopicConfig};

use crate::log::{FlushPolicy, LogConfig};

/// The default of [`TopicDefaults::max_message_bytes`]: 64 MiB, the
/// default request frame limit (`max_frame_bytes`), so that by default a
/// batch is limited only by the request that carries it.
pub(crate) const DEFAULT_MAX_MESSAGE_BYTES: u32 = 64 << 20;

/// Defaults for new topics (each topic may override them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TopicDefaults {
    /// Partitions of a topic created without a count.
    pub partitions: u32,
    /// Segment size in bytes.
    pub segment_bytes: u64,
    /// Segment age in milliseconds before it rolls.
    pub segment_ms: u64,
    /// Retention by age in milliseconds (0: keep forever).
    pub retention_ms: u64,
    /// Retention by size in bytes per partition (0: no limit).
    pub retention_bytes: u64,
    /// `"never"`, `"before-ack"`, or a flush interval in milliseconds.
    pub flush: FlushSetting,
    /// Refuse a produced batch whose largest timestamp is more than this
    /// many milliseconds ahead of the broker's clock (Kafka's
    /// `message.timestamp.after.max.ms`; 0: no limit).
    pub message_timestamp_after_max_ms: u64,
    /// The most bytes the records of one compressed batch may decompress to
    /// when the broker checks them on produce; a batch over it is refused
    /// with `DecompressedBatchTooLarge` (27). In 65536..=2^31-1.
    pub max_decompressed_batch_bytes: u64,
    /// Kafka's `compression.type`: `"producer"` stores batches as the
    /// producer compressed them; `"uncompressed"`, `"gzip"`, `"snappy"`,
    /// `"lz4"` or `"zstd"` makes the broker re-encode every produced batch
    /// not already in that codec before appending it (off the reactor).
    pub compression: CompressionSetting,
    /// Forget an idempotent producer on a partition after this many
    /// milliseconds without a batch there (Kafka's
    /// `producer.id.expiration.ms`, 24 h). Broker-wide.
    pub producer_id_expiration_ms: u64,
    /// The most idempotent producer ids remembered per partition; beyond it
    /// the least recently active is forgotten. Broker-wide.
    pub max_producer_ids: u32,
    /// The largest record batch a produce may append, in bytes, as stored
    /// (after the topic's codec re-encoded it); a larger one is refused
    /// with `MessageTooLarge` (Kafka's `message.max.bytes`; a topic's
    /// `max.message.bytes` overrides it). At most 2^31-1.
    pub max_message_bytes: u32,
}

/// A topic's `compression` as written in the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CompressionSetting {
    /// Keep what the producer sent.
    #[default]
    Producer,
    /// Store records uncompressed.
    Uncompressed,
    /// Store gzip batches.
    Gzip,
    /// Store snappy batches (xerial framing).
    Snappy,
    /// Store lz4 batches (LZ4 frames).
    Lz4,
    /// Store zstd batches.
    Zstd,
}

impl CompressionSetting {
    /// The codec batches are stored in, or `None` for `producer`.
    pub fn codec(self) -> Option<sluice_protocol::batch::Compression> {
        self.wire().codec()
    }

    /// The same setting as a topic carries it on the wire.
    pub fn wire(self) -> TopicCompression {
        match self {
            CompressionSetting::Producer => TopicCompression::Producer,
            CompressionSetting::Uncompressed => TopicCompression::Uncompressed,
            CompressionSetting::Gzip => TopicCompression::Gzip,
            CompressionSetting::Snappy => TopicCompression::Snappy,
            CompressionSetting::Lz4 => TopicCompression::Lz4,
            CompressionSetting::Zstd => TopicCompression::Zstd,
        }
    }
}

/// A flush policy as written in the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FlushSetting {
    /// `flush = 1000`: every so many milliseconds.
    IntervalMs(u64),
    /// `flush = "never"` or `flush = "before-ack"`.
    Named(FlushName),
}

/// Named flush policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlushName {
    /// See [`FlushPolicy::Never`].
    Never,
    /// See [`FlushPolicy::BeforeAck`].
    BeforeAck,
}

impl Default for TopicDefaults {
    fn default() -> Self {
        TopicDefaults {
            partitions: 1,
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: 0,
            flush: FlushSetting::Named(FlushName::Never),
            message_timestamp_after_max_ms: 3600 * 1000,
            max_decompressed_batch_bytes: crate::log::DEFAULT_MAX_DECOMPRESSED_BATCH_BYTES as u64,
            compression: CompressionSetting::Producer,
            producer_id_expiration_ms: 24 * 3600 * 1000,
            max_producer_ids: 10_000,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

impl TopicDefaults {
    /// The effective settings of a topic: its own where set, else these.
    pub fn resolve(&self, topic: &TopicConfig) -> TopicConfig {
        TopicConfig {
            segment_bytes: Some(topic.segment_bytes.unwrap_or(self.segment_bytes)),
            segment_ms: Some(topic.segment_ms.unwrap_or(self.segment_ms)),
            retention_ms: Some(topic.retention_ms.unwrap_or(self.retention_ms)),
            retention_bytes: Some(topic.retention_bytes.unwrap_or(self.retention_bytes)),
            flush: Some(topic.flush.unwrap_or(match self.flush {
                FlushSetting::IntervalMs(ms) => FlushMode::IntervalMs(ms),
                FlushSetting::Named(FlushName::Never) => FlushMode::Never,
                FlushSetting::Named(FlushName::BeforeAck) => FlushMode::BeforeAck,
            })),
            compression: Some(topic.compression.unwrap_or(self.compression.wire())),
            max_message_bytes: Some(topic.max_message_bytes.unwrap_or(self.max_message_bytes)),
        }
    }

    /// The partition log settings for a topic.
    pub fn log_config(&self, topic: &TopicConfig) -> LogConfig {
        let t = self.resolve(topic);
        let ms = |v: Option<u64>| v.filter(|&m| m > 0).map(Duration::from_millis);
        LogConfig {
            segment_bytes: t.segment_bytes.unwrap_or(1 << 30),
            segment_age: ms(t.segment_ms),
            retention_age: ms(t.retention_ms),
            retention_bytes: t.retention_bytes.filter(|&b| b > 0),
            flush: match t.flush {
                // No interval is before the acknowledgement, as Kafka
                // clients read a `flush.ms` of 0 (which describes it).
                Some(FlushMode::IntervalMs(0)) | Some(FlushMode::BeforeAck) => {
                    FlushPolicy::BeforeAck
                }
                Some(FlushMode::IntervalMs(ms)) => FlushPolicy::Interval(Duration::from_millis(ms)),
                Some(FlushMode::Never) | None => FlushPolicy::Never,
            },
            max_timestamp_ahead: ms(Some(self.message_timestamp_after_max_ms)),
            max_decompressed_batch_bytes: usize::try_from(self.max_decompressed_batch_bytes)
                .unwrap_or(usize::MAX),
            compression: t.compression.and_then(TopicCompression::codec),
            producer_id_expiration: Duration::from_millis(self.producer_id_expiration_ms),
            max_producer_ids: self.max_producer_ids.max(1) as usize,
            max_batch_bytes: t.max_message_bytes.unwrap_or(DEFAULT_MAX_MESSAGE_BYTES),
            ..LogConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flush interval of 0 ms is `before-ack`: Kafka clients are told
    /// `flush.ms` 0, which Sluice reads (and documents) as an fsync before
    /// the acknowledgement. It flushed at upkeep passes only.
    #[test]
    fn a_flush_interval_of_zero_flushes_before_the_acknowledgement() {
        let policy = |flush| {
            TopicDefaults::default()
                .log_config(&TopicConfig {
                    flush: Some(flush),
                    ..TopicConfig::default()
                })
                .flush
        };
        assert_eq!(policy(FlushMode::IntervalMs(0)), FlushPolicy::BeforeAck);
        assert_eq!(policy(FlushMode::BeforeAck), FlushPolicy::BeforeAck);
        assert_eq!(
            policy(FlushMode::IntervalMs(5)),
            FlushPolicy::Interval(Duration::from_millis(5))
        );
        assert_eq!(policy(FlushMode::Never), FlushPolicy::Never);
    }
}
