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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::check_all;
    use crate::wire::topic_config::FlushMode;

    #[test]
    fn request_round_trips_and_rejects_truncation() {
        check_all(&[
            MetadataRequest { topics: None },
            MetadataRequest {
                topics: Some(vec![]),
            },
            MetadataRequest {
                topics: Some(vec!["orders".into(), String::new(), "é".repeat(100)]),
            },
        ]);
    }

    #[test]
    fn response_round_trips_and_rejects_truncation() {
        check_all(&[
            MetadataResponse { topics: vec![] },
            MetadataResponse {
                topics: vec![
                    TopicMetadata {
                        name: "orders".into(),
                        error_code: ErrorCode::None,
                        partitions: vec![
                            PartitionMetadata {
                                partition: 0,
                                error_code: ErrorCode::None,
                                log_start_offset: 0,
                                high_watermark: 1 << 40,
                            },
                            PartitionMetadata {
                                partition: 1,
                                error_code: ErrorCode::PartitionOffline,
                                log_start_offset: 17,
                                high_watermark: u64::MAX,
                            },
                        ],
                        config: TopicConfig {
                            segment_bytes: Some(1 << 30),
                            flush: Some(FlushMode::IntervalMs(250)),
                            ..TopicConfig::default()
                        },
                    },
                    TopicMetadata {
                        name: "missing".into(),
                        error_code: ErrorCode::UnknownTopicOrPartition,
                        partitions: vec![],
                        config: TopicConfig::default(),
                    },
                ],
            },
        ]);
    }
}
