//! Metadata (key 1): topics, their partitions and offsets.

use serde::{Deserialize, Serialize};

use super::ErrorCode;
use super::topic_config::TopicConfig;

/// Asks about some topics, or all when `topics` is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataRequest {
    /// Topic names, or `None` for every topic.
    pub topics: Option<Vec<String>>,
}

/// One partition's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionMetadata {
    /// Partition number.
    pub partition: u32,
    /// [`ErrorCode::PartitionOffline`] when the partition refuses writes.
    pub error_code: ErrorCode,
    /// First offset held.
    pub log_start_offset: u64,
    /// One past the last offset readable.
    pub high_watermark: u64,
}

/// One topic's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMetadata {
    /// Topic name.
    pub name: String,
    /// [`ErrorCode::UnknownTopicOrPartition`] for an unknown topic.
    pub error_code: ErrorCode,
    /// Partitions in number order.
    pub partitions: Vec<PartitionMetadata>,
    /// The topic's settings, defaults filled in.
    pub config: TopicConfig,
}

/// The topics asked about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataResponse {
    /// One entry per topic asked about (or every topic).
    pub topics: Vec<TopicMetadata>,
}
