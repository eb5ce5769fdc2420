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
