//! Metadata (key 1): brokers, topics, their partitions, offsets and
//! leaders.
//!
//! Version 3 adds to the request whether topics named that do not exist
//! may be created ([`MetadataRequestV3`]; the response is version 2's).
//! Version 2 adds the cluster's brokers and, per partition, its leader,
//! leader epoch, replicas and in-sync replicas; version 1 adds a topic's
//! `compression` setting. The request is the same in versions 0 to 2.

use serde::{Deserialize, Serialize};

use super::ErrorCode;
use super::topic_config::{TopicConfig, TopicConfigV0};

/// Asks about some topics, or all when `topics` is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataRequest {
    /// Topic names, or `None` for every topic.
    pub topics: Option<Vec<String>>,
}

/// [`MetadataRequest`] in version 3: and whether the broker may create
/// the topics named that do not exist (when its `auto_create_topics` is
/// on; Kafka's `allow_auto_topic_creation`). The response is version 2's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataRequestV3 {
    /// Topic names, or `None` for every topic.
    pub topics: Option<Vec<String>>,
    /// Create the topics of `topics` that do not exist, with the broker's
    /// defaults, if the broker creates topics on first use.
    pub allow_auto_create: bool,
}

/// One broker of the cluster (version 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerMetadata {
    /// Node id (0 for a broker running alone).
    pub id: u64,
    /// Its native listener, `host:port`, as clients should dial it.
    pub listen: String,
    /// Its Kafka listener, if it has one.
    pub kafka: Option<String>,
}

/// One partition's state (version 2).
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
    /// Node id of the leader, or `None` while there is none (send nothing
    /// to this partition until a refresh names one).
    pub leader: Option<u64>,
    /// The leader's epoch (the Raft term; 0 for a broker running alone).
    pub leader_epoch: u64,
    /// Node ids of every replica.
    pub replicas: Vec<u64>,
    /// Node ids of the replicas in sync with the leader.
    pub isr: Vec<u64>,
}

/// One topic's state (version 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMetadata {
    /// Topic name.
    pub name: String,
    /// [`ErrorCode::UnknownTopicOrPartition`] for an unknown topic.
    pub error_code: ErrorCode,
    /// Partitions in number order.
    pub partitions: Vec<PartitionMetadata>,
    /// The topic's settings, defaults filled in.
    #[serde(with = "super::topic_config::without_max_message_bytes")]
    pub config: TopicConfig,
}

/// The brokers and the topics asked about (version 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataResponse {
    /// Every broker of the cluster (the answering one alone without a
    /// cluster).
    pub brokers: Vec<BrokerMetadata>,
    /// One entry per topic asked about (or every topic).
    pub topics: Vec<TopicMetadata>,
}

impl MetadataResponse {
    /// The native address of the broker with node id `id`, if listed.
    pub fn broker_address(&self, id: u64) -> Option<&str> {
        self.brokers
            .iter()
            .find(|b| b.id == id)
            .map(|b| b.listen.as_str())
    }

    /// The leader's node id of a partition: `None` if the topic or
    /// partition is not listed, `Some(None)` if it has no leader.
    pub fn leader(&self, topic: &str, partition: u32) -> Option<Option<u64>> {
        self.topics
            .iter()
            .find(|t| t.name == topic)?
            .partitions
            .iter()
            .find(|p| p.partition == partition)
            .map(|p| p.leader)
    }
}

/// [`PartitionMetadata`] in versions 0 and 1: no leadership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionMetadataV1 {
    /// Partition number.
    pub partition: u32,
    /// [`ErrorCode::PartitionOffline`] when the partition refuses writes.
    pub error_code: ErrorCode,
    /// First offset held.
    pub log_start_offset: u64,
    /// One past the last offset readable.
    pub high_watermark: u64,
}

/// [`TopicMetadata`] in version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMetadataV1 {
    /// Topic name.
    pub name: String,
    /// [`ErrorCode::UnknownTopicOrPartition`] for an unknown topic.
    pub error_code: ErrorCode,
    /// Partitions in number order.
    pub partitions: Vec<PartitionMetadataV1>,
    /// The topic's settings, defaults filled in.
    #[serde(with = "super::topic_config::without_max_message_bytes")]
    pub config: TopicConfig,
}

