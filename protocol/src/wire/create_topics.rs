//! CreateTopics (key 2).

use serde::{Deserialize, Serialize};

use super::ErrorCode;
use super::topic_config::{TopicConfig, TopicConfigV0};

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTopic {
    /// Topic name.
    pub name: String,
    /// Number of partitions (at least 1).
    pub partitions: u32,
    /// Settings; unset fields take the broker's defaults.
    pub config: TopicConfig,
}

/// Creates topics (version 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateTopicsRequest {
    /// The topics.
    pub topics: Vec<NewTopic>,
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
                })
                .collect(),
        }
    }
}

impl CreateTopicsRequest {
    /// The version 0 form, or `None` when a topic sets a field version 0
    /// cannot carry (`compression`).
    pub fn to_v0(&self) -> Option<CreateTopicsRequestV0> {
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

    /// Both versions' bytes, pinned (`docs/protocol.md`).
    #[test]
    fn layout_of_both_versions() {
        let topic = |compression| NewTopic {
            name: "t".into(),
            partitions: 2,
            config: TopicConfig {
                retention_ms: Some(5),
                compression,
                ..TopicConfig::default()
            },
        };
        let v1 = CreateTopicsRequest {
            topics: vec![topic(Some(TopicCompression::Zstd))],
        };
        assert_eq!(encode(&v1), [1, 1, b't', 2, 0, 0, 1, 5, 0, 0, 1, 5]);
        // Version 0 cannot carry the codec ...
        assert_eq!(v1.to_v0(), None);
        // ... and without one it is version 1 minus the last option.
        let plain = CreateTopicsRequest {
            topics: vec![topic(None)],
        };
        assert_eq!(encode(&plain), [1, 1, b't', 2, 0, 0, 1, 5, 0, 0, 0]);
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
