//! CreateTopics (key 2).

use serde::{Deserialize, Serialize};

use super::ErrorCode;
use super::topic_config::TopicConfig;

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

/// Creates topics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateTopicsRequest {
    /// The topics.
    pub topics: Vec<NewTopic>,
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
    use crate::wire::testutil::check_all;
    use crate::wire::topic_config::FlushMode;

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
                            ..TopicConfig::default()
                        },
                    },
                ],
            },
        ]);
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