/// [`MetadataResponse`] in version 1: no brokers, no leadership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataResponseV1 {
    /// One entry per topic asked about (or every topic).
    pub topics: Vec<TopicMetadataV1>,
}

/// [`TopicMetadata`] in version 0: settings without `compression`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMetadataV0 {
    /// Topic name.
    pub name: String,
    /// [`ErrorCode::UnknownTopicOrPartition`] for an unknown topic.
    pub error_code: ErrorCode,
    /// Partitions in number order.
    pub partitions: Vec<PartitionMetadataV1>,
    /// The topic's settings, defaults filled in.
    pub config: TopicConfigV0,
}

/// [`MetadataResponse`] in version 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataResponseV0 {
    /// One entry per topic asked about (or every topic).
    pub topics: Vec<TopicMetadataV0>,
}

impl From<PartitionMetadata> for PartitionMetadataV1 {
    /// Drops the leadership fields.
    fn from(p: PartitionMetadata) -> PartitionMetadataV1 {
        PartitionMetadataV1 {
            partition: p.partition,
            error_code: p.error_code,
            log_start_offset: p.log_start_offset,
            high_watermark: p.high_watermark,
        }
    }
}

impl From<MetadataResponse> for MetadataResponseV1 {
    /// Drops the brokers and each partition's leadership.
    fn from(r: MetadataResponse) -> MetadataResponseV1 {
        MetadataResponseV1 {
            topics: r
                .topics
                .into_iter()
                .map(|t| TopicMetadataV1 {
                    name: t.name,
                    error_code: t.error_code,
                    partitions: t.partitions.into_iter().map(Into::into).collect(),
                    config: t.config,
                })
                .collect(),
        }
    }
}

