//! Per-topic settings carried by CreateTopics and Metadata.

use serde::{Deserialize, Serialize};

/// When a topic's data is forced to disk (see `docs/durability.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlushMode {
    /// Acknowledge after the page cache; the kernel writes back.
    Never,
    /// Acknowledge after the page cache; flush every this many milliseconds.
    IntervalMs(u64),
    /// Acknowledge after `fdatasync` (group-committed); consumers see only
    /// flushed data.
    BeforeAck,
}

/// How a topic stores produced batches (Kafka's `compression.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TopicCompression {
    /// Store batches as the producer compressed them.
    Producer,
    /// Store records uncompressed.
    Uncompressed,
    /// Store gzip batches.
    Gzip,
    /// Store snappy batches.
    Snappy,
    /// Store lz4 batches.
    Lz4,
    /// Store zstd batches.
    Zstd,
}

impl TopicCompression {
    /// Every setting, in wire order.
    pub const ALL: [TopicCompression; 6] = [
        TopicCompression::Producer,
        TopicCompression::Uncompressed,
        TopicCompression::Gzip,
        TopicCompression::Snappy,
        TopicCompression::Lz4,
        TopicCompression::Zstd,
    ];

    /// The name used in config files and by the CLI (`"producer"`, `"zstd"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            TopicCompression::Producer => "producer",
            TopicCompression::Uncompressed => "uncompressed",
            TopicCompression::Gzip => "gzip",
            TopicCompression::Snappy => "snappy",
            TopicCompression::Lz4 => "lz4",
            TopicCompression::Zstd => "zstd",
        }
    }

    /// The setting with this [`name`](Self::name).
    pub fn from_name(name: &str) -> Option<TopicCompression> {
        TopicCompression::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The codec batches are stored in, or `None` for `Producer`.
    pub fn codec(self) -> Option<crate::batch::Compression> {
        use crate::batch::Compression;
        match self {
            TopicCompression::Producer => None,
            TopicCompression::Uncompressed => Some(Compression::None),
            TopicCompression::Gzip => Some(Compression::Gzip),
            TopicCompression::Snappy => Some(Compression::Snappy),
            TopicCompression::Lz4 => Some(Compression::Lz4),
            TopicCompression::Zstd => Some(Compression::Zstd),
        }
    }
}

/// Settings of a topic; `None` means the broker's default. This is the
/// layout of version 1 of CreateTopics and Metadata; version 0 carries
/// [`TopicConfigV0`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicConfig {
    /// Segment size in bytes.
    pub segment_bytes: Option<u64>,
    /// Segment age in milliseconds before it rolls.
    pub segment_ms: Option<u64>,
    /// Delete data older than this many milliseconds (0 = keep forever).
    pub retention_ms: Option<u64>,
    /// Delete oldest data while a partition is larger (0 = no limit).
    pub retention_bytes: Option<u64>,
    /// Durability.
    pub flush: Option<FlushMode>,
    /// How produced batches are stored (version 1 and later).
    pub compression: Option<TopicCompression>,
}

/// [`TopicConfig`] as version 0 of CreateTopics and Metadata carries it:
/// the same fields without `compression`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicConfigV0 {
    /// Segment size in bytes.
    pub segment_bytes: Option<u64>,
    /// Segment age in milliseconds before it rolls.
    pub segment_ms: Option<u64>,
    /// Delete data older than this many milliseconds (0 = keep forever).
    pub retention_ms: Option<u64>,
    /// Delete oldest data while a partition is larger (0 = no limit).
    pub retention_bytes: Option<u64>,
    /// Durability.
    pub flush: Option<FlushMode>,
}

impl From<TopicConfigV0> for TopicConfig {
    /// A version 0 config: `compression` unset (the broker's default).
    fn from(c: TopicConfigV0) -> TopicConfig {
        TopicConfig {
            segment_bytes: c.segment_bytes,
            segment_ms: c.segment_ms,
            retention_ms: c.retention_ms,
            retention_bytes: c.retention_bytes,
            flush: c.flush,
            compression: None,
        }
    }
}

impl From<TopicConfig> for TopicConfigV0 {
    /// Drops `compression`, which version 0 cannot carry.
    fn from(c: TopicConfig) -> TopicConfigV0 {
        TopicConfigV0 {
            segment_bytes: c.segment_bytes,
            segment_ms: c.segment_ms,
            retention_ms: c.retention_ms,
            retention_bytes: c.retention_bytes,
            flush: c.flush,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::{check_all, encode};

    /// Every setting set, with each flush mode.
    fn configs() -> Vec<TopicConfig> {
        let full = |flush| TopicConfig {
            segment_bytes: Some(1 << 30),
            segment_ms: Some(7 * 24 * 3600 * 1000),
            retention_ms: Some(0),
            retention_bytes: Some(u64::MAX),
            flush: Some(flush),
            compression: Some(TopicCompression::Zstd),
        };
        vec![
            TopicConfig::default(),
            full(FlushMode::Never),
            full(FlushMode::IntervalMs(1000)),
            full(FlushMode::BeforeAck),
        ]
    }

    #[test]
    fn round_trips_and_rejects_truncation() {
        check_all(&configs());
        check_all(&[
            FlushMode::Never,
            FlushMode::IntervalMs(0),
            FlushMode::IntervalMs(u64::MAX),
            FlushMode::BeforeAck,
        ]);
        check_all(&TopicCompression::ALL);
        check_all(&[
            TopicConfigV0::default(),
            TopicConfigV0::from(configs()[1].clone()),
        ]);
    }

    #[test]
    fn names_round_trip() {
        for c in TopicCompression::ALL {
            assert_eq!(TopicCompression::from_name(c.name()), Some(c));
        }
        assert_eq!(TopicCompression::from_name("ZSTD"), None);
        assert_eq!(TopicCompression::from_name("none"), None);
    }

    #[test]
    fn v0_conversion_keeps_all_but_compression() {
        for c in configs() {
            let back = TopicConfig::from(TopicConfigV0::from(c.clone()));
            assert_eq!(
                back,
                TopicConfig {
                    compression: None,
                    ..c
                }
            );
        }
    }

    #[test]
    fn layout() {
        // Version 1: six absent options; version 0: five.
        assert_eq!(encode(&TopicConfig::default()), [0, 0, 0, 0, 0, 0]);
        assert_eq!(encode(&TopicConfigV0::default()), [0, 0, 0, 0, 0]);
        let codes: Vec<Vec<u8>> = TopicCompression::ALL.iter().map(encode).collect();
        assert_eq!(codes, [[0], [1], [2], [3], [4], [5]]);
        // Variant index, then the newtype's varint.
        assert_eq!(encode(&FlushMode::Never), [0]);
        assert_eq!(encode(&FlushMode::IntervalMs(300)), [1, 0xAC, 0x02]);
        assert_eq!(encode(&FlushMode::BeforeAck), [2]);
        let config = TopicConfig {
            segment_bytes: Some(1),
            flush: Some(FlushMode::BeforeAck),
            ..TopicConfig::default()
        };
        assert_eq!(encode(&config), [1, 1, 0, 0, 0, 1, 2, 0]);
        assert_eq!(
            encode(&TopicConfigV0::from(config.clone())),
            [1, 1, 0, 0, 0, 1, 2]
        );
        let config = TopicConfig {
            compression: Some(TopicCompression::Zstd),
            ..config
        };
        assert_eq!(encode(&config), [1, 1, 0, 0, 0, 1, 2, 1, 5]);
    }
}
