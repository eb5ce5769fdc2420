//! CreateTopics (key 2).
//!
//! Version 2 adds each topic's `replication_factor`; version 1 adds the
//! topic's `compression` setting.

use serde::{Deserialize, Serialize};

use super::ErrorCode;
use super::topic_config::{TopicConfig, TopicConfigV0};

/// A topic to create (version 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTopic {
    /// Topic name.
    pub name: String,
    /// Number of partitions (at least 1).
    pub partitions: u32,
    /// Settings; unset fields take the broker's defaults.
    #[serde(with = "super::topic_config::without_max_message_bytes")]
    pub config: TopicConfig,
    /// Copies of each partition, on distinct brokers; `None` takes the
    /// broker's `default_replication_factor`.
    pub replication_factor: Option<u16>,
}

/// Creates topics (version 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateTopicsRequest {
    /// The topics.
    pub topics: Vec<NewTopic>,
}

/// [`NewTopic`] in version 1: no replication factor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTopicV1 {
    /// Topic name.
    pub name: String,
    /// Number of partitions (at least 1).
    pub partitions: u32,
    /// Settings; unset fields take the broker's defaults.
    #[serde(with = "super::topic_config::without_max_message_bytes")]
    pub config: TopicConfig,
}

/// [`CreateTopicsRequest`] in version 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateTopicsRequestV1 {
    /// The topics.
    pub topics: Vec<NewTopicV1>,
}

impl From<CreateTopicsRequestV1> for CreateTopicsRequest {
    /// Every topic with the broker's default replication factor.
    fn from(r: CreateTopicsRequestV1) -> CreateTopicsRequest {
        CreateTopicsRequest {
            topics: r
                .topics
                .into_iter()
                .map(|t| NewTopic {
                    name: t.name,
                    partitions: t.partitions,
                    config: t.config,
                    replication_factor: None,
                })
                .collect(),
        }
    }
}

/// [`NewTopic`] in version 0: settings without `compression`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTopicV0 {
    /// Topic name.
    pub name: String,
    /// Number of partitions (at least 1).
    pub partitions: u32,
    /// Settings; unset fields take the broker's defaults.
    pub config: TopicConfigV0,
}

/// [`CreateTopicsRequest`] in version 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateTopicsRequestV0 {
    /// The topics.
    pub topics: Vec<NewTopicV0>,
}

impl From<CreateTopicsRequestV0> for CreateTopicsRequest {
    /// Every topic with `compression` unset.
    fn from(r: CreateTopicsRequestV0) -> CreateTopicsRequest {
        CreateTopicsRequest {
            topics: r
                .topics
                .into_iter()
                .map(|t| NewTopic {
                    name: t.name,
                    partitions: t.partitions,
                    config: t.config.into(),
                    replication_factor: None,
                })
                .collect(),
        }
    }
}

