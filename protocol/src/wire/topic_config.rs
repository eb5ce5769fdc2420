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

/// Settings of a topic; `None` means the broker's default.
///
/// Its serde layout is every field in order (the broker's stored metadata).
/// The native protocol's messages carry it without
/// [`max_message_bytes`](Self::max_message_bytes) (their fields are marked
/// `#[serde(with = "without_max_message_bytes")]`): version 1 of
/// CreateTopics and Metadata, and AlterTopicConfig. Version 0 carries
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
    /// The largest record batch a produce may append, in bytes (Kafka's
    /// `max.message.bytes`). Not carried by the native protocol: a native
    /// message decodes it as `None`, and a native change leaves it as it is.
    pub max_message_bytes: Option<u32>,
}

/// [`TopicConfig`] as the native protocol's messages carry it: every field
/// but `max_message_bytes`. For `#[serde(with = ...)]` on a message's
/// [`TopicConfig`] field.
pub mod without_max_message_bytes {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{FlushMode, TopicCompression, TopicConfig};

    /// The fields, in [`TopicConfig`]'s order.
    #[derive(Serialize)]
    struct Ref<'a> {
        segment_bytes: &'a Option<u64>,
        segment_ms: &'a Option<u64>,
        retention_ms: &'a Option<u64>,
        retention_bytes: &'a Option<u64>,
        flush: &'a Option<FlushMode>,
        compression: &'a Option<TopicCompression>,
    }

    #[derive(Deserialize)]
    struct Owned {
        segment_bytes: Option<u64>,
        segment_ms: Option<u64>,
        retention_ms: Option<u64>,
        retention_bytes: Option<u64>,
        flush: Option<FlushMode>,
        compression: Option<TopicCompression>,
    }

    /// Writes `c` without `max_message_bytes`.
    pub fn serialize<S: Serializer>(c: &TopicConfig, s: S) -> Result<S::Ok, S::Error> {
        Ref {
            segment_bytes: &c.segment_bytes,
            segment_ms: &c.segment_ms,
            retention_ms: &c.retention_ms,
            retention_bytes: &c.retention_bytes,
            flush: &c.flush,
            compression: &c.compression,
        }
        .serialize(s)
    }

    /// Reads the fields but `max_message_bytes`, which is `None`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<TopicConfig, D::Error> {
        let o = Owned::deserialize(d)?;
        Ok(TopicConfig {
            segment_bytes: o.segment_bytes,
            segment_ms: o.segment_ms,
            retention_ms: o.retention_ms,
            retention_bytes: o.retention_bytes,
            flush: o.flush,
            compression: o.compression,
            max_message_bytes: None,
        })
    }
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
            max_message_bytes: None,
        }
    }
}

impl From<TopicConfig> for TopicConfigV0 {
    /// Drops `compression` and `max_message_bytes`, which version 0 cannot
    /// carry.
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
            max_message_bytes: Some(u32::MAX),
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
                    max_message_bytes: None,
                    ..c
                }
            );
        }
    }

    /// A message field of the native protocol's layout.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Native(#[serde(with = "without_max_message_bytes")] TopicConfig);

    #[test]
    fn the_native_layout_leaves_out_max_message_bytes() {
        for c in configs() {
            let bytes = encode(&Native(c.clone()));
            let back: Native = postcard::from_bytes(&bytes).unwrap();
            assert_eq!(
                back.0,
                TopicConfig {
                    max_message_bytes: None,
                    ..c.clone()
                }
            );
            // The stored layout is the native one and one more option.
            let mut stored = bytes.clone();
            stored.push(0);
            let c = TopicConfig {
                max_message_bytes: None,
                ..c
            };
            assert_eq!(encode(&c), stored);
            for cut in 0..bytes.len() {
                assert!(postcard::from_bytes::<Native>(&bytes[..cut]).is_err());
            }
        }
    }

    #[test]
    fn layout() {
        // Stored: seven absent options; native version 1: six; version 0:
        // five.
        assert_eq!(encode(&TopicConfig::default()), [0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(encode(&Native(TopicConfig::default())), [0, 0, 0, 0, 0, 0]);
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
        assert_eq!(encode(&Native(config.clone())), [1, 1, 0, 0, 0, 1, 2, 0]);
        assert_eq!(
            encode(&TopicConfigV0::from(config.clone())),
            [1, 1, 0, 0, 0, 1, 2]
        );
        let config = TopicConfig {
            compression: Some(TopicCompression::Zstd),
            ..config
        };
        assert_eq!(encode(&Native(config.clone())), [1, 1, 0, 0, 0, 1, 2, 1, 5]);
        let config = TopicConfig {
            max_message_bytes: Some(300),
            ..config
        };
        assert_eq!(encode(&config), [1, 1, 0, 0, 0, 1, 2, 1, 5, 1, 0xAC, 0x02]);
        assert_eq!(encode(&Native(config)), [1, 1, 0, 0, 0, 1, 2, 1, 5]);
    }
}