impl From<MetadataResponseV1> for MetadataResponseV0 {
    /// Drops each topic's `compression`.
    fn from(r: MetadataResponseV1) -> MetadataResponseV0 {
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

impl From<MetadataResponse> for MetadataResponseV0 {
    /// Drops the brokers, the leadership and each topic's `compression`.
    fn from(r: MetadataResponse) -> MetadataResponseV0 {
        MetadataResponseV1::from(r).into()
    }
}

impl From<MetadataResponseV0> for MetadataResponseV1 {
    /// Each topic's `compression` unknown (`None`).
    fn from(r: MetadataResponseV0) -> MetadataResponseV1 {
        MetadataResponseV1 {
            topics: r
                .topics
                .into_iter()
                .map(|t| TopicMetadataV1 {
                    name: t.name,
                    error_code: t.error_code,
                    partitions: t.partitions,
                    config: t.config.into(),
                })
                .collect(),
        }
    }
}

impl MetadataResponseV1 {
    /// The version 2 form as a broker older than version 2 implies: it runs
    /// alone, so `broker` (id 0, the address the client reached it at)
    /// leads every partition and is its only replica.
    pub fn single_broker(self, listen: &str) -> MetadataResponse {
        MetadataResponse {
            brokers: vec![BrokerMetadata {
                id: 0,
                listen: listen.to_owned(),
                kafka: None,
            }],
            topics: self
                .topics
                .into_iter()
                .map(|t| TopicMetadata {
                    name: t.name,
                    error_code: t.error_code,
                    partitions: t
                        .partitions
                        .into_iter()
                        .map(|p| PartitionMetadata {
                            partition: p.partition,
                            error_code: p.error_code,
                            log_start_offset: p.log_start_offset,
                            high_watermark: p.high_watermark,
                            leader: Some(0),
                            leader_epoch: 0,
                            replicas: vec![0],
                            isr: vec![0],
                        })
                        .collect(),
                    config: t.config,
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
        check_all(&[
            MetadataRequestV3 {
                topics: None,
                allow_auto_create: true,
            },
            MetadataRequestV3 {
                topics: Some(vec!["orders".into(), "é".repeat(100)]),
                allow_auto_create: false,
            },
        ]);
    }

    /// The request's bytes, pinned (`docs/protocol.md`): version 3 is
    /// version 0 to 2's and one more byte.
    #[test]
    fn request_layout_of_every_version() {
        let names = Some(vec!["ab".to_owned()]);
        let v0 = [1, 1, 2, b'a', b'b'];
        assert_eq!(
            encode(&MetadataRequest {
                topics: names.clone()
            }),
            v0
        );
        let v3 = MetadataRequestV3 {
            topics: names,
            allow_auto_create: true,
        };
        assert_eq!(encode(&v3), [1, 1, 2, b'a', b'b', 1]);
        assert_eq!(
            encode(&MetadataRequestV3 {
                topics: None,
                allow_auto_create: false
            }),
            [0, 0]
        );
    }

    fn partition(n: u32, leader: Option<u64>) -> PartitionMetadata {
        PartitionMetadata {
            partition: n,
            error_code: ErrorCode::None,
            log_start_offset: 0,
            high_watermark: 3,
            leader,
            leader_epoch: 0,
            replicas: vec![0],
            isr: vec![0],
        }
    }

    #[test]
    fn response_round_trips_and_rejects_truncation() {
        check_all(&[
            MetadataResponse {
                brokers: vec![],
                topics: vec![],
            },
            MetadataResponse {
                brokers: vec![
                    BrokerMetadata {
                        id: 1,
                        listen: "10.0.0.1:9292".into(),
                        kafka: Some("10.0.0.1:9092".into()),
                    },
                    BrokerMetadata {
                        id: u64::MAX,
                        listen: String::new(),
                        kafka: None,
                    },
                ],
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
                                leader: Some(1),
                                leader_epoch: 7,
                                replicas: vec![1, 2, 3],
                                isr: vec![1, 3],
                            },
                            PartitionMetadata {
                                partition: 1,
                                error_code: ErrorCode::PartitionOffline,
                                log_start_offset: 17,
                                high_watermark: u64::MAX,
                                leader: None,
                                leader_epoch: u64::MAX,
                                replicas: vec![],
                                isr: vec![],
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

    /// Every version's bytes, pinned (`docs/protocol.md`), and the
    /// conversions between them.
    #[test]
    fn layout_of_every_version() {
        let v2 = MetadataResponse {
            brokers: vec![BrokerMetadata {
                id: 0,
                listen: "h:1".into(),
                kafka: None,
            }],
            topics: vec![TopicMetadata {
                name: "t".into(),
                error_code: ErrorCode::None,
                partitions: vec![partition(0, Some(0))],
                config: TopicConfig {
                    segment_bytes: Some(1),
                    compression: Some(TopicCompression::Snappy),
                    ..TopicConfig::default()
                },
            }],
        };
        // v1: topic, partition (number, error, start, high watermark),
        // then the settings.
        let v1_bytes = [1, 1, b't', 0, 1, 0, 0, 0, 3, 1, 1, 0, 0, 0, 0, 1, 3];
        let v0_bytes = &v1_bytes[..15];
        // v2: the brokers first, then the topics with each partition's
        // leader (Some 0), epoch 0, replicas [0] and isr [0].
        let mut want = vec![1, 0, 3, b'h', b':', b'1', 0];
        want.extend([1, 1, b't', 0, 1, 0, 0, 0, 3, 1, 0, 0, 1, 0, 1, 0]);
        want.extend([1, 1, 0, 0, 0, 0, 1, 3]);
        assert_eq!(encode(&v2), want);
        let v1 = MetadataResponseV1::from(v2.clone());
        assert_eq!(encode(&v1), v1_bytes);
        check_all(std::slice::from_ref(&v1));
        let v0 = MetadataResponseV0::from(v2.clone());
        assert_eq!(encode(&v0), v0_bytes);
        check_all(std::slice::from_ref(&v0));
        // From an old broker: alone, leading everything.
        assert_eq!(v1.clone().single_broker("h:1"), v2);
        let back = MetadataResponseV1::from(v0).single_broker("h:1");
        assert_eq!(back.topics[0].config.compression, None);
        assert_eq!(back.topics[0].config.segment_bytes, Some(1));
        assert_eq!(back.leader("t", 0), Some(Some(0)));
        assert_eq!(back.leader("t", 1), None);
        assert_eq!(back.leader("u", 0), None);
        assert_eq!(back.broker_address(0), Some("h:1"));
        assert_eq!(back.broker_address(1), None);
    }
}