impl CreateTopicsRequest {
    /// The version 1 form, or `None` when a topic asks for a replication
    /// factor other than 1 (a broker older than version 2 runs alone, so a
    /// factor of 1 is what it gives).
    pub fn to_v1(&self) -> Option<CreateTopicsRequestV1> {
        let topics = self
            .topics
            .iter()
            .map(|t| {
                matches!(t.replication_factor, None | Some(1)).then(|| NewTopicV1 {
                    name: t.name.clone(),
                    partitions: t.partitions,
                    config: t.config.clone(),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(CreateTopicsRequestV1 { topics })
    }

    /// The version 0 form, or `None` when a topic sets a field version 0
    /// cannot carry (`compression`, a replication factor other than 1).
    pub fn to_v0(&self) -> Option<CreateTopicsRequestV0> {
        self.to_v1()?;
        let topics = self
            .topics
            .iter()
            .map(|t| {
                t.config.compression.is_none().then(|| NewTopicV0 {
                    name: t.name.clone(),
                    partitions: t.partitions,
                    config: t.config.clone().into(),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(CreateTopicsRequestV0 { topics })
    }
}

/// The outcome for one topic of a CreateTopics or DeleteTopics request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicResult {
    /// Topic name.
    pub name: String,
    /// Outcome.
    pub error_code: ErrorCode,
    /// Detail when `error_code` is not `None`.
    pub message: Option<String>,
}

/// One result per requested topic, in request order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateTopicsResponse {
    /// Results.
    pub results: Vec<TopicResult>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::{check_all, encode};
    use crate::wire::topic_config::{FlushMode, TopicCompression};

    #[test]
    fn request_round_trips_and_rejects_truncation() {
        check_all(&[
            CreateTopicsRequest { topics: vec![] },
            CreateTopicsRequest {
                topics: vec![
                    NewTopic {
                        name: "orders".into(),
                        partitions: 1,
                        config: TopicConfig::default(),
                        replication_factor: None,
                    },
                    NewTopic {
                        name: "audit".into(),
                        partitions: u32::MAX,
                        config: TopicConfig {
                            retention_ms: Some(86_400_000),
                            retention_bytes: Some(0),
                            flush: Some(FlushMode::BeforeAck),
                            compression: Some(TopicCompression::Lz4),
                            ..TopicConfig::default()
                        },
                        replication_factor: Some(u16::MAX),
                    },
                ],
            },
        ]);
        check_all(&[
            CreateTopicsRequestV0 { topics: vec![] },
            CreateTopicsRequestV0 {
                topics: vec![NewTopicV0 {
                    name: "orders".into(),
                    partitions: 2,
                    config: TopicConfigV0 {
                        retention_ms: Some(5),
                        ..TopicConfigV0::default()
                    },
                }],
            },
        ]);
    }

    /// Every version's bytes, pinned (`docs/protocol.md`).
    #[test]
    fn layout_of_every_version() {
        let topic = |compression, replication_factor| NewTopic {
            name: "t".into(),
            partitions: 2,
            config: TopicConfig {
                retention_ms: Some(5),
                compression,
                ..TopicConfig::default()
            },
            replication_factor,
        };
        // Version 2 ends each topic with its replication factor.
        let v2 = CreateTopicsRequest {
            topics: vec![topic(Some(TopicCompression::Zstd), Some(3))],
        };
        assert_eq!(encode(&v2), [1, 1, b't', 2, 0, 0, 1, 5, 0, 0, 1, 5, 1, 3]);
        check_all(std::slice::from_ref(&v2));
        // Versions 1 and 0 cannot carry a factor above 1 ...
        assert_eq!(v2.to_v1(), None);
        assert_eq!(v2.to_v0(), None);
        // ... and version 1 is version 2 minus the last option.
        let v2 = CreateTopicsRequest {
            topics: vec![topic(Some(TopicCompression::Zstd), Some(1))],
        };
        let v1 = v2.to_v1().unwrap();
        assert_eq!(encode(&v1), [1, 1, b't', 2, 0, 0, 1, 5, 0, 0, 1, 5]);
        check_all(std::slice::from_ref(&v1));
        assert_eq!(
            CreateTopicsRequest::from(v1).topics[0].replication_factor,
            None
        );
        // Version 0 cannot carry the codec ...
        assert_eq!(v2.to_v0(), None);
        // ... and without one it is version 1 minus the last option.
        let plain = CreateTopicsRequest {
            topics: vec![topic(None, None)],
        };
        assert_eq!(encode(&plain), [1, 1, b't', 2, 0, 0, 1, 5, 0, 0, 0, 0]);
        let v0 = plain.to_v0().unwrap();
        assert_eq!(encode(&v0), [1, 1, b't', 2, 0, 0, 1, 5, 0, 0]);
        assert_eq!(CreateTopicsRequest::from(v0), plain);
    }

    #[test]
    fn response_round_trips_and_rejects_truncation() {
        check_all(&[
            CreateTopicsResponse { results: vec![] },
            CreateTopicsResponse {
                results: vec![
                    TopicResult {
                        name: "orders".into(),
                        error_code: ErrorCode::None,
                        message: None,
                    },
                    TopicResult {
                        name: "audit".into(),
                        error_code: ErrorCode::TopicAlreadyExists,
                        message: Some("topic \"audit\" already exists".into()),
                    },
                    TopicResult {
                        name: "bad/name".into(),
                        error_code: ErrorCode::InvalidTopicName,
                        message: Some(String::new()),
                    },
                ],
            },
        ]);
    }
}
