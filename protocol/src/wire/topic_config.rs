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

/// Settings of a topic; `None` means the broker's default.
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
    }

    #[test]
    fn layout() {
        // Five absent options.
        assert_eq!(encode(&TopicConfig::default()), [0, 0, 0, 0, 0]);
        // Variant index, then the newtype's varint.
        assert_eq!(encode(&FlushMode::Never), [0]);
        assert_eq!(encode(&FlushMode::IntervalMs(300)), [1, 0xAC, 0x02]);
        assert_eq!(encode(&FlushMode::BeforeAck), [2]);
        let config = TopicConfig {
            segment_bytes: Some(1),
            flush: Some(FlushMode::BeforeAck),
            ..TopicConfig::default()
        };
        assert_eq!(encode(&config), [1, 1, 0, 0, 0, 1, 2]);
    }
}
