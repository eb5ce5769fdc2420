//! Metadata (key 1): topics, their partitions and offsets.

use serde::{Deserialize, Serialize};

use super::ErrorCode;
use super::topic_config::{TopicConfig, TopicConfigV0};

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

/// The topics asked about (version 1; the request is the same in both
/// versions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataResponse {
    /// One entry per topic asked about (or every topic).
    pub topics: Vec<TopicMetadata>,
}

/// [`TopicMetadata`] in version 0: settings without `compression`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMetadataV0 {
    /// Topic name.
    pub name: String,
    /// [`ErrorCode::UnknownTopicOrPartition`] for an unknown topic.
    pub error_code: ErrorCode,
    /// Partitions in number order.
    pub partitions: Vec<PartitionMetadata>,
    /// The topic's settings, defaults filled in.
    pub config: TopicConfigV0,
}

/// [`MetadataResponse`] in version 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataResponseV0 {
    /// One entry per topic asked about (or every topic).
    pub topics: Vec<TopicMetadataV0>,
}

impl From<MetadataResponse> for MetadataResponseV0 {
    /// Drops each topic's `compression`.
    fn from(r: MetadataResponse) -> MetadataResponseV0 {
        MetadataResponseV0 {
            topics: r
                .topics
                .into_iter()
                .map(|t| TopicMetadataV0 {
                    name: t.name,
                    error_code: t.error_code,
                    partitions: t.partitions,
                    config: t.config.into(),
                })
                .collect(),
        }
    }
}

impl From<MetadataResponseV0> for MetadataResponse {
    /// Each topic's `compression` unknown (`None`).
    fn from(r: MetadataResponseV0) -> MetadataResponse {
        MetadataResponse {
            topics: r
                .topics
                .into_iter()
                .map(|t| TopicMetadata {
                    name: t.name,
                    error_code: t.error_code,
                    partitions: t.partitions,
                    config: t.config.into(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::{check_all, encode};
    use crate::wire::topic_config::{FlushMode, TopicCompression};

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
                            compression: Some(TopicCompression::Gzip),
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

    /// Both versions' bytes, pinned (`docs/protocol.md`), and the
    /// conversion between them.
    #[test]
    fn layout_of_both_versions() {
        let v1 = MetadataResponse {
            topics: vec![TopicMetadata {
                name: "t".into(),
                error_code: ErrorCode::None,
                partitions: vec![PartitionMetadata {
                    partition: 0,
                    error_code: ErrorCode::None,
                    log_start_offset: 0,
                    high_watermark: 3,
                }],
                config: TopicConfig {
                    segment_bytes: Some(1),
                    compression: Some(TopicCompression::Snappy),
                    ..TopicConfig::default()
                },
            }],
        };
        let topic = [1, 1, b't', 0, 1, 0, 0, 0, 3, 1, 1, 0, 0, 0, 0];
        let mut want = topic.to_vec();
        want.extend([1, 3]);
        assert_eq!(encode(&v1), want);
        let v0 = MetadataResponseV0::from(v1.clone());
        assert_eq!(encode(&v0), topic);
        check_all(std::slice::from_ref(&v0));
        let back = MetadataResponse::from(v0);
        assert_eq!(back.topics[0].config.compression, None);
        assert_eq!(back.topics[0].config.segment_bytes, Some(1));
    }
}
